"""The smoke profile through the real ``dvc repro`` with 2 ranks, in a fresh git repository.

Checks the artifacts, the metrics and plots files, the offline W&B runs (read back: the
logged numbers equal the metrics files), the WMT14 translation stages on the committed
sample corpus (BLEU checked against sacreBLEU itself), the compute budget and its table in
the report, the quick benchmark, that a second ``dvc repro`` does nothing, and that
``dvc push`` / ``dvc pull`` round-trip the cached outputs through the default local remote.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_helpers import dvc, make_repo, pipeline_env
from test_tracking_run import run_contents

from repro.tracking import read_run

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ("dup-full", "dup-lsh2")  # configs/smoke.yaml, duplication
WMT = "wmt14-smoke"  # configs/smoke.yaml, translation on tests/fixtures/wmt14
MODES = ("full", "lsh1", "lsh2", "lsh4", "lsh8")
BLEU_KEYS = ("bleu", "sacrebleu_uncased", "sacrebleu_cased")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    dest = make_repo(tmp_path_factory.mktemp("repo"))
    return dest, dvc("repro", cwd=dest)


def test_smoke_repro_writes_every_artifact(repo):
    root, first = repo
    out = first.stdout
    for stage in (
        "prepare@duplication",
        "prepare@wmt14",
        *(f"{s}@{e}" for s in ("train", "evaluate") for e in (*EXPERIMENTS, WMT)),
        "budget",
        "benchmark",
        "report",
    ):
        assert f"Running stage '{stage}'" in out
    manifest = json.loads((root / "data/duplication/manifest.json").read_text())
    assert set(manifest["files"]) == {"train.npy", "valid.npy", "test.npy"}

    groups = set()
    for exp in EXPERIMENTS:
        model_dir = root / "models" / exp
        names = {p.name for p in model_dir.iterdir()}
        assert names == {"model.pt", "checkpoint.pt", "run.json", "wandb"}
        metrics = json.loads((root / "metrics" / f"{exp}.json").read_text())
        assert list(metrics["accuracy"]) == list(MODES)
        assert all(0.0 <= v <= 1.0 for v in metrics["accuracy"].values())
        assert metrics["train_steps"] == 20
        curves = (root / "metrics" / "curves" / f"{exp}.csv").read_text().splitlines()
        assert curves[0] == "step,train_loss,train_accuracy,lr,valid_loss,valid_accuracy"
        assert [line.split(",")[0] for line in curves[1:]] == ["5", "10", "15", "20"]

        ref = json.loads((model_dir / "run.json").read_text())
        assert list(ref) == [
            "experiment",
            "mode",
            "run_dir",
            "entity",
            "project",
            "id",
            "group",
            "url",
        ]
        assert ref["experiment"] == exp and ref["mode"] == "offline"
        groups.add(ref["group"])
        run_dir = root / ref["run_dir"]
        assert (run_dir / f"run-{ref['id']}.wandb").is_file()

        # read the run back: training history in run_dir, evaluation in its resumption
        train_run = run_contents(run_dir)
        history = [row for row in train_run["history"] if "train/loss" in row]
        assert [row["_step"] for row in history] == [5, 10, 15, 20]
        assert {
            "train/loss",
            "train/accuracy",
            "train/lr",
            "train/tokens_per_s",
            "valid/loss",
            "valid/accuracy",
        } <= set(history[-1])
        assert round(history[-1]["train/loss"], 6) == metrics["final_train_loss"]
        assert train_run["config"]["experiment"] == exp
        assert train_run["config"]["git_commit"]
        summary = read_run(model_dir / "run.json", root=root).summary  # + runs/<exp>/wandb
        for mode in MODES:
            assert summary[f"eval/accuracy_{mode}"] == metrics["accuracy"][mode]
    assert len(groups) == 1  # one repro, one W&B group


def test_smoke_translation_is_scored_like_sacrebleu(repo):
    import sacrebleu
    import torch

    from reformer.decoding import translate
    from reformer.models import ReformerEncoderDecoder
    from reformer.tasks.wmt14 import BOS_ID, EOS_ID, WMT14Dataset, load_tokenizer

    root, _ = repo
    data = root / "data" / "wmt14"
    stats = json.loads((data / "stats.json").read_text())
    # every pair of the sample corpus fits tasks.wmt14.max_len (none dropped as too long)
    assert (stats["train_pairs"], stats["train_pairs_too_long"], stats["test_pairs"]) == (
        240,
        0,
        4,
    )
    metrics = json.loads((root / "metrics" / f"{WMT}.json").read_text())
    assert set(metrics["bleu"]) == {"beam", "greedy"}
    for method in ("beam", "greedy"):
        assert tuple(metrics["bleu"][method]) == BLEU_KEYS
        # the test sentences are in the sample training text: the model memorises them
        assert metrics["bleu"][method]["sacrebleu_cased"] > 50, metrics
    assert metrics["train_steps"] == 300
    assert metrics["sacrebleu_signature"].startswith("nrefs:1|case:mixed")

    # decode again with the saved weights and score with sacreBLEU directly
    saved = torch.load(root / "models" / WMT / "model.pt", weights_only=True)
    assert saved["model_class"] == "ReformerEncoderDecoder"
    model = ReformerEncoderDecoder(**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    sp = load_tokenizer(data)
    test = WMT14Dataset(data, "test", max_len=model.max_seq_len, vocab_size=sp.get_piece_size())
    sources = [test.pair(i)[0] + [EOS_ID] for i in range(len(test))]
    out = translate(model, sources, bos_id=BOS_ID, eos_id=EOS_ID, method="greedy")
    hypotheses = [sp.decode(ids) for ids in out]
    references = (data / "test.de").read_text().splitlines()
    assert len(references) == len(hypotheses) == 4
    for lowercase, key in ((False, "sacrebleu_cased"), (True, "sacrebleu_uncased")):
        expected = sacrebleu.corpus_bleu(
            hypotheses, [references], tokenize="intl", lowercase=lowercase
        ).score
        assert metrics["bleu"]["greedy"][key] == pytest.approx(expected, abs=1e-4)

    # the same numbers in the W&B summary: beam search under the paper's keys
    summary = read_run(root / "models" / WMT / "run.json", root=root).summary
    for key in BLEU_KEYS:
        assert summary[f"eval/{key}"] == metrics["bleu"]["beam"][key]
        assert summary[f"eval/{key}_greedy"] == metrics["bleu"]["greedy"][key]


def test_smoke_budget_reaches_the_report_and_benchmark_runs_quick(repo):
    root, _ = repo
    budget = json.loads((root / "metrics" / "budget.json").read_text())
    rows = {row["experiment"]: row for row in budget["experiments"]}
    assert list(rows) == [*EXPERIMENTS, WMT]
    assert budget["assumptions"]["accelerator"] == "a100"  # configs/smoke.yaml budget:
    assert budget["assumptions"]["mfu"] == 0.3
    assert all(row["steps"] == (300 if name == WMT else 20) for name, row in rows.items())
    # the report's "Computational requirements" table lists every experiment
    table = (root / "report" / "generated" / "budget.tex").read_text()
    assert all(name in table for name in rows), table
    assert (
        "\\input{generated/budget}"
        in (root / "report" / "sections" / "methodology.tex").read_text()
    )
    assert (root / "report" / "build" / "report.pdf").stat().st_size > 0
    bench = json.loads((root / "metrics" / "benchmark.json").read_text())
    assert bench["mode"] == "quick"  # configs/smoke.yaml benchmark: {quick: true}
    assert any((root / "plots" / "benchmark").iterdir())


def test_second_repro_does_nothing_and_dvc_views_work(repo):
    root, _ = repo
    again = dvc("repro", cwd=root).stdout
    assert "Running stage" not in again
    assert "Data and pipelines are up to date." in again
    shown = json.loads(dvc("metrics", "show", "--json", cwd=root).stdout)
    files = next(iter(shown.values()))["data"]
    assert {f"metrics/{e}.json" for e in (*EXPERIMENTS, WMT)} <= set(files)
    assert "metrics/benchmark.json" in files
    plots = json.loads(dvc("plots", "show", "--json", cwd=root).stdout)
    assert not plots.get("errors"), plots.get("errors")  # every plot renders
    assert {f"metrics/curves/{e}.csv" for e in (*EXPERIMENTS, WMT)} <= set(plots["data"])
    figures = {"attention_time", "attention_memory", "depth_memory"}
    assert {f"plots/benchmark/{name}.png" for name in figures} <= set(plots["data"])
    assert "Path" in dvc("metrics", "diff", "--all", cwd=root).stdout


def test_corrupted_split_is_refused_then_prepared_again(repo):
    root, _ = repo
    split = root / "data" / "duplication" / "train.npy"
    good = split.read_bytes()
    split.chmod(0o644)  # DVC may link cached files read-only
    split.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, one bit flipped
    trained = subprocess.run(
        [sys.executable, "pipelines/train.py", "dup-full"],
        cwd=root,
        env=pipeline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trained.returncode == 1
    lines = trained.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.npy" in lines[0] and "sha256" in lines[0], trained.stderr
    again = dvc("repro", cwd=root).stdout
    # prepared again, or restored from DVC's run cache (the same bytes)
    assert ("Running stage 'prepare@duplication'" in again) or (
        "Stage 'prepare@duplication' is cached - skipping run, checking out outputs" in again
    )
    assert "Running stage 'train@" not in again  # the same data again: nothing to retrain
    assert split.read_bytes() == good


def test_push_then_pull_restores_outputs(repo):
    root, _ = repo
    before = {
        p: digest(root / p) for p in ("models/dup-full/model.pt", "data/duplication/train.npy")
    }
    dvc("push", cwd=root)
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(root / "models")
    shutil.rmtree(root / "data")
    dvc("pull", cwd=root)
    assert {p: digest(root / p) for p in before} == before
    assert "up to date" in dvc("status", cwd=root).stdout

"""params.yaml validation: each bad configuration gives one line naming key, value, allowed."""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys
from dataclasses import replace as dataclass_replace
from pathlib import Path

import pytest
import yaml

from reformer.config import (
    ConfigError,
    check_runtime,
    load_params,
    parse_params,
    use_profile,
)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

BASE = {
    "profile": "test",
    "seed": 0,
    "tasks": {
        "duplication": {
            "length": 64,
            "vocab_size": 16,
            "n_train": 128,
            "n_valid": 8,
            "n_test": 8,
            "seed": 0,
        }
    },
    "model": {"d_model": 32, "n_heads": 2, "d_ff": 64, "bucket_size": 16, "n_hashes": 2},
    "train": {"steps": 10, "batch_size": 8},
    "distributed": {"nproc_per_node": 2, "device": "cpu"},
    "experiments": {
        "dup-full": {"task": "duplication", "model": {"attention": "full"}},
        "dup-lsh4": {"task": "duplication", "model": {"attention": "lsh", "n_hashes": 4}},
    },
}


def with_change(path: str, value: object) -> dict:
    """BASE with the dotted key ``path`` set to ``value``."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(data)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_valid_params_resolve_experiment_overrides_over_defaults():
    params = parse_params(BASE)
    lsh = params.experiment("dup-lsh4")
    assert (lsh.model.attention, lsh.model.n_hashes, lsh.model.d_model) == ("lsh", 4, 32)
    full = params.experiment("dup-full")
    assert (full.model.attention, full.model.n_hashes) == ("full", 2)  # default kept
    assert full.seq_len == 64 and full.train.steps == 10
    kwargs = lsh.model_kwargs(vocab_size=16)
    assert kwargs["max_seq_len"] == 64 and kwargs["vocab_size"] == 16


def test_unknown_top_level_key_suggests_the_closest():
    message = error_of({**BASE, "trian": {}})
    assert "unknown key 'trian'" in message and "did you mean 'train'?" in message
    assert "allowed:" in message


def test_unknown_nested_key_names_full_path_and_suggestion():
    message = error_of(with_change("train.stesp", 5))
    assert "'train.stesp'" in message and "did you mean 'steps'?" in message
    message = error_of(with_change("experiments.dup-full.model.atention", "full"))
    assert "'experiments.dup-full.model.atention'" in message
    assert "did you mean 'attention'?" in message


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("train.steps", "many", "train.steps = 'many': must be an integer"),
        ("model.reversible", "yes", "model.reversible = 'yes': must be true or false"),
        ("train.lr", [1], "train.lr = [1]: must be a number"),
        ("evaluate.n_hashes", [1, "two"], "evaluate.n_hashes[1] = 'two': must be an integer"),
        ("train.lr", float("nan"), "train.lr = nan: must be a finite number"),
        ("train.betas", [0.9], "train.betas = [0.9]: must be a list of 2 values"),
    ],
)
def test_wrong_type(path, value, expected):
    assert expected in error_of(with_change(path, value))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("model.d_model", 0, "model.d_model = 0: must be an integer >= 1"),
        ("train.batch_size", -4, "train.batch_size = -4: must be an integer >= 1"),
        ("evaluate.n_hashes", [1, 0], "evaluate.n_hashes = [1, 0]: must be an integer >= 1"),
        ("model.dropout", 1.0, "model.dropout = 1.0: must be a number < 1.0"),
        ("train.betas", [0.9, 1.0], "train.betas = (0.9, 1.0): must be a number < 1.0"),
        ("tasks.duplication.n_train", 0, "'n_train' = 0: must be > 0"),
    ],
)
def test_non_positive_sizes(path, value, expected):
    assert expected in error_of(with_change(path, value))


def test_length_not_divisible_by_bucket_size():
    message = error_of(with_change("model.bucket_size", 24))
    assert "model.bucket_size = 24" in message
    assert "sequence length 64 is not divisible" in message and "allowed:" in message


def test_odd_number_of_buckets():
    data = with_change("tasks.duplication.length", 48)
    message = error_of(data)  # 48 / 16 = 3 buckets
    assert "model.bucket_size = 16" in message and "odd number of buckets" in message
    assert "48 / 16 = 3" in message


def test_unknown_task_and_unknown_variant():
    message = error_of(with_change("experiments.dup-full.task", "copying"))
    assert "experiments.dup-full.task = 'copying' is unknown" in message
    assert "allowed: duplication" in message
    message = error_of(with_change("tasks.copy", {}))
    assert "task 'tasks.copy' is unknown" in message and "allowed: duplication, enwik8" in message
    message = error_of(with_change("experiments.dup-full.model.attention", "sparse"))
    assert "experiments.dup-full.model.attention = 'sparse'" in message
    assert "allowed: lsh, full" in message


def test_lsh_without_shared_qk_and_batch_not_divisible_by_ranks():
    message = error_of(with_change("experiments.dup-lsh4.model.shared_qk", False))
    assert "experiments.dup-lsh4.model.shared_qk = False" in message
    message = error_of(with_change("train.batch_size", 9))
    assert "train.batch_size = 9" in message and "nproc_per_node x grad_accum = 2" in message


def test_unknown_experiment_name_suggests():
    params = parse_params(BASE)
    with pytest.raises(ConfigError, match=r"'dup-lsh' is unknown \(did you mean 'dup-lsh4'\?\)"):
        params.experiment("dup-lsh")


def test_more_ranks_than_cores():
    params = parse_params(with_change("distributed.nproc_per_node", 4))
    with pytest.raises(ConfigError) as info:
        check_runtime(params, cpu_count=2)
    message = str(info.value)
    assert message == (
        "params.yaml: distributed.nproc_per_node = 4: more ranks than the 2 CPU cores of "
        "this machine; allowed: 1 to 2"
    )
    check_runtime(parse_params(BASE), cpu_count=2)  # 2 ranks on 2 cores is fine


def test_more_ranks_than_gpus():
    params = parse_params(with_change("distributed.device", "cuda"))
    with pytest.raises(ConfigError, match="more ranks than the 1 GPUs"):
        check_runtime(params, gpu_count=1)


def test_yaml_1_1_exponent_strings_are_numbers():
    params = parse_params(with_change("train.lr", "1e-3"))
    assert params.train.lr == pytest.approx(1e-3)


def test_bad_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  steps: [1,\n")
    with pytest.raises(ConfigError) as info:
        load_params(path)
    assert "\n" not in str(info.value) and "not valid YAML (line" in str(info.value)


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_profiles_are_valid(profile):
    params = load_params(ROOT / "configs" / f"{profile}.yaml")
    assert params.profile == profile and params.experiments


def test_default_profile_has_the_table2_experiments():
    params = load_params(ROOT / "configs" / "default.yaml")
    assert list(params.experiments) == ["dup-full", "dup-lsh1", "dup-lsh2", "dup-lsh4"]
    assert all(e.model.shared_qk for e in params.experiments.values())
    variants = {n: (e.model.attention, e.model.n_hashes) for n, e in params.experiments.items()}
    assert variants["dup-full"][0] == "full"
    assert [variants[f"dup-lsh{r}"] for r in (1, 2, 4)] == [("lsh", 1), ("lsh", 2), ("lsh", 4)]


WMT = {"max_len": 12, "vocab_size": 64}  # validated only (nothing is downloaded here)


def wmt_params(**experiment: object) -> dict:
    """BASE plus a wmt14 task and one translation experiment with ``experiment`` keys."""
    data = copy.deepcopy(BASE)
    data["tasks"]["wmt14"] = dict(WMT)
    data["experiments"]["wmt"] = {
        "task": "wmt14",
        "model": {"attention": "full", "shared_qk": False, "n_layers": 2},
        **experiment,
    }
    return data


def test_translation_experiment_packs_pairs_and_builds_an_encoder_decoder():
    params = parse_params(wmt_params())
    exp = params.experiment("wmt")
    assert exp.seq_len == 2 * WMT["max_len"]  # source + target, packed
    kwargs = exp.model_kwargs(vocab_size=64)
    # n_layers is the depth of both stacks; positions cover one side (max_len)
    assert (kwargs["n_encoder_layers"], kwargs["n_decoder_layers"]) == (2, 2)
    assert (kwargs["max_seq_len"], kwargs["vocab_size"], kwargs["d_model"]) == (12, 64, 32)
    assert exp.eval_modes(exp.evaluate) == [("beam", "full", None), ("greedy", "full", None)]
    assert (exp.evaluate.beam_size, exp.evaluate.length_penalty) == (4, 0.6)  # the paper's


def test_translation_rejects_lsh_and_a_mismatched_length():
    lsh = wmt_params(model={"attention": "lsh", "shared_qk": True})
    assert error_of(lsh) == (
        "params.yaml: experiments.wmt.model.attention = 'lsh': the encoder-decoder uses full "
        "attention (the paper's WMT model); allowed: full"
    )
    wrong_len = wmt_params(model={"attention": "full", "shared_qk": False}, train={"seq_len": 12})
    assert "experiments.wmt.train.seq_len = 12" in error_of(wrong_len)
    assert "allowed: null or 24" in error_of(wrong_len)
    bad_task = wmt_params()
    bad_task["tasks"]["wmt14"]["max_len"] = 2
    assert error_of(bad_task).startswith("params.yaml: tasks.wmt14: wmt14 param 'max_len' = 2")


def test_experiment_evaluate_overrides_the_section_for_that_experiment_only():
    data = copy.deepcopy(BASE)
    data["evaluate"] = {"batch_size": 16, "n_hashes": [1, 2]}
    data["experiments"]["dup-lsh4"]["evaluate"] = {"full": False, "batch_size": 1}
    params = parse_params(data)
    lsh, full = params.experiment("dup-lsh4"), params.experiment("dup-full")
    assert (lsh.evaluate.full, lsh.evaluate.batch_size, lsh.evaluate.n_hashes) == (
        False,
        1,
        [1, 2],
    )
    assert [m[0] for m in lsh.eval_modes(lsh.evaluate)] == ["lsh1", "lsh2"]
    assert (full.evaluate.full, full.evaluate.batch_size) == (True, 16)
    assert params.wandb_config("dup-lsh4")["evaluate"]["batch_size"] == 1
    data["experiments"]["dup-lsh4"]["evaluate"] = {"beam": 4}
    assert error_of(data).startswith(
        "params.yaml: unknown key 'experiments.dup-lsh4.evaluate.beam' (did you mean "
        "'beam_size'?); allowed: n_hashes,"
    )
    data["experiments"]["dup-lsh4"]["evaluate"] = {"length_penalty": -1}
    assert "experiments.dup-lsh4.evaluate.length_penalty = -1" in error_of(data)


def test_paper_profile_defines_table4_and_the_section5_ablations():
    params = load_params(ROOT / "configs" / "paper.yaml")
    exps = params.experiments
    base, big = exps["wmt14-reversible-base"], exps["wmt14-reversible-big"]
    # Table 4 (Vaswani et al.'s base and big shapes, reversible, rsqrt warmup 4000)
    assert (base.model.n_layers, base.model.d_model, base.model.d_ff, base.model.n_heads) == (
        6,
        512,
        2048,
        8,
    )
    assert (big.model.d_model, big.model.d_ff, big.model.n_heads) == (1024, 4096, 16)
    assert (base.model.dropout, big.model.dropout) == (0.1, 0.3)
    assert [
        exps[n].train.steps
        for n in ("wmt14-reversible-base", "wmt14-reversible-base-500k", "wmt14-reversible-big")
    ] == [100_000, 500_000, 300_000]
    for exp in (base, big):
        assert exp.model.reversible and exp.train.schedule == "rsqrt"
        assert exp.train.warmup_steps == 4000
        assert exp.evaluate.max_batches is None  # the whole newstest2014
    # Section 5: 3 layers, d 1024, d_ff 4096, 8 heads, batch 8, at 4096 and 65536
    ablations = {n: e for n, e in exps.items() if n.startswith("enwik8-") and n != "enwik8-12l"}
    for exp in ablations.values():
        m = exp.model
        assert (m.n_layers, m.d_model, m.d_ff, m.n_heads) == (3, 1024, 4096, 8)
        assert exp.train.batch_size == 8 and m.positional == "axial"
    lengths = {n: e.seq_len for n, e in ablations.items()}
    assert {lengths[f"enwik8-lsh{r}"] for r in (1, 2, 4, 8)} == {4096}
    assert {lengths[f"enwik8-64k-lsh{r}"] for r in (1, 2, 4, 8)} == {65536}
    assert [exps[f"enwik8-lsh{r}"].model.n_hashes for r in (1, 2, 4, 8)] == [1, 2, 4, 8]
    # each Figure 3 comparison changes one thing against the ordinary Transformer
    t = exps["enwik8-transformer"].model
    assert (t.shared_qk, t.reversible, t.attention) == (False, False, "full")
    assert exps["enwik8-shared-qk"].model == dataclass_replace(t, shared_qk=True)
    assert exps["enwik8-reversible"].model == dataclass_replace(t, reversible=True)
    # full attention at 65536 would not fit: those runs are never evaluated with it
    assert not any(
        m[0] == "full"
        for n, e in exps.items()
        if e.seq_len == 65536
        for m in e.eval_modes(e.evaluate)
    )
    assert exps["enwik8-12l"].model.n_layers == 12 and exps["enwik8-12l"].train.steps == 20_000


def test_every_claim_names_experiments_of_the_paper_profile():
    claims = yaml.safe_load((ROOT / "report" / "claims.yaml").read_text())
    paper = load_params(ROOT / "configs" / "paper.yaml").experiments
    named = {e for c in claims["claims"] for e in c.get("experiments", [])}
    named |= {row["experiment"] for row in claims["table2"]["rows"]}
    assert named and named <= set(paper), sorted(named - set(paper))
    # Table 4: the paper's three numbers for each of its three reversible models
    table4 = {
        (c["experiments"][0], c["metric"]): c["paper"]
        for c in claims["claims"]
        if c.get("experiments", [""])[0].startswith("wmt14-")
    }
    assert table4 == {
        ("wmt14-reversible-base", "eval/bleu"): 27.6,
        ("wmt14-reversible-base", "eval/sacrebleu_uncased"): 27.4,
        ("wmt14-reversible-base", "eval/sacrebleu_cased"): 26.9,
        ("wmt14-reversible-base-500k", "eval/bleu"): 28.0,
        ("wmt14-reversible-base-500k", "eval/sacrebleu_uncased"): 27.9,
        ("wmt14-reversible-base-500k", "eval/sacrebleu_cased"): 27.4,
        ("wmt14-reversible-big", "eval/bleu"): 29.1,
        ("wmt14-reversible-big", "eval/sacrebleu_uncased"): 28.9,
        ("wmt14-reversible-big", "eval/sacrebleu_cased"): 28.4,
    }


def test_profiles_give_every_pipeline_section():
    for profile, quick in (("smoke", True), ("default", False), ("paper", False)):
        raw = yaml.safe_load((ROOT / "configs" / f"{profile}.yaml").read_text())
        assert raw["benchmark"] == {"quick": quick}, profile
        assert set(raw["budget"]) <= {"accelerator", "mfu", "tflops"}, profile
    smoke = load_params(ROOT / "configs" / "smoke.yaml")
    assert smoke.experiment("wmt14-smoke").task == "wmt14"
    # the committed fixture archives, pinned by the sha256 that prepare checks
    for source in [*smoke.tasks["wmt14"]["train"], smoke.tasks["wmt14"]["test"]]:
        path = ROOT / source["url"]
        algo, expected = source["checksum"].split(":")
        assert algo == "sha256" and hashlib.sha256(path.read_bytes()).hexdigest() == expected


def test_use_profile_copies_the_profile_verbatim(tmp_path):
    (tmp_path / "configs").mkdir()
    source = (ROOT / "configs" / "smoke.yaml").read_text()
    (tmp_path / "configs" / "smoke.yaml").write_text(source)
    use_profile("smoke", tmp_path)
    assert (tmp_path / "params.yaml").read_text() == source
    with pytest.raises(ConfigError, match=r"profile 'smok' is unknown \(did you mean 'smoke'\?\)"):
        use_profile("smok", tmp_path)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [PY, "-m", "reformer.config", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_check_fails_with_one_line_and_status_2(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("model.bucket_size", 24)))
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params.yaml: ")
    assert "bucket_size = 24" in lines[0]


def test_bad_params_stop_training_before_touching_outputs(tmp_path):
    """The train entry point exits 2 with one line and leaves existing outputs alone."""
    data = with_change("distributed.nproc_per_node", 1024)
    data["train"]["batch_size"] = 1024
    data["tasks"]["duplication"]["n_train"] = 1024
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    model_dir = tmp_path / "models" / "dup-full"
    model_dir.mkdir(parents=True)
    (model_dir / "model.pt").write_bytes(b"previous weights")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run(
        [PY, str(ROOT / "pipelines" / "train.py"), "dup-full"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "distributed.nproc_per_node = 1024: more ranks than the" in lines[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (model_dir / "model.pt").read_bytes() == b"previous weights"

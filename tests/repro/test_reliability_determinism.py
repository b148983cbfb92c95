"""Two ``dvc repro`` runs from a clean state with the same params give identical results on CPU.

Each run is the kit's fixture paper's smoke profile (``tests/repro/minipaper``: prepare,
torchrun training with 2 ranks, evaluation) in its own fresh git copy of the project, so
nothing is shared: no DVC cache, no run cache, no W&B
directory. A fake ``WANDB_API_KEY`` sits in the environment of both runs; afterwards every
file the runs left (W&B record files and logs, run.json, checkpoints, dvc.lock) and their
console output are scanned for it and for any token-like string.

Then the data checks on one of the copies: a truncated training split or a tampered test split
is refused by the stage that would read it (never trained or evaluated on), and the next
``dvc repro`` prepares the data again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from pipeline_helpers import MINIPAPER, dvc, fresh_repo, pipeline_env, use_minipaper
from test_reliability_security import fake_wandb_key, find_secrets

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(600)]

PARAMS = yaml.safe_load((MINIPAPER / "params.yaml").read_text())
EXPERIMENTS = list(PARAMS["experiments"])
TASK = PARAMS["experiments"][EXPERIMENTS[0]]["task"]  # copy: .npy splits
STAGES = [f"evaluate@{name}" for name in EXPERIMENTS]  # and everything they depend on


def metrics_files(root: Path) -> dict[str, bytes]:
    """Every metrics file (evaluation JSON and training-curve CSV), by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "metrics").rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory) -> tuple[str, list[tuple[Path, subprocess.CompletedProcess]]]:
    """Two independent clean repros of the smoke profile, with a planted W&B key."""
    key = fake_wandb_key()
    env = {**pipeline_env(), "WANDB_API_KEY": key}
    runs = []
    for name in ("first", "second"):
        root = use_minipaper(fresh_repo(tmp_path_factory.mktemp(name)))
        result = subprocess.run(
            [str(Path(sys.prefix) / "bin" / "dvc"), "repro", *STAGES],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        for exp in EXPERIMENTS:  # trained here, not taken from a cache
            assert f"Running stage 'train@{exp}'" in result.stdout
        runs.append((root, result))
    return key, runs


def test_two_clean_repros_give_identical_metrics_and_weights(clean_runs):
    _, [(first, _), (second, _)] = clean_runs
    a, b = metrics_files(first), metrics_files(second)
    expected = {f"metrics/{e}.json" for e in EXPERIMENTS}
    expected |= {f"metrics/curves/{e}.csv" for e in EXPERIMENTS}
    assert set(a) == set(b) == expected
    for name in a:
        assert a[name] == b[name], f"{name} differs between two clean runs"
    for exp in EXPERIMENTS:
        wa = torch.load(first / "models" / exp / "model.pt", weights_only=True)
        wb = torch.load(second / "models" / exp / "model.pt", weights_only=True)
        assert list(wa["state_dict"]) == list(wb["state_dict"])
        for k in wa["state_dict"]:
            assert torch.equal(wa["state_dict"][k], wb["state_dict"][k]), (exp, k)
    # the prepared data too (sha256 of every split, from the manifests)
    for task_dir in (first / "data").iterdir():
        manifest = task_dir / "manifest.json"
        assert (
            manifest.read_bytes() == (second / "data" / task_dir.name / manifest.name).read_bytes()
        )


def test_runs_leave_no_secret_in_outputs_logs_or_wandb_files(clean_runs):
    key, runs = clean_runs
    for root, result in runs:
        run_dirs = list(root.glob("models/*/wandb/offline-run-*"))
        run_dirs += list(root.glob("runs/*/wandb/offline-run-*"))
        assert len(run_dirs) >= 2 * len(EXPERIMENTS)  # training + evaluation of each
        assert list((root / "models").glob("*/run.json"))
        outputs = [root / d for d in ("runs", "models", "metrics", "data", "dvc.lock")]
        found = find_secrets(
            outputs,
            planted=[key],
            texts={"stdout": result.stdout, "stderr": result.stderr},
        )
        assert found == [], found


def _stage(script: str, exp: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, f"pipelines/{script}.py", exp],
        cwd=root,
        env=pipeline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_truncated_or_tampered_split_is_refused_then_prepared_again(clean_runs):
    _, [(root, _), _] = clean_runs
    exp = EXPERIMENTS[0]
    data = root / "data" / TASK
    good = {name: (data / name).read_bytes() for name in ("train.npy", "test.npy")}
    model = root / "models" / exp / "model.pt"
    weights_before = model.read_bytes()
    metrics_before = (root / "metrics" / f"{exp}.json").read_bytes()

    for name in good:
        (data / name).chmod(0o644)  # DVC may link cached files read-only
    (data / "train.npy").write_bytes(good["train.npy"][: len(good["train.npy"]) // 2])
    trained = _stage("train", exp, root)
    assert trained.returncode == 1
    lines = trained.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.npy" in lines[0], trained.stderr
    assert model.read_bytes() == weights_before  # nothing was trained on it

    tampered = bytearray(good["test.npy"])
    tampered[-1] ^= 0x01
    (data / "test.npy").write_bytes(bytes(tampered))
    evaluated = _stage("evaluate", exp, root)
    assert evaluated.returncode == 1
    lines = evaluated.stderr.strip().splitlines()
    assert len(lines) == 1 and "test.npy" in lines[0] and "sha256" in lines[0], evaluated.stderr
    assert (root / "metrics" / f"{exp}.json").read_bytes() == metrics_before

    again = dvc("repro", *STAGES, cwd=root).stdout
    assert (f"Running stage 'prepare@{TASK}'" in again) or (
        f"Stage 'prepare@{TASK}' is cached - skipping run, checking out outputs" in again
    )
    assert "Running stage 'train@" not in again  # the same data again: nothing to retrain
    assert {name: (data / name).read_bytes() for name in good} == good

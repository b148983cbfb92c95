"""W&B trouble never stops the pipeline: train and evaluate a tiny experiment end to end
(``pipelines/train.py`` then ``pipelines/evaluate.py``, real processes) while W&B cannot write.

- a read-only W&B directory (``models/<exp>/wandb``): training goes on untracked, with one
  warning naming the directory, and evaluation, with nothing to add its numbers to, writes
  the metrics file with one warning saying how to record the run again;
- online mode with a server address on loopback where nothing listens: the run is recorded
  offline instead, with a warning, and evaluation adds to it offline, without trying the
  server again.

Either way the metrics reach the DVC files, equal to each other (W&B never changes results),
and the fake API key planted in the environment lands in no output. The experiment is the
kit's fixture paper's (``tests/repro/minipaper``, on the stages' ``PYTHONPATH``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from minipaper.paper import PAPER
from pipeline_helpers import MINIPAPER, minipaper_env
from test_reliability_security import fake_wandb_key, find_secrets
from test_tracking_run import run_contents

from repro.tracking import read_run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
EXP = "copy-drop"  # tests/repro/minipaper/params.yaml
MODES = ("full", "r1", "r2")  # its evaluation modes (evaluate.rounds: [1, 2])


def make_workspace(root: Path) -> Path:
    """The fixture paper's smoke params for one experiment on one process (10 steps), with
    its prepared data."""
    params = yaml.safe_load((MINIPAPER / "params.yaml").read_text())
    params["experiments"] = {EXP: params["experiments"][EXP]}
    params["train"].update(steps=10, log_every=5, checkpoint_every=10)
    params["distributed"]["nproc_per_node"] = 1
    params["tracking"]["init_timeout_s"] = 3
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    task = params["experiments"][EXP]["task"]
    PAPER.task(task).prepare(root / "data" / task, params["tasks"][task])
    return root


def run_stages(root: Path, env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    """``pipelines/train.py`` then ``pipelines/evaluate.py``, as the DVC stages run them."""
    results = []
    for script in ("train", "evaluate"):
        result = subprocess.run(
            [sys.executable, str(ROOT / "pipelines" / f"{script}.py"), EXP],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"{script}: {result.stderr[-3000:]}"
        results.append(result)
    return results


def base_env(key: str) -> dict[str, str]:
    drop = ("WANDB_RUN_GROUP", "DVC_EXP_NAME", "WANDB_DIR", "WANDB_BASE_URL", "WANDB_MODE")
    env = minipaper_env({k: v for k, v in os.environ.items() if k not in drop})
    env.update(
        WANDB_API_KEY=key,
        WANDB_SILENT="true",
        OMP_NUM_THREADS="1",
        NETRC=os.devnull,
        no_proxy="127.0.0.1,localhost",
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


@contextlib.contextmanager
def read_only_dir(path: Path):
    """Make ``path`` a directory nobody can write to (root too, where chattr +i works)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    immutable = False
    if os.geteuid() == 0 and shutil.which("chattr"):  # root ignores file modes
        chattr = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
        immutable = chattr.returncode == 0
    try:
        probe = path / ".probe"
        try:
            probe.write_text("")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("cannot make a read-only directory on this machine")
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
        path.chmod(0o755)


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (just released by this process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_metrics(root: Path) -> dict:
    metrics = json.loads((root / "metrics" / f"{EXP}.json").read_text())
    assert list(metrics["accuracy"]) == list(MODES)
    assert metrics["train_steps"] == 10
    curves = (root / "metrics" / "curves" / f"{EXP}.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in curves[1:]] == ["5", "10"]
    return metrics


@pytest.fixture(scope="module")
def key() -> str:
    return fake_wandb_key()


@pytest.fixture(scope="module")
def read_only_run(tmp_path_factory, key):
    root = make_workspace(tmp_path_factory.mktemp("readonly"))
    with read_only_dir(root / "models" / EXP / "wandb") as wandb_dir:
        train, evaluate = run_stages(root, {**base_env(key), "WANDB_MODE": "offline"})
        contents = list(wandb_dir.iterdir())
    return root, train, evaluate, contents


@pytest.fixture(scope="module")
def unreachable_run(tmp_path_factory, key):
    root = make_workspace(tmp_path_factory.mktemp("online"))
    port = closed_loopback_port()
    env = {**base_env(key), "WANDB_MODE": "online", "WANDB_BASE_URL": f"http://127.0.0.1:{port}"}
    train, evaluate = run_stages(root, env)
    return root, train, evaluate, port


def test_read_only_wandb_dir_training_goes_on_and_metrics_reach_dvc(read_only_run):
    root, train, evaluate, wandb_contents = read_only_run
    wandb_dir = root / "models" / EXP / "wandb"
    warnings = [line for line in train.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, train.stderr[-3000:]
    assert f"W&B init (offline, dir {wandb_dir}) failed" in warnings[0]
    assert "continuing without W&B" in warnings[0]
    warnings = [line for line in evaluate.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, evaluate.stderr[-3000:]
    assert f"models/{EXP}/run.json: records no W&B run" in warnings[0]
    assert f"`dvc repro -f train@{EXP}`" in warnings[0]
    assert warnings[0].endswith("evaluating into metrics only")
    assert wandb_contents == []
    ref = json.loads((root / "models" / EXP / "run.json").read_text())
    assert ref["run_dir"] is None and ref["mode"] == "offline"
    assert (root / "models" / EXP / "model.pt").is_file()
    read_metrics(root)


def test_unreachable_server_records_offline_and_metrics_reach_dvc(unreachable_run):
    root, train, evaluate, port = unreachable_run
    warnings = [line for line in train.stderr.splitlines() if line.startswith("warning: W&B")]
    assert len(warnings) == 1, train.stderr[-3000:]
    assert f"W&B init (online, dir {root / 'models' / EXP / 'wandb'}) failed" in warnings[0]
    assert "recording it offline" in warnings[0]
    # the run was recorded offline: evaluation adds to it there, without trying the server
    assert "warning" not in evaluate.stderr, evaluate.stderr[-3000:]
    ref = json.loads((root / "models" / EXP / "run.json").read_text())
    assert ref["mode"] == "offline" and ref["url"] is None
    metrics = read_metrics(root)
    history = run_contents(root / ref["run_dir"])["history"]
    assert [row["_step"] for row in history if "train/loss" in row] == [5, 10]
    (evaluated,) = (root / "runs" / EXP / "wandb").glob(f"offline-run-*-{ref['id']}")
    summary = run_contents(evaluated)["summary"]
    assert {m: summary[f"eval/accuracy_{m}"] for m in MODES} == metrics["accuracy"]
    record = read_run(root / "models" / EXP / "run.json", root=root)
    assert {m: record.summary[f"eval/accuracy_{m}"] for m in MODES} == metrics["accuracy"]


def test_wandb_failures_do_not_change_the_results(read_only_run, unreachable_run):
    assert read_metrics(read_only_run[0]) == read_metrics(unreachable_run[0])
    assert (read_only_run[0] / "metrics" / "curves" / f"{EXP}.csv").read_bytes() == (
        unreachable_run[0] / "metrics" / "curves" / f"{EXP}.csv"
    ).read_bytes()


def test_the_planted_key_lands_nowhere(read_only_run, unreachable_run, key):
    for root, train, evaluate, *_ in (read_only_run, unreachable_run):
        logs = {
            f"{name} {stream}": getattr(result, stream)
            for name, result in (("train", train), ("evaluate", evaluate))
            for stream in ("stdout", "stderr")
        }
        assert find_secrets([root], planted=[key], texts=logs) == []

"""A training stage killed with SIGKILL mid-run (launcher and both ranks) resumes on the next
``dvc repro`` and ends with the same weights and metrics (every logged training and validation
number) as an uninterrupted run from a clean state: CPU, bit for bit.

The project copy trains the kit's fixture paper (``tests/repro/minipaper``, copied into it):
its model with dropout, so the resumed run must restore the random state too."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from pipeline_helpers import dvc, make_repo, pipeline_env, use_minipaper

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(600)]

EXP = "copy-drop"  # tests/repro/minipaper/params.yaml: dropout 0.1
STEPS, EVERY = 200, 20


def descendants(pid: int) -> list[int]:
    """All processes below ``pid`` (torchrun starts its ranks in new sessions)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def checkpoint_step(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except (FileNotFoundError, EOFError, RuntimeError):
        return None


def outputs(root: Path) -> tuple[dict, str, float]:
    """Final weights, training curves (every logged metric) and final loss of the stage."""
    saved = torch.load(root / "models" / EXP / "model.pt", weights_only=True)
    curves = (root / "metrics" / "curves" / f"{EXP}.csv").read_text()
    return saved["state_dict"], curves, saved["final_train_loss"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks /proc")
def test_sigkill_mid_run_then_repro_resumes_to_the_uninterrupted_result(tmp_path):
    root = use_minipaper(make_repo(tmp_path))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["experiments"] = {EXP: params["experiments"][EXP]}
    params["train"].update(steps=STEPS, checkpoint_every=EVERY, log_every=10)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    stage = f"train@{EXP}"
    dvc("repro", stage, cwd=root)
    ref_weights, ref_curves, ref_loss = outputs(root)

    # from a clean state again, but killed after the first checkpoint
    shutil.rmtree(root / "models")
    (root / "metrics" / "curves" / f"{EXP}.csv").unlink()
    ckpt = root / "models" / EXP / "checkpoint.pt"
    job = subprocess.Popen(
        [str(Path(sys.prefix) / "bin" / "dvc"), "repro", stage],
        cwd=root,
        env=pipeline_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while (checkpoint_step(ckpt) or 0) < EVERY:
        assert job.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Like a preemption, every process dies at once: dvc is frozen first, so it cannot see its
    # command fail and be killed halfway through rewriting .dvc/tmp/rwlock.
    os.kill(job.pid, signal.SIGSTOP)
    tree = [job.pid, *descendants(job.pid)]
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    job.wait(timeout=30)
    killed_at = checkpoint_step(ckpt)
    assert killed_at is not None and EVERY <= killed_at < STEPS
    assert not (root / "models" / EXP / "model.pt").exists()
    time.sleep(1)  # the ranks die with their launcher (PR_SET_PDEATHSIG)
    assert checkpoint_step(ckpt) == killed_at  # nothing trains on in the background

    resumed = dvc("repro", stage, cwd=root)
    assert "resuming from" in resumed.stderr and f"at step {killed_at}" in resumed.stderr
    weights, curves, loss = outputs(root)
    assert curves == ref_curves and loss == ref_loss
    assert list(weights) == list(ref_weights)
    for name in weights:
        assert torch.equal(weights[name], ref_weights[name]), name
    leftovers = [p.name for p in (root / "models" / EXP).iterdir()]
    assert sorted(leftovers) == ["checkpoint.pt", "model.pt", "run.json", "wandb"]

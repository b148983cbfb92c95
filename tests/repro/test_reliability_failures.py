"""Real torchrun jobs of ``pipelines/train.py`` (2 ranks, gloo) with a fault injected into one
rank's training step: a raised error, or an infinite loss.

The fault is injected by a small launcher script that patches the training objective and then
runs the unchanged ``pipelines/train.py`` as ``__main__``; everything else (torchrun, the
process group and its timeout, DDP, checkpoints, W&B offline) is the real pipeline, training
the kit's fixture paper (``tests/repro/minipaper``, on the ranks' ``PYTHONPATH``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from minipaper.paper import PAPER
from pipeline_helpers import MINIPAPER, minipaper_env

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
EXP = "copy-plain"  # tests/repro/minipaper/params.yaml
STEPS, EVERY, FAULT_AT = 30, 10, 15  # the fault hits step 15; the last checkpoint is step 10
TIMEOUT_S = 8  # distributed.timeout_s: how long a collective waits for a stuck rank

FAULTY_TRAIN = '''\
"""pipelines/train.py with a fault in the training objective: FAULT=<kind>:<rank|all>:<call>."""
import os
import runpy
import sys
import time

root, (kind, ranks, at) = sys.argv[1], os.environ["FAULT"].split(":")
sys.argv = [sys.argv[0], *sys.argv[2:]]
sys.path.insert(0, root)
from repro.training import metrics  # noqa: E402

rank = int(os.environ.get("RANK", "0"))
original = metrics.LanguageModelObjective.forward
calls = [0]


def forward(self, tokens, loss_mask):
    calls[0] += 1
    loss, correct, count = original(self, tokens, loss_mask)
    if ranks in ("all", str(rank)) and calls[0] == int(at):
        with open(f"fault-rank{rank}.time", "w") as f:
            f.write(repr(time.time()))
        if kind == "raise":
            raise RuntimeError(f"injected failure on rank {rank}")
        if kind == "hang":
            time.sleep(3600)  # stuck: the other rank waits in its next collective
        loss = loss + float("inf")
    return loss, correct, count


metrics.LanguageModelObjective.forward = forward
runpy.run_path(os.path.join(root, "pipelines", "train.py"), run_name="__main__")
'''


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A directory with the fixture paper's smoke params (one experiment, 30 steps) and its
    prepared data."""
    params = yaml.safe_load((MINIPAPER / "params.yaml").read_text())
    params["experiments"] = {EXP: params["experiments"][EXP]}
    params["train"].update(steps=STEPS, checkpoint_every=EVERY, log_every=5)
    params["distributed"].update(nproc_per_node=2, timeout_s=TIMEOUT_S)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    task = params["experiments"][EXP]["task"]
    PAPER.task(task).prepare(tmp_path / "data" / task, params["tasks"][task])
    (tmp_path / "faulty_train.py").write_text(FAULTY_TRAIN)
    return tmp_path


def launch(root: Path, fault: str) -> tuple[subprocess.CompletedProcess, float]:
    """torchrun with 2 ranks, as dvc.yaml runs it; returns the result and its end time."""
    env = {
        **minipaper_env(),
        "FAULT": fault,
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*cmd, "faulty_train.py", str(ROOT), EXP],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return result, time.time()


def processes_running_in(root: Path) -> list[int]:
    """Processes whose command line names ``root`` (ranks left behind)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(root).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def assert_last_checkpoint_intact(root: Path) -> None:
    out = root / "models" / EXP
    saved = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert saved["step"] == EVERY
    assert all(torch.isfinite(t).all() for t in saved["model"].values())
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "run.json", "wandb"]  # no tmp
    assert not (root / "metrics").exists()  # no curves of a run that did not finish


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_raising_rank_stops_every_rank_with_its_error_shown_once(workspace):
    result, ended = launch(workspace, f"raise:1:{FAULT_AT}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert output.count("RuntimeError: injected failure on rank 1") == 1, output[-4000:]
    assert output.count("injected failure on rank 1") == 1  # not repeated by the other rank
    assert output.count("stopped because another rank failed") <= 1
    failed_at = float((workspace / "fault-rank1.time").read_text())
    assert ended - failed_at < 60
    assert processes_running_in(workspace) == []
    assert_last_checkpoint_intact(workspace)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_stuck_rank_ends_the_job_after_the_process_group_timeout(workspace):
    result, ended = launch(workspace, f"hang:1:{FAULT_AT}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    stuck_at = float((workspace / "fault-rank1.time").read_text())
    assert TIMEOUT_S <= ended - stuck_at < 60  # the timeout, not a hang
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output[-4000:]
    assert "rank 0 stopped because another rank failed" in errors[0]
    assert processes_running_in(workspace) == []
    assert_last_checkpoint_intact(workspace)


def test_an_infinite_loss_on_one_rank_stops_the_job_naming_the_step(workspace):
    result, _ = launch(workspace, f"inf:1:{FAULT_AT}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    errors = [line for line in output.splitlines() if "non-finite loss" in line]
    assert len(errors) == 1, output[-4000:]
    assert f"non-finite loss (inf) at step {FAULT_AT}" in errors[0]
    assert f"checkpoint.pt (step {EVERY}) is kept" in errors[0]
    assert "]: Traceback" not in output  # no rank died with a traceback: a clean stop
    assert_last_checkpoint_intact(workspace)


# --- outputs are only ever written atomically ----------------------------------------------

WRITERS = (
    "pipelines/train.py",
    "pipelines/evaluate.py",
    "pipelines/prepare.py",
    "repro/training/loop.py",
    "repro/training/metrics.py",
    "repro/tracking/run.py",
    "repro/tracking/run_ref.py",
)
# methods (torch.save, json.dump, np.save, Path.write_text, ...) and the open() builtin
DIRECT_WRITES = {"write_text", "write_bytes", "save", "dump", "fdopen", "savetxt", "tofile"}


def direct_writes(source: str, name: str) -> list[str]:
    """Calls that write a file in place, where a reader could see it half written."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            method = isinstance(func, ast.Attribute) and func.attr in DIRECT_WRITES
            if method or (isinstance(func, ast.Name) and func.id == "open"):
                found.append(f"{name}:{node.lineno}: {ast.unparse(func)}(...)")
    return found


def test_pipeline_outputs_are_written_only_through_the_atomic_helpers():
    """Checkpoints, weights, run.json, curves and metrics go through temporary file + rename."""
    problems = []
    for name in WRITERS:
        problems += direct_writes((ROOT / name).read_text(), name)
    assert problems == []
    bad = "import torch, json\ntorch.save(x, 'm.pt')\nopen('a', 'w').write('x')\njson.dump(d, f)\n"
    assert len(direct_writes(bad, "bad.py")) == 3

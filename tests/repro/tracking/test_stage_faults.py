"""Faults at the train and evaluate stages, through the real stage scripts (real processes, W&B
offline): each ends with ONE line naming the cause and the file, keeps what was done, and the
run record stays whole.

- a full disk while a checkpoint or the final weights are written (the atomic writer made to
  raise ``OSError(ENOSPC)``, plainly or as torch.save reports it: a RuntimeError whose
  context is the OSError, as measured on a full tmpfs) and Ctrl-C (a real SIGINT, raised in
  the training step; and sent to a 2-rank torchrun job): the last checkpoint is kept and the
  rerun resumes from it, into the same W&B run;
- ``WANDB_MODE=disabled`` is refused before anything trains;
- a run folder that ``run.json`` names but that is not here: evaluation says to ``dvc pull``
  or ``dvc repro -f train@<exp>`` and writes nothing; the forced retrain rebuilds the run
  from the checkpoint without training again;
- a model file of another experiment, or a truncated one, is refused by evaluation.

The stage scripts run from a snapshot of the code (``code`` fixture: the kit, the stage scripts
and the kit's fixture paper, ``tests/repro/minipaper``, which the experiments train), so that
edits to the working tree while the tests run cannot change a checkpoint's fingerprint
between two runs.
"""

from __future__ import annotations

import io
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
from minipaper.paper import PAPER
from pipeline_helpers import MINIPAPER

from repro.tracking import read_run, read_run_json

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[3]
EXP, OTHER = "copy-plain", "copy-drop"  # tests/repro/minipaper/params.yaml
STEPS, EVERY, LOG = 20, 10, 5  # checkpoints at steps 10 and 20
LAUNCH = [sys.executable, "-m", "repro.training.launch"]  # torchrun, as dvc.yaml starts it

FAULTY = '''\
"""pipelines/train.py with one fault: faulty.py CODE KIND AT EXPERIMENT."""
import errno, os, runpy, signal, sys

code, kind, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.argv = [os.path.join(code, "pipelines", "train.py"), *sys.argv[4:]]
sys.path.insert(0, code)
from repro.training import experiment, loop, metrics  # noqa: E402

calls = [0]


def full_disk(module):
    real = module.atomic_save

    def save(obj, path):
        calls[0] += 1
        if calls[0] == at:
            error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if kind.startswith("torch"):  # what torch.save raises on a full disk
                try:
                    raise error
                except OSError:
                    raise RuntimeError("[enforce fail at inline_container.cc:672] . "
                                       "unexpected pos 704 vs 598")
            raise error
        return real(obj, path)

    module.atomic_save = save


if kind in ("enospc", "torch-enospc"):
    full_disk(loop)  # the checkpoint writes
elif kind == "enospc-model":
    full_disk(experiment)  # the final weights
elif kind == "sigint":
    # Ctrl-C as a terminal delivers it, even where this test runs with SIGINT ignored (a
    # job started in the background by a non-interactive shell inherits SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    forward = metrics.LanguageModelObjective.forward

    def interrupted(self, tokens, loss_mask):
        calls[0] += 1
        if calls[0] == at:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C delivers
        return forward(self, tokens, loss_mask)

    metrics.LanguageModelObjective.forward = interrupted
runpy.run_path(sys.argv[0], run_name="__main__")
'''


def stage_env(**extra: str) -> dict[str, str]:
    drop = ("WANDB_RUN_GROUP", "DVC_EXP_NAME", "WANDB_DIR", "WANDB_API_KEY", "WANDB_BASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def code(tmp_path_factory) -> Path:
    """A snapshot of the kit, the stage scripts and the fixture paper (importable from there:
    the stage scripts put their checkout first on ``sys.path``)."""
    dest = tmp_path_factory.mktemp("code")
    for source in (ROOT / "repro", ROOT / "pipelines", MINIPAPER):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(source, dest / source.name, ignore=ignore)
    (dest / "faulty.py").write_text(FAULTY)
    return dest


def make_workspace(root: Path, steps: int = STEPS, ranks: int = 1) -> Path:
    params = yaml.safe_load((MINIPAPER / "params.yaml").read_text())
    params["experiments"] = {name: params["experiments"][name] for name in (EXP, OTHER)}
    task = params["experiments"][EXP]["task"]
    params["tasks"] = {task: params["tasks"][task]}
    params["train"].update(steps=steps, log_every=LOG, checkpoint_every=EVERY)
    params["distributed"]["nproc_per_node"] = ranks
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    PAPER.task(task).prepare(root / "data" / task, params["tasks"][task])
    return root


def stage(code: Path, root: Path, script: str, exp: str = EXP, **env: str):
    return subprocess.run(
        [sys.executable, str(code / "pipelines" / f"{script}.py"), exp],
        cwd=root,
        env=stage_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def faulty(code: Path, root: Path, kind: str, at: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(code / "faulty.py"), str(code), kind, str(at), EXP],
        cwd=root,
        env=stage_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-4000:]
    return [line for line in output.splitlines() if line.startswith("error:")]


def checkpoint_step(root: Path, exp: str = EXP) -> int:
    path = root / "models" / exp / "checkpoint.pt"
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def history(root: Path, exp: str = EXP) -> tuple[list[int], list[float]]:
    return read_run(root / "models" / exp / "run.json", root=root).series("train/loss")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, code) -> Path:
    """Both experiments trained, the first evaluated."""
    root = make_workspace(tmp_path_factory.mktemp("trained"))
    for script, exp in (("train", EXP), ("train", OTHER), ("evaluate", EXP)):
        result = stage(code, root, script, exp)
        assert result.returncode == 0, result.stderr[-3000:]
    return root


def copy_of(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "ws", symlinks=True))


# --- a full disk, Ctrl-C ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["enospc", "torch-enospc"])
def test_full_disk_at_a_checkpoint_is_one_line_and_the_rerun_resumes(tmp_path, code, kind):
    root = make_workspace(tmp_path)
    result = faulty(code, root, kind, at=2)  # the checkpoint of step 20 fails
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert line == (
        f"error: train {EXP}: cannot write models/{EXP}/checkpoint.pt (No space left on "
        f"device); the last checkpoint models/{EXP}/checkpoint.pt (step {EVERY}) is kept; "
        "free some space, then `dvc repro` resumes from it"
    )
    assert checkpoint_step(root) == EVERY
    names = sorted(p.name for p in (root / "models" / EXP).iterdir())
    assert names == ["checkpoint.pt", "run.json", "wandb"]  # no temporary file, no weights
    run_id = read_run_json(root / "models" / EXP / "run.json").id

    again = stage(code, root, "train")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {root / 'models' / EXP / 'checkpoint.pt'} at step {EVERY}" in (
        again.stderr
    )
    assert read_run_json(root / "models" / EXP / "run.json").id == run_id  # the same run
    assert history(root)[0] == [5, 10, 15, 20]


def test_full_disk_writing_the_weights_keeps_the_last_checkpoint(tmp_path, code):
    root = make_workspace(tmp_path)
    result = faulty(code, root, "enospc-model", at=1)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert f"cannot write models/{EXP}/model.pt (No space left on device)" in line
    assert f"checkpoint.pt (step {STEPS}) is kept" in line
    again = stage(code, root, "train")
    assert again.returncode == 0 and f"(resumed at {STEPS})" in again.stdout, again.stderr
    assert (root / "models" / EXP / "model.pt").is_file()
    assert history(root)[0] == [5, 10, 15, 20]


def test_ctrl_c_is_one_line_and_the_rerun_resumes(tmp_path, code):
    root = make_workspace(tmp_path)
    result = faulty(code, root, "sigint", at=15)  # during step 15
    assert result.returncode == 130
    (line,) = error_lines(result)
    assert line == (
        f"error: train {EXP}: interrupted (Ctrl-C); the last checkpoint "
        f"models/{EXP}/checkpoint.pt (step {EVERY}) is kept; `dvc repro` resumes from it"
    )
    assert checkpoint_step(root) == EVERY
    again = stage(code, root, "train")
    assert again.returncode == 0 and f"(resumed at {EVERY})" in again.stdout, again.stderr
    steps, losses = history(root)
    assert steps == [5, 10, 15, 20] and all(loss > 0 for loss in losses)


@pytest.mark.distributed
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals a process group")
def test_ctrl_c_to_a_torchrun_job_is_one_line_from_rank_0(tmp_path, code):
    root = make_workspace(tmp_path, steps=300, ranks=2)
    cmd = [*LAUNCH, "--standalone", "--nproc_per_node", "2"]
    cmd += [str(code / "pipelines" / "train.py"), EXP]
    # a terminal's Ctrl-C: SIGINT to the foreground process group (torchrun forwards it)
    job = subprocess.Popen(
        cmd, cwd=root, env=stage_env(PYTHONPATH=str(code)), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    ckpt = root / "models" / EXP / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and job.poll() is None:
        time.sleep(0.1)
    os.killpg(job.pid, signal.SIGINT)
    output, _ = job.communicate(timeout=120)
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output[-4000:]
    assert lines[0].startswith(f"error: train {EXP}: interrupted (Ctrl-C); the last checkpoint")
    assert "[rank0]" not in output and "[rank1]" not in output  # no rank's traceback
    assert "Traceback" not in output and "closing signal" not in output  # nor the launcher's
    step = checkpoint_step(root)
    assert step % EVERY == 0 and 0 < step < 300

    again = subprocess.run(cmd, cwd=root, env=stage_env(), capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert again.returncode == 0 and f"(resumed at {step})" in again.stdout, again.stderr
    assert history(root)[0] == list(range(LOG, 301, LOG))


# --- a training split too small for the batch --------------------------------------------------


@pytest.mark.distributed
def test_a_split_smaller_than_one_batch_per_rank_is_one_line_before_training(tmp_path, code):
    """The text task's size is its bytes, so ``config check`` cannot know how many sequences
    it gives; the train stage checks the split as loaded, on a 2-rank torchrun job."""
    root = make_workspace(tmp_path, ranks=2)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tasks"]["text"] = {"n_train": 61, "n_valid": 61, "n_test": 61}
    params["train"]["seq_len"] = 16  # 61 bytes: 4 windows of 16, 2 per rank; a batch needs 4
    params["experiments"]["text-plain"] = {"task": "text", "model": {"kind": "plain"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    PAPER.task("text").prepare(root / "data" / "text", params["tasks"]["text"])
    cmd = [*LAUNCH, "--standalone", "--nproc_per_node", "2"]
    cmd += [str(code / "pipelines" / "train.py"), "text-plain"]
    result = subprocess.run(cmd, cwd=root, env=stage_env(PYTHONPATH=str(code)),
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output and "[rank1]" not in output, output[-4000:]
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: train text-plain: train.batch_size = 8: data/text holds 4 training sequences "
        "of 16 tokens, 2 per rank on 2 rank(s), fewer than one micro-batch (4); allowed: a "
        "batch_size of at most 4, or more data"
    ], output[-4000:]
    assert not (root / "models" / "text-plain").exists()  # refused before any run started


@pytest.mark.distributed
def test_a_rank_killed_by_a_signal_is_named_by_the_launcher(tmp_path, code):
    """A rank that the kernel kills (SIGKILL, as its out-of-memory killer does) cannot say
    why it stopped; the launcher does, in one line, instead of torchrun's report."""
    script = tmp_path / "dies.py"
    script.write_text(
        "import os, signal, time\n"
        "if os.environ['RANK'] == '1':\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "time.sleep(30)\n"
    )
    cmd = [*LAUNCH, "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run([*cmd, str(script), "x"], cwd=tmp_path, capture_output=True,
                            text=True, env=stage_env(PYTHONPATH=str(code)),
                            timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert (result.stdout + result.stderr).strip().splitlines() == [
        f"error: {script} x: rank 1 was killed by SIGKILL (the kernel's out-of-memory killer?)"
    ]


# --- WANDB_MODE=disabled -----------------------------------------------------------------------

REFUSAL = (
    "WANDB_MODE=disabled records no run, and the report reads every number from the runs; "
    "unset it (offline is the default) or set WANDB_MODE=online"
)


def test_disabled_is_refused_before_anything_trains(tmp_path, code):
    root = make_workspace(tmp_path)
    result = stage(code, root, "train", WANDB_MODE="disabled")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: train {EXP}: {REFUSAL}"]
    assert not (root / "models").exists()
    evaluated = stage(code, root, "evaluate", WANDB_MODE="disabled")
    assert evaluated.returncode == 2
    assert evaluated.stderr.strip().splitlines() == [f"error: evaluate {EXP}: {REFUSAL}"]


# --- a run folder that is not here -----------------------------------------------------------


def test_evaluate_with_the_run_folder_missing_says_what_to_do_and_writes_nothing(
    trained, tmp_path, code
):
    root = copy_of(trained, tmp_path)
    ref = read_run_json(root / "models" / EXP / "run.json")
    shutil.rmtree(root / "models" / EXP / "wandb")
    metrics = (root / "metrics" / f"{EXP}.json").read_bytes()
    before = sorted(p.name for p in (root / "runs" / EXP / "wandb").iterdir())
    result = stage(code, root, "evaluate")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: evaluate {EXP}: models/{EXP}/run.json: its W&B run {ref.run_dir} is not here "
        "(not pulled, or deleted); run `dvc pull` to fetch it if the remote has it, otherwise "
        f"`dvc repro -f train@{EXP}` to record it again"
    ]
    assert sorted(p.name for p in (root / "runs" / EXP / "wandb").iterdir()) == before
    assert (root / "metrics" / f"{EXP}.json").read_bytes() == metrics


def test_a_lost_run_is_rebuilt_from_the_checkpoint_without_training_again(trained, tmp_path, code):
    root = copy_of(trained, tmp_path)
    old = read_run_json(root / "models" / EXP / "run.json")
    logged = history(root)
    weights = (root / "models" / EXP / "model.pt").read_bytes()
    shutil.rmtree(root / "models" / EXP / "wandb")
    retrained = stage(code, root, "train")  # what `dvc repro -f train@<exp>` runs
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    assert f"{STEPS} steps (resumed at {STEPS})" in retrained.stdout  # nothing trained again
    new = read_run_json(root / "models" / EXP / "run.json")
    assert new.id != old.id and (root / new.run_dir).is_dir()
    assert history(root) == logged  # every logged row, replayed from the checkpoint
    saved = torch.load(root / "models" / EXP / "model.pt", weights_only=True)
    before = torch.load(io.BytesIO(weights), weights_only=True)
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in before["state_dict"].items())

    evaluated = stage(code, root, "evaluate")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    record = read_run(root / "models" / EXP / "run.json", root=root)
    assert record.summary["eval/accuracy_full"] is not None and record.state == "finished"
    assert len(list((root / "runs" / EXP / "wandb").iterdir())) == 1  # this evaluation only


# --- model files ------------------------------------------------------------------------------


def test_evaluate_refuses_the_model_file_of_another_experiment(trained, tmp_path, code):
    root = copy_of(trained, tmp_path)
    model = root / "models" / EXP / "model.pt"
    shutil.copyfile(root / "models" / OTHER / "model.pt", model)
    metrics = (root / "metrics" / f"{EXP}.json").read_bytes()
    result = stage(code, root, "evaluate")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: evaluate {EXP}: {model}: holds experiment '{OTHER}', not '{EXP}'; "
        f"run `dvc repro train@{EXP}` to train it again"
    ]
    assert (root / "metrics" / f"{EXP}.json").read_bytes() == metrics


def test_evaluate_refuses_a_truncated_model_file(trained, tmp_path, code):
    root = copy_of(trained, tmp_path)
    model = root / "models" / EXP / "model.pt"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    result = stage(code, root, "evaluate")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: evaluate {EXP}: {model}: unreadable (")
    assert line.endswith(f"); run `dvc repro train@{EXP}` to train it again")

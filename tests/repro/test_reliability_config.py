"""Each bad configuration stops a real training process before any training, with one line naming
the key, the value and what is allowed, and leaves the existing outputs exactly as they were.

The unit tests (``test_config.py``) check the messages of the validator; here the same cases
go through the processes the pipeline runs: ``pipelines/train.py`` for every case, and the
whole ``train@`` stage through ``dvc repro`` for one of them. The cases change the kit's
sections of the project's own smoke profile (its first experiment and task), so they hold
for any paper; the paper's own sections have their cases beside the paper's tests, which
reuse :func:`train_with`, :func:`bad_config_through_dvc_repro` and the ``dvc_repo`` fixture.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SMOKE = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
EXP = next(iter(SMOKE["experiments"]))  # the first experiment, and its task
TASK = SMOKE["experiments"][EXP]["task"]


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def changed(changes: dict[str, object]) -> dict:
    """The smoke params with dotted keys set (new keys are added)."""
    data = copy.deepcopy(SMOKE)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return data


CORES = usable_cpus()
GPUS = gpu_count()
TOO_MANY_GPU_RANKS = (
    ["distributed.device = 'cuda': no CUDA GPU found; allowed here: auto, cpu"]
    if GPUS == 0
    else [f"distributed.nproc_per_node = {GPUS + 1}: more ranks than the {GPUS} GPUs"]
)

# (case, params changes, experiment argument, expected parts of the one line)
CASES = [
    (
        "unknown key",
        {"trian": {}},
        EXP,
        ["unknown key 'trian' (did you mean 'train'?)", "allowed:"],
    ),
    ("wrong type", {"train.steps": "many"}, EXP, ["train.steps = 'many': must be an integer"]),
    (
        "negative size",
        {"train.batch_size": -8},
        EXP,
        ["train.batch_size = -8: must be an integer >= 1"],
    ),
    (
        "more ranks than CPU cores",
        {
            "distributed.device": "cpu",
            "distributed.nproc_per_node": CORES + 1,
            "train.grad_accum": 1,
            "train.batch_size": CORES + 1,
        },
        EXP,
        [
            f"distributed.nproc_per_node = {CORES + 1}: more ranks than the {CORES} CPU cores",
            f"allowed: 1 to {CORES}",
        ],
    ),
    (
        "more ranks than GPUs",
        {
            "distributed.device": "cuda",
            "distributed.nproc_per_node": GPUS + 1,
            "train.grad_accum": 1,
            "train.batch_size": GPUS + 1,
        },
        EXP,
        TOO_MANY_GPU_RANKS,
    ),
    (
        "unknown task",
        {f"experiments.{EXP}.task": "copying"},
        EXP,
        [f"experiments.{EXP}.task = 'copying' is unknown", f"allowed: {', '.join(SMOKE['tasks'])}"],
    ),
    (
        "unknown experiment",
        {},
        EXP[:-1],
        [f"experiment {EXP[:-1]!r} is unknown (did you mean {EXP!r}?)", f"allowed: {EXP}"],
    ),
]


def plant_outputs(root: Path) -> None:
    """Outputs of an earlier run that a bad configuration must not touch."""
    for rel, content in {
        f"models/{EXP}/model.pt": b"earlier weights",
        f"models/{EXP}/checkpoint.pt": b"earlier checkpoint",
        f"models/{EXP}/run.json": b'{"id": "earlier"}',
        f"metrics/{EXP}.json": b'{"accuracy": {"full": 0.5}}\n',
        f"metrics/curves/{EXP}.csv": b"step,train_loss\n5,1.0\n",
        "wandb/offline-run-earlier/run-earlier.wandb": b"earlier run",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def snapshot(root: Path, under: tuple[str, ...]) -> dict[str, tuple[bytes, int]]:
    """Contents and modification times of every file below ``root/<under>``."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for top in under
        if (root / top).exists()
        for p in sorted((root / top).rglob("*"))
        if p.is_file()
    }


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def train_with(root: Path, changes: dict, experiment: str, expected: list[str]) -> None:
    """``pipelines/train.py <experiment>`` on the changed smoke params in ``root`` exits 2
    with one line holding every ``expected`` part, before training, touching nothing."""
    (root / "params.yaml").write_text(yaml.safe_dump(changed(changes), sort_keys=False))
    plant_outputs(root)
    before = snapshot(root, (".",))
    result = subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "train.py"), experiment],
        cwd=root,
        env={**os.environ, "WANDB_MODE": "offline"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert line.startswith("error: params.yaml: ")
    for part in expected:
        assert part in line
    assert result.stdout == ""  # no progress bar: training never started
    assert snapshot(root, (".",)) == before


@pytest.mark.slow  # one process each (~2 s)
@pytest.mark.parametrize(
    ("changes", "experiment", "expected"),
    [pytest.param(c, e, x, id=name) for name, c, e, x in CASES],
)
def test_bad_config_stops_training_before_it_starts(tmp_path, changes, experiment, expected):
    train_with(tmp_path, changes, experiment, expected)


# --- the whole stage, through dvc repro --------------------------------------------------


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    from pipeline_helpers import dvc as run_dvc

    return run_dvc(*args, cwd=cwd)


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> Path:
    """A fresh copy of the project on the smoke profile, with its first task prepared."""
    from pipeline_helpers import fresh_repo

    root = fresh_repo(tmp_path_factory.mktemp("repo"))
    dvc("repro", f"prepare@{TASK}", cwd=root)
    return root


def bad_config_through_dvc_repro(root: Path, changes: dict, stage: str, expected: str) -> None:
    """``dvc repro <stage>`` on the changed params fails with one line, touching no output."""
    if not (root / "data" / TASK).exists():  # removed by an earlier case
        dvc("checkout", f"data/{TASK}", cwd=root)
    plant_outputs(root)
    params = root / "params.yaml"
    good = params.read_text()
    params.write_text(yaml.safe_dump(changed(changes), sort_keys=False))
    watched = ("models", "metrics", "data", "wandb")
    before = snapshot(root, watched)
    try:
        result = subprocess.run(
            [str(Path(sys.prefix) / "bin" / "dvc"), "repro", stage],
            cwd=root,
            env={**os.environ, "WANDB_MODE": "offline", "DVC_NO_ANALYTICS": "1"},
            capture_output=True,
            text=True,
            timeout=200,
        )
    finally:
        params.write_text(good)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error: params.yaml: ")]
    assert len(errors) == 1 and expected in errors[0], output[-3000:]
    after = snapshot(root, watched)
    missing = sorted(set(before) - set(after))
    assert missing == [], f"dvc repro removed {missing}"
    assert after == before


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bad_config_through_dvc_repro_touches_no_output(dvc_repo):
    bad_config_through_dvc_repro(
        dvc_repo,
        {"train.batch_size": -8},
        f"train@{EXP}",
        "train.batch_size = -8: must be an integer >= 1",
    )

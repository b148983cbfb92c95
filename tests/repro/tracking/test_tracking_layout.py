"""Where runs live: the training's segment in ``models/<exp>/wandb``, the evaluation's in
``runs/<exp>/wandb``, read back as one run; what is said when a run folder is missing; the
refusal of ``WANDB_MODE=disabled``. Runs are real wandb runs (offline), read back with the
small independent parser of ``test_tracking_run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_tracking_run import run_contents

from repro.tracking import (
    RecordingDisabledError,
    RunMissingError,
    RunRef,
    find_run_segments,
    read_run,
    require_recording,
    start_run,
    tidy_wandb_dir,
    write_run_json,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_RUN_GROUP", "DVC_EXP_NAME", "WANDB_API_KEY", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)


def segment(folder: Path, stamp: str, run_id: str, n: int = 0) -> Path:
    """An empty run directory with its record file, as wandb names them."""
    path = folder / f"offline-run-{stamp}-{run_id}{f'-{n}' if n else ''}"
    path.mkdir(parents=True)
    (path / f"run-{run_id}.wandb").touch()
    return path


def test_segments_of_one_id_are_merged_across_both_folders_in_time_order(tmp_path):
    train, evaluation = tmp_path / "models/e/wandb", tmp_path / "runs/e/wandb"
    first = segment(train, "20260101_100000", "abc")
    resumed = segment(train, "20260101_100500", "abc")
    same_second = segment(train, "20260101_100500", "abc", n=1)
    evaluated = segment(evaluation, "20260101_100500", "abc")  # same second: after training
    segment(evaluation, "20250101_000000", "abc")  # before the run began: an older run
    segment(evaluation, "20260101_110000", "other")  # another run
    files = find_run_segments(first, also=[evaluation, tmp_path / "no/such/folder"])
    assert [p.parent for p in files] == [first, resumed, same_second, evaluated]
    assert [p.parent for p in find_run_segments(first)] == [first, resumed, same_second]


def test_tidy_removes_links_and_other_runs(tmp_path):
    keep = segment(tmp_path, "20260101_100000", "abc")
    segment(tmp_path, "20250101_100000", "old")
    (keep / "logs").mkdir()
    (keep / "logs" / "debug-core.log").symlink_to("/nonexistent/core-debug.log")
    (tmp_path / "latest-run").symlink_to(keep.name)
    (tmp_path / "debug.log").symlink_to(keep / "logs" / "debug.log")
    tidy_wandb_dir(tmp_path, keep_id="abc")
    assert sorted(p.name for p in tmp_path.iterdir()) == [keep.name]
    assert not [p for p in keep.rglob("*") if p.is_symlink()]
    assert (keep / "run-abc.wandb").is_file()
    tidy_wandb_dir(tmp_path / "missing")  # nothing to tidy: fine


def test_missing_run_folder_says_pull_or_retrain(tmp_path):
    ref = RunRef("dup-full", "offline", "models/dup-full/wandb/offline-run-20260101_100000-abc",
                 None, "p", "abc", "g", None)  # fmt: skip
    write_run_json(tmp_path / "run.json", ref)
    with pytest.raises(RunMissingError) as missing:
        read_run(tmp_path / "run.json", root=tmp_path)
    message = str(missing.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{tmp_path / 'run.json'}: its W&B run {ref.run_dir} is not here")
    assert "`dvc pull`" in message and "`dvc repro -f train@dup-full`" in message

    ref.run_dir = None  # trained with WANDB_MODE=disabled (before it was refused)
    with pytest.raises(RunMissingError, match=r"records no W&B run \(run_dir: null"):
        read_run(ref.to_json(), root=tmp_path)
    ref.mode = "online"  # online runs live on the server: not looked for on disk
    with pytest.raises(ValueError, match="project='' is required for an online run"):
        read_run({**ref.to_json(), "project": ""}, root=tmp_path)


def test_disabled_is_refused_in_one_line(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(RecordingDisabledError) as refused:
        require_recording("train dup-full")
    assert str(refused.value) == (
        "train dup-full: WANDB_MODE=disabled records no run, and the report reads every number "
        "from the runs; unset it (offline is the default) or set WANDB_MODE=online"
    )
    monkeypatch.setenv("WANDB_MODE", "offline")
    require_recording("train dup-full")


RESUME = (
    "import sys; from repro.tracking import read_run_json, resume_run; "
    "r = resume_run(read_run_json(sys.argv[1]), sys.argv[2], 3, home=sys.argv[3]); "
    "print(r.active); r.summary({'eval/accuracy_full': 0.5}); r.finish()"
)


def test_training_and_evaluation_segments_read_as_one_run(tmp_path, offline, monkeypatch):
    """Train in models/e, evaluate in runs/e (another process, as the pipeline does)."""
    home = tmp_path / "models" / "e"
    run = start_run("e", {"lr": 0.1}, project="p", root=tmp_path, group="g", home=home)
    for step in (5, 10):
        run.log({"train/loss": 1.0 / step}, step=step)
    run.finish()
    assert run.ref.run_dir.startswith("models/e/wandb/offline-run-")
    write_run_json(home / "run.json", run.ref)
    assert not (tmp_path / "wandb").exists()  # nothing outside the stage's folder
    assert not [p for p in home.rglob("*") if p.is_symlink()]  # tidied for DVC

    # evaluation reopens it offline even when WANDB_MODE now says online: no network
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WANDB_MODE": "online",
        "WANDB_API_KEY": "x" * 40,
        "WANDB_BASE_URL": "http://127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-c", RESUME, str(home / "run.json"), str(tmp_path),
         str(tmp_path / "runs" / "e")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert out.stdout.strip() == "True", out.stderr
    assert "warning" not in out.stderr, out.stderr
    (evaluated,) = (tmp_path / "runs" / "e" / "wandb").glob(f"offline-run-*-{run.ref.id}")
    assert run_contents(evaluated)["summary"]["eval/accuracy_full"] == 0.5

    record = read_run(home / "run.json", root=tmp_path)
    assert record.id == run.ref.id and record.state == "finished"
    assert record.series("train/loss") == ([5, 10], [0.2, 0.1])
    assert record.summary["eval/accuracy_full"] == 0.5 and record.config["lr"] == 0.1
    assert record.source.split(", ")[1].startswith(str(tmp_path / "runs" / "e" / "wandb"))


def test_a_continued_training_run_names_its_first_folder(tmp_path, offline):
    home = tmp_path / "models" / "e"
    first = start_run("e", {}, project="p", root=tmp_path, group="g", home=home)
    first.log({"train/loss": 1.0}, step=5)
    first.finish(exit_code=1)  # interrupted
    again = start_run("e", {}, project="p", root=tmp_path, group="g", home=home,
                      run_id=first.ref.id)  # fmt: skip
    again.log({"train/loss": 0.5}, step=10)
    again.finish()
    folders = sorted((home / "wandb").glob(f"offline-run-*-{first.ref.id}*"))
    assert len(folders) == 2
    assert again.ref.run_dir == first.ref.run_dir  # where the history starts
    record = read_run(again.ref.to_json(), root=tmp_path)
    assert record.series("train/loss") == ([5, 10], [1.0, 0.5])
    assert json.loads(json.dumps(again.ref.to_json()))["id"] == first.ref.id


def test_the_train_stage_pre_check_refuses_disabled_tracking(monkeypatch, capsys):
    """`python -m repro.config check <exp>` runs before torchrun starts any rank: with
    WANDB_MODE=disabled it stops there with one line, not a line per rank."""
    from repro.config.cli import main

    monkeypatch.setenv("WANDB_MODE", "disabled")
    params = Path(__file__).resolve().parents[3] / "configs" / "smoke.yaml"
    experiment = next(iter(__import__("yaml").safe_load(params.read_text())["experiments"]))
    assert main(["check", experiment, "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "WANDB_MODE=disabled records no run" in err
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert main(["check", experiment, "--params", str(params)]) == 0

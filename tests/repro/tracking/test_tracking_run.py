"""W&B run set-up: offline by default, run.json exactly as documented, resume into the same run,
groups, and training going on when W&B fails. Runs are real wandb runs; they are read back
with a small independent parser of the offline record format."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest

from repro.tracking import RunRef, read_run_json, run_group, start_run
from repro.tracking.run_ref import RUN_JSON_KEYS, write_run_json

ROOT = Path(__file__).resolve().parents[3]
BLOCK = 32 * 1024


def read_records(path: Path) -> list:
    """Parse a ``.wandb`` file: a 7-byte header, then 32 KiB blocks of CRC'd record chunks."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < 7:  # block tail padding
            pos += left_in_block
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        if length == 0 and kind == 0:
            break
        assert zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF == crc, "CRC mismatch"
        pos += 7 + length
        pending += chunk
        if kind in (1, 4):  # full or last
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _key(item) -> str:
    return ".".join(item.nested_key) if item.nested_key else item.key


def run_contents(run_dir: Path) -> dict:
    """History rows, summary and config of one offline run directory."""
    (path,) = run_dir.glob("run-*.wandb")
    out = {"history": [], "summary": {}, "config": {}, "run": None}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            out["summary"].update(
                {_key(i): json.loads(i.value_json) for i in record.summary.update}
            )
        elif kind == "config":
            out["config"].update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "run":
            out["run"] = record.run
            out["config"].update(
                {_key(i): json.loads(i.value_json) for i in record.run.config.update}
            )
    return out


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_RUN_GROUP", "DVC_EXP_NAME", "WANDB_API_KEY", "WANDB_DIR"):
        monkeypatch.delenv(var, raising=False)


def test_offline_run_history_config_and_run_json(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-abc")
    run = start_run("dup-full", {"model": {"d_model": 8}}, project="proj", root=tmp_path)
    assert run.active and run.ref.mode == "offline"
    for step in (1, 2, 3):
        run.log({"train/loss": 1.0 / step}, step=step)
    run.summary({"train/final_loss": 1 / 3})
    run.alert("done", "offline alerts are a no-op")
    run.finish()
    write_run_json(tmp_path / "run.json", run.ref)

    data = json.loads((tmp_path / "run.json").read_text())
    assert list(data) == list(RUN_JSON_KEYS)
    assert data["experiment"] == "dup-full" and data["project"] == "proj"
    assert data["group"] == "exp-abc" and data["url"] is None and data["entity"] is None
    run_dir = tmp_path / data["run_dir"]
    assert data["run_dir"].startswith("wandb/offline-run-") and data["run_dir"].endswith(data["id"])
    contents = run_contents(run_dir)
    assert [row["train/loss"] for row in contents["history"]] == [1.0, 0.5, 1 / 3]
    assert [row["_step"] for row in contents["history"]] == [1, 2, 3]
    assert contents["config"]["model"] == {"d_model": 8}
    assert contents["config"]["dvc_experiment"] == "exp-abc"
    assert "git_commit" in contents["config"]
    assert contents["run"].run_id == data["id"] and contents["run"].run_group == "exp-abc"


def test_resume_writes_to_the_same_run_id(tmp_path, offline):
    """Evaluation reopens the training's run in another process, as the pipeline does."""
    run = start_run("e", {}, project="p", root=tmp_path, group="g")
    run.log({"train/loss": 1.0}, step=1)
    run.finish()
    write_run_json(tmp_path / "run.json", run.ref)
    code = (
        "import sys; from repro.tracking import read_run_json, resume_run; "
        "r = resume_run(read_run_json(sys.argv[1]), sys.argv[2]); "
        "print(r.active); r.summary({'eval/accuracy_full': 0.5}); r.finish()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "run.json"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "True", out.stderr
    dirs = sorted((tmp_path / "wandb").glob(f"offline-run-*-{run.ref.id}*"))
    assert len(dirs) == 2  # wandb writes a resumed offline run to a new directory
    assert dirs[0] == tmp_path / run.ref.run_dir
    summaries = [run_contents(d)["summary"] for d in dirs]
    assert summaries[-1]["eval/accuracy_full"] == 0.5
    assert summaries[0]["train/loss"] == 1.0


def test_group_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_RUN_GROUP", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    first = run_group(tmp_path, "abc")
    assert first.startswith("repro-") and first == run_group(tmp_path, "abc")
    assert run_group(tmp_path, "def") != first
    (tmp_path / "params.yaml").write_text("seed: 2\n")
    assert run_group(tmp_path, "abc") != first
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    assert run_group(tmp_path) == "exp-1"
    monkeypatch.setenv("WANDB_RUN_GROUP", "team-sweep")
    assert run_group(tmp_path) == "team-sweep"


def test_online_without_key_falls_back_to_offline(tmp_path, offline, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = start_run("e", {}, project="p", root=tmp_path, group="g")
    run.finish()
    assert run.ref.mode == "offline" and run.ref.run_dir is not None
    assert any("no API key" in str(w.message) for w in caught)


def test_unreachable_server_warns_and_records_offline(tmp_path, offline, monkeypatch, capfd):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    run = start_run("e", {}, project="p", root=tmp_path, group="g", init_timeout_s=3)
    run.log({"train/loss": 1.0}, step=1)  # training goes on
    run.finish()
    err = capfd.readouterr().err
    assert "warning: W&B init (online" in err and "recording it offline" in err
    assert run.ref.mode == "offline" and (tmp_path / run.ref.run_dir).is_dir()


def test_disabled_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = start_run("e", {}, project="p", root=tmp_path, group="g")
    run.log({"a": 1.0}, step=1)
    run.finish()
    assert not run.active and run.ref.run_dir is None
    assert not (tmp_path / "wandb").exists()


def test_read_run_json_rejects_other_keys(tmp_path):
    path = tmp_path / "run.json"
    write_run_json(path, RunRef("e", "offline", None, None, "p", "i", "g", None))
    assert read_run_json(path).experiment == "e"
    path.write_text(json.dumps({"id": "i"}))
    with pytest.raises(ValueError, match="expected the keys experiment, mode, run_dir"):
        read_run_json(path)


def test_unwritable_wandb_dir_warns_and_goes_on(tmp_path, offline, capfd):
    (tmp_path / "wandb").write_text("a file where W&B wants its directory")
    run = start_run("e", {}, project="p", root=tmp_path, group="g")
    run.log({"train/loss": 1.0}, step=1)  # a no-op now, never an exception
    run.summary({"eval/accuracy_full": 1.0})
    run.finish()
    err = capfd.readouterr().err
    assert "warning: W&B init (offline" in err and "continuing without W&B" in err
    assert str(tmp_path / "wandb") in err
    assert not run.active and run.ref.run_dir is None and run.ref.mode == "offline"

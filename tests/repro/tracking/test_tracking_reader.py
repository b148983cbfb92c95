"""The W&B run reader, checked against real offline runs that wandb itself writes here.

Each run is written by a separate Python process running wandb in offline mode; the
values it logs come from the formulas in ``VALUES`` below, which the assertions evaluate
again independently. The record-file layout is walked by a tiny reference parser in this
file (``walk``), so the reader's CRC and fragment handling are checked against it, not
against themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
import warnings
import zlib
from pathlib import Path

import pytest
from pipeline_helpers import wandb_env

from repro.tracking.reader import (
    OnlineRunReader,
    Run,
    RunFetchError,
    RunFileError,
    RunFileWarning,
    read_run,
    run_from_api,
)

# What every run logs, shared by the writer processes and the assertions.
VALUES = textwrap.dedent(
    """
    def loss(i):
        return 4.0 / (i + 1)

    def acc(i):
        return min(1.0, i / 2000)

    def norm(i):
        return float(i % 7)
    """
)
namespace: dict = {}
exec(VALUES, namespace)
loss, acc, norm = namespace["loss"], namespace["acc"], namespace["norm"]

BIG_STEPS = 3000
BIG_TEXT = "x" * 70_000  # one record over two block boundaries: first, middle, last fragments

WRITER = VALUES + textwrap.dedent(
    """
    import os, sys, wandb
    out, kind = sys.argv[1], sys.argv[2]
    if kind == "finished":
        run = wandb.init(project="reader-test", dir=out, id="bigrun01", name="big",
                         group="g1", config={"model": {"d_model": 256, "n_heads": 4},
                                             "lr": 0.001})
        run.config.update({"extra": "added later", "model": {"d_model": 256, "n_heads": 4}})
        for i in range(%(steps)d):
            row = {"train/loss": loss(i), "train/accuracy": acc(i), "grad": {"norm": norm(i),
                   "parts": {"attn": 2 * norm(i)}}}
            if i %% 100 == 0:
                row["valid/accuracy"] = acc(i) / 2
            if i == 1234:
                row["big/text"] = %(text)r
            run.log(row, step=i)
        run.summary["eval/accuracy_full"] = 0.987
        run.summary["best"] = {"acc": 0.5, "step": 10}
        run.summary["best"] = {"acc": 0.75}
        run.finish()
        # evaluation reopens the run: offline this writes a second directory
        run = wandb.init(project="reader-test", dir=out, id="bigrun01", resume="allow")
        run.log({"valid/accuracy": 0.99, "eval/done": 1}, step=%(steps)d - 1)
        run.summary["eval/accuracy_lsh4"] = 0.875
        run.finish()
        run = wandb.init(project="reader-test", dir=out, id="failrun1", name="fails")
        for i in range(5):
            run.log({"train/loss": loss(i)}, step=i)
        run.finish(exit_code=2)
    else:  # log, say so, wait for the test, then die without finishing
        run = wandb.init(project="reader-test", dir=out, id="crashrun", name="crash",
                         config={"seed": 7})
        for i in range(2000):
            run.log({"train/loss": loss(i), "grad": {"norm": norm(i)}}, step=i)
        print("logged", flush=True)
        sys.stdin.readline()
        os._exit(3)
    """
) % {"steps": BIG_STEPS, "text": BIG_TEXT}


def run_dir(root: Path, run_id: str, *, resumed: bool = False) -> Path:
    dirs = sorted((root / "wandb").glob(f"offline-run-*-{run_id}*"))
    assert dirs, f"wandb wrote no run {run_id}"
    return dirs[-1] if resumed else dirs[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Write the runs once: a finished run (+ its resumption), a failed one, a crashed one."""
    root = tmp_path_factory.mktemp("wandb-runs")
    script = root / "writer.py"
    script.write_text(WRITER)
    env = wandb_env(root)
    finished = subprocess.Popen([sys.executable, str(script), str(root), "finished"], env=env)
    crash = subprocess.Popen(
        [sys.executable, str(script), str(root), "crash"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert crash.stdout is not None and crash.stdin is not None
    assert crash.stdout.readline().strip() == "logged"
    with warnings.catch_warnings():  # it may be mid-record: that is dropped, with a warning
        warnings.simplefilter("ignore", RunFileWarning)
        running = read_run(run_dir(root, "crashrun"))  # the writer is alive, holds the file
    crash.stdin.write("die\n")
    crash.stdin.flush()
    assert crash.wait(timeout=60) == 3
    assert finished.wait(timeout=120) == 0
    crash_file = next(run_dir(root, "crashrun").glob("*.wandb"))
    deadline = time.monotonic() + 30  # wandb's service process notices its client is gone
    while time.monotonic() < deadline and _held_open(crash_file):
        time.sleep(0.2)
    return {"root": root, "running": running}


def _held_open(path: Path) -> bool:
    target = os.path.realpath(path)
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == target:
                return True
        except OSError:
            continue
    return False


def walk(data: bytes) -> list[tuple[int, int, int, int]]:
    """Reference walk of a record file: ``(offset, type, length, crc_ok)`` per fragment."""
    assert data[:7] == b":W&B" + struct.pack("<HB", 0xBEE1, 0)
    out, pos = [], 7
    while pos < len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        body = data[pos + 7 : pos + 7 + length]
        out.append((pos, kind, length, int(zlib.crc32(bytes([kind]) + body) == crc)))
        pos += 7 + length
    return out


# ----------------------------------------------------------------------------- file format


def test_crc_is_plain_crc32_of_type_byte_and_data(runs: dict) -> None:
    """The CRC variant, established on wandb's own files: unmasked zlib CRC-32 of type+data."""
    data = next(run_dir(runs["root"], "bigrun01").glob("*.wandb")).read_bytes()
    fragments = walk(data)
    assert len(data) > 3 * 32768, "the history must span several 32 KiB blocks"
    assert all(ok for *_, ok in fragments)
    kinds = {kind for _, kind, _, _ in fragments}
    assert kinds == {1, 2, 3, 4}, "full, first, middle and last fragments all occur"


def test_finished_run_reads_everything_logged(runs: dict) -> None:
    run = read_run(run_dir(runs["root"], "bigrun01"))
    assert (run.id, run.name, run.group, run.state) == ("bigrun01", "big", "g1", "finished")
    assert run.config == {
        "model.d_model": 256,
        "model.n_heads": 4,
        "lr": 0.001,
        "extra": "added later",
    }
    assert [row["_step"] for row in run.history] == list(range(BIG_STEPS))
    for i in (0, 1, 999, 1234, BIG_STEPS - 2):
        row = run.history[i]
        assert row["train/loss"] == loss(i)
        assert row["train/accuracy"] == acc(i)
        assert row["grad.norm"] == norm(i)
        assert row["grad.parts.attn"] == 2 * norm(i)
        assert ("valid/accuracy" in row) == (i % 100 == 0)
    assert run.history[1234]["big/text"] == BIG_TEXT
    steps, values = run.series("valid/accuracy")
    assert steps[:3] == [0, 100, 200]
    assert values[1] == acc(100) / 2
    # the resumed segment (evaluation) adds to the last step and to the summary
    last = run.history[-1]
    assert last["train/loss"] == loss(BIG_STEPS - 1)
    assert last["valid/accuracy"] == 0.99 and last["eval/done"] == 1
    assert run.summary["eval/accuracy_full"] == 0.987
    assert run.summary["eval/accuracy_lsh4"] == 0.875
    assert run.summary["train/loss"] == loss(BIG_STEPS - 1)
    assert run.summary["grad.parts.attn"] == 2 * norm(BIG_STEPS - 1)
    assert run.summary["best.acc"] == 0.75
    assert "best.step" not in run.summary, "a new dict value replaces the old one whole"
    assert not any(k.startswith("_wandb") for k in [*run.config, *run.summary])


def test_run_json_reference_and_single_segment(runs: dict) -> None:
    root = runs["root"]
    ref = {
        "experiment": "demo",
        "mode": "offline",
        "run_dir": str(run_dir(root, "bigrun01").relative_to(root)),
        "entity": None,
        "project": "reader-test",
        "id": "bigrun01",
        "group": "g1",
        "url": None,
    }
    path = root / "run.json"
    path.write_text(json.dumps(ref))
    run = read_run(path, root=root)
    assert run.summary["eval/accuracy_lsh4"] == 0.875
    # the resumption's own directory holds only what evaluation wrote
    alone = read_run(next(run_dir(root, "bigrun01", resumed=True).glob("*.wandb")))
    assert (
        alone.summary["eval/accuracy_lsh4"] == 0.875 and "eval/accuracy_full" not in alone.summary
    )
    assert [row["_step"] for row in alone.history] == [BIG_STEPS - 1]


def test_nonzero_exit_code_is_crashed(runs: dict) -> None:
    run = read_run(run_dir(runs["root"], "failrun1"))
    assert run.state == "crashed" and run.extra["exit_code"] == 2
    assert [row["train/loss"] for row in run.history] == [loss(i) for i in range(5)]


def test_crashed_run_without_exit_record(runs: dict) -> None:
    assert runs["running"].state == "running"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunFileWarning)
        run = read_run(run_dir(runs["root"], "crashrun"))
    assert run.state == "crashed" and run.id == "crashrun"
    assert run.extra["exit_code"] is None
    # whatever reached the disk is a prefix of what was logged, value for value
    assert run.history, "whole blocks of history reached the disk before the crash"
    assert [row["_step"] for row in run.history] == list(range(len(run.history)))
    assert all(row["train/loss"] == loss(row["_step"]) for row in run.history)
    assert all(row["grad.norm"] == norm(row["_step"]) for row in run.history)
    assert run.config == {"seed": 7}


# ----------------------------------------------------------------------------- bad files


@pytest.fixture()
def big_file(runs: dict, tmp_path: Path) -> Path:
    src = next(run_dir(runs["root"], "bigrun01").glob("*.wandb"))
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    return dst


def _one_line_error(path: Path) -> RunFileError:
    with pytest.raises(RunFileError) as info:
        read_run(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return info.value


def test_flipped_byte_is_a_crc_error(big_file: Path) -> None:
    data = bytearray(big_file.read_bytes())
    offset, kind, length, _ = next(f for f in walk(bytes(data)) if f[0] > 40_000 and f[2] > 20)
    data[offset + 7 + length // 2] ^= 0x01
    big_file.write_bytes(bytes(data))
    error = _one_line_error(big_file)
    assert "CRC mismatch" in str(error) and error.offset == offset


def test_truncated_mid_record(big_file: Path) -> None:
    data = big_file.read_bytes()
    offset, _, length, _ = next(f for f in walk(data) if f[0] > 50_000 and f[2] > 20)
    big_file.write_bytes(data[: offset + 7 + length // 2])
    error = _one_line_error(big_file)
    assert "truncated" in str(error) and error.offset == offset


def test_truncated_inside_a_header(big_file: Path) -> None:
    data = big_file.read_bytes()
    offset = next(f[0] for f in walk(data) if f[0] > 50_000)
    big_file.write_bytes(data[: offset + 3])
    assert _one_line_error(big_file).offset == offset


def test_cut_on_a_block_boundary_reads_as_crashed(big_file: Path) -> None:
    """Exactly what a killed writer leaves; the incomplete record is dropped with a warning."""
    data = big_file.read_bytes()
    frames = list(walk(data))

    def split_at(boundary: int) -> bool:  # the last fragment before it is FIRST or MIDDLE
        return [kind for offset, kind, _, _ in frames if offset < boundary][-1] in (2, 3)

    # The layout depends on the run's metadata (paths, host), so find a boundary that
    # splits a record rather than assuming which one does.
    cut = next(b for b in range(32768, len(data), 32768) if split_at(b))
    big_file.write_bytes(data[:cut])
    with pytest.warns(RunFileWarning, match="incomplete last record at byte"):
        run = read_run(big_file)
    assert run.state == "crashed"
    assert run.history and all(r["train/loss"] == loss(r["_step"]) for r in run.history)


def test_wrong_header_and_version(big_file: Path) -> None:
    data = big_file.read_bytes()
    big_file.write_bytes(b"LVL!" + data[4:])
    assert _one_line_error(big_file).offset == 0
    big_file.write_bytes(data[:6] + b"\x01" + data[7:])
    assert "version 1" in str(_one_line_error(big_file))
    big_file.write_bytes(data[:5])
    assert "too short" in str(_one_line_error(big_file))


def test_record_that_is_not_a_protobuf(tmp_path: Path) -> None:
    payload = b"\xff\xff\xff\xff"
    crc = zlib.crc32(bytes([1]) + payload)
    path = tmp_path / "run-bad.wandb"
    path.write_bytes(
        b":W&B" + struct.pack("<HB", 0xBEE1, 0) + struct.pack("<IHB", crc, 4, 1) + payload
    )
    error = _one_line_error(path)
    assert "undecodable" in str(error) and error.offset == 7


def test_bad_references(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="no such run directory"):
        read_run(tmp_path / "missing.wandb")
    empty = tmp_path / "offline-run-20260101_000000-abc"
    empty.mkdir()
    with pytest.raises(RunFileError, match="no run-<id>.wandb"):
        read_run(empty)
    with pytest.raises(ValueError, match="run_dir=None"):
        read_run({"mode": "offline", "id": "abc"})
    bad = tmp_path / "run.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_run(bad)


# ----------------------------------------------------------------------------- online API


def test_online_unreachable_server_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in wandb_env(tmp_path).items():
        if key.startswith("WANDB_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("WANDB_MODE", "online")
    reader = OnlineRunReader(base_url="http://127.0.0.1:9", timeout=2, api_key="k" * 40)
    ref = {"mode": "online", "entity": "team", "project": "minipaper", "id": "abc123"}
    start = time.monotonic()
    with pytest.raises(RunFetchError) as info:
        read_run(ref, online=reader)
    message = str(info.value)
    assert "\n" not in message and "http://127.0.0.1:9" in message
    assert time.monotonic() - start < 30
    with pytest.raises(ValueError, match="project=None"):
        read_run({"mode": "online", "id": "abc"}, online=reader)


class _PublicRun:
    """The attributes of ``wandb.apis.public.Run`` that the conversion uses."""

    id, name, group, state = "r1", "demo", "g", "failed"
    url, project, entity = "https://wandb.ai/team/p/runs/r1", "p", "team"
    config = {"model": {"d_model": 64}, "_wandb": {"x": 1}}

    class summary:  # noqa: N801 - mimics the HTTPSummary attribute holding the JSON
        _json_dict = {"eval": {"accuracy_full": 0.5}, "_step": 3, "_wandb": {"runtime": 1}}

    @staticmethod
    def scan_history():
        yield {"_step": 0, "train/loss": 2.0, "grad": {"norm": 1.0}}
        yield {"_step": 3, "train/loss": 1.0, "grad": {"norm": 0.5}}


def test_api_run_conversion_matches_offline_conventions() -> None:
    run = run_from_api(_PublicRun())
    assert isinstance(run, Run)
    assert run.config == {"model.d_model": 64}
    assert run.summary == {"eval.accuracy_full": 0.5, "_step": 3}
    assert run.history[1] == {"_step": 3, "train/loss": 1.0, "grad.norm": 0.5}
    assert run.state == "crashed" and run.source.startswith("https://")

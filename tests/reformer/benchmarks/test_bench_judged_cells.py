"""The sweep spends its time where a target reads it: the peers from the length their target
starts at, several processes only for cells that a target judges."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

from reformer.benchmarks.attention_targets import judged
from reformer.benchmarks.defaults import DEFAULTS, QUICK
from reformer.benchmarks.sections import _skip_reason

REPO = Path(__file__).resolve().parents[3]
AVAILABLE = {"reformer_pytorch": {"available": True}, "hf_transformers": {"available": True}}


def _cell(impl: str, length: int, n_hashes: int | None = 2, **measured) -> dict:
    return {"implementation": impl, "n_hashes": n_hashes, "length": length,
            "batch": max(1, 8192 // length), "tokens": max(length, 8192), **measured}  # fmt: skip


def test_peers_are_not_measured_below_the_length_their_target_starts_at():
    config = DEFAULTS
    below = _cell("hf_transformers", 1024)
    reason = _skip_reason(below, None, AVAILABLE, config, cap=12.0, peer_cap=6.0)
    assert reason is not None and "below 2048" in reason
    below.update(status="skipped", reason=reason)
    # The next length is measured: a skip below the target is not a time cap to carry on.
    at = _cell("hf_transformers", 2048)
    assert _skip_reason(at, below, AVAILABLE, config, cap=12.0, peer_cap=6.0) is None
    # ... while a peer over its time cap still stops its longer lengths.
    slow = _cell("hf_transformers", 4096, status="ok", time_s={"median": 7.0})
    longer = _cell("hf_transformers", 8192)
    assert "time cap" in _skip_reason(longer, slow, AVAILABLE, config, cap=12.0, peer_cap=6.0)


def test_judged_cells_follow_the_targets_lengths():
    t = DEFAULTS["targets"]
    lengths = DEFAULTS["attention"]["lengths"]
    # LSH-1 is judged everywhere (flat cost compares its shortest and longest lengths).
    assert all(judged("lsh", 1, n, t) for n in lengths)
    assert [n for n in lengths if judged("lsh", 4, n, t)] == [n for n in lengths if n >= 2048]
    assert [n for n in lengths if judged("full", None, n, t)] == [n for n in lengths if n >= 4096]
    assert [n for n in lengths if judged("hf_transformers", 8, n, t)] == lengths[1:]


def test_unjudged_short_cells_run_in_one_process(tmp_path):
    # The quick shapes (lengths 128 and 256) with the LSH rounds' targets from 256 on only
    # (the quick profile itself would put every target at 128).
    block = copy.deepcopy(QUICK)
    block["targets"].update(roofline_min_length=256, peer_min_length=256, sdpa_from_length=256)
    block.update(peers=False, sections=["attention"])
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"benchmark": block}))
    out = tmp_path / "benchmark.json"
    cmd = [sys.executable, str(REPO / "pipelines" / "benchmark.py"), "--params", str(params),
           "--out", str(out), "--plots", ""]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = {
        (e["implementation"], e["n_hashes"], e["length"]): e
        for e in json.loads(out.read_text())["attention"]["results"]
    }
    assert cells[("lsh", 2, 128)]["processes"] == 1  # no target reads it
    assert cells[("full", None, 128)]["processes"] == 1
    assert cells[("lsh", 1, 128)]["processes"] == 2  # the flat cost reads it
    assert cells[("lsh", 2, 256)]["processes"] == 2
    assert cells[("full", None, 256)]["processes"] == 2

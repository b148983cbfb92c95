"""The `benchmark` stage end to end (pipelines/benchmark.py with the Reformer's workloads):
a quick sweep (tiny shapes, one sample) whose JSON is checked for every section, for
targets that follow from the measured numbers, for the report's views, for peers reported
as skipped when disabled, and for --rejudge, which measures nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reformer.benchmarks.defaults import DEFAULTS, PEER_NAMES
from repro.benchmarking import find_tcmalloc

REPO = Path(__file__).resolve().parents[3]


def _checks(report: dict) -> dict:
    """The evidence of every target row, by name (the rows' ``details``)."""
    return {row["name"]: row["details"] for row in report["targets"]}


def test_rejudge_of_a_missing_file_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nothing.json"
    proc = _benchmark_script(
        "--quick", "--params", str(tmp_path / "none.yaml"), "--out", str(missing), "--plots", "",
        "--rejudge",
    )  # fmt: skip
    assert proc.returncode == 2 and not missing.exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --rejudge of {missing}")


# ----------------------------------------------------------------------------- end to end


def _benchmark_script(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python pipelines/benchmark.py *args`` from the repository, output captured."""
    cmd = [sys.executable, str(REPO / "pipelines" / "benchmark.py"), *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _run_stage(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "benchmark.json"
    params = str(tmp_path / "none.yaml")
    proc = _benchmark_script("--quick", "--params", params, "--out", str(out), *extra, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| target | required | measured | result |" in proc.stdout
    return json.loads(out.read_text())


def _check_target_consistency(targets: dict) -> None:
    peers = targets["lsh_vs_peers"]
    for row in peers["entries"]:
        if row.get("speedup") is not None:
            expected = row["speedup"] >= peers["threshold"] and row["memory_ok"] is not False
            assert row["passed"] == expected
            assert row["speedup"] == pytest.approx(row["peer_s"] / row["ours_s"])
    sdpa = targets["lsh1_vs_sdpa"]
    for row in sdpa["entries"]:
        if row.get("speedup") is not None:
            assert row["speedup"] == pytest.approx(row["sdpa_s"] / row["lsh1_s"])
            need = row["required"]
            assert row["passed"] == (row["speedup"] >= need if need > 1 else row["speedup"] > 1)
    roofline = targets["lsh_roofline"]
    peak = roofline["matmul_peak_flops_per_s"]
    for row in roofline["entries"]:  # FLOPs over the median time, over the run's matmul rate
        assert row["flops"] > 0 and row["peak_fraction"] == pytest.approx(row["flops_per_s"] / peak)
        assert row["passed"] == (row["peak_fraction"] >= roofline["threshold"])
    flat = targets["lsh1_flat_cost"]
    if flat["ratio"] is not None:
        first, last = flat["cost_per_token_s"]
        assert flat["ratio"] == pytest.approx(last / first)
        assert flat["passed"] == (flat["ratio"] <= flat["threshold"])
    depth = targets["reversible_depth_memory"]
    if depth["ratio"] is not None:
        assert depth["passed"] == (depth["ratio"] <= depth["threshold"])
    longest = targets["longest_sequence"]
    assert longest["passed"] == (
        longest["longest"] is not None and longest["longest"] >= longest["threshold"]
    )


@pytest.mark.slow
def test_quick_stage_end_to_end(tmp_path):
    plots = tmp_path / "plots"
    report = _run_stage(tmp_path, "--plots", str(plots))
    for key in ("machine", "attention", "depth", "lm", "longest", "targets"):
        assert key in report, key
    assert report["machine"]["versions"]["torch"]
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["torch_threads"] >= 1
    att = report["attention"]["results"]
    ours = [e for e in att if e["implementation"] in ("full", "lsh")]
    assert ours and all(e["status"] == "ok" for e in ours)
    for e in ours:
        t = e["time_s"]
        assert t["min"] <= t["median"] <= t["max"]
        # Tiny shapes grow the RSS by less than the page-level noise of the "before"
        # reading (glibc may return a few pages during the step): allow 1 MiB below zero.
        assert e["saved_bytes"] > 0 and e["peak_rss_bytes"]["median"] >= -(1 << 20)
        # Tiny steps are short, so each was measured in the quick settings' two processes
        # (one sample each; the median uses the uncontended ones where there are any).
        assert e["processes"] == 2 and e["n_samples"] == 2 and 1 <= t["n"] <= 2
    # Peers installed in this environment are measured; missing ones are "skipped".
    for e in att:
        if e["implementation"] in PEER_NAMES:
            assert e["status"] in ("ok", "skipped")
    depth = report["depth"]["results"]
    assert {e["model"] for e in depth} == {"reformer", "transformer"}
    assert all(e["status"] == "ok" and e["saved_bytes"] > 0 for e in depth)
    tries = report["longest"]["tries"]
    assert tries and report["longest"]["longest"] == 1024
    assert all(t["status"] == "ok" and t["fits"] for t in tries)
    # The tries run under tcmalloc where the system has it (scripts/setup.sh installs it).
    allocator = "tcmalloc" if find_tcmalloc() else "system"
    assert [t["allocator"] for t in tries] == [allocator] * len(tries)
    assert [row["name"] for row in report["targets"]] == [
        "lsh_roofline",
        "lsh_vs_peers",
        "lsh1_flat_cost",
        "lsh1_vs_sdpa",
        "reversible_depth_memory",
        "tokens_per_s_vs_peers",
        "longest_sequence",
    ]
    for row in report["targets"]:  # the generic row repeats the evidence's verdict
        assert row["met"] is row["details"]["passed"]
        assert row["target"] == row["details"]["description"]
        assert row["required"] == row["details"]["threshold"]
    _check_target_consistency(_checks(report))
    views = report["views"]
    assert [f["label"] for f in views["figures"]] == ["fig:speed", "fig:roofline", "fig:memory"]
    assert [f["curve"] for f in views["figures"]] == [
        "attention_time",
        "attention_roofline",
        "depth_memory",
    ]
    for table in views["tables"]:
        assert all(len(row) == len(table["columns"]) for row in table["rows"])
    for name in (
        "attention_time",
        "attention_memory",
        "depth_memory",
        "lm_tokens_per_s",
        "longest",
    ):
        assert (plots / f"{name}.png").stat().st_size > 0
        assert (plots / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(plots.glob("*.pdf"))  # `dvc plots show` cannot render PDFs
    summary_run = _benchmark_script("--summary", str(tmp_path / "benchmark.json"))
    summary_run.check_returncode()
    summary = summary_run.stdout
    # The report reads its Figure 5, depth figure and peers table from this file.
    from repro.reporting import generate

    generated = tmp_path / "generated"
    generate({}, REPO / "report" / "claims.yaml", generated, benchmark=tmp_path / "benchmark.json")
    tex = (generated / "benchmark.tex").read_text()
    assert "fig-speed.pdf" in tex and "fig-memory.pdf" in tex
    assert (generated / "fig-speed.pdf").read_bytes()[:4] == b"%PDF"
    assert summary.startswith("| target | required | measured | result |")
    # --rejudge measures nothing: it recomputes the targets from the file's measurements
    # and the params' thresholds.
    (tmp_path / "strict.yaml").write_text("benchmark:\n  targets:\n    peer_speedup: 99.0\n")
    before = json.loads((tmp_path / "benchmark.json").read_text())
    proc = _benchmark_script(
        "--quick", "--params", str(tmp_path / "strict.yaml"),
        "--out", str(tmp_path / "benchmark.json"), "--plots", "", "--rejudge",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = json.loads((tmp_path / "benchmark.json").read_text())
    assert after["attention"] == before["attention"] and after["started"] == before["started"]
    assert _checks(after)["lsh_vs_peers"]["threshold"] == 99.0
    rows = {row["name"]: row for row in after["targets"]}
    assert rows["lsh_vs_peers"]["required"] == 99.0
    default = DEFAULTS["targets"]["peer_speedup"]
    assert _checks(before)["lsh_vs_peers"]["threshold"] == default
    assert "rejudged" in after
    assert summary.count("\n| ") >= 6  # separator + one row per target


@pytest.mark.slow
def test_quick_stage_without_peers_reports_them_skipped(tmp_path):
    report = _run_stage(tmp_path, "--no-peers", "--sections", "attention,lm", "--plots", "")
    assert "depth" not in report and "longest" not in report
    for peer in PEER_NAMES:
        assert report["peers"][peer]["available"] is False
        assert "disabled" in report["peers"][peer]["reason"]
    peer_entries = [
        e
        for e in report["attention"]["results"] + report["lm"]["results"]
        if e["implementation"] in PEER_NAMES
    ]
    assert peer_entries and all(e["status"] == "skipped" for e in peer_entries)
    targets = _checks(report)
    assert targets["lsh_vs_peers"]["passed"] is None  # nothing to compare against
    assert all(row["passed"] is None for row in targets["lsh_vs_peers"]["entries"])
    assert targets["tokens_per_s_vs_peers"]["passed"] is None
    _check_target_consistency({**targets, **_dummy_depth_longest()})


def _dummy_depth_longest() -> dict:
    return {
        "reversible_depth_memory": {"ratio": None},
        "longest_sequence": {"passed": False, "longest": None, "threshold": 1},
    }

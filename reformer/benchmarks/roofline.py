"""The attention section's roofline: the machine's matmul rate measured in the sweep, and a
profiled step of the cell that decides each attention target the measurements miss.

:func:`measure_peak` runs :func:`repro.benchmarking.roofline.matmul_peak` in a fresh process
with the sweep's threads (the attention section measures it at its start and its end);
:func:`pooled_peak` makes one rate of both; :func:`profile_missed` profiles, for each missed
target, one step of its deciding cell (:mod:`reformer.benchmarks.attention_targets` finds
the cell), so that the target's note can say where the time goes.
"""

from __future__ import annotations

import statistics
from typing import Any

from repro.benchmarking import Sweep, wait_for_quiet
from repro.benchmarking.roofline import matmul_peak

__all__ = ["measure_peak", "pooled_peak", "profile_missed"]


def measure_peak(sweep: Sweep) -> dict[str, Any]:
    """The matmul rate of a fresh process with the sweep's threads (after a quiet wait)."""
    timing = sweep.config["timing"]
    size = int(sweep.config["attention"]["peak_size"])
    kwargs = {"threads": int(sweep.config["threads"]), "size": size, "repeats": 7}
    wait_for_quiet(float(timing["quiet_wait_s"]) if sweep.quiet_left > 0 else 0.0)
    result = sweep.run(matmul_peak, kwargs, timeout_s=600)
    if result.get("status") != "ok":
        raise RuntimeError(f"matmul peak not measured: {result.get('reason')}")
    return result


def pooled_peak(peaks: list[dict[str, Any]]) -> dict[str, Any]:
    """One matmul rate from several measurements: ``2 n^3`` over the median of all samples."""
    samples = [s for p in peaks for s in p["samples_s"]]
    size = peaks[0]["size"]
    flops = 2 * size**3
    return {
        "flops_per_s": flops / statistics.median(samples),
        "best_flops_per_s": flops / min(samples),
        "spread": (max(samples) - min(samples)) / statistics.median(samples),
        "size": size,
        "threads": peaks[0]["threads"],
    }


def profile_missed(
    section: dict[str, Any], config: dict[str, Any], measure: Any
) -> dict[str, dict[str, Any]]:
    """Where the time goes, for each attention target the measurements miss: one profiled
    step (torch.profiler, top operators by self CPU time, after one warm-up step) of the cell
    that decides it."""
    from reformer.benchmarks import attention_targets as targets

    t = config["targets"]
    cells = {
        "lsh_roofline": targets.worst_roofline_cell(section, t),
        "lsh_vs_peers": targets.worst_peer_cell(section, t),
        "lsh1_flat_cost": targets.flat_cost_cell(section, t),
    }
    out = {}
    for name, cell in cells.items():
        if cell is None or not int(config["attention"]["profile_ops"]):
            continue
        entry = cell
        result = measure("lsh", entry["n_hashes"], entry["length"], entry["batch"], profile=6)
        if result.get("status") == "ok":
            out[name] = {
                "length": entry["length"],
                "n_hashes": entry["n_hashes"],
                "profile": result["profile"],
            }
    return out

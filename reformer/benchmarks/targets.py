"""The Reformer's performance targets, each decided from one run's measurements.

* ``lsh_roofline``: every round count of our LSH attention reaches at least
  ``roofline_fraction`` of the matmul FLOP/s measured in the same run, at every length >=
  ``roofline_min_length`` (FLOPs as ``FlopCounterMode`` counts them);
* ``lsh_vs_peers``: our LSH attention forward + backward at least ``peer_speedup`` x faster
  than the faster peer at every length >= ``peer_min_length`` and every round count, with
  no higher peak RSS growth;
* ``lsh1_flat_cost``: LSH-1's time per token at the longest length at most
  ``flat_cost_ratio`` x its time per token at the shortest (the paper's flat Figure 5);
* ``lsh1_vs_sdpa``: LSH-1 faster than SDPA full attention from ``sdpa_from_length`` on,
  ``sdpa_speedup`` x at ``sdpa_speedup_length``;
* ``reversible_depth_memory``: the reversible model's training-step activation memory (peak
  RSS growth, gradient buffers kept between steps) at the most layers at most
  ``depth_ratio`` x that at the fewest;
* ``tokens_per_s_vs_peers``: training tokens/s at ``tokens_length`` at least
  ``tokens_speedup`` x the faster peer's;
* ``longest_sequence``: one training step fits in the memory budget at ``longest_tokens``;
* ``sweep_minutes``: the full sweep, every section, finishes within ``sweep_minutes`` on the
  machine's cores (judged for a full sweep only).

Each ``target_*`` function returns the evidence (per-cell speedups, ratios, ``passed``): the
attention section's four in :mod:`reformer.benchmarks.attention_targets`,
the model-level three below. :func:`compute_targets` turns it into the kit's generic rows
(:class:`repro.benchmarking.targets.Target`). Where a target is missed, the row's note says
what a profile of the deciding cell (the attention section's ``profiles``) shows the time
goes to.
"""

from __future__ import annotations

from typing import Any

from reformer.benchmarks.attention_targets import (
    target_flat_cost,
    target_lsh1_vs_sdpa,
    target_lsh_vs_peers,
    target_roofline,
)
from reformer.benchmarks.defaults import PEER_NAMES
from repro.benchmarking import Target, find_entry, median_of

__all__ = [
    "compute_targets",
    "target_depth",
    "target_longest",
    "target_sweep_time",
    "target_tokens",
]

# The number that decides each target, in the order they are looked for.
_DECIDING = (
    "worst_fraction",
    "worst_speedup",
    "speedup_at_length",
    "ratio",
    "longest",
    "value",
)


def target_depth(depth: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """Reversible training memory at the most layers <= ``depth_ratio`` x the fewest."""
    layers = depth["settings"]["layers"]
    lo, hi = min(layers), max(layers)
    out: dict[str, Any] = {
        "description": (
            f"reversible ReformerLM training-step activation memory (peak RSS growth, "
            f"gradient buffers kept) at {hi} layers <= {t['depth_ratio']}x that at {lo} layers"
        ),
        "threshold": t["depth_ratio"],
        "layers": [lo, hi],
    }
    for model in ("reformer", "transformer"):
        a = find_entry(depth["results"], model=model, n_layers=lo)
        b = find_entry(depth["results"], model=model, n_layers=hi)
        rss = (median_of(a, "peak_rss_bytes"), median_of(b, "peak_rss_bytes"))
        saved = tuple(
            e.get("saved_bytes") if e and e.get("status") == "ok" else None for e in (a, b)
        )
        out[model] = {
            "peak_rss_ratio": rss[1] / rss[0] if None not in rss and rss[0] > 0 else None,
            "saved_bytes_ratio": (
                saved[1] / saved[0] if None not in saved and saved[0] > 0 else None
            ),
        }
    ratio = out["reformer"]["peak_rss_ratio"]
    out["ratio"] = ratio
    out["passed"] = None if ratio is None else ratio <= t["depth_ratio"]
    return out


def target_tokens(lm: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """Training tokens/s at ``tokens_length`` >= ``tokens_speedup`` x the faster peer's."""
    length = t["tokens_length"]
    results = lm["results"]
    ours = find_entry(results, implementation="ours", length=length)
    peers = [find_entry(results, implementation=p, length=length) for p in PEER_NAMES]
    measured = [p for p in peers if median_of(p, "tokens_per_s") is not None]
    out: dict[str, Any] = {
        "description": (
            f"training tokens/s at length {length} >= {t['tokens_speedup']}x the faster peer's"
        ),
        "threshold": t["tokens_speedup"],
        "length": length,
        "ours_tokens_per_s": median_of(ours, "tokens_per_s"),
    }
    if not measured or out["ours_tokens_per_s"] is None:
        out.update(ratio=None, passed=None, reason="not measured (peer or ours missing)")
        return out
    faster = max(measured, key=lambda p: median_of(p, "tokens_per_s"))
    out["peer"] = faster["implementation"]
    out["peer_tokens_per_s"] = median_of(faster, "tokens_per_s")
    out["ratio"] = out["ours_tokens_per_s"] / out["peer_tokens_per_s"]
    out["passed"] = out["ratio"] >= t["tokens_speedup"]
    return out


def target_longest(longest: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """The longest fitting training step reaches ``longest_tokens``."""
    value = longest.get("longest")
    return {
        "description": (
            f"one training step fits in {longest['settings']['memory_limit_gb']} GB of process "
            f"memory at >= {t['longest_tokens']:,} tokens"
        ),
        "threshold": t["longest_tokens"],
        "longest": value,
        "stopped": longest.get("stopped"),
        "limited_by": longest.get("limited_by"),
        "projected_longest": longest.get("projected_longest"),
        "passed": value is not None and value >= t["longest_tokens"],
    }


def target_sweep_time(report: dict[str, Any], t: dict[str, Any]) -> dict[str, Any] | None:
    """The full sweep, every section, within ``sweep_minutes`` (``None``: not judged, for
    a quick or small sweep or one that ran only some sections)."""
    sections = ("attention", "depth", "lm", "longest")
    if report.get("mode") != "full" or not all(name in report for name in sections):
        return None
    minutes = float(report.get("duration_s") or 0.0) / 60
    cpus = report.get("machine", {}).get("cpus_usable")
    cores = f"{cpus} cores" if cpus else "the machine's cores"
    return {
        "description": (
            f"the full sweep (every section) finishes in <= {t['sweep_minutes']:g} minutes "
            f"on {cores}"
        ),
        "threshold": t["sweep_minutes"],
        "value": minutes,
        "sections_s": {name: report[name].get("duration_s") for name in sections},
        "passed": minutes <= t["sweep_minutes"],
    }


def compute_targets(report: dict[str, Any], t: dict[str, Any]) -> list[Target]:
    """Every target from the measured sections of ``report`` (a missing section: no row)."""
    checks: dict[str, dict[str, Any]] = {}
    if "attention" in report:
        attention = report["attention"]
        if "roofline_fraction" in t:
            checks["lsh_roofline"] = target_roofline(attention, t)
        checks["lsh_vs_peers"] = target_lsh_vs_peers(attention, t)
        if "flat_cost_ratio" in t:
            checks["lsh1_flat_cost"] = target_flat_cost(attention, t)
        checks["lsh1_vs_sdpa"] = target_lsh1_vs_sdpa(attention, t)
    if "depth" in report:
        checks["reversible_depth_memory"] = target_depth(report["depth"], t)
    if "lm" in report:
        checks["tokens_per_s_vs_peers"] = target_tokens(report["lm"], t)
    if "longest" in report:
        checks["longest_sequence"] = target_longest(report["longest"], t)
    sweep = target_sweep_time(report, t) if "sweep_minutes" in t else None
    if sweep is not None:
        checks["sweep_minutes"] = sweep
    profiles = report.get("attention", {}).get("profiles") or {}
    return [_row(name, details, profiles.get(name)) for name, details in checks.items()]


def profile_note(profile: dict[str, Any] | None) -> str | None:
    """``"profile of LSH-8 at 4096: aten::bmm 31%, aten::eq 16%, ..."`` (top operators)."""
    if not profile:
        return None
    ops = ", ".join(f"{o['name']} {o['share']:.0%}" for o in profile["profile"]["ops"][:4])
    return f"profile of LSH-{profile['n_hashes']} at {profile['length']}: {ops}"


def _row(name: str, details: dict[str, Any], profile: dict[str, Any] | None = None) -> Target:
    """The generic row of one target: its deciding number, and notes on the cells whose
    baseline was over the time cap (a bound only) or where every peer ran out of memory."""
    measured = next((details[k] for k in _DECIDING if k in details), None)
    cells = details.get("entries") or []
    bounded = sum(1 for e in cells if "speedup_lower_bound" in e)
    no_peer = sum(1 for e in cells if e.get("peer") == "(out of memory)")
    notes = []
    if bounded:
        notes.append(f"{bounded} cell(s) unmeasured: baseline over the time cap")
    if no_peer:
        notes.append(f"{no_peer} cell(s) where every peer ran out of memory")
    if details["passed"] is False and profile_note(profile):
        notes.append(profile_note(profile))
    return Target(
        name=name,
        target=details["description"],
        required=details["threshold"],
        measured=measured,
        met=details["passed"],
        note="; ".join(notes) or None,
        details=details,
    )

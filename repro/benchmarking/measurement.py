"""Timing samples: summaries, repeats and pooling.

Timing on a small shared CPU machine is noisy, so a figure is the median of repeats,
reported with its minimum and maximum (:func:`summarize`), after an untimed warm-up step.
A sample is "contended" when other processes used the CPU while it ran
(:class:`~repro.benchmarking.contention.CpuSample`); the medians use uncontended samples
when there are any. Before a sample, :func:`~repro.benchmarking.contention.wait_for_quiet`
can wait for the other processes to leave the CPUs idle. One configuration's samples from
several processes are pooled by :func:`pool_measurements`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from repro.benchmarking.contention import CpuSample, wait_for_quiet
from repro.benchmarking.memory import MALLOC_MEASURE, MALLOC_STEADY, PeakRSS, set_malloc_thresholds

__all__ = [
    "find_entry",
    "measure_steps",
    "median_of",
    "pool_measurements",
    "summarize",
    # re-exported from repro.benchmarking.contention
    "CpuSample",
    "wait_for_quiet",
]


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    """Median, minimum and maximum of ``samples`` (the median of an even count is the mean
    of the two middle values).

    Args:
        samples: one or more numbers.

    Returns:
        ``{"median", "min", "max", "n", "samples"}``.

    Raises:
        ValueError: when ``samples`` is empty.

    Example:
        >>> s = summarize([3.0, 1.0, 2.0, 10.0])
        >>> s["median"], s["min"], s["max"], s["n"]
        (2.5, 1.0, 10.0, 4)
    """
    values = [float(v) for v in samples]
    if not values:
        raise ValueError("samples=[] is not allowed: give at least one number")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "samples": values,
    }


def _timed(step: Callable[[], Any]) -> dict[str, Any]:
    """Run ``step`` once under :class:`CpuSample`."""
    with CpuSample() as cpu:
        step()
    return {"wall": cpu.wall, "cpu": cpu.cpu, "foreign": cpu.foreign, "contended": cpu.contended}


def measure_steps(
    step: Callable[[], Any],
    *,
    warmup: int = 1,
    repeats: int = 3,
    min_repeats: int = 1,
    max_repeats: int | None = None,
    budget_s: float = 10.0,
    cap_s: float | None = None,
    long_step_s: float | None = None,
    quiet_wait_s: float = 0.0,
    memory: bool = True,
    memory_repeats: int = 1,
    stop_spread: float | None = None,
    stop_after: int = 3,
    decide_above_s: float | None = None,
    decide_below_s: float | None = None,
) -> dict[str, Any]:
    """Measure the peak RSS growth of ``step``, then time it over repeats.

    Memory first, with glibc set to return every block over 128 KiB at once
    (:data:`MALLOC_MEASURE`, set before the warm-up so that no earlier heap growth is
    reused): ``warmup`` steps, then ``memory_repeats`` steps, each with the peak-RSS counter
    reset (:class:`PeakRSS`). Then time, with glibc in its steady state
    (:data:`MALLOC_STEADY`): one more untimed step, then samples until ``repeats``
    uncontended ones exist, or ``max_repeats`` in all, or the time budget is spent with at
    least ``min_repeats``, or (sequential stopping, both optional) the samples settle the
    question: at least ``stop_after`` samples whose spread ``(max - min) / median`` is at
    most ``stop_spread`` (more samples would not move the median by more than the spread),
    or every sample so far, at least one, slower than ``decide_above_s`` or faster than
    ``decide_below_s`` (``"decided": True``: a comparison against that time is settled, the
    median being above, or below, it). All look at the samples the median is taken of: the
    uncontended ones, else all.

    An expensive step (the last warm-up step took longer than ``long_step_s``) saves a step:
    the warm-up step's own peak is the memory sample. Every step, expensive or not, has one
    untimed steady-state step before its samples, in which the heap grows back. When the
    warm-up step takes longer than ``cap_s``, nothing more runs, ``"over_cap"`` is True and
    the warm-up time is reported.

    Args:
        step: the work of one step (for example forward + backward).
        warmup: steps before the memory samples (at least 1 when ``memory``).
        repeats: wanted uncontended timed samples.
        min_repeats: timed samples taken whatever the budget.
        max_repeats: most timed samples (default ``2 * repeats``).
        budget_s: wall-clock budget of the timed samples (waits excluded).
        cap_s: longest acceptable warm-up step.
        long_step_s: above this a step counts as expensive (``None``: never).
        quiet_wait_s: before each timed step, wait up to this long for other processes to
            leave the CPU idle (:func:`wait_for_quiet`).
        memory: measure the peak RSS growth of a step.
        memory_repeats: memory samples (each one step).
        stop_spread: stop once ``stop_after`` uncontended samples lie within this relative
            spread (``None``: never).
        stop_after: uncontended samples before ``stop_spread`` may stop the repeats.
        decide_above_s: stop once every uncontended sample (at least one) is slower than
            this (``None``: never).
        decide_below_s: stop once every uncontended sample (at least one) is faster than
            this (``None``: never).

    Returns:
        ``{"time_s": summarize(...), "cpu_s": summarize(...), "peak_rss_bytes":
        summarize(...) or None, "warmup_s": [...], "n_contended": int, "n_samples": int,
        "memory_method": str, "memory_first_step": bool, "over_cap": bool,
        "quiet_waited_s": float, "stopped": str, "decided": bool, "samples": [{"wall",
        "cpu", "foreign", "contended", "first_step"}]}``; ``stopped`` says why the repeats
        ended (``repeats``, ``max_repeats``, ``budget``, ``spread``, ``decided``,
        ``over_cap``); ``time_s`` and ``cpu_s`` summarise the uncontended samples when
        there are any, else all of them.

    Example:
        >>> r = measure_steps(lambda: sum(range(1000)), repeats=3, memory=False)
        >>> r["n_samples"] >= 3 and r["time_s"]["min"] <= r["time_s"]["median"]
        True
        >>> measure_steps(lambda: None, repeats=9, memory=False, decide_above_s=-1.0)["stopped"]
        'decided'
        >>> measure_steps(lambda: None, repeats=9, memory=False, decide_below_s=60.0)["decided"]
        True
    """
    if repeats < 1 or min_repeats < 1:
        raise ValueError(f"repeats={repeats}, min_repeats={min_repeats} must be >= 1")
    max_repeats = max(max_repeats or 2 * repeats, min_repeats)
    n_warmup = max(warmup, 1 if memory else 0)
    set_malloc_thresholds(*(MALLOC_MEASURE if memory else MALLOC_STEADY))
    warmup_s: list[float] = []
    first_delta, method = 0, ""
    for _ in range(n_warmup):
        mem = PeakRSS()
        with mem:
            t0 = time.perf_counter()
            step()
            warmup_s.append(time.perf_counter() - t0)
        first_delta, method = mem.delta, mem.method
    long = bool(warmup_s) and long_step_s is not None and warmup_s[-1] > long_step_s
    over_cap = bool(warmup_s) and cap_s is not None and warmup_s[-1] > cap_s
    peak, memory_first_step = None, False
    if memory:
        if long or over_cap:
            deltas, memory_first_step = [first_delta], True
        else:
            deltas = []
            for _ in range(max(1, memory_repeats)):
                with PeakRSS() as mem:
                    step()
                deltas.append(mem.delta)
        peak = summarize(deltas)
    set_malloc_thresholds(*MALLOC_STEADY)
    samples: list[dict[str, Any]] = []
    waited = 0.0
    if over_cap:
        samples.append(
            {
                "wall": warmup_s[-1],
                "cpu": float("nan"),
                "foreign": None,
                "contended": False,
                "first_step": True,
            }
        )
    else:
        # The heap's first growth in the steady state is not timed, even for an expensive
        # step: the memory phase gave the heap back, and a first sample that faults in
        # every page took 1.5-2x the steady time at gigabytes (LSH-8 at 32,768 tokens).
        step()
    stopped = "over_cap" if over_cap else "repeats"
    while not over_cap:
        clean = [s["wall"] for s in samples if not s["contended"]]
        spent = sum(s["wall"] for s in samples)  # waits excluded
        previous = samples[-1]["wall"] if samples else 0.0
        reason = _stop_reason(
            len(samples), clean, spent + previous, repeats, min_repeats, max_repeats, budget_s
        )
        # The samples the median is taken of: the uncontended ones, else all of them.
        used = clean or [s["wall"] for s in samples]
        if reason is None and used and decide_above_s is not None:
            reason = "decided" if min(used) > decide_above_s else None
        if reason is None and used and decide_below_s is not None:
            reason = "decided" if max(used) < decide_below_s else None
        if reason is None and stop_spread is not None and len(used) >= max(1, stop_after):
            spread = (max(used) - min(used)) / max(statistics.median(used), 1e-12)
            reason = "spread" if spread <= stop_spread else None
        if reason is not None:
            stopped = reason
            break
        waited += wait_for_quiet(quiet_wait_s)
        samples.append({**_timed(step), "first_step": False})
    clean = [s for s in samples if not s["contended"]]
    return {
        **_summarize_samples(samples),
        "peak_rss_bytes": peak,
        "warmup_s": warmup_s,
        "n_contended": len(samples) - len(clean),
        "n_samples": len(samples),
        "memory_method": method,
        "memory_first_step": memory_first_step,
        "over_cap": over_cap,
        "quiet_waited_s": waited,
        "stopped": stopped,
        "decided": stopped == "decided",
        "samples": samples,
    }


def _stop_reason(
    n: int,
    clean: list[float],
    projected: float,
    repeats: int,
    min_repeats: int,
    max_repeats: int,
    budget_s: float,
) -> str | None:
    """Why the timed samples stop now (``None``: take another): enough uncontended ones, the
    most in all, or the next one would overrun the budget after ``min_repeats``."""
    if len(clean) >= repeats:
        return "repeats"
    if n >= max_repeats:
        return "max_repeats"
    if n >= min_repeats and projected > budget_s:
        return "budget"
    return None


def _summarize_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """``time_s`` and ``cpu_s`` of timed samples: the uncontended ones, or all if none is."""
    use = [s for s in samples if not s["contended"]] or samples
    return {
        "time_s": summarize([s["wall"] for s in use]),
        "cpu_s": summarize([s["cpu"] for s in use]),
    }


def pool_measurements(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One measurement from several processes' :func:`measure_steps` of the same step.

    On a shared machine a whole process can run 20% fast or slow (where its memory lands,
    what its neighbours do), so one process decides a short configuration's median. Pooling
    the samples of processes run at different times makes that median less a matter of luck.
    The samples are pooled (uncontended ones if any), the memory samples too, and the counts
    added; the other fields come from the first result.

    Args:
        results: one or more :func:`measure_steps` results, each with its ``samples``.

    Returns:
        A result of the same form, with ``processes`` set to ``len(results)``.

    Raises:
        ValueError: when ``results`` is empty.

    Example:
        >>> def run(*walls):
        ...     samples = [{"wall": w, "cpu": w, "contended": False} for w in walls]
        ...     return {"samples": samples, "n_contended": 0, "n_samples": len(walls),
        ...             "warmup_s": [1.0], "quiet_waited_s": 0.5, "peak_rss_bytes": None}
        >>> pool_measurements([run(1.0, 2.0), run(4.0)])["time_s"]["median"]
        2.0
    """
    if not results:
        raise ValueError("results=[] is not allowed: give at least one measurement")
    samples = [s for r in results for s in r["samples"]]
    memory = [r["peak_rss_bytes"] for r in results if r.get("peak_rss_bytes")]
    return {
        **results[0],
        **_summarize_samples(samples),
        "peak_rss_bytes": summarize([v for m in memory for v in m["samples"]]) if memory else None,
        "warmup_s": [w for r in results for w in r["warmup_s"]],
        "n_contended": sum(r["n_contended"] for r in results),
        "n_samples": sum(r["n_samples"] for r in results),
        "over_cap": any(r.get("over_cap") for r in results),
        "decided": all(r.get("decided") for r in results),
        "quiet_waited_s": sum(r["quiet_waited_s"] for r in results),
        "samples": samples,
        "processes": len(results),
    }


def median_of(entry: Mapping[str, Any] | None, key: str = "time_s") -> float | None:
    """The median of a measured quantity of a result (``None`` unless it ran and has one).

    Example:
        >>> median_of({"status": "ok", "time_s": {"median": 0.5}})
        0.5
        >>> median_of({"status": "skipped"}), median_of(None)
        (None, None)
    """
    if not entry or entry.get("status") != "ok" or not entry.get(key):
        return None
    return entry[key]["median"]


def find_entry(results: Sequence[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    """The first result whose fields equal every ``match`` (``None`` when there is none).

    Example:
        >>> rows = [{"impl": "a", "length": 1}, {"impl": "b", "length": 1}]
        >>> find_entry(rows, impl="b", length=1), find_entry(rows, impl="c")
        ({'impl': 'b', 'length': 1}, None)
    """
    for entry in results:
        if all(entry.get(k) == v for k, v in match.items()):
            return entry
    return None

"""The sweep runner: settings, the paper's sections in order, the JSON after every section.

:func:`load_config` merges a paper's defaults (:class:`repro.benchmarking.workloads.Workloads`) with
the ``benchmark:`` block of ``params.yaml`` (an unknown key is a one-line error that
suggests the closest known one), and the quick shapes in quick mode. :func:`run_sweep`
runs the configured sections, each given a :class:`Sweep` (settings, logging, timing
arguments, isolated runs within the memory guard and the quiet-wait budget), and writes the
report atomically after every section, so that an interrupted sweep keeps what it measured.
Figures are drawn last and never cost the measurements. :func:`rejudge` recomputes the
targets and views of a saved report without measuring anything. :func:`select_mode` and
:func:`select_sections` apply a command line's choices to the settings;
:func:`write_unavailable` writes the outputs of a paper that has no benchmark.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from repro.benchmarking.isolation import run_isolated
from repro.benchmarking.machine import machine_info
from repro.benchmarking.targets import markdown_table
from repro.benchmarking.workloads import Workloads
from repro.io import atomic_write_json, atomic_write_text

__all__ = [
    "Sweep",
    "brief",
    "load_config",
    "merge",
    "read_report",
    "rejudge",
    "run_sweep",
    "select_mode",
    "select_sections",
    "slim",
    "summary_markdown",
    "write_report",
    "write_unavailable",
]


def merge(base: Mapping[str, Any], override: Any, where: str = "benchmark") -> dict[str, Any]:
    """``base`` updated by ``override`` recursively; an unknown key is a one-line error.

    Example:
        >>> merge({"a": 1, "b": {"c": 2}}, {"b": {"c": 3}})
        {'a': 1, 'b': {'c': 3}}
        >>> merge({"timing": {}}, {"timming": {}})
        Traceback (most recent call last):
        ...
        ValueError: benchmark.timming={} is not allowed: unknown key (did you mean 'timing'?); \
known keys: timing
    """
    if not isinstance(override, Mapping):
        raise ValueError(f"{where}={override!r} is not allowed: expected a mapping")
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if key not in base:
            close = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{where}.{key}={value!r} is not allowed: unknown key{hint}; "
                f"known keys: {', '.join(sorted(base))}"
            )
        if isinstance(base[key], Mapping):
            out[key] = merge(base[key], value, f"{where}.{key}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(
    workloads: Workloads, block: Any = None, *, quick: bool = False, where: str = "benchmark"
) -> dict[str, Any]:
    """The effective settings: the paper's defaults, then ``block`` (params.yaml's
    ``benchmark:``; ``None`` for none), with a named ``mode``'s settings
    (:attr:`Workloads.modes`, e.g. ``small``) between the two, then the quick shapes when
    ``quick`` or the settings say so. Raises a one-line ``ValueError`` naming the bad key."""
    config = copy.deepcopy(dict(workloads.defaults))
    if block is not None:
        config = merge(config, block, where)
    mode = config.get("mode")
    if mode is not None:
        modes = ["full", *workloads.modes]
        if mode not in modes:
            raise ValueError(f"{where}.mode={mode!r} is not allowed: use one of {modes}")
        if mode in workloads.modes:  # the mode's settings, then the block's own over them
            config = merge(merge(config, workloads.modes[mode], where), block or {}, where)
            config["mode"] = mode
    if quick or config.get("quick"):
        config = merge(config, workloads.quick, where)
        config["quick"] = True
    allowed = list(workloads.sections)
    for section in config.setdefault("sections", allowed):
        if section not in workloads.sections:
            raise ValueError(f"{where}.sections entry {section!r} is not allowed: use {allowed}")
    if "threads" in config and int(config["threads"]) < 1:
        raise ValueError(f"{where}.threads={config['threads']} is not allowed: must be >= 1")
    if workloads.check is not None:
        workloads.check(config)
    return config


def select_mode(block: Any, mode: str) -> dict[str, Any]:
    """The params block with ``mode`` chosen on a command line (``--mode``).

    ``full`` is the whole sweep whatever the profile says: the block's other overrides go
    too, and only its ``peers`` and ``threads`` are kept.

    Example:
        >>> select_mode({"mode": "small", "seed": 1, "threads": 2}, "full")
        {'mode': 'full', 'threads': 2}
        >>> select_mode(None, "small")
        {'mode': 'small'}
    """
    block = {**(block or {}), "mode": mode}
    if mode == "full":
        block = {k: v for k, v in block.items() if k in ("mode", "peers", "threads")}
    return block


def select_sections(
    workloads: Workloads, config: dict[str, Any], names: str, flag: str = "--sections"
) -> dict[str, Any]:
    """``config`` running only the comma-separated ``names`` (a command line's choice)."""
    chosen = [s.strip() for s in names.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in workloads.sections]
    if unknown:
        raise ValueError(
            f"{flag} {','.join(unknown)}: not allowed; use {', '.join(workloads.sections)}"
        )
    config["sections"] = chosen
    return config


def slim(result: Mapping[str, Any]) -> dict[str, Any]:
    """A child's result without the bulky per-sample records (their summary stays); a
    traceback is shortened into the ``reason``."""
    out = {k: v for k, v in result.items() if k not in ("samples", "traceback")}
    if result.get("traceback"):
        out["reason"] = result.get("reason", "") + " | " + result["traceback"].strip()[-400:]
    return out


def brief(entry: Mapping[str, Any]) -> str:
    """One log line's worth of a measurement: median [min, max], samples, peak, tokens/s."""
    if entry.get("status") != "ok":
        return f"{entry.get('status')}: {entry.get('reason', '')}"[:160]
    t = entry["time_s"]
    mem = entry.get("peak_rss_bytes") or {}
    extra = f", peak +{mem['median'] / 2**20:.0f} MiB" if mem else ""
    tps = entry.get("tokens_per_s")
    if tps:
        extra += f", {tps['median']:.0f} tok/s"
    return (
        f"{t['median']:.3f} s [{t['min']:.3f}, {t['max']:.3f}] "
        f"n={entry.get('n_samples')} contended={entry.get('n_contended')}{extra}"
    )


class Sweep:
    """What a section gets: the settings, the report so far, logging and isolated runs.

    Attributes:
        workloads: the paper's :class:`Workloads`.
        config: the effective settings (:func:`load_config`).
        context: run-time values from the command line (a device, a peak rate, ...).
        report: the report being built (earlier sections and ``setup``'s entries).
        preload: modules the fork server imports (``setup`` may add optional ones).
        quiet_left: seconds of quiet-waiting left to the whole sweep.
    """

    def __init__(
        self,
        workloads: Workloads,
        config: dict[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.workloads = workloads
        self.config = config
        self.context = dict(context or {})
        self.report: dict[str, Any] = {}
        self.preload = list(workloads.preload)
        self.quiet_left = float(config.get("timing", {}).get("quiet_budget_s", 0.0))

    def log(self, message: str) -> None:
        """A time-stamped progress line on stderr."""
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        print(f"[{self.workloads.name} {stamp}] {message}", file=sys.stderr, flush=True)

    @property
    def memory_guard(self) -> int | None:
        """Bytes a configuration may grow by (``memory_guard_gb``; ``None``: no guard)."""
        gb = self.config.get("memory_guard_gb")
        return None if gb is None else int(float(gb) * 1e9)

    def timing(self, cap_s: float | None = None, **over: Any) -> dict[str, Any]:
        """Keyword arguments of :func:`repro.benchmarking.measurement.measure_steps` from the
        ``timing`` settings, with ``over`` replacing any of them. Once the quiet-wait
        budget is spent, samples no longer wait for a quiet machine."""
        t = self.config["timing"]
        timing = {
            "quiet_wait_s": t["quiet_wait_s"] if self.quiet_left > 0 else 0.0,
            "warmup": t["warmup"],
            "repeats": t["repeats"],
            "min_repeats": t["min_repeats"],
            "max_repeats": max(t["max_repeats"], t["repeats"]),
            "budget_s": t["budget_s"],
            "long_step_s": t["long_step_s"],
            "memory_repeats": 1,
            "cap_s": cap_s,
            "memory": True,
            "stop_spread": t.get("stop_spread"),
            "stop_after": t.get("stop_after", 3),
        }
        timing.update(over)
        timing["max_repeats"] = max(timing["max_repeats"], timing["repeats"])
        return timing

    def run(
        self, fn: Callable[..., dict], kwargs: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        """``fn(**kwargs)`` in a fresh process within the memory guard; the quiet time its
        samples waited is taken from the sweep's budget."""
        result = run_isolated(
            fn, kwargs, timeout_s=timeout_s, memory_bytes=self.memory_guard, preload=self.preload
        )
        self.quiet_left -= float(result.get("quiet_waited_s") or 0.0)
        return result


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any]) -> None:
    """Write the report atomically: a reader never sees a half-written file."""
    atomic_write_text(path, json.dumps(report, indent=1, sort_keys=False) + "\n")


def write_unavailable(path: str | os.PathLike[str], plots: Path | None, reason: str) -> None:
    """The outputs of a sweep that cannot run (the paper has no benchmark workloads): a report
    that says why (``{"available": False, "reason": ...}``, which the report's benchmark
    section shows as "not available"), and the figures' folder, present and empty."""
    atomic_write_json(path, {"available": False, "reason": reason})
    if plots is not None:  # a declared output of the stage: it must exist
        plots.mkdir(parents=True, exist_ok=True)


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved report, or a one-line ``ValueError``/``OSError`` naming what is wrong."""
    try:
        report = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if not isinstance(report, dict) or "machine" not in report:
        raise ValueError("not a benchmark JSON (no 'machine' entry)")
    return report


def judge(workloads: Workloads, report: dict[str, Any], thresholds: Mapping[str, Any]) -> None:
    """Set the report's ``targets`` rows, derived entries and ``views`` from its sections."""
    if workloads.targets is not None:
        report["targets"] = [t.row() for t in workloads.targets(report, thresholds)]
    if workloads.derived is not None:
        report.update(workloads.derived(report))
    if workloads.views is not None:
        report["views"] = workloads.views(report)


def _draw(workloads: Workloads, report: dict[str, Any], out: Path, plots: Path | None) -> None:
    """Draw the figures after the measurements are saved; a failure is only recorded."""
    if plots is None or workloads.plots is None:
        return
    write_report(out, report)  # the measurements are safe before any figure is drawn
    try:
        report["plots"] = workloads.plots(report, plots)
        report.pop("plots_error", None)
    except Exception as error:  # a figure must not cost the measurements
        print(f"warning: plots not drawn: {type(error).__name__}: {error}", file=sys.stderr)
        report["plots_error"] = f"{type(error).__name__}: {error}"
    if workloads.views is not None:  # figures may list the files just drawn
        report["views"] = workloads.views(report)


def run_sweep(
    workloads: Workloads,
    config: dict[str, Any],
    out: str | os.PathLike[str],
    plots: str | os.PathLike[str] | None = None,
    *,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the configured sections in the paper's order; write ``out`` after each.

    Returns:
        The report: ``mode``, ``started``, ``machine``, ``config``, ``method``, the setup's
        entries, one entry per section, ``targets`` (rows), the derived entries, ``views``,
        ``duration_s``, ``quiet_wait_s_total`` and, when figures were drawn, ``plots``.
    """
    out = Path(out)
    sweep = Sweep(workloads, config, context)
    report = sweep.report
    start = time.time()
    report["mode"] = "quick" if config.get("quick") else str(config.get("mode") or "full")
    report["started"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    extra = workloads.setup(sweep) if workloads.setup is not None else {}
    report["machine"] = machine_info(workloads.versions)
    report["config"] = config
    report["method"] = workloads.method
    report.update(extra)
    for name, section in workloads.sections.items():
        if name not in config["sections"]:
            continue
        t0 = time.time()
        sweep.log(f"section {name} ...")
        report[name] = section(sweep)
        report[name]["duration_s"] = time.time() - t0
        report["duration_s"] = time.time() - start
        judge(workloads, report, config.get("targets", {}))
        write_report(out, report)  # a later failure keeps what was measured
    report["duration_s"] = time.time() - start
    budget = float(config.get("timing", {}).get("quiet_budget_s", 0.0))
    report["quiet_wait_s_total"] = budget - sweep.quiet_left
    report["machine"]["load_average_end"] = list(os.getloadavg())
    judge(workloads, report, config.get("targets", {}))
    _draw(workloads, report, out, None if plots is None else Path(plots))
    write_report(out, report)
    sweep.log(f"done in {report['duration_s']:.0f} s -> {out}")
    return report


def rejudge(
    workloads: Workloads,
    config: Mapping[str, Any],
    out: str | os.PathLike[str],
    plots: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Recompute the targets, derived entries, views and figures of the saved report ``out``
    from its measurements and ``config["targets"]``, measuring nothing (after a change of a
    threshold, of how a target is decided, or of the report's format)."""
    out = Path(out)
    report = read_report(out)
    thresholds = config.get("targets", {})
    report.setdefault("config", {})["targets"] = thresholds
    judge(workloads, report, thresholds)
    report["rejudged"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    _draw(workloads, report, out, None if plots is None else Path(plots))
    write_report(out, report)
    return report


def summary_markdown(workloads: Workloads, report: Mapping[str, Any]) -> str:
    """What ``--summary`` prints: the paper's summary, or the targets table and the machine."""
    if workloads.summary is not None:
        return workloads.summary(report)
    rows = report.get("targets") or []
    if not isinstance(rows, Sequence):
        raise ValueError("'targets' must be a list of rows (rewrite an old file with --rejudge)")
    info = report.get("machine", {})
    return "\n".join(
        [
            markdown_table(rows),
            "",
            f"Measured by `pipelines/{workloads.name}.py` ({report.get('mode', '?')} mode) on "
            f"{info.get('cpu_count', '?')} CPU cores ({info.get('cpu_model', '?')}), "
            f"{info.get('torch_threads', '?')} threads, torch "
            f"{info.get('versions', {}).get('torch', '?')}; medians of repeats.",
        ]
    )

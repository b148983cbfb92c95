"""The runs the report reads: one W&B run per experiment, named by ``models/<exp>/run.json``.

The training stage writes ``run.json`` (a DVC output), so the report is pinned to exactly
the runs that produced the models. This module finds the experiments of a params file,
reads their runs (offline record files or the W&B API, through
:func:`repro.tracking.reader.read_run`) and pulls the few numbers the report shows of each.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from repro.io import read_json
from repro.tracking.reader import Run, RunFetchError, read_run

__all__ = [
    "MetricsMismatchError",
    "MissingRunError",
    "RunLoadError",
    "check_metrics",
    "experiments_from_params",
    "load_runs",
    "run_facts",
    "run_metric",
]


class MissingRunError(ValueError):
    """An experiment listed in params.yaml has no run file; the message names it."""


class RunLoadError(ValueError):
    """An experiment's run could not be read (bad run.json or record file); names both."""


class MetricsMismatchError(ValueError):
    """``metrics/<exp>.json`` disagrees with the run's summary: run.json names another run."""


def experiments_from_params(params: Mapping[str, Any]) -> list[str]:
    """The experiment names that params.yaml defines.

    Accepted shapes: ``experiments: {name: {...}}``, ``experiments: [name, ...]`` or
    ``experiments: [{name: ...}, ...]``, at the top level or under ``train``.

    Args:
        params: the parsed params.yaml.

    Example:
        >>> experiments_from_params({"experiments": {"dup-full": {}, "dup-lsh4": {}}})
        ['dup-full', 'dup-lsh4']
        >>> experiments_from_params({"train": {"experiments": [{"name": "dup-lsh1"}]}})
        ['dup-lsh1']
    """
    found = params.get("experiments")
    if found is None and isinstance(params.get("train"), Mapping):
        found = params["train"].get("experiments")
    if isinstance(found, Mapping):
        return [str(name) for name in found]
    if isinstance(found, list):
        names = [item.get("name") if isinstance(item, Mapping) else item for item in found]
        if all(isinstance(n, str) and n for n in names):
            return list(names)
    raise ValueError(
        f"params: experiments={found!r} must be a mapping or a list of experiment names "
        "(looked at 'experiments' and 'train.experiments')"
    )


def load_runs(
    experiments: Iterable[str],
    root: str | os.PathLike[str] = ".",
    models_dir: str = "models",
) -> dict[str, Run]:
    """Read the W&B run of every experiment through its ``models/<exp>/run.json``.

    Args:
        experiments: experiment names.
        root: the project root (run directories in run.json are relative to it).
        models_dir: where the per-experiment folders are, relative to ``root``.

    Returns:
        experiment -> :class:`~repro.tracking.reader.Run`.

    Raises:
        MissingRunError: an experiment has no run.json (one line naming it); checked for
            every experiment before any run is read.
        RunLoadError: a run.json or record file is malformed (names experiment and file).
        RunFetchError: an online run could not be fetched (names the experiment).

    Example:
        >>> load_runs(["dup-lsh2"], root="/nonexistent")
        Traceback (most recent call last):
        ...
        repro.reporting.runs.MissingRunError: experiment 'dup-lsh2' has no run file /nonexistent/models/dup-lsh2/run.json: run its training stage first
    """  # noqa: E501
    root = Path(root)
    refs = {exp: root / models_dir / exp / "run.json" for exp in experiments}
    for exp, ref in refs.items():  # all present before any (slow) read
        if not ref.is_file():
            raise MissingRunError(
                f"experiment {exp!r} has no run file {ref}: run its training stage first"
            )
    runs: dict[str, Run] = {}
    for exp, ref in refs.items():
        try:
            runs[exp] = read_run(ref, root=root)
        except RunFetchError as exc:
            raise RunFetchError(f"experiment {exp!r}: {exc}") from None
        except ValueError as exc:  # RunFileError, a bad run.json
            raise RunLoadError(f"experiment {exp!r}: {exc}") from None
    return runs


def run_metric(runs: Mapping[str, Run], exp: str, key: str) -> tuple[float | None, str]:
    """One summary number of an experiment's run, and a note when it is missing or doubtful.

    Args:
        runs: experiment -> run, for the experiments that exist.
        exp: the experiment.
        key: the W&B summary key (``eval/accuracy_lsh4``).

    Returns:
        ``(value, note)``: ``(None, "no run for <exp>")`` or ``(None, "<exp> has no <key>")``
        when there is no number; a number with note ``"run crashed"`` from a crashed run.

    Example:
        >>> run = Run("id", None, None, {}, {"eval/bpc_full": 1.2}, [], "finished", "")
        >>> run_metric({"e": run}, "e", "eval/bpc_full"), run_metric({}, "e", "eval/bpc_full")
        ((1.2, ''), (None, 'no run for e'))
    """
    run = runs.get(exp)
    if run is None:
        return None, f"no run for {exp}"
    value = run.summary.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None, f"{exp} has no {key}"
    return float(value), ("run crashed" if run.state == "crashed" else "")


def _last(run: Run, key: str) -> float | None:
    _, values = run.series(key)
    numeric = [v for v in values if isinstance(v, int | float)]
    return float(numeric[-1]) if numeric else None


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def run_facts(run: Run) -> dict[str, float | None]:
    """What the runs table shows of one run: last step, final loss, seconds, tokens/s.

    Returns:
        ``steps`` (the last step that logged ``train/loss``), ``loss`` (its last value),
        ``seconds`` (training time: ``train/elapsed_s`` as the loop measured it, else the
        longest logged ``_runtime``) and ``tokens`` (median ``train/tokens_per_s``); each
        ``None`` when the run did not log it.
    """
    steps = [row["_step"] for row in run.history if "train/loss" in row]
    _, tps = run.series("train/tokens_per_s")
    # training time: what the training loop measured, else the longest logged runtime (the
    # summary's own _runtime may be that of a later, short evaluation session)
    seconds = _number(run.summary.get("train/elapsed_s"))
    if seconds is None:
        runtimes = [_number(row.get("_runtime")) for row in run.history]
        runtimes.append(_number(run.summary.get("_runtime")))
        seconds = max((r for r in runtimes if r is not None), default=None)
    return {
        "steps": float(max(steps)) if steps else None,
        "loss": _last(run, "train/loss"),
        "seconds": seconds,
        "tokens": _median([float(v) for v in tps if isinstance(v, int | float)]),
    }


def check_metrics(
    exp: str,
    run: Run,
    metrics_file: str | os.PathLike[str] | Mapping[str, Any],
    source: str | None = None,
) -> list[str]:
    """Compare ``metrics/<exp>.json`` with the run's ``eval/...`` summary.

    Both are written by the evaluation stage from the same numbers, so a difference means
    the run is not the one that produced the metrics (a stale ``run.json``).

    Args:
        exp: the experiment name.
        run: its W&B run.
        metrics_file: ``metrics/<exp>.json`` (a missing file is skipped), or its parsed
            content; each ``{family: {label: number}}`` entry is compared with
            ``eval/<family>_<label>``.
        source: where parsed metrics came from, for the messages.

    Returns:
        Warnings (numbers the W&B run lacks).

    Raises:
        MetricsMismatchError: a number differs (one line naming both sides).
        ValueError: the metrics file is not valid JSON.

    Example:
        >>> import json, tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "m.json"
        >>> _ = f.write_text(json.dumps({"accuracy": {"full": 0.5}}))
        >>> run = Run("r1", None, None, {}, {"eval/accuracy_full": 0.5}, [], "finished", "")
        >>> check_metrics("dup-full", run, f)
        []
    """
    if isinstance(metrics_file, Mapping):  # already parsed (a saved profile's metrics)
        metrics, metrics_file = metrics_file, source or "metrics"
    else:
        metrics_file = Path(metrics_file)
        if not metrics_file.is_file():
            return []
        metrics = read_json(metrics_file, "metrics file")
    notes = []
    for family, values in metrics.items():
        if not isinstance(values, Mapping):
            continue
        for label, value in values.items():
            key = f"eval/{family}_{label}"
            logged = run.summary.get(key)
            if not isinstance(value, int | float):
                continue
            if logged is None:
                notes.append(f"experiment {exp!r}: W&B run {run.id} has no {key} ({metrics_file})")
            elif not math.isclose(float(logged), float(value), rel_tol=1e-9, abs_tol=1e-12):
                raise MetricsMismatchError(
                    f"experiment {exp!r}: {metrics_file} has {family}.{label}={value} but W&B "
                    f"run {run.id} has {key}={logged}: run.json names another run"
                )
    return notes

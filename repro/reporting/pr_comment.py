"""The pull request's metrics comment: its smoke metrics against the base branch's.

Both sides are *metrics folders* of the same shape, one per smoke run::

    <experiment>.json          what ``evaluate@<experiment>`` wrote (metrics/<experiment>.json)
    curves/<experiment>.csv    its training curve (metrics/curves/<experiment>.csv)
    params.yaml                the params the run used

:func:`collect` writes such a folder from a pipeline run; ``scripts/smoke_metrics.sh`` runs the
smoke profile in a scratch copy of a tree and calls it, and ``scripts/pr_metrics.sh`` does so
for the pull request and for its base on the same machine (the workflow
``.github/workflows/pr-metrics.yml`` runs it). :func:`render` compares two folders into the
comment's Markdown: a table per experiment with the metrics that changed, the count of those
that did not, new or removed experiments marked, and the smoke params that differ.
:func:`repro.reporting.pr_curves.plot` draws both sides' training curves into one PNG that the
comment links. The metrics are the numeric leaves of each JSON file, nested keys joined with dots
(``accuracy.lsh2``); strings, booleans and lists are labels or configuration, not
measurements, and are left out.

Example:
    >>> import json, pathlib, tempfile
    >>> base, head = (pathlib.Path(tempfile.mkdtemp()) for _ in range(2))
    >>> _ = (base / "exp.json").write_text(json.dumps({"acc": {"full": 0.5}, "steps": 20}))
    >>> _ = (head / "exp.json").write_text(json.dumps({"acc": {"full": 0.75}, "steps": 20}))
    >>> print(experiment_section(compare(load_folder(base), load_folder(head))[0]))
    **exp**: 1 changed, 1 unchanged
    <BLANKLINE>
    | metric | base | head | change |
    | --- | ---: | ---: | ---: |
    | acc.full | 0.5000 | 0.7500 | +0.2500 (+50.0%) |
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from repro.io import atomic_write_text

__all__ = [
    "MARKER",
    "ExperimentDiff",
    "collect",
    "compare",
    "experiment_section",
    "flatten",
    "format_change",
    "format_value",
    "load_folder",
    "main",
    "render",
]

#: the first line of the comment; the workflow finds its own comment by it and updates it
MARKER = "<!-- pr-metrics -->"
#: a metric counts as changed when it moves by more than this fraction of its size
RTOL = 1e-4

Metrics = dict[str, float]


def leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of nested mappings, keys joined with dots (a list is one leaf).

    Example:
        >>> leaves({"train": {"lr": 0.003, "betas": [0.9, 0.98]}, "seed": 0})
        {'train.lr': 0.003, 'train.betas': [0.9, 0.98], 'seed': 0}
    """
    if isinstance(data, Mapping) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(leaves(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data} if prefix else {}


def is_number(value: Any) -> bool:
    """A finite int or float; a bool is a flag, not a measurement."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def flatten(data: Any) -> Metrics:
    """The numeric leaves of a metrics file, nested keys joined with dots.

    Example:
        >>> flatten({"bleu": {"beam": {"cased": 91.2}}, "steps": 300, "sig": "x", "ok": True})
        {'bleu.beam.cased': 91.2, 'steps': 300}
    """
    return {key: value for key, value in leaves(data).items() if is_number(value)}


def load_folder(folder: str | Path) -> dict[str, Metrics]:
    """Experiment name -> its flattened metrics, for every ``*.json`` in ``folder``.

    A missing folder is an empty one (a base whose smoke run failed).
    """
    folder = Path(folder)
    runs = {}
    for path in sorted(folder.glob("*.json")):
        try:
            runs[path.stem] = flatten(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    return runs


@dataclass
class ExperimentDiff:
    """One experiment of the comparison.

    ``status`` is ``new`` (head only), ``removed`` (base only) or ``compared``; ``rows`` are
    ``(metric, base, head)`` for every metric that changed, appeared or disappeared
    (``None`` on the side that lacks it); ``unchanged`` counts the rest.
    """

    name: str
    status: str
    rows: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    unchanged: int = 0


def changed(base: float, head: float, rtol: float = RTOL) -> bool:
    """Whether two values of a metric differ by more than ``rtol`` of the larger one."""
    return abs(head - base) > rtol * max(abs(base), abs(head))


def compare(
    base: Mapping[str, Metrics], head: Mapping[str, Metrics], rtol: float = RTOL
) -> list[ExperimentDiff]:
    """Experiment by experiment (sorted by name), what changed from ``base`` to ``head``."""
    diffs = []
    for name in sorted(set(base) | set(head)):
        if name not in base:
            rows = [(key, None, value) for key, value in head[name].items()]
            diffs.append(ExperimentDiff(name, "new", rows))
        elif name not in head:
            rows = [(key, value, None) for key, value in base[name].items()]
            diffs.append(ExperimentDiff(name, "removed", rows))
        else:
            old, new = base[name], head[name]
            diff = ExperimentDiff(name, "compared")
            for key in [*old, *(k for k in new if k not in old)]:
                a, b = old.get(key), new.get(key)
                if a is None or b is None or changed(a, b, rtol):
                    diff.rows.append((key, a, b))
                else:
                    diff.unchanged += 1
            diffs.append(diff)
    return diffs


def format_value(value: float | None) -> str:
    """Integers as they are, other numbers with 4 significant digits, a missing one as a dash.

    Example:
        >>> [format_value(v) for v in (300, 0.99566, 0.174, 7.3e-05, 91.234, 2.0, None)]
        ['300', '0.9957', '0.1740', '7.300e-05', '91.23', '2.000', '—']
    """
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:#.4g}"  # '#': trailing zeros kept, so every float shows 4 digits


def format_change(base: float | None, head: float | None) -> str:
    """The signed difference (4 significant digits) and the relative one (3), in percent.

    Example:
        >>> format_change(0.5, 0.75), format_change(2.0, 1.0), format_change(0, 3)
        ('+0.2500 (+50.0%)', '-1.000 (-50.0%)', '+3')
        >>> format_change(None, 1.0), format_change(1.0, None)
        ('new', 'removed')
    """
    if base is None:
        return "new"
    if head is None:
        return "removed"
    delta = head - base
    text = f"{delta:+d}" if isinstance(delta, int) else f"{delta:+#.4g}"
    if base:
        text += f" ({100 * delta / abs(base):+#.3g}%)"
    return text


def experiment_section(diff: ExperimentDiff) -> str:
    """One experiment's heading line and its table (no table when nothing changed)."""
    if diff.status == "new":
        head = f"**{diff.name}** (new experiment): {len(diff.rows)} metrics"
    elif diff.status == "removed":
        head = f"**{diff.name}** (removed experiment): {len(diff.rows)} metrics on the base"
    else:
        head = f"**{diff.name}**: {len(diff.rows)} changed, {diff.unchanged} unchanged"
    if not diff.rows:
        return head
    lines = [head, "", "| metric | base | head | change |", "| --- | ---: | ---: | ---: |"]
    for key, base, new in diff.rows:
        cells = (format_value(base), format_value(new), format_change(base, new))
        lines.append(f"| {cell(key)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def params_rows(base_dir: str | Path, head_dir: str | Path) -> list[tuple[str, str, str]]:
    """``(param, base, head)`` for each leaf of the two folders' params.yaml that differs."""
    sides = []
    for folder in (base_dir, head_dir):
        path = Path(folder) / "params.yaml"
        sides.append(leaves(yaml.safe_load(path.read_text())) if path.is_file() else {})
    base, head = sides
    if not base or not head:  # one side did not run: its params are not a difference
        return []

    def shown(key: str, side: dict[str, Any]) -> str:
        value = side.get(key, "—")
        return value if isinstance(value, str) else json.dumps(value)

    keys = [*base, *(k for k in head if k not in base)]
    return [(k, shown(k, base), shown(k, head)) for k in keys if base.get(k) != head.get(k)]


def render(
    base_dir: str | Path,
    head_dir: str | Path,
    *,
    base_label: str = "base",
    head_label: str = "head",
    plot_url: str | None = None,
    base_error: str = "",
    rtol: float = RTOL,
) -> str:
    """The whole comment, in Markdown, starting with :data:`MARKER`.

    Args:
        base_dir: the base's metrics folder (see the module's docstring).
        head_dir: the pull request's metrics folder.
        base_label: how the comment names the base (a branch).
        head_label: how the comment names the pull request (a commit).
        plot_url: where the training-curve PNG is (a workflow artifact); no link without it.
        base_error: why the base has no metrics (its run failed), shown as a note.
        rtol: the relative difference below which a metric counts as unchanged.
    """
    base, head = load_folder(base_dir), load_folder(head_dir)
    diffs = compare(base, head, rtol)
    n_changed = sum(1 for d in diffs if d.rows)
    parts = [
        MARKER,
        f"### Smoke metrics: {head_label} against {base_label}",
        "",
        "Both sides ran the smoke profile one after the other on the same machine "
        "(`scripts/pr_metrics.sh`): a smoke run repeats exactly there, so every change below "
        f"comes from the pull request. A metric counts as changed when it moves by more than "
        f"{100 * rtol:g}% of its value. **{n_changed} of {len(diffs)} experiments changed.**",
    ]
    if base_error.strip() or not base:
        reason = base_error.strip() or f"{base_label} has no smoke metrics"
        parts += ["", f"> {reason}; every experiment shows as new."]
    parts += ["", "\n\n".join(experiment_section(d) for d in diffs) or "(no experiments)"]
    if plot_url:
        link = f"[Training curves (PNG)]({plot_url})"
        parts += ["", f"{link}: {base_label} dashed, {head_label} solid."]
    rows = params_rows(base_dir, head_dir)
    if rows:
        table = ["| param | base | head |", "| --- | --- | --- |"]
        table += [f"| {cell(key)} | {cell(a)} | {cell(b)} |" for key, a, b in rows]
        summary = f"Smoke params that differ: {len(rows)}"
        parts += ["", f"<details><summary>{summary}</summary>", "", *table, "", "</details>"]
    return "\n".join(parts) + "\n"


def collect(root: str | Path, out: str | Path) -> list[str]:
    """Copy a pipeline run's metrics, curves and params.yaml into a metrics folder.

    Reads the experiments from ``root/params.yaml``; ``out`` is emptied of ``*.json`` and
    ``curves/*.csv`` first, so an experiment the profile no longer has disappears from it.
    Returns the experiment names.
    """
    root, out = Path(root), Path(out)
    params_path = root / "params.yaml"
    experiments = (yaml.safe_load(params_path.read_text()) or {}).get("experiments")
    if not isinstance(experiments, Mapping) or not experiments:
        raise ValueError(f"{params_path}: experiments must be a non-empty mapping")
    copies = [(params_path, out / "params.yaml")]
    for name in experiments:
        for source, target in (
            (root / "metrics" / f"{name}.json", out / f"{name}.json"),
            (root / "metrics" / "curves" / f"{name}.csv", out / "curves" / f"{name}.csv"),
        ):
            if not source.is_file():
                raise FileNotFoundError(f"{source}: missing; did evaluate@{name} run?")
            copies.append((source, target))
    for stale in [*out.glob("*.json"), *out.glob("curves/*.csv")]:
        stale.unlink()
    (out / "curves").mkdir(parents=True, exist_ok=True)
    for source, target in copies:
        shutil.copyfile(source, target)
    return [str(name) for name in experiments]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repro.reporting.pr_comment collect|render|plot ...`` (see ``--help``)."""
    parser = argparse.ArgumentParser(prog="python -m repro.reporting.pr_comment")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("collect", help="copy a run's metrics and curves into a metrics folder")
    p.add_argument("root", help="the repository the pipeline ran in")
    p.add_argument("out", help="the metrics folder to write")
    p = sub.add_parser("render", help="the comment's Markdown from two metrics folders")
    p.add_argument("base")
    p.add_argument("head")
    p.add_argument("--base-label", default="base")
    p.add_argument("--head-label", default="head")
    p.add_argument("--plot-url", default=None)
    p.add_argument("--base-error", default=None, help="a file saying why the base did not run")
    p.add_argument("--rtol", type=float, default=RTOL)
    p.add_argument("--out", default=None, help="write here instead of standard output")
    p = sub.add_parser("plot", help="both sides' training curves into one PNG")
    p.add_argument("base")
    p.add_argument("head")
    p.add_argument("out")
    args = parser.parse_args(argv)
    try:
        if args.command == "collect":
            names = collect(args.root, args.out)
            print(f"{args.out}: metrics and curves of {', '.join(names)}")
        elif args.command == "plot":
            from repro.reporting.pr_curves import plot

            print(plot(args.base, args.head, args.out))
        else:
            if args.rtol < 0:
                raise ValueError(f"--rtol must be >= 0, got {args.rtol}")
            base_error = Path(args.base_error).read_text() if args.base_error else ""
            text = render(
                args.base,
                args.head,
                base_label=args.base_label,
                head_label=args.head_label,
                plot_url=args.plot_url,
                base_error=base_error,
                rtol=args.rtol,
            )
            if args.out:
                atomic_write_text(args.out, text)
            else:
                sys.stdout.write(text)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"pr_comment {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

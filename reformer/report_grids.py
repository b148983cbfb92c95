"""The report's tables of the Table 2 experiments: metric grids and seed spreads.

Two types of ``tables:`` entries in ``report/claims.yaml`` (rendered through
:func:`reformer.report_tables.report_tables`):

``grid``: rows are experiments, columns W&B summary keys; each cell is a macro
``\\<Macro><Row><Column>`` that the prose can quote::

    - type: grid
      name: buckets            # -> report/generated/buckets.tex
      macro: Buckets           # macro prefix
      scale: 100               # a run's value x 100 (fractions -> percent)
      digits: 1
      corner: Trained with     # the header of the row labels (optional)
      rows:
        - {label: Full attention, name: full, experiment: dup-full}
      columns:                 # `group`: consecutive columns with one group get one header
        - {label: "4", name: lsh1-b64, metric: eval/accuracy_lsh1-b64, group: LSH-1}

``seeds``: groups of experiments that differ only in their seed; for each, how many runs
reached ``threshold`` (a run *converged*) and the spread of the metric::

    - type: seeds
      name: seeds
      macro: Seeds
      threshold: 99            # in the scaled unit (percent)
      scale: 100
      groups:
        - {label: Full attention, name: full, metric: eval/accuracy_full,
           experiments: [dup-full, dup-full-s1, dup-full-s2]}
        - {label: "Full attention, under LSH-1", name: full-lsh, metric: eval/accuracy_lsh1,
           experiments: [dup-full, dup-full-s1], count: false}   # spread only

Macros: ``\\<Macro><Group>Runs`` (runs found), ``...Listed``, ``...Converged``, ``...Min``,
``...Median``, ``...Max`` and the switch ``\\Case<Macro><Group>{all converged}{some did
not}{not every seed ran}``; ``\\<Macro>Threshold``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repro.reporting import Macros, format_number, latex_escape, macro_name, run_metric
from repro.tracking.reader import Run

__all__ = ["Grid", "Seeds", "grid_latex", "seeds_latex", "spec_error"]


def spec_error(key: str, value: Any, allowed: str) -> ValueError:
    """``<key>=<value> is not allowed (<allowed>)``: one line, the value shortened."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return ValueError(f"{key}={text} is not allowed ({allowed})")


def _items(spec: Mapping[str, Any], key: str, needed: tuple[str, ...]) -> tuple[dict, ...]:
    """``spec[key]``: a non-empty list of mappings, each with string values for ``needed``."""
    items = spec.get(key)
    if (
        not isinstance(items, list)
        or not items
        or not all(
            isinstance(i, Mapping) and all(isinstance(i.get(k), str) for k in needed) for i in items
        )
    ):
        raise spec_error(key, items, "a list of {" + ", ".join(needed) + "}")
    return tuple(dict(i) for i in items)


def _number(spec: Mapping[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise spec_error(key, value, "a number")
    return float(value)


def _prefix(spec: Mapping[str, Any], default: str) -> str:
    value = spec.get("macro", default)
    if not isinstance(value, str) or not value.isalpha():
        raise spec_error("macro", value, "letters only, e.g. Buckets")
    return value


@dataclass(frozen=True)
class Grid:
    """Experiments (rows) x summary keys (columns).

    Example:
        >>> g = Grid.from_spec({"type": "grid", "macro": "Mask",
        ...     "rows": [{"label": "LSH-4", "name": "lsh4", "experiment": "dup-lsh4"}],
        ...     "columns": [{"label": "Full", "name": "full", "metric": "eval/accuracy_full"}]})
        >>> g.prefix, g.scale, g.rows[0]["experiment"]
        ('Mask', 100.0, 'dup-lsh4')
        >>> Grid.from_spec({"rows": [], "columns": []})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: rows=[] is not allowed (a list of {label, name, experiment})
    """

    rows: tuple[dict, ...]
    columns: tuple[dict, ...]
    prefix: str
    scale: float = 100.0
    digits: int = 1
    corner: str = ""

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Grid:
        """Validate an entry of ``tables:`` (one-line ``ValueError`` naming the bad key)."""
        return cls(
            rows=_items(spec, "rows", ("label", "name", "experiment")),
            columns=_items(spec, "columns", ("label", "name", "metric")),
            prefix=_prefix(spec, "Grid"),
            scale=_number(spec, "scale", 100.0),
            digits=int(_number(spec, "digits", 1)),
            corner=str(spec.get("corner", "")),
        )


def _group_header(columns: tuple[dict, ...], first: int) -> list[str]:
    """The ``\\multicolumn`` header row and its rules for the columns' ``group`` keys."""
    runs: list[tuple[str, int, int]] = []  # (group, first column, last column), 1-based
    for j, col in enumerate(columns, start=first):
        group = str(col.get("group", ""))
        if runs and runs[-1][0] == group:
            runs[-1] = (group, runs[-1][1], j)
        else:
            runs.append((group, j, j))
    if all(not g for g, _, _ in runs):
        return []
    cells = " & " * (first - 1)
    cells += " & ".join(
        rf"\multicolumn{{{b - a + 1}}}{{c}}{{{latex_escape(g)}}}" for g, a, b in runs
    )
    rules = " ".join(rf"\cmidrule(lr){{{a}-{b}}}" for g, a, b in runs if g)
    return [cells + r" \\", rules]


def grid_latex(g: Grid, runs: Mapping[str, Run], macros: Macros) -> str:
    """The grid as a ``tabular``; defines ``\\<prefix><Row><Column>`` per cell (``---``: not
    run)."""
    lines = [r"\begin{tabular}{@{}l" + "r" * len(g.columns) + "@{}}", r"\toprule"]
    lines += _group_header(g.columns, 2)
    header = [latex_escape(g.corner)] + [latex_escape(c["label"]) for c in g.columns]
    lines += [" & ".join(header) + r" \\", r"\midrule"]
    for row in g.rows:
        cells = [latex_escape(row["label"])]
        for col in g.columns:
            name = macro_name(g.prefix, row["name"], col["name"])
            value, _ = run_metric(runs, row["experiment"], col["metric"])
            macros.add(name, format_number(None if value is None else value * g.scale, g.digits))
            cells.append("\\" + name)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Seeds:
    """Groups of runs that differ only in their seed, and a convergence threshold.

    Example:
        >>> s = Seeds.from_spec({"type": "seeds", "threshold": 99, "groups": [{"label": "Full",
        ...     "name": "full", "metric": "eval/accuracy_full", "experiments": ["a", "b"]}]})
        >>> s.threshold, s.groups[0]["experiments"]
        (99.0, ['a', 'b'])
    """

    groups: tuple[dict, ...]
    threshold: float
    prefix: str = "Seeds"
    scale: float = 100.0
    digits: int = 1

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Seeds:
        """Validate an entry of ``tables:`` (one-line ``ValueError`` naming the bad key)."""
        groups = _items(spec, "groups", ("label", "name", "metric"))
        for i, group in enumerate(groups):
            exps = group.get("experiments")
            if not isinstance(exps, list) or not exps or not all(isinstance(e, str) for e in exps):
                raise spec_error(f"groups[{i}].experiments", exps, "a list of experiment names")
        if "threshold" not in spec:
            raise spec_error("threshold", None, "the value a converged run reaches, e.g. 99")
        return cls(
            groups=groups,
            threshold=_number(spec, "threshold", 0.0),
            prefix=_prefix(spec, "Seeds"),
            scale=_number(spec, "scale", 100.0),
            digits=int(_number(spec, "digits", 1)),
        )


def seed_values(s: Seeds, group: Mapping[str, Any], runs: Mapping[str, Run]) -> list[float]:
    """The scaled metric of each run of ``group`` that exists, in the listed order."""
    values = [run_metric(runs, exp, group["metric"])[0] for exp in group["experiments"]]
    return [v * s.scale for v in values if v is not None]


def seeds_latex(s: Seeds, runs: Mapping[str, Run], macros: Macros) -> str:
    """One row per group: runs found of listed, how many reached the threshold, min, median,
    max; defines the module's macros."""
    fmt = format_number
    macros.add(f"{s.prefix}Threshold", fmt(s.threshold, s.digits))
    lines = [
        r"\begin{tabular}{@{}lrrrrr@{}}",
        r"\toprule",
        r"Trained with & runs & converged & min & median & max \\",
        r"\midrule",
    ]
    for group in s.groups:
        stem = macro_name(s.prefix, group["name"])
        values = seed_values(s, group, runs)
        counted = group.get("count", True) is not False  # a spread-only row: no count
        converged = sum(v >= s.threshold for v in values)
        some = bool(values)
        macros.add(f"{stem}Runs", str(len(values)))
        macros.add(f"{stem}Listed", str(len(group["experiments"])))
        macros.add(f"{stem}Converged", str(converged) if some and counted else fmt(None))
        macros.add(f"{stem}Min", fmt(min(values) if some else None, s.digits))
        macros.add(f"{stem}Median", fmt(statistics.median(values) if some else None, s.digits))
        macros.add(f"{stem}Max", fmt(max(values) if some else None, s.digits))
        complete = len(values) == len(group["experiments"])  # every seed ran
        chosen = 3 if not (complete and counted) else (1 if converged == len(values) else 2)
        macros.add_switch(f"Case{stem}", 3, chosen)
        cells = [
            latex_escape(group["label"]),
            rf"\{stem}Runs{{}} of \{stem}Listed",
            rf"\{stem}Converged",
            rf"\{stem}Min",
            rf"\{stem}Median",
            rf"\{stem}Max",
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"

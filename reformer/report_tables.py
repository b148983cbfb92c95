"""The Reformer's own report tables and figures: Table 2 and the experiments that explain it.

Plugged into the kit through :class:`repro.paper.Paper`: ``report_tables(spec, runs,
macros)`` renders an entry of ``tables:`` in ``report/claims.yaml`` as LaTeX (defining a
macro per cell, so the prose can quote any of them), and ``readme_tables(spec, metrics)``
as the README's Markdown. The types (:data:`TYPES`):

- ``table2``: the paper's Table 2 grid with the paper's, other reproductions' and our
  numbers (below; also in the README);
- ``grid`` and ``seeds``: any experiments x summary keys, and the spread over seeds
  (:mod:`reformer.report_grids`; not in the README);
- ``chart``: a line chart in LaTeX's ``picture`` environment (:mod:`reformer.report_charts`;
  not in the README).

A ``table2`` entry::

    tables:
      - type: table2
        name: table2              # -> report/generated/table2.tex (default: the type)
        where: Table 2
        scale: 100                # a run's accuracy (a fraction) x 100 = percent
        digits: 1
        rows:                     # trained with: one experiment per row
          - {label: Full attention, name: full, experiment: dup-full}
        columns:                  # evaluated with: one W&B summary key per column
          - {label: Full, name: full, metric: eval/accuracy_full}
        paper:  [[100]]           # the paper's grid (rows x columns, in percent)
        others:                   # other reproductions' grids, by the file's sources
          fastai: {label: fast.ai, values: [[100]]}

Macros: ``\\Acc<Row>Eval<Column>`` (ours), ``\\PaperAcc<Row>Eval<Column>`` and
``\\<Source>Acc<Row>Eval<Column>`` (``\\FastaiAccFullEvalLshEight``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reformer.report_charts import Chart, chart_latex
from reformer.report_grids import Grid, Seeds, grid_latex, seeds_latex
from repro.reporting import Macros, format_number, latex_escape, macro_name, published, run_metric
from repro.tracking.reader import Run

__all__ = ["TYPES", "Table2", "readme_tables", "report_tables", "table2_latex", "table2_markdown"]

#: the table types this paper renders
TYPES = ("table2", "grid", "seeds", "chart")


def _error(key: str, value: Any, allowed: str) -> ValueError:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."  # one readable line
    return ValueError(f"{key}={text} is not allowed ({allowed})")


@dataclass(frozen=True)
class Table2:
    """The Table 2 grid: rows are training attention (experiments), columns evaluation keys.

    Attributes:
        rows: ``{"label", "name", "experiment"}`` per row (the attention trained with).
        columns: ``{"label", "name", "metric"}`` per column (the attention evaluated with).
        paper: the paper's grid, rows x columns, in percent.
        others: source key -> ``(row label, grid)`` of another reproduction.
        scale: multiplies a run's accuracy (a fraction) to give percent.
        digits: decimals of our numbers.
        where: where the paper prints it.
    """

    rows: tuple[Mapping[str, str], ...]
    columns: tuple[Mapping[str, str], ...]
    paper: tuple[tuple[float, ...], ...]
    others: Mapping[str, tuple[str, tuple[tuple[float, ...], ...]]]
    scale: float = 100.0
    digits: int = 1
    where: str = "Table 2"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Table2:
        """Validate an entry of ``tables:`` (one-line ``ValueError`` naming the bad key).

        Example:
            >>> t = Table2.from_spec({"type": "table2",
            ...     "rows": [{"label": "LSH-4", "name": "lsh4", "experiment": "dup-lsh4"}],
            ...     "columns": [{"label": "Full", "name": "full", "metric": "eval/acc_full"}],
            ...     "paper": [[0.8]], "others": {"fastai": {"label": "fast.ai",
            ...                                             "values": [[46.54]]}}})
            >>> t.others["fastai"]
            ('fast.ai', ((46.54,),))
            >>> Table2.from_spec({**{"rows": [], "columns": []}, "paper": [[1]]})
            Traceback (most recent call last):
            ...
            ValueError: paper=[1] is not allowed (0 rows of 0 numbers)
        """
        rows, columns = spec.get("rows"), spec.get("columns")
        for key, items, needed in (
            ("rows", rows, ("label", "name", "experiment")),
            ("columns", columns, ("label", "name", "metric")),
        ):
            if not isinstance(items, list) or not all(
                isinstance(i, Mapping) and all(isinstance(i.get(k), str) for k in needed)
                for i in items
            ):
                raise _error(key, items, "a list of {" + ", ".join(needed) + "}")
        assert isinstance(rows, list) and isinstance(columns, list)
        shape = f"{len(rows)} rows of {len(columns)} numbers"

        def grid(key: str, value: Any) -> tuple[tuple[float, ...], ...]:
            # the grid's shape (row lengths) is what the error shows: grids are long
            found = (
                [len(r) if isinstance(r, list) else -1 for r in value]
                if isinstance(value, list)
                else value
            )
            if found != [len(columns)] * len(rows):
                raise _error(key, found, shape)
            return tuple(tuple(float(v) for v in r) for r in value)

        others_raw = spec.get("others") or {}
        if not isinstance(others_raw, Mapping):
            raise _error("others", others_raw, "source -> {label, values}")
        others = {}
        for source, other in others_raw.items():
            if not isinstance(other, Mapping) or not isinstance(other.get("label"), str):
                raise _error(f"others.{source}", other, "{label: <row label>, values: <grid>}")
            others[str(source)] = (other["label"], grid(f"others.{source}.values", other["values"]))
        return cls(
            rows=tuple(rows),
            columns=tuple(columns),
            paper=grid("paper", spec.get("paper")),
            others=others,
            scale=float(spec.get("scale", 100.0)),
            digits=int(spec.get("digits", 1)),
            where=str(spec.get("where", "Table 2")),
        )


def table2_latex(t: Table2, runs: Mapping[str, Run], macros: Macros) -> str:
    """The grid as a ``tabular`` (paper, each other source, ours per row); defines the macros.

    A cell whose run or metric is missing is ``---`` (not run), never a number.
    """
    cols = len(t.columns)
    lines = [
        r"\begin{tabular}{@{}ll" + "r" * cols + "@{}}",
        r"\toprule",
        r" & & \multicolumn{" + str(cols) + r"}{c}{Evaluated with} \\",
        r"\cmidrule(l){3-" + str(cols + 2) + "}",
        "Trained with & Source & "
        + " & ".join(latex_escape(c["label"]) for c in t.columns)
        + r" \\",
        r"\midrule",
    ]
    prefixes = {source: macro_name(source) for source in t.others}
    for i, row in enumerate(t.rows):
        cells: dict[str, list[str]] = {"Paper": [], **{p: [] for p in prefixes.values()}, "": []}
        for j, col in enumerate(t.columns):
            stem = macro_name("acc", row["name"], "eval", col["name"])
            value, _ = run_metric(runs, row["experiment"], col["metric"])
            macros.add(stem, format_number(None if value is None else value * t.scale, t.digits))
            macros.add("Paper" + stem, published(t.paper[i][j]))
            for source, prefix in prefixes.items():
                macros.add(prefix + stem, published(t.others[source][1][i][j]))
            for prefix in cells:
                cells[prefix].append("\\" + prefix + stem)
        label = latex_escape(row["label"])
        lines.append(f"{label} & paper & " + " & ".join(cells["Paper"]) + r" \\")
        for source, prefix in prefixes.items():
            other = latex_escape(t.others[source][0])
            lines.append(f" & {other} & " + " & ".join(cells[prefix]) + r" \\")
        ours = [r"\textbf{" + c + "}" for c in cells[""]]
        lines.append(" & ours & " + " & ".join(ours) + r" \\")
        lines.append(r"\midrule" if i < len(t.rows) - 1 else r"\bottomrule")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def _cell(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table2_markdown(table: Table2, metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Table 2 as Markdown: for each training row the paper's, the others' and our accuracy.

    Args:
        table: the grid definition from ``report/claims.yaml`` (rows name experiments, columns
            name evaluation modes ``full``, ``lsh1`` ...).
        metrics: ``{experiment: metrics dict}``; ``metrics[exp]["accuracy"][mode]`` is a
            fraction in [0, 1]. A missing experiment or mode shows "—" (not run).

    Example:
        >>> t2 = Table2(rows=({"label": "LSH-4", "experiment": "dup-lsh4"},),
        ...             columns=({"label": "Full", "name": "full"}, {"label": "LSH-4", "name": "lsh4"}),
        ...             paper=((0.8, 99.9),), others={"fastai": ("fast.ai", ((46.54, 99.77),))})
        >>> print(table2_markdown(t2, {"dup-lsh4": {"accuracy": {"full": 0.01, "lsh4": 0.995}}}))
        | trained with | source | Full | LSH-4 |
        | --- | --- | --- | --- |
        | LSH-4 | paper | 0.8 | 99.9 |
        |  | fast.ai | 46.54 | 99.77 |
        |  | **ours** | **1.0** | **99.5** |
    """  # noqa: E501
    labels = [c["label"] for c in table.columns]
    lines = [
        "| trained with | source | " + " | ".join(labels) + " |",
        "| --- | --- | " + " | ".join("---" for _ in labels) + " |",
    ]
    for i, row in enumerate(table.rows):
        ours = metrics.get(row["experiment"], {}).get("accuracy", {})
        values = [ours.get(c["name"]) for c in table.columns]
        cells = [_cell(None if v is None else v * table.scale, table.digits) for v in values]
        lines.append(f"| {row['label']} | paper | " + " | ".join(map(published, table.paper[i])))
        lines[-1] += " |"
        for label, grid in table.others.values():
            lines.append(f"|  | {label} | " + " | ".join(map(published, grid[i])) + " |")
        lines.append("|  | **ours** | " + " | ".join(f"**{c}**" for c in cells) + " |")
    return "\n".join(lines)


def _check_type(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    if kind not in TYPES:
        raise _error("type", kind, "this paper's table types: " + ", ".join(TYPES))
    return str(kind)


def report_tables(spec: Mapping[str, Any], runs: Mapping[str, Run], macros: Macros) -> str:
    """The ``report_tables`` plug-in: the LaTeX of one ``tables:`` entry (see the module)."""
    kind = _check_type(spec)
    if kind == "grid":
        return grid_latex(Grid.from_spec(spec), runs, macros)
    if kind == "seeds":
        return seeds_latex(Seeds.from_spec(spec), runs, macros)
    if kind == "chart":
        return chart_latex(Chart.from_spec(spec), runs)
    return table2_latex(Table2.from_spec(spec), runs, macros)


def readme_tables(spec: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """The ``readme_tables`` plug-in: the README's Markdown of one ``table2`` entry (the other
    types, and an entry with ``readme: false``, are left out: ``""``)."""
    if _check_type(spec) != "table2" or spec.get("readme") is False:
        return ""
    table = Table2.from_spec(spec)
    named = [r["experiment"] for r in table.rows]
    run = [e for e in named if e in metrics]
    # a bare name is the committed profile's metrics/<exp>.json; <profile>/<exp> a saved one's
    saved = sorted({e.split("/", 1)[0] for e in named if "/" in e})
    source = (
        f"`results/{saved[0]}.metrics.json` (the {saved[0]} profile's saved runs)"
        if len(saved) == 1 and all("/" in e for e in named)
        else "the committed profile's `metrics/*.json`"
        + "".join(f" and `results/{p}.metrics.json`" for p in saved)
    )
    title = str(spec.get("title", "Table 2"))
    return (
        f"{title} (duplication task, masked accuracy %, rows trained with, columns evaluated "
        f"with); ours: {source} ({len(run)} of {len(table.rows)} rows run, — = not run).\n\n"
        + table2_markdown(table, metrics)
    )

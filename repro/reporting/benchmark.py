"""The report's benchmark section, from the generic parts of ``metrics/benchmark.json``.

The kit knows nothing of a paper's workloads; the benchmark stage writes what to show
(the format is in ``docs/guides/report.md``):

- ``targets``: a list of rows ``{"name", "target", "required", "measured", "met", "note"}``
  (``met`` true, false or null when not measured) -> the targets table and the README's
  benchmark headline;
- ``views``: ``{"tables": [{"caption", "label", "columns", "rows"}], "figures": [...]}``,
  where a figure is ``{"curve": <section>, "log_x", "log_y", "caption", "label"}`` (the kit
  draws the top-level curve section) or ``{"path": <file>, "caption", "label"}`` (an image
  the stage wrote, copied into ``report/generated/``), each with an optional ``width``
  (fraction of the line width, default 0.7); an optional ``targets_caption`` captions the
  targets table.

Captions are plain text (escaped here) in which text between two backticks is set in
``\\texttt`` (file names, keys).

No file, or a file with neither part, gives a plain "not run" note. A part of the wrong
shape is a one-line ``ValueError`` naming the file and the key.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.reporting.figures import curve_figure, figure_tex
from repro.reporting.latex import latex_escape, latex_inline
from repro.reporting.tables import row_table

__all__ = ["BENCHMARK_FILE", "benchmark_section", "benchmark_targets", "targets_markdown"]

BENCHMARK_FILE = "metrics/benchmark.json"
_IMAGES = (".pdf", ".png", ".jpg", ".jpeg")
NOT_RUN = (
    r"\emph{Not run: the benchmark stage has not written \texttt{metrics/benchmark.json} "
    r"yet, so its measurements are missing.}" + "\n"
)


def _bad(key: str, value: Any, allowed: str, source: str) -> ValueError:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return ValueError(f"{source}: {key}={text} is not allowed ({allowed})")


def _shown(value: Any) -> str:
    """A target's number as the headline shows it: ``1,048,576``, ``1.50``, text, or —."""
    if isinstance(value, bool) or value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def benchmark_targets(
    bench: Mapping[str, Any], source: str = BENCHMARK_FILE
) -> list[dict[str, str]]:
    """The ``targets`` rows of a benchmark file, formatted for a table.

    Args:
        bench: the parsed ``metrics/benchmark.json``.
        source: the file's name, for error messages.

    Returns:
        One ``{"target", "measured", "threshold", "met"}`` of strings per row: numbers as
        ``1,048,576`` (int) or ``1.50`` (float), the note in parentheses after the measured
        number, ``met`` as yes / no / — (not measured). ``[]`` when there are no targets.

    Raises:
        ValueError: ``targets`` is not a list of rows with a ``name`` and a ``target``.

    Example:
        >>> benchmark_targets({"targets": [{"name": "t", "target": "fast", "required": 1.5,
        ...                                  "measured": 2.0, "met": True, "note": None}]})
        [{'target': 'fast', 'measured': '2.00', 'threshold': '1.50', 'met': 'yes'}]
    """
    targets = bench.get("targets")
    if targets is None:
        return []
    if not isinstance(targets, list):
        raise _bad("targets", targets, "a list of {name, target, required, measured, met}", source)
    rows = []
    for i, row in enumerate(targets):
        if not isinstance(row, Mapping):
            raise _bad(f"targets[{i}]", row, "a mapping", source)
        for key in ("name", "target"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise _bad(f"targets[{i}].{key}", row.get(key), "a non-empty string", source)
        met = row.get("met")
        if met not in (True, False, None):
            raise _bad(f"targets[{i}].met", met, "true, false or null", source)
        note = row.get("note")
        rows.append(
            {
                "target": row["target"],
                "measured": _shown(row.get("measured")) + (f" ({note})" if note else ""),
                "threshold": _shown(row.get("required")),
                "met": {True: "yes", False: "no"}.get(met, "—"),
            }
        )
    return rows


def _check_caption(view: Mapping[str, Any], at: str, source: str) -> None:
    if not isinstance(view.get("caption"), str) or not view["caption"].strip():
        raise _bad(f"{at}.caption", view.get("caption"), "a non-empty string", source)
    label = view.get("label")
    if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9:._-]*", label):
        raise _bad(f"{at}.label", label, "a LaTeX label such as tab:peers", source)


def _views(bench: Mapping[str, Any], source: str) -> tuple[list[Mapping], list[Mapping]]:
    views = bench.get("views")
    if views is None:
        return [], []
    if not isinstance(views, Mapping):
        raise _bad("views", views, "a mapping with tables and figures", source)
    tables, figures = views.get("tables") or [], views.get("figures") or []
    caption = views.get("targets_caption")
    if caption is not None and (not isinstance(caption, str) or not caption.strip()):
        raise _bad("views.targets_caption", caption, "a non-empty string", source)
    for key, value in (("views.tables", tables), ("views.figures", figures)):
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise _bad(key, value, "a list of mappings", source)
    for i, table in enumerate(tables):
        at = f"views.tables[{i}]"
        _check_caption(table, at, source)
        columns, rows = table.get("columns"), table.get("rows")
        if not isinstance(columns, list) or not columns:
            raise _bad(f"{at}.columns", columns, "a non-empty list of headers", source)
        if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == len(columns) for r in rows
        ):
            raise _bad(f"{at}.rows", rows, f"a list of rows of {len(columns)} cells", source)
    for i, figure in enumerate(figures):
        at = f"views.figures[{i}]"
        _check_caption(figure, at, source)
        if ("curve" in figure) == ("path" in figure):
            raise _bad(at, sorted(figure), "exactly one of curve or path", source)
        path = figure.get("path")
        if path is not None and Path(str(path)).suffix.lower() not in _IMAGES:
            raise _bad(f"{at}.path", path, "a " + ", ".join(_IMAGES) + " file", source)
        width = figure.get("width", 0.7)
        if isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width <= 1:
            raise _bad(f"{at}.width", width, "a fraction of the line width in (0, 1]", source)
    return tables, figures


def _figure(
    figure: Mapping[str, Any], bench: Mapping[str, Any], out: Path, root: Path, written: list
) -> str:
    label = figure["label"]
    stem = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-") or "figure"
    caption, width = latex_inline(figure["caption"]), f"{figure.get('width', 0.7):g}\\linewidth"
    if "curve" in figure:
        section = bench.get(str(figure["curve"]))
        drawn = isinstance(section, Mapping) and curve_figure(
            section,
            out / f"{stem}.pdf",
            written,
            log_x=bool(figure.get("log_x")),
            log_y=bool(figure.get("log_y")),
        )
        if not drawn:
            what = latex_escape(figure["curve"])
            return rf"\emph{{Figure not available: the benchmark has no {what} curves.}}" + "\n"
        return figure_tex(f"{stem}.pdf", caption, label, width)
    image = root / str(figure["path"])
    if not image.is_file():
        what = latex_escape(figure["path"])
        return rf"\emph{{Figure not available: \texttt{{{what}}} is missing.}}" + "\n"
    name = stem + image.suffix.lower()
    shutil.copyfile(image, out / name)
    written.append(out / name)
    return figure_tex(name, caption, label, width)


def benchmark_section(
    bench: Mapping[str, Any] | None,
    out: str | Path,
    written: list[Path],
    root: str | Path = ".",
    source: str = BENCHMARK_FILE,
) -> str:
    """The LaTeX of the benchmark section: the targets table, each view table and figure.

    Args:
        bench: the parsed ``metrics/benchmark.json``, or ``None`` when it does not exist.
        out: ``report/generated`` (figures are written there).
        written: files written so far (figures are appended).
        root: the project root, against which a figure's ``path`` is resolved.
        source: the file's name, for error messages.

    Example:
        >>> print(benchmark_section(None, ".", []), end="")
        \\emph{Not run: the benchmark stage has not written \\texttt{metrics/benchmark.json} yet, so its measurements are missing.}
    """  # noqa: E501
    if not isinstance(bench, Mapping):
        return NOT_RUN
    if bench.get("available") is False:  # the paper has no benchmark workloads
        reason = latex_escape(str(bench.get("reason", "the paper has no benchmark")))
        return rf"\emph{{Not available: {reason}.}}" + "\n"
    targets = benchmark_targets(bench, source)
    tables, figures = _views(bench, source)
    if not (targets or tables or figures):
        return (
            r"\emph{Not run: \texttt{metrics/benchmark.json} holds no targets and no views "
            r"yet.}" + "\n"
        )
    out, root = Path(out), Path(root)
    parts = [_figure(f, bench, out, root, written) for f in figures]
    if targets:
        columns = ["target", "measured", "threshold", "met"]
        caption = (bench.get("views") or {}).get("targets_caption") or (
            "The performance targets, each decided by measurements of one benchmark run "
            "(`metrics/benchmark.json`)."
        )
        rows = [[row[c] for c in columns] for row in targets]
        # the targets and their notes are sentences: wrapped, not shrunk
        widths = [0.44, 0.34, None, None]
        parts.append(row_table(columns, rows, caption, "tab:targets", widths))
    parts += [row_table(t["columns"], t["rows"], t["caption"], t["label"]) for t in tables]
    return "\n".join(parts)


def targets_markdown(bench: Mapping[str, Any], source: str = BENCHMARK_FILE) -> str:
    """The targets as a Markdown table (the README's benchmark headline); ``""`` if none.

    Example:
        >>> print(targets_markdown({"targets": [{"name": "n", "target": "long", "required":
        ...     1000000, "measured": 1048576, "met": True}]}))
        | benchmark target | measured | threshold | met |
        | --- | --- | --- | --- |
        | long | 1,048,576 | 1,000,000 | yes |
    """
    rows = benchmark_targets(bench, source)
    if not rows:
        return ""
    lines = ["| benchmark target | measured | threshold | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['target']} | {r['measured']} | {r['threshold']} | {r['met']} |" for r in rows]
    return "\n".join(lines)

"""The fixture paper's own table: accuracy (%) of some experiments in each evaluation mode.

One entry type, ``modes``, in the claims file's ``tables:``::

    - {type: modes, name: modes, scale: 100, digits: 1,
       rows: [copy-full, copy-r4], modes: [full, r8, r4, r2, r1]}

:func:`report_tables` writes it for the report (one macro per cell, a dash where there is
no number) and :func:`readme_tables` for the README's results section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repro.reporting import Macros, format_number, latex_escape, macro_name, run_metric
from repro.tracking.reader import Run

__all__ = ["readme_tables", "report_tables"]


def _checked(spec: Mapping[str, Any]) -> tuple[list[str], list[str], float, int]:
    """``(rows, modes, scale, digits)`` of a ``modes`` entry, or a one-line ValueError."""
    if spec["type"] != "modes":
        raise ValueError(f"type={spec['type']!r} is not allowed (this paper's types: modes)")
    for key in ("rows", "modes"):
        value = spec.get(key)
        if not isinstance(value, list) or not value:
            raise ValueError(f"{key}={value!r} is not allowed (a list of names)")
    return list(spec["rows"]), list(spec["modes"]), spec.get("scale", 100), spec.get("digits", 1)


def report_tables(spec: Mapping[str, Any], runs: Mapping[str, Run], macros: Macros) -> str:
    """LaTeX for one ``tables:`` entry; each cell is a macro ``\\Modes<Experiment><Mode>``."""
    rows, modes, scale, digits = _checked(spec)
    lines = [
        rf"\begin{{tabular}}{{l{'r' * len(modes)}}}",
        " & ".join(["trained", *map(latex_escape, modes)]) + r" \\",
    ]
    for exp in rows:
        cells = []
        for mode in modes:
            value, _ = run_metric(runs, exp, f"eval/accuracy_{mode}")
            stem = macro_name("modes", exp, mode)
            macros.add(stem, format_number(None if value is None else scale * value, digits))
            cells.append(f"\\{stem}")
        lines.append(" & ".join([latex_escape(exp), *cells]) + r" \\")
    return "\n".join([*lines, r"\end{tabular}"]) + "\n"


def readme_tables(spec: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown for one ``tables:`` entry from the metrics files; ``""`` while none exists.

    Example:
        >>> spec = {"type": "modes", "rows": ["a", "b"], "modes": ["full", "r1"]}
        >>> print(readme_tables(spec, {"a": {"accuracy": {"full": 0.5}}}))
        | trained | full | r1 |
        |---|---:|---:|
        | a | 50.0 | — |
        | b | — | — |
    """
    rows, modes, scale, digits = _checked(spec)
    if not any(exp in metrics for exp in rows):
        return ""
    lines = [f"| trained | {' | '.join(modes)} |", "|---|" + "---:|" * len(modes)]
    for exp in rows:
        accuracy = metrics.get(exp, {}).get("accuracy", {})
        cells = [f"{scale * accuracy[m]:.{digits}f}" if m in accuracy else "—" for m in modes]
        lines.append(f"| {exp} | {' | '.join(cells)} |")
    return "\n".join(lines)

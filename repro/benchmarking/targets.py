"""Performance targets: one generic row per target, and the helpers that decide and show it.

A paper's workloads (:class:`repro.benchmarking.workloads.Workloads`) turn the measurements into
:class:`Target` rows; the kit writes them as the ``"targets"`` list of
``metrics/benchmark.json``, and the report, the README and ``--summary`` show them without
knowing the paper. A row says what was required, what was measured (the deciding number),
whether the target was met (``None``: not measured) and why a number is missing or bounded
(``note``). The paper's own evidence (per-cell speedups, ...) travels in ``details``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Target", "all_met", "display_rows", "format_value", "markdown_table", "met_text"]

MISSING = "—"  # shown for a value that was not measured


@dataclass(frozen=True)
class Target:
    """One performance target and its verdict.

    Attributes:
        name: a stable key (``"lsh_vs_peers"``), unique among a run's targets.
        target: what is required, as plain text (the row's label in every table).
        required: the threshold (a number or a short text; ``None``: none).
        measured: the deciding measurement (``None``: not measured).
        met: whether the target was met; ``None`` when it could not be decided.
        note: why a figure is bounded or missing (shown after ``measured``), or ``None``.
        details: the paper's evidence for the verdict (JSON-serialisable; not shown).
    """

    name: str
    target: str
    required: float | int | str | None
    measured: float | int | str | None
    met: bool | None
    note: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The row of the ``"targets"`` list in ``metrics/benchmark.json``.

        Example:
            >>> Target("t", "fast", 1.5, 2.0, True).row()
            {'name': 't', 'target': 'fast', 'required': 1.5, 'measured': 2.0, 'met': True, \
'note': None, 'details': {}}
        """
        return {
            "name": self.name,
            "target": self.target,
            "required": self.required,
            "measured": self.measured,
            "met": self.met,
            "note": self.note,
            "details": dict(self.details),
        }


def all_met(checks: Iterable[bool | None]) -> bool | None:
    """The verdict of several checks: ``None`` when none was decided, else whether every
    decided one passed (undecided ones are left out).

    Example:
        >>> all_met([True, None, True]), all_met([True, False]), all_met([None]), all_met([])
        (True, False, None, None)
    """
    known = [c for c in checks if c is not None]
    if not known:
        return None
    return all(known)


def format_value(value: Any) -> str:
    """A required or measured value as the tables show it: integers with thousands commas,
    other numbers with two decimals, text as is, anything else (``None``) as ``—``.

    Example:
        >>> [format_value(v) for v in (1048576, 1.5, "n/a", None, True)]
        ['1,048,576', '1.50', 'n/a', '—', '—']
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    return f"{value:,}" if isinstance(value, int) else f"{value:.2f}"


def met_text(met: bool | None) -> str:
    """``yes``, ``no`` or ``—`` (not decided).

    Example:
        >>> met_text(True), met_text(False), met_text(None)
        ('yes', 'no', '—')
    """
    return {True: "yes", False: "no"}.get(met, MISSING)  # type: ignore[arg-type]


def display_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Rows of the ``"targets"`` list as text: ``{"target", "required", "measured",
    "met"}``, the note in parentheses after the measured value.

    Raises:
        ValueError: a row is not a mapping with a ``target`` (one line, naming its index).

    Example:
        >>> display_rows([{"name": "t", "target": "fast", "required": 1.5, "measured": 2.0,
        ...                "met": True, "note": "1 cell bounded"}])
        [{'target': 'fast', 'required': '1.50', 'measured': '2.00 (1 cell bounded)', 'met': 'yes'}]
    """
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or not isinstance(row.get("target"), str):
            raise ValueError(f"targets[{i}] = {row!r}: must be a row with a 'target' text")
        note = row.get("note")
        out.append(
            {
                "target": row["target"],
                "required": format_value(row.get("required")),
                "measured": format_value(row.get("measured")) + (f" ({note})" if note else ""),
                "met": met_text(row.get("met")),
            }
        )
    return out


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The targets as a Markdown table (``| target | required | measured | result |``).

    Example:
        >>> print(markdown_table([{"target": "fits", "required": 1000, "measured": None,
        ...                        "met": None}]))
        | target | required | measured | result |
        | --- | --- | --- | --- |
        | fits | 1,000 | — | — |
    """
    lines = ["| target | required | measured | result |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {r['target']} | {r['required']} | {r['measured']} | {r['met']} |"
        for r in display_rows(rows)
    ]
    return "\n".join(lines)

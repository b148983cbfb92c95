"""The "Computational requirements" tables, from ``metrics/budget.json``.

``metrics/budget.json`` is what :mod:`repro.budget` writes from the paper's cost model: per
experiment the parameters, tokens per optimizer step, matmul FLOPs (attention,
feed-forward, total), activation bytes per device (ours and the paper's formula) and the
accelerator-hours, under ``assumptions`` (accelerator, peak TFLOP/s, MFU). The current
profile's table comes first; the paper profile's (``"paper"``) follows unless it is the
same. A missing file gives a "not run" note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from repro.reporting.latex import MISSING, format_significant, latex_escape

__all__ = ["budget_tables"]

_GIB = 2**30  # bytes


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scaled(row: Mapping[str, Any], key: str, scale: float, times: str | None = None) -> Any:
    """``row[key] / scale`` (times ``row[times]``), or ``None`` when a value is not a number."""
    values = [row.get(key), row.get(times) if times else 1]
    if not all(_is_number(v) for v in values):
        return None
    return values[0] * values[1] / scale


#: The budget tables' columns after the experiment: (group header, header, value of a row).
#: Units: FLOPs of one optimizer step over the global batch in TFLOP (1e12 FLOPs), of the
#: whole training run in PFLOP (1e15 FLOPs); activation bytes of one device in GiB (2^30
#: bytes); the ``hours`` header is :func:`_hours_header`'s.
_BUDGET_COLUMNS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], Any]], ...] = (
    ("", "Parameters (M)", lambda r: _scaled(r, "params", 1e6)),
    ("", "Tokens per step", lambda r: r.get("tokens_per_step")),
    ("", "Steps", lambda r: r.get("steps")),
    ("TFLOP per step", "Attention", lambda r: _scaled(r, "attention_flops", 1e12)),
    ("TFLOP per step", "Feed-forward", lambda r: _scaled(r, "ff_flops", 1e12)),
    ("TFLOP per step", "Total", lambda r: _scaled(r, "total_flops", 1e12)),
    ("", "Training (PFLOP)", lambda r: _scaled(r, "total_flops", 1e15, "steps")),
    ("Activations per device (GiB)", "Ours", lambda r: _scaled(r, "activation_bytes", _GIB)),
    ("Activations per device (GiB)", "Table~3", lambda r: _scaled(r, "table3_bytes", _GIB)),
    ("", "hours", lambda r: r.get("gpu_hours")),
)
_BUDGET_SUMMED = ("Training (PFLOP)", "hours")  # the columns the total row adds up


def _hours_header(assumptions: Mapping[str, Any]) -> str:
    """``A100-hours at 30\\% MFU``, or ``GPU-hours at 400 TFLOP/s, 30\\% MFU`` for a custom
    peak, from the ``assumptions`` of ``metrics/budget.json``.

    Example:
        >>> _hours_header({"accelerator": "a100", "peak_tflops": 312.0, "mfu": 0.3})
        'A100-hours at 30\\\\% MFU'
    """
    accelerator, peak, mfu = (assumptions.get(k) for k in ("accelerator", "peak_tflops", "mfu"))
    if not _is_number(mfu):
        return "GPU-hours"
    if isinstance(accelerator, str) and accelerator != "custom":
        return rf"{latex_escape(accelerator.upper())}-hours at {mfu * 100:g}\% MFU"
    if _is_number(peak):
        return rf"GPU-hours at {peak:g} TFLOP/s, {mfu * 100:g}\% MFU"
    return rf"GPU-hours at {mfu * 100:g}\% MFU"


def _budget_rows(section: Any) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]] | None:
    """``(rows, assumptions)`` of one estimate (a ``--json`` object or its bare row list)."""
    assumptions: Any = {}
    if isinstance(section, Mapping):
        assumptions = section.get("assumptions") or {}
        section = section.get("experiments", section.get("rows"))
    if not isinstance(section, list) or not section:
        return None
    if not all(isinstance(r, Mapping) for r in section):
        return None
    return section, (assumptions if isinstance(assumptions, Mapping) else {})


def _budget_total_hours(rows: Sequence[Mapping[str, Any]]) -> float | None:
    hours = [r.get("gpu_hours") for r in rows]
    return float(sum(hours)) if all(_is_number(h) for h in hours) else None


def _budget_table(
    rows: Sequence[Mapping[str, Any]], assumptions: Mapping[str, Any], caption: str, label: str
) -> str:
    """One budget table: a row per experiment (units in the headers), then a total row.

    The total row sums the columns that add up over experiments: the training compute
    (PFLOP) and the accelerator-hours.
    """
    n = len(_BUDGET_COLUMNS)
    headers = [h if h != "hours" else _hours_header(assumptions) for _, h, _ in _BUDGET_COLUMNS]
    groups: list[str] = []
    rules: list[str] = []
    i = 0
    while i < n:  # neighbouring columns of one group share a \multicolumn header
        group = _BUDGET_COLUMNS[i][0]
        j = i
        while group and j + 1 < n and _BUDGET_COLUMNS[j + 1][0] == group:
            j += 1
        if group:
            groups.append(rf"\multicolumn{{{j - i + 1}}}{{c}}{{{group}}}")
            rules.append(rf"\cmidrule(lr){{{i + 2}-{j + 2}}}")  # column 1 is the experiment
        else:
            groups.append("")
        i = j + 1
    values = [[value(row) for _, _, value in _BUDGET_COLUMNS] for row in rows]
    total = []
    for k, (_, header, _) in enumerate(_BUDGET_COLUMNS):
        column = [v[k] for v in values]
        summed = header in _BUDGET_SUMMED and all(_is_number(v) for v in column)
        total.append(format_significant(sum(column)) if summed else "")
    lines = [
        r"\begin{table}[htbp]\centering\small",
        rf"\caption{{{caption}}}\label{{{label}}}",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        r"\begin{tabular}{@{}l" + "r" * n + "@{}}",
        r"\toprule",
        " & ".join(["", *groups]) + r" \\",
        "".join(rules),
        " & ".join(["Experiment", *headers]) + r" \\",
        r"\midrule",
    ]
    for row, cells in zip(rows, values, strict=True):
        name = latex_escape(row.get("experiment", MISSING))
        lines.append(" & ".join([name, *map(format_significant, cells)]) + r" \\")
    lines += [r"\midrule", " & ".join(["Total", *total]) + r" \\"]
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def budget_tables(data: Any) -> str:
    """The "Computational requirements" tables from ``metrics/budget.json``.

    ``data``: the parsed file (``assumptions`` and ``experiments`` of the current profile,
    optionally ``paper`` holding the same for ``configs/paper.yaml``), or a bare list of
    rows (older files); ``None`` gives the "not run" note. The paper profile's table
    (``tab:budget-paper``) follows the current one (``tab:budget``) unless both hold the
    same rows, i.e. the current profile is the paper profile.
    """
    if isinstance(data, Mapping) and data.get("available") is False:  # no cost model
        reason = latex_escape(str(data.get("reason", "the paper has no cost model")))
        return rf"\emph{{Not available: {reason}.}}" + "\n"
    current = _budget_rows(data)
    if current is None:
        return (
            r"\emph{Not run: the compute-budget estimate (\texttt{metrics/budget.json}) "
            r"does not exist yet.}" + "\n"
        )
    rows, assumptions = current
    paper = _budget_rows(data.get("paper")) if isinstance(data, Mapping) else None
    same = paper is not None and list(paper[0]) == list(rows)
    source = latex_escape(assumptions.get("params_file", "params.yaml"))
    peak, mfu = assumptions.get("peak_tflops"), assumptions.get("mfu")
    at = (
        rf" at {peak:g} TFLOP/s peak and {mfu * 100:g}\% model FLOPs utilisation (MFU)"
        if _is_number(peak) and _is_number(mfu)
        else ""
    )
    caption = (
        rf"Estimated compute of the experiments of this report (\texttt{{{source}}}"
        + (", the paper profile" if same else "")
        + "): for one optimizer step (global batch) the tokens and the matmul FLOPs of the "
        "forward and backward passes (2 FLOPs per multiply-accumulate; the total includes "
        "the output head); the training compute over all steps; the activations one device "
        "keeps for the backward pass, in our implementation and by the paper's Table~3 "
        rf"formula; and the accelerator-hours{at}."
    )
    parts = [_budget_table(rows, assumptions, caption, "tab:budget")]
    if paper is not None and not same:
        p_rows, p_assumptions = paper
        hours = _budget_total_hours(p_rows)
        total = (
            f", {format_significant(hours)} "
            + _hours_header(p_assumptions).replace(" at ", " in total at ", 1)
            if hours is not None
            else ""
        )
        p_source = latex_escape(p_assumptions.get("params_file", "configs/paper.yaml"))
        caption = (
            rf"Estimated compute of the paper profile (\texttt{{{p_source}}}): what "
            rf"reproducing every experiment at the paper's hyperparameters costs{total}. "
            r"Columns as in Table~\ref{tab:budget}."
        )
        parts.append(_budget_table(p_rows, p_assumptions, caption, "tab:budget-paper"))
    return "\n".join(parts)

"""The report's generic LaTeX tables: claims, runs, saved runs, hyperparameters, row tables.

Each function returns LaTeX text (booktabs rules; a wide table is shrunk to the line width).
Numbers that come from runs are macros defined in ``macros.tex`` (the tables name them,
e.g. ``\\ClaimLshFourEvalFourOurs``), so the tables and the prose cannot disagree. The
paper's own tables (its ``report_tables`` plug-in) and the budget tables
(:mod:`repro.reporting.budget`) live elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from repro.reporting.latex import MISSING, format_number, latex_escape, latex_inline
from repro.reporting.verdicts import ClaimResult
from repro.tracking.reader import Run

if TYPE_CHECKING:  # saved_runs is also a command (python -m): the package does not import it
    from repro.reporting.saved_runs import SavedProfile

__all__ = [
    "claims_list",
    "claims_table",
    "hyperparameters",
    "row_table",
    "runs_table",
    "saved_runs_table",
]

#: one row of the runs and hyperparameter tables: (experiment, macro stem, run or None)
RunRow = tuple[str, str, Run | None]

VERDICT_TEX = {
    "reproduced": r"\textcolor{ReproGreen}{reproduced}",
    "not reproduced": r"\textcolor{ReproRed}{not reproduced}",
    "not run": r"\textcolor{ReproGrey}{not run}",
}

#: shrink a table to the line width only when it is wider (never blow a narrow one up)
_FIT = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"


def claims_table(results: Sequence[ClaimResult]) -> str:
    """Claim, where, the paper's number, ours and the verdict, one row per claim.

    The numbers are the claim macros ``\\<Claim>Paper`` and ``\\<Claim>Ours``.
    """
    lines = [
        r"\begin{tabularx}{\linewidth}{@{}>{\raggedright\arraybackslash}X"
        r">{\raggedright\arraybackslash}p{0.14\linewidth}"
        r">{\raggedleft\arraybackslash}p{0.13\linewidth}"
        r">{\raggedleft\arraybackslash}p{0.13\linewidth}l@{}}",
        r"\toprule",
        r"Claim & Where & Paper & Ours & Verdict \\",
        r"\midrule",
    ]
    for r in results:
        c = r.claim
        lines.append(
            f"{latex_escape(c.title)} & {latex_escape(c.where)} & \\{c.macro}Paper & "
            f"\\{c.macro}Ours & {VERDICT_TEX[r.verdict]} \\\\"
        )
    lines += [r"\bottomrule", r"\end{tabularx}"]
    return "\n".join(lines) + "\n"


def claims_list(results: Sequence[ClaimResult]) -> str:
    """The claims in words, each with where the paper makes it and what tests it."""
    lines = [r"\begin{enumerate}"]
    for r in results:
        c = r.claim
        if c.kind == "benchmark":
            assert c.benchmark is not None
            spec = c.benchmark
            test = rf"\texttt{{{latex_escape(spec['section'] + '.' + spec['series'])}}} " + (
                r"in \texttt{metrics/benchmark.json}"
            )
        elif len(c.metrics) == len(c.experiments):
            pairs = [f"{m} of {e}" for e, m in zip(c.experiments, c.metrics, strict=True)]
            test = ", ".join(rf"\texttt{{{latex_escape(p)}}}" for p in pairs)
        else:
            keys = ", ".join(c.metrics) if c.metrics else (c.metric or "")
            # one \texttt per name, so that a long list of runs breaks between names
            names = [latex_escape(e).replace("/", r"/\allowbreak{}") for e in c.experiments]
            exps = ", ".join(rf"\texttt{{{name}}}" for name in names)
            test = rf"\texttt{{{latex_escape(keys)}}} of {exps}"
        lines.append(
            rf"\item \textbf{{{latex_escape(c.title)}.}} {latex_escape(c.statement)} "
            rf"({latex_escape(c.where)}; tested by {test}.)"
        )
    lines.append(r"\end{enumerate}")
    return "\n".join(lines) + "\n"


def runs_table(run_rows: Sequence[RunRow]) -> str:
    """Each experiment's W&B run, state, steps, final loss, wall time and tokens/s (macros)."""
    if not run_rows:
        return r"\emph{No experiment is defined in params.yaml.}" + "\n"
    lines = [
        r"\begin{tabular}{@{}lllrrrr@{}}",
        r"\toprule",
        r"Experiment & W\&B run & State & Steps & Final loss & Wall time & Tokens/s \\",
        r"\midrule",
    ]
    for exp, stem, _ in run_rows:
        lines.append(
            f"{latex_escape(exp)} & \\texttt{{\\{stem}RunId}} & \\{stem}State & \\{stem}Steps & "
            f"\\{stem}FinalLoss & \\{stem}WallTime & \\{stem}TokensPerSecond \\\\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def saved_runs_table(saved: Mapping[str, SavedProfile], runs: Mapping[str, Run]) -> str:
    """The other profiles' saved runs the report reads: profile, runs read, commit, date.

    Args:
        saved: ``results/index.yaml``'s entries (:func:`repro.reporting.saved_runs.read_index`).
        runs: every run the report has, saved ones under ``<profile>/<experiment>``.
    """
    from repro.reporting.saved_runs import qualified

    if not saved:
        return r"\emph{No other profile's runs are saved in results/.}" + "\n"
    lines = [
        r"\begin{tabular}{@{}lrlll@{}}",
        r"\toprule",
        r"Profile & Runs read & Not evaluated & Commit & Saved \\",
        r"\midrule",
    ]
    for name, entry in sorted(saved.items()):
        found = sum(1 for exp in entry.experiments if qualified(name, exp) in runs)
        read = f"{found} of {len(entry.experiments)}" if found else "not pulled"
        commit = (entry.commit or "?")[:10] + ("+" if entry.dirty else "")
        lines.append(
            f"{latex_escape(name)} & {read} & {latex_escape(', '.join(entry.not_run) or '--')} & "
            f"\\texttt{{{latex_escape(commit)}}} & {latex_escape(entry.saved_at[:10])} \\\\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str | None:
    """A config value short enough for a table cell (40 characters), or ``None``."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float | str):
        text = str(value)
        return text if len(text) <= 40 else None
    if isinstance(value, list) and len(str(value)) <= 40:
        return str(value)
    return None


def hyperparameters(run_rows: Sequence[RunRow]) -> str:
    """Two tables of the runs' W&B configs: what every run shares, and what differs."""
    present = [(exp, run) for exp, _, run in run_rows if run is not None]
    keys = sorted({k for _, run in present for k, v in run.config.items() if _short(v) is not None})
    shared, differing = [], []
    for key in keys:
        values = [_short(run.config.get(key)) for _, run in present]
        (shared if len(set(values)) == 1 else differing).append((key, values))
    lines = [
        r"\begin{small}",
        r"\begin{longtable}{@{}ll@{}}",
        r"\caption{Configuration shared by every run (from the W\&B run config).}"
        r"\label{tab:config}\\",
        r"\toprule Key & Value \\ \midrule \endfirsthead",
        r"\toprule Key & Value \\ \midrule \endhead",
        r"\bottomrule \endfoot",
    ]
    lines += [f"\\texttt{{{latex_escape(k)}}} & {latex_escape(v[0])} \\\\" for k, v in shared]
    if not shared:
        lines.append(r"\multicolumn{2}{@{}l@{}}{\emph{No run exists yet.}} \\")
    lines += [r"\end{longtable}", r"\end{small}"]
    lines += [
        r"\begin{table}[htbp]\centering\small",
        r"\caption{Configuration that differs between runs.}\label{tab:config-diff}",
    ]
    if differing:
        lines += [
            _FIT,
            r"\begin{tabular}{@{}l" + "l" * len(present) + "@{}}",
            r"\toprule",
            "Key & " + " & ".join(latex_escape(exp) for exp, _ in present) + r" \\",
            r"\midrule",
        ]
        for key, values in differing:
            cells = [latex_escape(v) if v is not None else MISSING for v in values]
            lines.append(f"\\texttt{{{latex_escape(key)}}} & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}}"]
    else:
        lines.append(
            r"\emph{None: "
            + ("no run exists yet" if not present else "every run has the same configuration")
            + ".}"
        )
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def table_cell(value: Any) -> str:
    """One cell of a :func:`row_table`: text escaped, ``None`` as ``---``, numbers readable.

    Example:
        >>> [table_cell(v) for v in (1024, 0.12834, 38.44, 3.4e12, None, "out of memory")]
        ['1024', '0.128', '38.4', '3.4$\\\\times 10^{12}$', '---', 'out of memory']
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return latex_escape(value) if value is not None else MISSING
    if value != 0 and not 1e-3 <= abs(value) < 1e5:  # 3.4e12 -> 3.4 x 10^12
        mantissa, exponent = f"{value:.2e}".split("e")
        mantissa = f"{float(mantissa):g}".replace("-", "$-$")
        return rf"{mantissa}$\times 10^{{{int(exponent)}}}$"
    if isinstance(value, int):
        return str(value)
    return format_number(value, 3 if abs(value) < 10 else 1)


def row_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    caption: str,
    label: str,
    widths: Sequence[float | None] | None = None,
) -> str:
    """A floating table of plain rows: a header per column (``_`` shown as a space).

    Args:
        columns: the headers (plain text, escaped here).
        rows: one list of cells per row, as long as ``columns`` (see :func:`table_cell`).
        caption: plain text, escaped here; text between two backticks in ``\\texttt``.
        label: the ``\\label`` (``tab:peers``).
        widths: optional, per column, a fraction of the line width in which its text wraps
            (``None``: a plain column); the table is then set at full size, not shrunk to
            fit, so that long sentences stay readable.
    """
    if widths is not None and len(widths) != len(columns):
        raise ValueError(f"widths has {len(widths)} entries: give one per column ({len(columns)})")
    spec = "".join(
        "l" if w is None else rf">{{\raggedright\arraybackslash}}p{{{w:g}\linewidth}}"
        for w in (widths or [None] * len(columns))
    )
    lines = [
        r"\begin{table}[htbp]\centering\small",
        rf"\caption{{{latex_inline(caption)}}}\label{{{label}}}",
        "{%" if widths else _FIT,
        r"\begin{tabular}{@{}" + spec + "@{}}",
        r"\toprule",
        " & ".join(latex_escape(str(c).replace("_", " ")) for c in columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(table_cell(v) for v in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def mapping_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns (keys in first-seen order) and cell rows of a list of flat dicts.

    Example:
        >>> mapping_rows([{"a": 1}, {"a": 2, "b": "x"}])
        (['a', 'b'], [[1, None], [2, 'x']])
    """
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns, [[row.get(c) for c in columns] for row in rows]

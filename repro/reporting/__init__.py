"""From W&B runs to the LaTeX report: claims and verdicts, macros, tables and figures.

The report's text never types a number: :func:`generate` writes everything numeric into
``report/generated/`` (macros, tables, figures) from the W&B runs named by
``models/<exp>/run.json``, the claims file and the benchmark and budget files. The kit
knows nothing of the paper: the paper's own tables come from its ``report_tables`` plug-in
(:class:`repro.paper.Paper`), named by ``tables:`` in ``report/claims.yaml``.

One concept per module:

- :mod:`~repro.reporting.latex`: escaping, macro names, number formats, :class:`Macros`;
- :mod:`~repro.reporting.claims`: the claims file, :class:`Claim`;
- :mod:`~repro.reporting.verdicts`: each claim's verdict, :func:`evaluate_claim`;
- :mod:`~repro.reporting.runs`: the runs of the experiments in params.yaml;
- :mod:`~repro.reporting.saved_runs`: other profiles' runs saved under ``results/``;
- :mod:`~repro.reporting.tables`: claims, runs, saved runs, hyperparameter and row tables;
- :mod:`~repro.reporting.budget`: the computational-requirements tables;
- :mod:`~repro.reporting.figures`: training curves and benchmark curves (matplotlib);
- :mod:`~repro.reporting.benchmark`: the benchmark section (targets, views);
- :mod:`~repro.reporting.generated`: the whole generated folder;
- :mod:`~repro.reporting.build`: latexmk, reproducibly;
- :mod:`~repro.reporting.readme`: the README's results section.
"""

from __future__ import annotations

from repro.reporting.benchmark import benchmark_section, benchmark_targets, targets_markdown
from repro.reporting.budget import budget_tables
from repro.reporting.build import ReportBuildError, build_pdf
from repro.reporting.claims import Claim, ClaimsFile, load_claims
from repro.reporting.generated import GenerationSummary, generate, table_experiments
from repro.reporting.latex import (
    MISSING,
    Macros,
    format_duration,
    format_number,
    format_significant,
    latex_escape,
    macro_name,
    published,
    unit_suffix,
)
from repro.reporting.runs import (
    MetricsMismatchError,
    MissingRunError,
    RunLoadError,
    check_metrics,
    experiments_from_params,
    load_runs,
    run_facts,
    run_metric,
)
from repro.reporting.verdicts import ClaimResult, Verdict, evaluate_claim

#: the budget tables under their old private name (``tests/test_budget.py`` imports it)
_budget = budget_tables

__all__ = [
    "MISSING",
    "Claim",
    "ClaimResult",
    "ClaimsFile",
    "GenerationSummary",
    "Macros",
    "MetricsMismatchError",
    "MissingRunError",
    "ReportBuildError",
    "RunLoadError",
    "Verdict",
    "benchmark_section",
    "benchmark_targets",
    "budget_tables",
    "build_pdf",
    "check_metrics",
    "evaluate_claim",
    "experiments_from_params",
    "format_duration",
    "format_number",
    "format_significant",
    "generate",
    "latex_escape",
    "load_claims",
    "load_runs",
    "macro_name",
    "published",
    "run_facts",
    "run_metric",
    "table_experiments",
    "targets_markdown",
    "unit_suffix",
]

"""Stage ``report``: the reproducibility report PDF, built from the experiments' W&B runs.

Usage (from the repository root, as ``dvc.yaml`` runs it)::

    python pipelines/report.py            # -> report/build/report.pdf
    python pipelines/report.py --no-pdf   # only report/generated/ (macros, tables, figures)

For every experiment in ``params.yaml`` (:func:`repro.config.load_params`) it reads the W&B
run that ``models/<experiment>/run.json`` names and checks the run's evaluation summary
against ``metrics/<experiment>.json``. It adds the runs that other profiles saved under
``results/`` (:mod:`repro.reporting.saved_runs`, named ``<profile>/<experiment>``), tests
the claims of ``report/claims.yaml``, writes ``report/generated/`` (see
:mod:`repro.reporting`; the paper named by ``paper:`` renders its own tables) and runs
latexmk. ``metrics/benchmark.json`` and ``metrics/budget.json`` are
used when they exist.

Exit status: 0 done, 1 a run, metrics file or the LaTeX build failed, 2 bad input (bad
params, an experiment without its run file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own packages, installed or not

from repro.config import load_params  # noqa: E402
from repro.paper import load_paper  # noqa: E402
from repro.reporting import (  # noqa: E402
    MissingRunError,
    ReportBuildError,
    build_pdf,
    check_metrics,
    generate,
    load_runs,
)
from repro.reporting.saved_runs import load_saved_runs, qualified, read_index  # noqa: E402
from repro.tracking.reader import RunFetchError  # noqa: E402


class ReportError(Exception):
    """A one-line reason the report cannot be built; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def run(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    params_file = Path(args.params) if args.params else root / "params.yaml"
    report_dir = Path(args.report_dir) if args.report_dir else root / "report"
    try:  # ConfigError: one line naming the file, the key and what is allowed
        params = load_params(params_file)
    except ValueError as exc:
        raise ReportError(str(exc), code=2) from None
    experiments = list(params.experiments)
    try:
        runs = load_runs(experiments, root)  # every run file is checked before any read
    except MissingRunError as exc:
        raise ReportError(str(exc), code=2) from None
    except (ValueError, RunFetchError) as exc:  # names the experiment and the file
        raise ReportError(str(exc)) from None
    try:  # other profiles' runs, saved under results/: "<profile>/<experiment>"
        saved, notes = load_saved_runs(root, current_profile=params.profile)
    except (ValueError, RunFetchError) as exc:
        raise ReportError(str(exc)) from None
    for note in notes:
        print(f"report: warning: {note}", file=sys.stderr)
    try:
        for exp, record in runs.items():
            for note in check_metrics(exp, record, root / "metrics" / f"{exp}.json"):
                print(f"report: warning: {note}", file=sys.stderr)
    except ValueError as exc:  # a metrics file that another run wrote
        raise ReportError(str(exc)) from None
    # this profile's runs also answer to their qualified names ("<profile>/<experiment>")
    own = {qualified(params.profile, exp): run for exp, run in runs.items()}
    others = {name: e for name, e in read_index(root).items() if name != params.profile}
    paper = load_paper(params.paper)  # load_params has imported it: it exists
    try:
        summary = generate(
            {**runs, **saved, **own},
            report_dir / "claims.yaml",
            report_dir / "generated",
            benchmark=root / "metrics" / "benchmark.json",
            budget=root / "metrics" / "budget.json",
            experiments=experiments,
            paper=paper,
            root=root,
            saved=others,
        )
        pdf = None if args.no_pdf else build_pdf(report_dir, runs)
    except (ValueError, ReportBuildError) as exc:
        raise ReportError(str(exc)) from None
    counts = summary.counts()
    print(
        f"report: {counts['reproduced']} of {len(summary.results)} claims reproduced, "
        f"{counts['not reproduced']} not reproduced, {counts['not run']} not run "
        f"({len(runs)} runs, {len(saved)} saved by other profiles); "
        f"wrote {pdf or report_dir / 'generated'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Build the report; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project root (default: current directory)")
    parser.add_argument("--params", help="params file (default: <root>/params.yaml)")
    parser.add_argument("--report-dir", help="LaTeX sources (default: <root>/report)")
    parser.add_argument("--no-pdf", action="store_true", help="write report/generated/ only")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ReportError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())

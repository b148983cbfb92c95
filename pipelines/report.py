"""Stage ``report``: the reproducibility report PDF, built from the experiments' W&B runs.

Usage (from the repository root, as ``dvc.yaml`` runs it)::

    python pipelines/report.py            # -> report/build/report.pdf
    python pipelines/report.py --no-pdf   # only report/generated/ (macros, tables, figures)

For every experiment in ``params.yaml`` it reads the W&B run that
``models/<experiment>/run.json`` names (offline record files or the W&B API), checks the
run's evaluation summary against ``metrics/<experiment>.json``, tests the claims of
``report/claims.yaml``, writes ``report/generated/`` (see :mod:`repro.reporting`) and runs
latexmk. ``metrics/benchmark.json`` and ``metrics/budget.json`` are used when they exist.

Exit status: 0 done, 1 a run, metrics file or the LaTeX build failed, 2 bad input (no
params, an experiment without its run file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own package, installed or not

import yaml  # noqa: E402

from repro.reporting import (  # noqa: E402
    MissingRunError,
    experiments_from_params,
    generate,
    load_runs,
)
from repro.tracking.reader import Run, RunFetchError  # noqa: E402

LATEXMK = ["latexmk", "-pdf", "-g", "-interaction=nonstopmode", "-halt-on-error", "-outdir=build"]


class ReportError(Exception):
    """A one-line reason the report cannot be built; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def check_metrics(exp: str, run: Run, metrics_file: Path) -> list[str]:
    """Compare ``metrics/<exp>.json`` with the run's ``eval/...`` summary.

    Both are written by the evaluation stage from the same numbers, so a difference means
    the run is not the one that produced the metrics (a stale ``run.json``).

    Args:
        exp: the experiment name.
        run: its W&B run.
        metrics_file: ``metrics/<exp>.json`` (a missing file is skipped).

    Returns:
        Warnings (numbers the W&B run lacks); raises :class:`ReportError` on a mismatch.

    Example:
        >>> import tempfile, pathlib, json
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "m.json"
        >>> _ = f.write_text(json.dumps({"accuracy": {"full": 0.5}}))
        >>> run = Run("r1", None, None, {}, {"eval/accuracy_full": 0.5}, [], "finished", "")
        >>> check_metrics("dup-full", run, f)
        []
    """
    if not metrics_file.is_file():
        return []
    try:
        metrics = json.loads(metrics_file.read_text())
    except ValueError as exc:
        raise ReportError(f"{metrics_file}: not valid JSON ({exc})") from None
    notes = []
    for family, values in metrics.items():
        if not isinstance(values, Mapping):
            continue
        for label, value in values.items():
            key = f"eval/{family}_{label}"
            logged = run.summary.get(key)
            if not isinstance(value, int | float):
                continue
            if logged is None:
                notes.append(f"experiment {exp!r}: W&B run {run.id} has no {key} ({metrics_file})")
            elif not math.isclose(float(logged), float(value), rel_tol=1e-9, abs_tol=1e-12):
                raise ReportError(
                    f"experiment {exp!r}: {metrics_file} has {family}.{label}={value} but W&B "
                    f"run {run.id} has {key}={logged}: run.json names another run"
                )
    return notes


def build_pdf(report_dir: Path, runs: Mapping[str, Run]) -> Path:
    """Run latexmk in ``report_dir``; returns the PDF path or raises :class:`ReportError`."""
    if shutil.which("latexmk") is None:
        raise ReportError(
            "latexmk not found: install TeX Live (apt-get install latexmk texlive-latex-base "
            "texlive-latex-recommended lmodern), or pass --no-pdf"
        )
    env = dict(os.environ)
    # the same runs give the same PDF bytes: dates come from the newest run, not the clock
    stamps = [r.summary.get("_timestamp") for r in runs.values()]
    stamps = [int(s) for s in stamps if isinstance(s, int | float) and math.isfinite(s)]
    env.update(SOURCE_DATE_EPOCH=str(max(stamps, default=0)), FORCE_SOURCE_DATE="1")
    try:
        done = subprocess.run(
            [*LATEXMK, "report.tex"],
            cwd=report_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        raise ReportError("latexmk did not finish within 600 s") from None
    log = report_dir / "build" / "report.log"
    if done.returncode != 0:
        text = log.read_text(errors="replace") if log.is_file() else done.stdout + done.stderr
        lines = text.splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith("!")), None)
        if at is None:
            first = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        else:  # the error and where it happened ("l.21 \\IfRunDupLshFour")
            where = next((x.strip() for x in lines[at + 1 : at + 8] if x.startswith("l.")), "")
            first = f"{lines[at]} {where}".strip()
        raise ReportError(f"LaTeX failed: {first} (see {log})")
    if log.is_file():
        overfull = len(re.findall(r"^Overfull \\[hv]box", log.read_text(errors="replace"), re.M))
        if overfull:
            print(f"report: warning: {overfull} overfull boxes, see {log}", file=sys.stderr)
    return report_dir / "build" / "report.pdf"


def run(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    params_file = Path(args.params) if args.params else root / "params.yaml"
    report_dir = Path(args.report_dir) if args.report_dir else root / "report"
    claims_file = report_dir / "claims.yaml"
    try:
        params: Any = yaml.safe_load(params_file.read_text())
    except OSError as exc:
        raise ReportError(f"{params_file}: cannot read ({exc.strerror})", code=2) from None
    except yaml.YAMLError as exc:
        raise ReportError(
            f"{params_file}: not valid YAML ({exc})".splitlines()[0], code=2
        ) from None
    try:
        experiments = experiments_from_params(params if isinstance(params, Mapping) else {})
    except ValueError as exc:
        raise ReportError(f"{params_file}: {exc}", code=2) from None

    try:
        runs = load_runs(experiments, root)  # every run file is checked before any read
    except MissingRunError as exc:
        raise ReportError(str(exc), code=2) from None
    except (ValueError, RunFetchError) as exc:  # names the experiment and the file
        raise ReportError(str(exc)) from None
    for exp, record in runs.items():
        for note in check_metrics(exp, record, root / "metrics" / f"{exp}.json"):
            print(f"report: warning: {note}", file=sys.stderr)

    try:
        summary = generate(
            runs,
            claims_file,
            report_dir / "generated",
            benchmark=root / "metrics" / "benchmark.json",
            budget=root / "metrics" / "budget.json",
            experiments=experiments,
        )
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    counts = summary.counts()
    line = (
        f"{counts['reproduced']} of {len(summary.results)} claims reproduced, "
        f"{counts['not reproduced']} not reproduced, {counts['not run']} not run "
        f"({len(runs)} runs)"
    )
    if args.no_pdf:
        print(f"report: {line}; wrote {report_dir / 'generated'}")
        return 0
    pdf = build_pdf(report_dir, runs)
    print(f"report: {line}; wrote {pdf}")
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

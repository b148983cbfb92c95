"""Build the report PDF with latexmk, reproducibly, and say in one line why it failed.

The same runs give the same PDF bytes: the date LaTeX prints and embeds comes from the
newest run (``SOURCE_DATE_EPOCH``), not from the clock, so ``dvc repro`` sees no change
when nothing changed.

LaTeX runs in a scratch folder (``report/.latex-*``), and only a finished PDF is moved
over ``report/build/report.pdf`` (``os.replace``): a build that fails or is killed leaves
the previous PDF and no half-written auxiliary files behind, so the next build starts clean.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from repro.tracking.reader import Run

__all__ = ["LATEXMK", "ReportBuildError", "build_pdf"]

LATEXMK = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error"]
SCRATCH_PREFIX = ".latex-"  # scratch folders under report/; a killed build may leave one


class ReportBuildError(RuntimeError):
    """latexmk is missing, timed out or failed; the message is one line (error and place)."""


def build_pdf(report_dir: str | os.PathLike[str], runs: Mapping[str, Run]) -> Path:
    """Run latexmk on ``report_dir/report.tex``; returns ``report_dir/build/report.pdf``.

    Args:
        report_dir: the LaTeX sources (``report/``), with ``generated/`` written.
        runs: the runs the report shows; the newest ``_timestamp`` dates the PDF.

    Raises:
        ReportBuildError: latexmk is not installed, took over 600 s, or LaTeX failed (the
            first ``!`` error of the log and its ``l.<line>`` place).
    """
    report_dir = Path(report_dir)
    if shutil.which("latexmk") is None:
        raise ReportBuildError(
            "latexmk not found: install TeX Live (apt-get install latexmk texlive-latex-base "
            "texlive-latex-recommended lmodern), or pass --no-pdf"
        )
    env = dict(os.environ)
    # the same runs give the same PDF bytes: dates come from the newest run, not the clock
    stamps = [r.summary.get("_timestamp") for r in runs.values()]
    stamps = [int(s) for s in stamps if isinstance(s, int | float) and math.isfinite(s)]
    env.update(SOURCE_DATE_EPOCH=str(max(stamps, default=0)), FORCE_SOURCE_DATE="1")
    for stale in report_dir.glob(f"{SCRATCH_PREFIX}*"):  # left by a killed build
        shutil.rmtree(stale, ignore_errors=True)
    build = report_dir / "build"
    build.mkdir(exist_ok=True)
    # One fixed name (stale ones were removed above): pdfTeX puts the output path into the
    # PDF's /ID, so a random folder name would make the same runs give different bytes.
    scratch = report_dir / f"{SCRATCH_PREFIX}build"
    scratch.mkdir()
    try:
        try:
            done = subprocess.run(
                [*LATEXMK, f"-outdir={scratch.name}", "report.tex"],
                cwd=report_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            raise ReportBuildError("latexmk did not finish within 600 s") from None
        log = build / "report.log"
        if (scratch / "report.log").is_file():
            os.replace(scratch / "report.log", log)
        if done.returncode != 0 or not (scratch / "report.pdf").is_file():
            raise ReportBuildError(f"LaTeX failed: {_first_error(log, done)} (see {log})")
        os.replace(scratch / "report.pdf", build / "report.pdf")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if log.is_file():
        overfull = len(re.findall(r"^Overfull \\[hv]box", log.read_text(errors="replace"), re.M))
        if overfull:
            print(f"report: warning: {overfull} overfull boxes, see {log}", file=sys.stderr)
    return build / "report.pdf"


def _first_error(log: Path, done: subprocess.CompletedProcess) -> str:
    """The first ``!`` error of the log and its ``l.<line>`` place, else latexmk's last line."""
    text = log.read_text(errors="replace") if log.is_file() else done.stdout + done.stderr
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("!")), None)
    if at is None:
        return (done.stderr.strip().splitlines() or ["unknown error"])[-1]
    # the error and where it happened ("l.21 \\IfRunDupLshFour")
    where = next((x.strip() for x in lines[at + 1 : at + 8] if x.startswith("l.")), "")
    return f"{lines[at]} {where}".strip()

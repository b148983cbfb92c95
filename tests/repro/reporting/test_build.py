"""The LaTeX build: a failed or killed build never breaks the PDF or the next build.

Real latexmk and pdflatex (the set-up installs TeX Live) on a one-page document.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro.reporting.build import SCRATCH_PREFIX, ReportBuildError, build_pdf

GOOD = r"""\documentclass{article}
\begin{document}
Page one.
\end{document}
"""
# Page one is shipped (pdfTeX has opened and written part of the PDF), then TeX loops.
HANGS = r"""\documentclass{article}
\begin{document}
Page one.
\newpage
Page two.
\def\x{\x}\x
\end{document}
"""
BROKEN = r"""\documentclass{article}
\begin{document}
Page one \undefinedmacro.
\end{document}
"""


def _report(tmp_path: Path, text: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "report.tex").write_text(text)
    return tmp_path


def test_a_failed_build_keeps_the_previous_pdf_and_names_the_error(tmp_path):
    report = _report(tmp_path / "report", GOOD)
    pdf = build_pdf(report, {})
    good_bytes = pdf.read_bytes()
    assert good_bytes.startswith(b"%PDF")

    (report / "report.tex").write_text(BROKEN)
    with pytest.raises(ReportBuildError) as err:
        build_pdf(report, {})
    message = str(err.value)
    assert "\n" not in message
    assert "Undefined control sequence" in message and "l.3" in message
    assert pdf.read_bytes() == good_bytes  # the last good PDF is still there
    assert not list(report.glob(f"{SCRATCH_PREFIX}*"))


def test_a_killed_build_leaves_the_pdf_whole_and_the_next_build_works(tmp_path):
    report = _report(tmp_path / "report", GOOD)
    pdf = build_pdf(report, {})
    good_bytes = pdf.read_bytes()

    (report / "report.tex").write_text(HANGS)
    code = (
        f"import sys; from repro.reporting.build import build_pdf; build_pdf({str(report)!r}, {{}})"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], start_new_session=True, cwd=Path(__file__).parents[3]
    )
    deadline = time.monotonic() + 60
    # wait until pdflatex is running inside the scratch folder, then kill the whole tree
    while time.monotonic() < deadline and not list(report.glob(f"{SCRATCH_PREFIX}*/*.log")):
        time.sleep(0.2)
    time.sleep(1.5)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert pdf.read_bytes() == good_bytes  # never a truncated PDF in place

    (report / "report.tex").write_text(GOOD)
    assert build_pdf(report, {}).read_bytes().startswith(b"%PDF")
    assert not list(report.glob(f"{SCRATCH_PREFIX}*")), "the killed build's scratch remains"

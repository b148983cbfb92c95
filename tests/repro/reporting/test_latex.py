"""Escaping, number formats and macro names of the generated LaTeX."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from repro.reporting import Macros, format_number, latex_escape, macro_name


@pytest.mark.parametrize(
    ("value", "digits", "signed", "text"),
    [
        (99.123, 1, False, "99.1"),
        (0.05, 3, False, "0.050"),
        (None, 1, False, "---"),
        (-0.0004, 2, False, "0.00"),
        (0.0123, 3, True, "+0.012"),
        (-1.5, 1, True, "$-$1.5"),
        (float("nan"), 1, False, "NaN"),
    ],
)
def test_format_number(value: float | None, digits: int, signed: bool, text: str) -> None:
    assert format_number(value, digits, signed=signed) == text


def test_macro_names_and_definitions() -> None:
    assert macro_name("acc", "lsh4", "eval", "lsh8") == "AccLshFourEvalLshEight"
    assert macro_name("dup-lsh2") == "DupLshTwo"
    assert macro_name("enwik8-12l") == "EnwikEightTwelveL"
    macros = Macros()
    macros.add("Good", "1")
    with pytest.raises(ValueError, match="defined twice"):
        macros.add("Good", "2")
    with pytest.raises(ValueError, match="only letters"):
        macros.add("Acc4", "1")
    with pytest.raises(ValueError, match="hold no letters"):
        macro_name("--")


@pytest.mark.skipif(
    shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
    reason="needs pdflatex and pdftotext",
)
def test_latex_escape_prints_the_original_text(tmp_path: Path) -> None:
    """The escaped text, typeset by LaTeX and read back, is the text we started from."""
    text = r"a_b 50% & $5 #1 {x} ~ ^ back\slash"
    (tmp_path / "t.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{lmodern}"
        f"\\newcommand{{\\Sample}}{{{latex_escape(text)}}}"
        "\\begin{document}\\pagestyle{empty}START \\Sample{} END\\end{document}\n"
    )
    subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=60,
    )
    out = subprocess.run(
        ["pdftotext", "t.pdf", "-"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    shown = re.search(r"START (.*) END", out, re.S)
    assert shown is not None and shown.group(1).strip() == text

"""Checks of a generated report folder, shared by the kit's tests (on the fixture paper's
claims file) and a paper's own (on its claims file)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

from repro.reporting import generate
from repro.tracking.reader import Run

#: renders the claims file's table entries as a comment (the kit must not care which)
ANY_PAPER = SimpleNamespace(name="any", report_tables=lambda spec, runs, macros: "% table\n")


def macro_defs(out: Path) -> dict[str, str]:
    """``{name: body}`` of the one-line ``\\newcommand`` definitions of ``out/macros.tex``."""
    return dict(
        re.findall(r"\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}", (out / "macros.tex").read_text())
    )


def generate_and_check(
    runs: Mapping[str, Run], claims: Path, out: Path, experiments: list[str]
) -> tuple[dict[str, int], str, dict[str, str]]:
    """Generate ``out`` with :data:`ANY_PAPER` and check what every generated folder holds:
    macro names unique and all letters, the count of reproduced claims, every macro the claims
    and runs tables use defined, the training figure, the benchmark and budget sections not
    run. Returns the verdict counts, the text of macros.tex and :func:`macro_defs`."""
    summary = generate(runs, claims, out, experiments=experiments, paper=ANY_PAPER)
    macros = (out / "macros.tex").read_text()
    names = re.findall(r"\\newcommand\{\\([^}]*)\}", macros)
    assert len(names) == len(set(names)) and all(re.fullmatch(r"[A-Za-z]+", n) for n in names)
    defs = macro_defs(out)
    counts = summary.counts()
    assert defs["ClaimsReproduced"] == str(counts["reproduced"])
    # every macro a generated table uses is defined
    for name in ("claims.tex", "runs.tex"):
        used = set(re.findall(r"\\([A-Z][A-Za-z]+)", (out / name).read_text()))
        assert used <= set(names), name
    assert (out / "fig-training.pdf").read_bytes().startswith(b"%PDF")
    assert "Not run" in (out / "benchmark.tex").read_text()
    assert "Not run" in (out / "budget.tex").read_text()
    return counts, macros, defs

"""The generated folder: macros, the kit's tables and figures, and a paper's tables through
its ``report_tables`` plug-in (a tiny fake paper, and the fixture paper's ``modes`` table;
a reproduced paper's own tables are tested beside its other tests)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from generated_checks import ANY_PAPER, generate_and_check, macro_defs
from minipaper.paper import PAPER as MINIPAPER
from reporting_runs import CLAIMS, RUNS

from repro.reporting import Macros, format_number, generate, latex_escape, macro_name, run_metric
from repro.tracking.reader import Run


def tiny_report_tables(spec: Mapping[str, Any], runs: Mapping[str, Run], macros: Macros) -> str:
    """A fake paper's plug-in: one row per ``rows`` entry, our number of ``metric``."""
    if spec["type"] != "tiny":
        raise ValueError(f"type={spec['type']!r} is not allowed (this paper's types: tiny)")
    lines = [r"\begin{tabular}{lr}"]
    for row in spec["rows"]:
        value, _ = run_metric(runs, row["experiment"], spec["metric"])
        stem = macro_name("tiny", row["experiment"])
        macros.add(stem, format_number(None if value is None else 100 * value, 1))
        lines.append(rf"{latex_escape(row['experiment'])} & \{stem} \\")
    return "\n".join([*lines, r"\end{tabular}"]) + "\n"


TINY_PAPER = SimpleNamespace(name="tiny", report_tables=tiny_report_tables)


def test_generate_writes_macros_tables_and_figures(runs: dict[str, Run], tmp_path: Path) -> None:
    counts, macros, defs = generate_and_check(runs, CLAIMS, tmp_path, list(RUNS))
    assert defs["CopyFullRunId"] == latex_escape(runs["copy-full"].id)
    assert defs["CopyFullFinalLoss"] == f"{3 / 101:.3f}"
    assert defs["ClaimSharedReadOutOurs"] == "---"
    assert defs["ClaimSharedReadOutVerdict"] == "not run"
    assert r"\newcommand{\IfRunCopyFull}[2]{#1}" in macros
    assert r"\newcommand{\CaseClaimFullEvalREight}[3]{#2}" in macros
    assert counts["reproduced"] >= 4
    assert (tmp_path / "modes.tex").read_text() == "% table\n"  # the plug-in's text, as is
    # the other reproductions' numbers and names, from `others` and `sources`
    assert defs["ClaimRFourEvalFourOther"] == r"99.77\,\%"
    assert defs["ClaimFancyOther"] == "0.11~nats"
    assert defs["SourceOther"] == "Another reproduction (2024)"
    assert defs["PaperCopyLength"] == "1024"  # the claims file's facts


def test_generate_is_deterministic(runs: dict[str, Run], tmp_path: Path) -> None:
    generate(runs, CLAIMS, tmp_path / "a", experiments=list(RUNS), paper=ANY_PAPER)
    generate(runs, CLAIMS, tmp_path / "b", experiments=list(RUNS), paper=ANY_PAPER)
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_the_fixture_papers_own_table_through_its_plug_in(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    """The claims file's ``modes`` entry through minipaper's ``report_tables``: one macro
    per cell, a dash for the crashed run's cells and for a mode it did not evaluate."""
    generate(runs, CLAIMS, tmp_path, experiments=list(RUNS), paper=MINIPAPER)
    defs = macro_defs(tmp_path)
    assert defs["ModesCopyRFourREight"] == "99.5" and defs["ModesCopyFullFull"] == "100.0"
    assert defs["ModesCopyROneROne"] == "70.0"
    table = (tmp_path / "modes.tex").read_text()
    assert r"copy-r4 & \ModesCopyRFourFull & \ModesCopyRFourREight" in table
    assert set(re.findall(r"\\(Modes[A-Za-z]+)", table)) <= set(defs)


# ----------------------------------------------------------------------------- the plug-in


def _claims(tmp_path: Path, tables: str) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(
        "claims:\n  - {id: a, title: t, statement: s, where: w, paper: 1, "
        "experiments: [copy-full], metric: eval/accuracy_full}\n" + tables
    )
    return path


TINY = (
    "tables:\n  - {type: tiny, name: my-table, metric: eval/accuracy_r8,\n"
    "     rows: [{experiment: copy-r4}, {experiment: copy-r16}]}\n"
)


def test_the_kit_renders_a_papers_table_through_its_plug_in(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    out = tmp_path / "generated"
    summary = generate(
        runs, _claims(tmp_path, TINY), out, experiments=["copy-full"], paper=TINY_PAPER
    )
    table = (out / "my-table.tex").read_text()  # the entry's name names the file
    assert table.splitlines() == [
        r"\begin{tabular}{lr}",
        r"copy-r4 & \TinyCopyRFour \\",
        r"copy-r16 & \TinyCopyRSixteen \\",
        r"\end{tabular}",
    ]
    assert out / "my-table.tex" in summary.files
    defs = macro_defs(out)
    # the macros the plug-in defined land in macros.tex: 0.995 x 100; no run -> a dash
    assert defs["TinyCopyRFour"] == "99.5" and defs["TinyCopyRSixteen"] == "---"
    # the experiments a table names get their switches and numbers, run or not
    macros = (out / "macros.tex").read_text()
    assert r"\newcommand{\IfRunCopyRFour}[2]{#1}" in macros
    assert r"\newcommand{\IfRunCopyRSixteen}[2]{#2}" in macros
    # ... but the runs table lists only the experiments of this profile
    assert "copy-r4" not in (out / "runs.tex").read_text()


@pytest.mark.parametrize(
    ("paper", "tables", "message"),
    [
        # a paper without the plug-in cannot render a table the claims file asks for
        (
            SimpleNamespace(name="bare"),
            TINY,
            r"tables\[0\] \(type 'tiny'\): paper 'bare' has no report_tables plug-in",
        ),
        # the plug-in's own one-line refusal, located in the claims file
        (
            TINY_PAPER,
            "tables:\n  - {type: grid}\n",
            r"claims\.yaml: tables\[0\] \(type 'grid'\): type='grid' is not allowed",
        ),
        (
            SimpleNamespace(name="odd", report_tables=lambda spec, runs, macros: None),
            TINY,
            r"report_tables returned NoneType, not LaTeX text",
        ),
    ],
)
def test_a_table_the_paper_cannot_render_is_a_one_line_error(
    runs: dict[str, Run], tmp_path: Path, paper: Any, tables: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        generate(runs, _claims(tmp_path, tables), tmp_path / "out", paper=paper)
    assert "\n" not in str(info.value)


def test_without_a_paper_the_table_says_it_was_not_generated(tmp_path: Path) -> None:
    generate({}, _claims(tmp_path, TINY), tmp_path / "out")
    assert "not generated" in (tmp_path / "out" / "my-table.tex").read_text()

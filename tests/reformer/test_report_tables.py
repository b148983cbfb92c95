"""The Reformer's Table 2 in the report and the README, through the paper's plug-ins.

The runs are real offline W&B runs (``tests/repro/reporting/reporting_runs.py``); the
numbers below are worked out by hand from its ``RUNS``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from reporting_runs import CLAIMS, REPO, RUNS, write_project

from reformer.report_tables import Table2, readme_tables, report_tables
from repro.reporting import generate, load_runs
from repro.reporting.readme import END, START, render_results
from repro.tracking.reader import Run

#: the plug-ins as reformer/paper.py's PAPER carries them
PAPER = SimpleNamespace(name="reformer", report_tables=report_tables, readme_tables=readme_tables)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = write_project(tmp_path_factory.mktemp("project"))
    return load_runs(list(RUNS), root=root)


def test_table2_cells_are_macros_of_our_the_papers_and_fastais_numbers(
    runs: dict[str, Run], tmp_path: Path
) -> None:
    generate(runs, CLAIMS, tmp_path, experiments=list(RUNS), paper=PAPER)
    macros = (tmp_path / "macros.tex").read_text()
    names = re.findall(r"\\newcommand\{\\([^}]*)\}", macros)
    assert len(names) == len(set(names)) and all(re.fullmatch(r"[A-Za-z]+", n) for n in names)
    defs = dict(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}", macros))
    assert defs["AccLshFourEvalLshFour"] == "99.1"
    assert defs["AccFullEvalLshEight"] == "62.0"
    assert defs["AccLshTwoEvalLshTwo"] == "---"  # crashed before evaluation: no number
    assert (
        defs["PaperAccFullEvalLshEight"] == "94.8" and defs["FastaiAccFullEvalLshEight"] == "1.37"
    )
    # every macro the generated table uses is defined
    table = (tmp_path / "table2.tex").read_text()
    used = set(re.findall(r"\\([A-Z][A-Za-z]+)", table))
    assert used - {"Paper", "Fastai"} <= set(names)
    # per row: the paper's numbers, fast.ai's (its row label from the claims file), ours
    assert r"LSH-4 & paper & \PaperAccLshFourEvalFull" in table
    assert r" & fast.ai & \FastaiAccLshFourEvalFull" in table
    assert r" & ours & \textbf{\AccLshFourEvalFull}" in table


def test_grid_shows_our_numbers_next_to_the_papers(tmp_path: Path) -> None:
    (tmp_path / "report").mkdir()
    shutil.copy(REPO / "report" / "claims.yaml", tmp_path / "report" / "claims.yaml")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "README.md").write_text(f"# x\n\n{START}\nold\n{END}\n\ntail\n")
    acc = {"full": 0.0123, "lsh8": 0.99951, "lsh4": 1.0, "lsh2": 0.9, "lsh1": 0.5}
    (tmp_path / "metrics" / "dup-lsh4.json").write_text(json.dumps({"accuracy": acc}))
    text = render_results(tmp_path, PAPER)
    rows = [line for line in text.splitlines() if line.startswith("|")]
    # the LSH-4 block is the second training row: paper, fast.ai, ours
    lsh4 = rows[2 + 3 : 2 + 6]
    assert lsh4[0].startswith("| LSH-4 | paper | 0.8 | 100 | 99.9 | 99.4 | 91.9")
    assert "46.54" in lsh4[1]
    assert lsh4[2] == "|  | **ours** | **1.2** | **100.0** | **100.0** | **90.0** | **50.0** |"
    # rows with no metrics file are shown as not run, never as a number
    full_ours = rows[2 + 2]
    assert full_ours.count("—") == 5
    assert "1 of 4 rows run" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "table3"}, r"type='table3' is not allowed \(this paper's table types: table2\)"),
        ({"paper": [[1, 2]]}, r"paper=\[2\] is not allowed \(4 rows of 5 numbers\)"),
        (
            {"others": {"fastai": {"label": "fast.ai", "values": [[1] * 5] * 3}}},
            r"others\.fastai\.values=\[5, 5, 5\] is not allowed \(4 rows of 5 numbers\)",
        ),
        (
            {"others": {"fastai": [[1] * 5] * 4}},
            r"others\.fastai=\[\[1, 1, .*\.\.\. is not allowed \(\{label: <row label>",
        ),
        ({"rows": [{"label": "x"}]}, r"rows=\[\{'label': 'x'\}\] is not allowed"),
    ],
)
def test_a_bad_table2_entry_is_a_one_line_error_naming_the_claims_file(
    tmp_path: Path, change: dict, message: str
) -> None:
    raw = yaml.safe_load(CLAIMS.read_text())
    raw["tables"] = [{**raw["tables"][0], **change}]
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=message) as info:
        generate({}, path, tmp_path / "out", paper=PAPER)
    assert "\n" not in str(info.value) and f"{path}: tables[0]" in str(info.value)


def test_table2_from_its_entry_in_the_claims_file() -> None:
    spec = yaml.safe_load(CLAIMS.read_text())["tables"][0]
    table = Table2.from_spec(spec)
    assert [r["experiment"] for r in table.rows] == ["dup-full", "dup-lsh4", "dup-lsh2", "dup-lsh1"]
    assert table.paper[0] == (100, 94.8, 92.5, 76.9, 52.5)
    assert table.others["fastai"][0] == "fast.ai"
    assert table.others["fastai"][1][1] == (46.54, 99.71, 99.77, 93.05, 77.62)
    assert (table.scale, table.digits, table.where) == (100.0, 1, "Table 2")


def test_the_paper_plugs_its_tables_in() -> None:
    """reformer/paper.py hands these plug-ins to the kit (skipped until it exists)."""
    paper = pytest.importorskip("reformer.paper").PAPER
    assert paper.report_tables is report_tables and paper.readme_tables is readme_tables

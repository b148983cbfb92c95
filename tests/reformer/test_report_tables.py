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
from reformer_runs import CLAIMS, REPO, RUNS, write_project

from reformer.report_charts import HEIGHT, WIDTH
from reformer.report_tables import Table2, readme_tables, report_tables
from repro.reporting import Macros, generate, load_runs
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
        (
            {"type": "table3"},
            r"type='table3' is not allowed \(this paper's table types: table2, grid, seeds, "
            r"chart\)",
        ),
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


# ------------------------------------------------------- grids, seed spreads and charts


def _run(summary: dict) -> Run:
    return Run("id", None, None, {}, summary, [], "finished", "")


def _defs(macros: Macros) -> dict[str, str]:
    return dict(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}(?:\[\d\])?\{(.*)\}", macros.render()))


def test_a_grid_is_one_macro_per_cell_and_a_dash_for_what_did_not_run() -> None:
    spec = {
        "type": "grid",
        "macro": "Mask",
        "corner": "Trained with",
        "rows": [
            {"label": "LSH-4", "name": "lsh4", "experiment": "dup-lsh4"},
            {"label": "LSH-1", "name": "lsh1", "experiment": "dup-lsh1"},
        ],
        "columns": [
            {
                "label": "acc.",
                "name": "acc",
                "metric": "eval/accuracy_full-noself",
                "group": "no mask",
            },
            {
                "label": "copy",
                "name": "copy",
                "metric": "eval/copy_rate_full-noself",
                "group": "no mask",
            },
        ],
    }
    runs = {
        "dup-lsh4": _run({"eval/accuracy_full-noself": 0.0123, "eval/copy_rate_full-noself": 0.9})
    }
    macros = Macros()
    tex = report_tables(spec, runs, macros)
    defs = _defs(macros)
    assert defs["MaskLshFourAcc"] == "1.2" and defs["MaskLshFourCopy"] == "90.0"
    assert defs["MaskLshOneAcc"] == "---"  # no run: never a number
    assert r"\multicolumn{2}{c}{no mask}" in tex and r"\cmidrule(lr){2-3}" in tex
    assert r"LSH-4 & \MaskLshFourAcc & \MaskLshFourCopy \\" in tex
    assert readme_tables(spec, {}) == ""  # grids stay out of the README


def test_seeds_count_the_runs_that_reach_the_threshold_and_give_the_spread() -> None:
    spec = {
        "type": "seeds",
        "threshold": 99,
        "groups": [
            {
                "label": "Full",
                "name": "full",
                "metric": "eval/accuracy_full",
                "experiments": ["f0", "f1", "f2", "f3", "f4"],
            },
            {
                "label": "LSH-4",
                "name": "lsh4",
                "metric": "eval/accuracy_lsh4",
                "experiments": ["l0", "l1"],
            },
            {
                "label": "LSH-1",
                "name": "lsh1",
                "metric": "eval/accuracy_lsh1",
                "experiments": ["n0"],
            },
            {
                "label": "LSH-2",
                "name": "lsh2",
                "metric": "eval/accuracy_lsh2",
                "experiments": ["m0", "m1"],
            },
            {
                "label": "Full, LSH-1",
                "name": "spread",
                "metric": "eval/accuracy_full",
                "experiments": ["f0", "f1"],
                "count": False,
            },
        ],
    }
    acc = {"f0": 1.0, "f1": 0.995, "f2": 0.05, "f3": 0.9899}  # f4 did not run
    runs = {e: _run({"eval/accuracy_full": v}) for e, v in acc.items()}
    runs |= {"l0": _run({"eval/accuracy_lsh4": 0.999}), "l1": _run({"eval/accuracy_lsh4": 1.0})}
    runs |= {"m0": _run({"eval/accuracy_lsh2": 1.0}), "m1": _run({"eval/accuracy_lsh2": 0.3})}
    macros = Macros()
    tex = report_tables(spec, runs, macros)
    defs = _defs(macros)
    # by hand: 4 runs of 5; 100 and 99.5 reach 99, 5.0 and 98.99 do not
    assert (defs["SeedsFullRuns"], defs["SeedsFullListed"], defs["SeedsFullConverged"]) == (
        "4",
        "5",
        "2",
    )
    assert (defs["SeedsFullMin"], defs["SeedsFullMedian"], defs["SeedsFullMax"]) == (
        "5.0",
        "99.2",
        "100.0",
    )
    # all ran and converged: #1; all ran, one did not converge: #2; a seed missing: #3
    assert defs["CaseSeedsLshFour"] == "#1" and defs["CaseSeedsLshTwo"] == "#2"
    assert defs["CaseSeedsFull"] == "#3" and defs["SeedsLshTwoConverged"] == "1"
    assert defs["CaseSeedsLshOne"] == "#3" and defs["SeedsLshOneMin"] == "---"
    assert defs["SeedsThreshold"] == "99.0"
    # a spread-only row: min and max, no count
    assert (defs["SeedsSpreadConverged"], defs["SeedsSpreadMin"]) == ("---", "99.5")
    assert r"\SeedsFullRuns{} of \SeedsFullListed" in tex


def test_a_chart_draws_the_points_that_exist_where_the_axes_put_them() -> None:
    spec = {
        "type": "chart",
        "x": ["LSH-1", "LSH-2"],
        "x_label": "rounds",
        "y_label": "accuracy (%)",
        "series": [
            {"label": "paper", "values": [52.5, 76.9]},
            {
                "label": "ours",
                "experiment": "dup-full",
                "metrics": ["eval/accuracy_lsh1", "eval/accuracy_lsh2"],
            },
            {"label": "other", "line": False, "points": [["dup-x", "eval/accuracy_lsh1"], None]},
        ],
    }
    runs = {"dup-full": _run({"eval/accuracy_lsh1": 0.5})}  # no lsh2 key
    tex = report_tables(spec, runs, Macros())
    # x: categories at (i + 1/2) / n of the width; y: the value's share of 0..100
    x0, x1 = WIDTH * 0.25, WIDTH * 0.75
    paper = (HEIGHT * 0.525, HEIGHT * 0.769)
    segment = rf"\qbezier({x0:.2f},{paper[0]:.2f})"
    assert segment in tex and f"({x1:.2f},{paper[1]:.2f})" in tex
    assert rf"\put({x0:.2f},{HEIGHT * 0.5:.2f}){{\makebox(0,0){{$\circ$}}}}" in tex
    assert tex.count(r"\qbezier") == 1  # ours has one point; "other" none
    assert "other (not run)" in tex and tex.startswith(r"\setlength{\unitlength}{1mm}")
    assert tex.count(r"\begin{picture}") == tex.count(r"\end{picture}") == 1


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "grid", "rows": [], "columns": []}, r"rows=\[\] is not allowed"),
        (
            {
                "type": "grid",
                "macro": "A1",
                "rows": [{"label": "a", "name": "a", "experiment": "e"}],
                "columns": [{"label": "c", "name": "c", "metric": "m"}],
            },
            r"macro='A1' is not allowed \(letters only",
        ),
        (
            {
                "type": "seeds",
                "groups": [{"label": "a", "name": "a", "metric": "m", "experiments": ["e"]}],
            },
            r"threshold=None is not allowed",
        ),
        (
            {
                "type": "seeds",
                "threshold": 99,
                "groups": [{"label": "a", "name": "a", "metric": "m", "experiments": []}],
            },
            r"groups\[0\]\.experiments=\[\] is not allowed",
        ),
        (
            {"type": "chart", "x": ["a", "b"], "series": [{"label": "s", "values": [1]}]},
            r"series\[0\]\.values=\[1\] is not allowed \(a list of 2 numbers",
        ),
        (
            {"type": "chart", "x": ["a"], "series": [{"label": "s", "metrics": ["k"]}]},
            r"series\[0\]\.metrics=\['k'\] is not allowed \(a list of 1 summary keys, with exp",
        ),
        (
            {
                "type": "chart",
                "x": ["a"],
                "y_range": [1, 0],
                "series": [{"label": "s", "values": [1]}],
            },
            r"y_range=\[1, 0\] is not allowed",
        ),
    ],
)
def test_bad_grid_seeds_and_chart_entries_are_one_line_errors(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        report_tables(spec, {}, Macros())
    assert "\n" not in str(info.value)


def test_every_table_of_the_claims_file_renders_with_no_runs() -> None:
    """The committed entries are valid and every cell is a dash before anything ran."""
    macros = Macros()
    for spec in yaml.safe_load(CLAIMS.read_text())["tables"]:
        tex = report_tables(spec, {}, macros)
        assert tex.strip(), spec["name"]

"""The README's results section is generated from metrics files, and staleness is caught.

The project here is the fixture paper's (``tests/repro/minipaper``: its claims file, with
one ``modes`` table, and its params); the project's own README against its committed
metrics is a check of the repository's tests, not of the kit's.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pipeline_helpers import MINIPAPER, minipaper_env

from repro.reporting.readme import END, START, read_section, render_results, update_readme

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "report").mkdir()
    shutil.copy(MINIPAPER / "claims.yaml", tmp_path / "report" / "claims.yaml")
    params = yaml.safe_load((MINIPAPER / "params.yaml").read_text())  # paper: minipaper
    params["profile"] = "default"  # the committed profile: the one the README shows
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "README.md").write_text(f"# x\n\n{START}\nold\n{END}\n\ntail\n")
    return tmp_path


def _write_metrics(root: Path, exp: str, **acc: float) -> None:
    (root / "metrics" / f"{exp}.json").write_text(json.dumps({"accuracy": acc}))


def test_benchmark_headline_rows_come_from_the_targets(project: Path) -> None:
    targets = [
        {
            "name": "peers",
            "target": "faster than peers",
            "required": 1.5,
            "measured": 1.234,
            "met": False,
        },
        {
            "name": "longest",
            "target": "long step",
            "required": 1000000,
            "measured": 1048576,
            "met": True,
        },
        {"name": "unknown", "target": "not measured", "required": 2.0, "met": None},
        {
            "name": "bounded",
            "target": "every cell",
            "required": 1.5,
            "measured": 1.6,
            "met": False,
            "note": "1 cell(s) unmeasured: baseline over the time cap",
        },
    ]
    (project / "metrics" / "benchmark.json").write_text(json.dumps({"targets": targets}))
    rows = [r for r in render_results(project).splitlines() if r.startswith("| ")]
    assert "| faster than peers | 1.23 | 1.50 | no |" in rows
    assert "| long step | 1,048,576 | 1,000,000 | yes |" in rows
    assert "| not measured | — | 2.00 | — |" in rows
    # a cell whose baseline was over the time cap explains an unmet target above threshold
    assert (
        "| every cell | 1.60 (1 cell(s) unmeasured: baseline over the time cap) | 1.50 | no |"
        in rows
    )


def test_the_papers_tables_come_through_its_plug_in(project: Path) -> None:
    """Each ``tables:`` entry is the paper's Markdown, in order; a paper without the plug-in
    (or no paper) shows none, and an empty result leaves a table out."""
    _write_metrics(project, "copy-full", full=1.0)
    seen = []

    def readme_tables(spec, metrics):
        seen.append((spec["type"], sorted(metrics)))
        return f"TABLE {spec['name']}"

    text = render_results(project, SimpleNamespace(readme_tables=readme_tables))
    assert text == "TABLE modes" and seen == [("modes", ["copy-full"])]
    assert render_results(project, SimpleNamespace(readme_tables=lambda s, m: "")) == ""
    assert render_results(project, SimpleNamespace(name="bare")) == ""
    assert render_results(project) == ""

    def refuse(spec, metrics):
        raise ValueError("rows=[] is not allowed (a list of rows)")

    with pytest.raises(ValueError, match=r"claims\.yaml: tables\[0\] \(type 'modes'\): rows="):
        render_results(project, SimpleNamespace(readme_tables=refuse))


def test_update_readme_replaces_only_the_section(project: Path) -> None:
    readme = project / "README.md"
    assert update_readme(readme, "NEW") is True
    assert readme.read_text() == f"# x\n\n{START}\nNEW\n{END}\n\ntail\n"
    assert update_readme(readme, "NEW") is False
    assert read_section(readme) == "NEW"


def test_missing_markers_is_a_one_line_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match=r"README\.md: needs the markers") as err:
        update_readme(readme, "x")
    assert "\n" not in str(err.value)


def test_check_mode_detects_a_stale_readme(project: Path) -> None:
    script = [sys.executable, str(ROOT / "pipelines" / "results.py"), "--root", str(project)]
    env = minipaper_env()

    def results(*args: str) -> int:
        return subprocess.run([*script, *args], capture_output=True, env=env).returncode

    assert results("--check") == 1
    assert results() == 0
    assert results("--check") == 0
    _write_metrics(project, "copy-full", full=1.0)  # new results make the README stale again
    assert results("--check") == 1
    assert results() == 0
    assert "| copy-full | 100.0 |" in (project / "README.md").read_text()  # the paper's table

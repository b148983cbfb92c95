"""Other profiles' runs saved under results/ and read back by the report.

The runs are real offline W&B runs (:mod:`reporting_runs`); saving runs the real ``dvc add``
in a real git + DVC repository, and a folder that is not pulled is restored by the real
``dvc checkout``. Expected numbers are the ones :data:`reporting_runs.RUNS` wrote and the
metrics files hold, not what the code under test returns.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pipeline_helpers import git_env
from reporting_runs import CLAIMS, RUNS

from repro.reporting.claims import Claim
from repro.reporting.readme import render_results
from repro.reporting.saved_runs import (
    load_saved_metrics,
    load_saved_runs,
    read_index,
    save_profile,
)
from repro.reporting.tables import saved_runs_table
from repro.reporting.verdicts import evaluate_claim

EVALUATED = [exp for exp, acc in RUNS.items() if acc is not None]


def _checkout(project: Path, dest: Path, profile: str) -> Path:
    """A copy of the fixture project that ran ``profile``."""
    shutil.copytree(project, dest, ignore=shutil.ignore_patterns("writer.py"))
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["profile"] = profile
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def _dvc_repo(dest: Path) -> Path:
    dest.mkdir()
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=dest, check=True, env=git_env())
    return dest


@pytest.fixture(scope="module")
def saved(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project into which the 'wide' profile's runs were saved from a checkout."""
    base = tmp_path_factory.mktemp("saved")
    source = _checkout(project, base / "cluster", "wide")
    dest = _dvc_repo(base / "team")
    save_profile(source, dest)
    return dest


def test_save_copies_the_evaluated_runs_without_weights(saved: Path):
    entry = read_index(saved)["wide"]
    assert list(entry.experiments) == EVALUATED
    assert entry.not_run == ("copy-r2",)  # it crashed before evaluation: no metrics file
    assert entry.saved_at.startswith("20") and not entry.dirty
    home = saved / "results" / "wide"
    assert not list(home.rglob("*.pt"))
    metrics = json.loads((saved / "results" / "wide.metrics.json").read_text())  # in git
    assert sorted(metrics) == sorted(EVALUATED)
    for exp in EVALUATED:
        assert (home / "models" / exp / "run.json").is_file()
        assert metrics[exp]["accuracy"] == RUNS[exp]
    # a DVC output, tracked by a pointer file and ignored by git
    pointer = yaml.safe_load((saved / "results" / "wide.dvc").read_text())
    assert pointer["outs"][0]["path"] == "wide"
    assert "/wide" in (saved / "results" / ".gitignore").read_text().split()


def test_the_report_reads_saved_runs_by_profile_and_experiment(saved: Path):
    runs, warnings = load_saved_runs(saved, current_profile="default")
    assert warnings == []
    assert sorted(runs) == sorted(f"wide/{exp}" for exp in EVALUATED)
    for exp in EVALUATED:  # the numbers evaluation wrote, through the W&B record files
        summary = runs[f"wide/{exp}"].summary
        assert {k: summary[f"eval/accuracy_{k}"] for k in RUNS[exp]} == RUNS[exp]
        assert runs[f"wide/{exp}"].history  # the training segment came along


def test_the_current_profile_is_not_read_from_its_saved_copy(saved: Path):
    runs, warnings = load_saved_runs(saved, current_profile="wide")
    assert runs == {} and warnings == []
    assert load_saved_metrics(saved, current_profile="wide") == {}


def test_the_readme_tables_see_the_saved_metrics_even_unpulled(saved: Path, tmp_path: Path):
    clone = tmp_path / "clone"  # the files git carries: no results/wide/ folder
    shutil.copytree(saved, clone, ignore=shutil.ignore_patterns("wide", ".dvc", ".git"))
    claims = yaml.safe_load(CLAIMS.read_text())
    claims["tables"] = [{"type": "seen", "rows": ["wide/copy-r4", "copy-r4"]}]
    (clone / "report").mkdir()
    (clone / "report" / "claims.yaml").write_text(yaml.safe_dump(claims))
    (clone / "metrics").mkdir()
    (clone / "metrics" / "copy-r4.json").write_text(json.dumps({"accuracy": {"r8": 0.5}}))

    def readme_tables(spec, metrics):  # what a paper's plug-in is handed
        return "; ".join(f"{e}={metrics[e]['accuracy']['r8']}" for e in spec["rows"])

    paper = SimpleNamespace(readme_tables=readme_tables)
    assert render_results(clone, paper) == f"wide/copy-r4={RUNS['copy-r4']['r8']}; copy-r4=0.5"
    # as the current profile, <profile>/<exp> is the profile's own metrics file
    assert render_results(clone, paper, profile="wide") == "wide/copy-r4=0.5; copy-r4=0.5"


def test_a_folder_not_pulled_is_a_warning_then_checkout_restores_it(saved: Path):
    home = saved / "results" / "wide"
    shutil.rmtree(home)
    runs, warnings = load_saved_runs(saved, current_profile="default")
    assert runs == {}
    assert len(warnings) == 1 and "dvc pull results/wide.dvc" in warnings[0]
    table = saved_runs_table(read_index(saved), runs)
    assert "wide & not pulled" in table
    subprocess.run(
        [sys.executable, "-m", "dvc", "checkout", "-q", "results/wide.dvc"],
        cwd=saved,
        check=True,
        env=git_env(),
    )
    runs, warnings = load_saved_runs(saved, current_profile="default")
    assert len(runs) == len(EVALUATED) and warnings == []
    assert f"wide & {len(EVALUATED)} of {len(EVALUATED)}" in saved_runs_table(
        read_index(saved), runs
    )


def test_a_converged_claim_counts_the_saved_runs_over_the_threshold(saved: Path):
    runs, _ = load_saved_runs(saved, current_profile="default")
    claim = Claim(
        "r8-converges",
        "t",
        "s",
        "Table 2",
        paper_text="one run",
        scale=100,
        kind="converged",
        experiments=("wide/copy-full", "wide/copy-r4", "wide/copy-r1"),
        metric="eval/accuracy_r8",
        converged_at=93,
        threshold=3,
    )
    # r8 accuracies 62, 99.5 and 93 %: two reach 93 %
    result = evaluate_claim(claim, runs)
    assert (result.ours, result.verdict) == (2.0, "not reproduced")
    loss_like = Claim(**{**claim.__dict__, "direction": "decreasing", "threshold": 1})
    assert evaluate_claim(loss_like, runs).ours == 2.0  # 62 and 93 are at or below 93
    missing = Claim(**{**claim.__dict__, "experiments": (*claim.experiments, "wide/copy-r2")})
    assert evaluate_claim(missing, runs).verdict == "not run"  # a seed without its run


def test_saving_again_replaces_the_folder_and_keeps_other_profiles(project: Path, tmp_path: Path):
    dest = _dvc_repo(tmp_path / "team")
    save_profile(_checkout(project, tmp_path / "a", "wide"), dest)
    narrow = _checkout(project, tmp_path / "b", "narrow")
    save_profile(narrow, dest)
    shutil.rmtree(narrow / "models" / "copy-r1")  # not evaluated any more: left out
    (narrow / "metrics" / "copy-r1.json").unlink()
    # a metrics file that another run wrote (a committed one while this run trains): the
    # run's evaluation summary does not match it, so the run is left out too
    stale = json.loads((narrow / "metrics" / "copy-r4.json").read_text())
    stale["accuracy"]["r8"] = 0.5
    (narrow / "metrics" / "copy-r4.json").write_text(json.dumps(stale))
    save_profile(narrow, dest)
    index = read_index(dest)
    assert sorted(index) == ["narrow", "wide"]
    assert index["narrow"].experiments == ("copy-full",)
    assert set(index["narrow"].not_run) == {"copy-r4", "copy-r1", "copy-r2"}
    assert "copy-r1" in index["wide"].experiments
    assert not (dest / "results" / "narrow" / "models" / "copy-r1").exists()
    assert not list((dest / "results").glob(".*.partial"))


def test_save_without_evaluated_runs_is_one_line(tmp_path: Path):
    (tmp_path / "params.yaml").write_text("profile: empty\nexperiments: {a: {task: copy}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "repro.reporting.saved_runs", "save", "--root", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "profile 'empty'" in lines[0] and "dvc repro" in lines[0]
    assert not (tmp_path / "results").exists()  # nothing written

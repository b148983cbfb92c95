"""Two collaborators, one DVC remote: the runs the report reads travel with the models.

Clone A (a fresh git repository made from the working tree, the smoke profile's
duplication experiments) runs ``dvc repro report`` with real torchrun training and real
offline W&B runs, commits and
``dvc push``es to a local remote outside both clones. Clone B is a ``git clone`` of A that
points at the same remote: ``dvc pull`` gives it the models and, inside them, the W&B runs
(``models/<exp>/wandb``, ``runs/<exp>/wandb``), so after an edit of a report section
``dvc repro report`` rebuilds only the PDF, offline, with A's numbers. Nothing the report
reads is left outside the DVC outputs (there is no ``./wandb``).

Then B loses one run folder: the report says, in one line, to ``dvc pull`` it, and
``dvc checkout`` brings it back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import dvc, fresh_repo, pipeline_env, run

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.timeout(900)]

EXPERIMENT = "dup-full"  # configs/smoke.yaml
KEPT_TASK = "duplication"  # the smoke profile's translation experiment is left out: time
EDIT = "A sentence that collaborator B added to the discussion."


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci", *args], cwd)


def use_remote(root: Path, remote: Path) -> None:
    """Point the project's default remote at ``remote`` for this clone only (.dvc/config.local)."""
    dvc("remote", "modify", "--local", "local", "url", str(remote), cwd=root)


def edit_discussion(root: Path) -> None:
    section = root / "report" / "sections" / "discussion.tex"
    section.write_text(section.read_text() + f"\n{EDIT}\n")


def pdf_text(root: Path) -> str:
    pdf = root / "report" / "build" / "report.pdf"
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def generated(root: Path) -> dict[str, bytes]:
    """The report's generated LaTeX (macros and tables), by relative path."""
    folder = root / "report" / "generated"
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*.tex"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def clones(tmp_path_factory) -> tuple[Path, Path]:
    """A: ran the pipeline, committed, pushed. B: cloned A, pulled."""
    base = tmp_path_factory.mktemp("journey")
    remote = base / "remote"
    a = base / "a"
    a.mkdir()
    fresh_repo(a)
    params = yaml.safe_load((a / "params.yaml").read_text())
    params["experiments"] = {
        name: exp for name, exp in params["experiments"].items() if exp["task"] == KEPT_TASK
    }
    params["tasks"] = {KEPT_TASK: params["tasks"][KEPT_TASK]}
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    use_remote(a, remote)
    dvc("repro", "report", cwd=a, timeout=600)
    # W&B wrote nothing into the outputs after DVC saved them
    assert "up to date" in dvc("status", "--with-deps", "report", cwd=a).stdout
    git("add", "-A", cwd=a)
    git("commit", "-qm", "smoke results", cwd=a)
    dvc("push", cwd=a)

    b = base / "b"
    git("clone", "-q", str(a), str(b), cwd=base)
    if not (b / ".venv").exists():  # make_repo's commit may hold the link already
        (b / ".venv").symlink_to(sys.prefix)  # dvc.yaml runs .venv/bin/python
    use_remote(b, remote)
    dvc("pull", cwd=b)
    return a, b


def test_runs_live_inside_the_dvc_outputs(clones):
    a, b = clones
    assert not (a / "wandb").exists()  # nothing the report reads is outside DVC's outputs
    ref = json.loads((b / "models" / EXPERIMENT / "run.json").read_text())
    assert ref["run_dir"].startswith(f"models/{EXPERIMENT}/wandb/offline-run-")
    assert (b / ref["run_dir"] / f"run-{ref['id']}.wandb").is_file()
    evaluation = list((b / "runs" / EXPERIMENT / "wandb").glob(f"offline-run-*-{ref['id']}"))
    assert len(evaluation) == 1 and (evaluation[0] / f"run-{ref['id']}.wandb").is_file()
    # no symbolic links: a DVC output holds plain files only
    assert not [p for p in (b / "models").rglob("*") if p.is_symlink()]
    assert "up to date" in dvc("status", "--with-deps", "report", cwd=b).stdout


def test_collaborator_b_builds_the_same_report_offline(clones):
    a, b = clones
    shutil.rmtree(a / "wandb", ignore_errors=True)  # A's ./wandb plays no part either
    edit_discussion(b)
    built = dvc("repro", "report", cwd=b, timeout=300).stdout
    assert "Running stage 'report'" in built
    assert "Running stage 'train@" not in built and "Running stage 'evaluate@" not in built

    edit_discussion(a)  # the same edit in A: both PDFs must say the same
    rebuilt = dvc("repro", "report", cwd=a, timeout=300).stdout
    assert "Running stage 'train@" not in rebuilt and "Running stage 'evaluate@" not in rebuilt
    assert generated(b) == generated(a)
    text_a, text_b = pdf_text(a), pdf_text(b)
    assert EDIT.split()[0] in text_b
    assert text_b == text_a


def test_a_missing_run_folder_says_pull_then_pull_restores_it(clones):
    _, b = clones
    ref = json.loads((b / "models" / EXPERIMENT / "run.json").read_text())
    shutil.rmtree(b / "models" / EXPERIMENT / "wandb")
    report = subprocess.run(
        [sys.executable, "pipelines/report.py", "--no-pdf"],
        cwd=b,
        env=pipeline_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode != 0
    lines = report.stderr.strip().splitlines()
    assert len(lines) == 1, report.stderr
    assert ref["run_dir"] in lines[0] and "`dvc pull`" in lines[0]
    assert f"`dvc repro -f train@{EXPERIMENT}`" in lines[0]

    dvc("checkout", cwd=b)  # the run is in the DVC cache that `dvc pull` filled
    assert (b / ref["run_dir"]).is_dir()
    assert "up to date" in dvc("status", "--with-deps", "report", cwd=b).stdout

"""Everything under .github/ is valid and follows the project's security rules, checked offline.

Schemas: the ones vendored in check-jsonschema (the same as the pre-commit hooks use), run
through its command line. Rules on top of the schemas: explicit least-privilege
``permissions``, ``timeout-minutes`` on every job, no checkout in ``pull_request_target``
workflows, no untrusted ``${{ github.event... }}`` text inside shell scripts, and write access
to pull requests only for the PR-metrics comment job. Each rule is also run on a bad example,
so a rule that stops detecting anything fails the suite.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GITHUB = REPO_ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.y*ml"))
ISSUE_DIR = GITHUB / "ISSUE_TEMPLATE"
ISSUE_CONFIG = ISSUE_DIR / "config.yml"
ISSUE_FORMS = sorted(p for p in ISSUE_DIR.glob("*.y*ml") if p.stem != "config")
ACTIONS = sorted((GITHUB / "actions").glob("*/action.y*ml"))
DEPENDABOT = GITHUB / "dependabot.yml"

# Write permissions a job may hold, and when.
PR_COMMENT_WORKFLOW = "pr-metrics.yml"
PAGES_ACTION = "actions/deploy-pages"


def load(path: Path) -> dict:
    """Load YAML; PyYAML reads the workflow key ``on`` as the boolean True, undo that."""
    data = yaml.safe_load(path.read_text())
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)
    return data


def check_jsonschema(schema: str, paths: list[Path]) -> subprocess.CompletedProcess:
    """Run check-jsonschema with one of its vendored schemas (no network)."""
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema]
    return subprocess.run(
        [*cmd, *map(str, paths)], capture_output=True, text=True, timeout=120, check=False
    )


def triggers(workflow: dict) -> set[str]:
    on = workflow.get("on", {})
    if isinstance(on, str):
        return {on}
    return set(on)


def write_scopes(permissions: object) -> set[str]:
    """The scopes a ``permissions`` value grants write access to ("*" for write-all)."""
    if permissions is None:
        return set()
    if isinstance(permissions, str):
        return {"*"} if permissions == "write-all" else set()
    return {scope for scope, level in permissions.items() if level == "write"}


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(action + "@")]


UNTRUSTED = re.compile(
    r"\$\{\{\s*github\.(head_ref|event\.(pull_request|issue|comment|review|head_commit)"
    r"\.(?!number\b|head\.sha\b|base\.sha\b|head\.repo\.full_name\b)[\w.]+)"
)


def workflow_problems(name: str, workflow: dict) -> list[str]:
    """Every rule the project's workflows must follow; returns one line per violation."""
    problems = []
    if "permissions" not in workflow:
        problems.append(f"{name}: no top-level permissions")
    elif write_scopes(workflow["permissions"]):
        problems.append(f"{name}: top-level permissions grant write access")
    if "concurrency" not in workflow and {"push", "pull_request"} & triggers(workflow):
        problems.append(f"{name}: no concurrency group")
    pr_write_jobs = []
    for job_id, job in workflow.get("jobs", {}).items():
        where = f"{name}: job {job_id}"
        if "uses" not in job and "timeout-minutes" not in job:
            problems.append(f"{where}: no timeout-minutes")
        writes = write_scopes(job.get("permissions"))
        allowed = set()
        if name == PR_COMMENT_WORKFLOW:
            allowed.add("pull-requests")
        if steps_using(job, PAGES_ACTION):
            allowed |= {"pages", "id-token"}
        if writes - allowed:
            problems.append(f"{where}: write permission {sorted(writes - allowed)}")
        if "pull-requests" in writes:
            pr_write_jobs.append(job_id)
            if steps_using(job, "actions/checkout") or any("run" in s for s in job["steps"]):
                problems.append(f"{where}: has pull-requests: write and runs repository code")
        if "pull_request_target" in triggers(workflow) and steps_using(job, "actions/checkout"):
            problems.append(f"{where}: checks out code in a pull_request_target workflow")
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("./") and "@" not in uses:
                problems.append(f"{where}: action {uses} is not pinned to a version")
            if "run" in step and UNTRUSTED.search(step["run"]):
                problems.append(f"{where}: untrusted event text expanded inside a run script")
    if len(pr_write_jobs) > 1:
        problems.append(f"{name}: more than one job with pull-requests: write")
    return problems


# --- the files exist --------------------------------------------------------------------


def test_expected_files_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "project.yml", "docs.yml", "report.yml", "pr-metrics.yml"} <= names
    assert {p.stem for p in ISSUE_FORMS} >= {"claim", "experiment", "bug", "task"}
    for path in (ISSUE_CONFIG, DEPENDABOT, GITHUB / "CODEOWNERS"):
        assert path.is_file(), path
    assert (GITHUB / "PULL_REQUEST_TEMPLATE.md").is_file()


# --- schemas ------------------------------------------------------------------------------

SCHEMA_TARGETS = {
    "vendor.github-workflows": WORKFLOWS,
    "custom.github-workflows-require-timeout": WORKFLOWS,
    "vendor.github-issue-forms": ISSUE_FORMS,
    "vendor.github-issue-config": [ISSUE_CONFIG],
    "vendor.dependabot": [DEPENDABOT],
    "vendor.github-actions": ACTIONS,
}


@pytest.mark.parametrize("schema", sorted(SCHEMA_TARGETS))
def test_files_match_vendored_schema(schema):
    paths = SCHEMA_TARGETS[schema]
    assert paths, f"no files for {schema}"
    result = check_jsonschema(schema, paths)
    assert result.returncode == 0, result.stdout + result.stderr


BAD_FILES = {
    # runs-on is required; `step` is not a key of a job.
    "vendor.github-workflows": "on: push\njobs:\n  a:\n    step: []\n",
    "custom.github-workflows-require-timeout": (
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: 'true'\n"
    ),
    # An issue form needs a body.
    "vendor.github-issue-forms": "name: x\ndescription: y\n",
    "vendor.github-issue-config": "blank_issues_enabled: maybe\n",
    "vendor.dependabot": "updates: []\n",
    "vendor.github-actions": "name: x\nruns:\n  using: composite\n",
}


@pytest.mark.parametrize("schema", sorted(BAD_FILES))
def test_vendored_schema_rejects_bad_file(schema, tmp_path):
    bad = tmp_path / ("action.yml" if schema == "vendor.github-actions" else "bad.yml")
    bad.write_text(BAD_FILES[schema])
    result = check_jsonschema(schema, [bad])
    assert result.returncode != 0, f"{schema} accepted:\n{BAD_FILES[schema]}"


# --- workflow rules -----------------------------------------------------------------------


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_follows_rules(path):
    assert workflow_problems(path.name, load(path)) == []


def test_only_the_pr_metrics_comment_job_writes_to_pull_requests():
    jobs = [
        (path.name, job_id)
        for path in WORKFLOWS
        for job_id, job in load(path)["jobs"].items()
        if "pull-requests" in write_scopes(job.get("permissions"))
    ]
    assert jobs == [(PR_COMMENT_WORKFLOW, "comment")]


def test_ci_runs_the_readme_test_command():
    ci = load(GITHUB / "workflows" / "ci.yml")
    assert {"push", "pull_request"} <= triggers(ci)
    assert ci["permissions"] == {"contents": "read"}
    assert ci["concurrency"]["cancel-in-progress"] is True
    runs = [s["run"] for job in ci["jobs"].values() for s in job["steps"] if "run" in s]
    assert any(".ci/run" in run for run in runs)
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    setup = load(GITHUB / "actions" / "setup-env" / "action.yml")
    cached = " ".join(
        s["with"]["path"] for s in setup["runs"]["steps"] if "actions/cache@" in s.get("uses", "")
    )
    assert "pip" in cached and "apt" in cached


def test_project_workflow_adds_issues_and_prs_without_checkout():
    project = load(GITHUB / "workflows" / "project.yml")
    assert project["on"] == {
        "issues": {"types": ["opened"]},
        "pull_request_target": {"types": ["opened"]},
    }
    (job,) = project["jobs"].values()
    assert not write_scopes(project["permissions"]) and "permissions" not in job
    uses = [s.get("uses", "") for s in job["steps"]]
    assert len(uses) == 1 and uses[0].startswith("actions/add-to-project@")
    assert not any("run" in s for s in job["steps"])
    inputs = job["steps"][0]["with"]
    assert inputs["project-url"] == "${{ vars.PROJECT_URL }}"
    assert inputs["github-token"] == "${{ secrets.ADD_TO_PROJECT_PAT }}"
    contributing = (REPO_ROOT / "CONTRIBUTING.md").read_text()
    assert "PROJECT_URL" in contributing and "ADD_TO_PROJECT_PAT" in contributing


def test_report_and_docs_workflows_publish_their_outputs():
    report = load(GITHUB / "workflows" / "report.yml")
    uploads = [
        s for job in report["jobs"].values() for s in steps_using(job, "actions/upload-artifact")
    ]
    assert uploads and uploads[0]["with"]["path"] == "report/build/report.pdf"
    docs = load(GITHUB / "workflows" / "docs.yml")
    assert "pull_request" in triggers(docs)
    deploy = [job for job in docs["jobs"].values() if steps_using(job, PAGES_ACTION)]
    assert len(deploy) == 1 and write_scopes(deploy[0]["permissions"]) == {"pages", "id-token"}


def test_pr_metrics_posts_one_updated_comment():
    text = (GITHUB / "workflows" / PR_COMMENT_WORKFLOW).read_text()
    assert "scripts/pr_metrics.sh" in text and "repro.reporting.pr_comment render" in text
    assert "updateComment" in text and "<!-- pr-metrics -->" in text
    assert triggers(load(GITHUB / "workflows" / PR_COMMENT_WORKFLOW)) == {"pull_request"}


GOOD_WORKFLOW = {
    "on": {"pull_request": None},
    "permissions": {"contents": "read"},
    "concurrency": {"group": "g", "cancel-in-progress": True},
    "jobs": {
        "test": {
            "runs-on": "ubuntu-24.04",
            "timeout-minutes": 10,
            "steps": [{"uses": "actions/checkout@v6"}, {"run": "make test"}],
        }
    },
}


def _bad(edit):
    workflow = copy.deepcopy(GOOD_WORKFLOW)
    edit(workflow)
    return workflow


BAD_WORKFLOWS = {
    "no top-level permissions": _bad(lambda w: w.pop("permissions")),
    "top-level write": _bad(lambda w: w.update(permissions="write-all")),
    "no timeout": _bad(lambda w: w["jobs"]["test"].pop("timeout-minutes")),
    "no concurrency": _bad(lambda w: w.pop("concurrency")),
    "job writes contents": _bad(
        lambda w: w["jobs"]["test"].update(permissions={"contents": "write"})
    ),
    "pull-requests write outside pr-metrics": _bad(
        lambda w: w["jobs"]["test"].update(permissions={"pull-requests": "write"})
    ),
    "checkout in pull_request_target": _bad(lambda w: w.update(on={"pull_request_target": None})),
    "unpinned action": _bad(lambda w: w["jobs"]["test"]["steps"].append({"uses": "actions/cache"})),
    "script injection": _bad(
        lambda w: w["jobs"]["test"]["steps"].append(
            {"run": "echo ${{ github.event.pull_request.title }}"}
        )
    ),
}


def test_rules_accept_good_workflow():
    assert workflow_problems("good.yml", GOOD_WORKFLOW) == []


@pytest.mark.parametrize("case", sorted(BAD_WORKFLOWS))
def test_rules_reject_bad_workflow(case):
    assert workflow_problems("bad.yml", BAD_WORKFLOWS[case]), case


def test_rules_reject_pr_write_job_that_runs_code():
    workflow = _bad(lambda w: w["jobs"]["test"].update(permissions={"pull-requests": "write"}))
    problems = workflow_problems(PR_COMMENT_WORKFLOW, workflow)
    assert any("runs repository code" in p for p in problems)


# --- issue forms, PR template, CODEOWNERS, dependabot ---------------------------------------


def test_claim_form_asks_for_everything_a_claim_needs():
    form = load(ISSUE_DIR / "claim.yml")
    ids = {item["id"] for item in form["body"] if "id" in item}
    assert {"claim", "paper-number", "location", "metric", "experiment", "compute"} <= ids


@pytest.mark.parametrize("path", ISSUE_FORMS, ids=lambda p: p.name)
def test_issue_forms_have_a_label_and_a_required_field(path):
    form = load(path)
    assert form.get("labels"), path.name
    assert any(item.get("validations", {}).get("required") for item in form["body"])


def test_issue_config_sends_everyone_through_the_forms():
    assert load(ISSUE_CONFIG)["blank_issues_enabled"] is False


def test_pull_request_template_checklist():
    text = (GITHUB / "PULL_REQUEST_TEMPLATE.md").read_text()
    checklist = "\n".join(line for line in text.splitlines() if line.startswith("- [ ]"))
    for item in ("make test", "pre-commit", "dvc push", "W&B", "Docs"):
        assert item in checklist, item


def test_codeowners_lines_are_pattern_and_owners():
    for line in (GITHUB / "CODEOWNERS").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pattern, *owners = line.split()
        assert owners and all(re.fullmatch(r"@[\w.-]+(/[\w.-]+)?|\S+@\S+", o) for o in owners)
        assert pattern == "*" or pattern.startswith("/"), line


def test_dependabot_updates_pip_and_actions():
    ecosystems = {u["package-ecosystem"] for u in load(DEPENDABOT)["updates"]}
    assert {"pip", "github-actions"} <= ecosystems

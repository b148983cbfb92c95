"""The pre-commit configuration installs from PyPI alone, with the pinned versions, and covers
what the project promises: ruff, the file checks, the .github/ schemas and DVC's git hooks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pre_commit.clientlib import load_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = REPO_ROOT / ".pre-commit-config.yaml"
CONFIG = yaml.safe_load(CONFIG_PATH.read_text())
HOOKS = [hook for repo in CONFIG["repos"] for hook in repo["hooks"]]
BY_ID = {hook["id"]: hook for hook in HOOKS}


def pinned_versions() -> dict[str, str]:
    """Package name (normalised) -> version, from requirements/constraints.txt."""
    pins = {}
    for line in (REPO_ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def test_config_is_valid_for_pre_commit():
    load_config(str(CONFIG_PATH))  # raises on an invalid configuration


def test_only_local_python_hooks_with_pinned_dependencies():
    assert [repo["repo"] for repo in CONFIG["repos"]] == ["local"]
    pins = pinned_versions()
    for hook in HOOKS:
        assert hook["language"] == "python", hook["id"]
        dependencies = hook.get("additional_dependencies", [])
        assert dependencies, f"{hook['id']}: no additional_dependencies"
        for requirement in dependencies:
            name, sep, version = requirement.partition("==")
            assert sep, f"{hook['id']}: {requirement} is not pinned with =="
            key = re.sub(r"[-_.]+", "-", name.lower())
            if key in pins:
                assert version == pins[key], (
                    f"{hook['id']}: {requirement} vs constraints {pins[key]}"
                )


def test_required_hooks_are_present():
    entries = " | ".join(hook["entry"] for hook in HOOKS)
    for entry in (
        "ruff check",
        "ruff format",
        "check-yaml",
        "check-toml",
        "end-of-file-fixer",
        "trailing-whitespace-fixer",
        "check-added-large-files",
        "check-merge-conflict",
        "--builtin-schema vendor.github-workflows",
        "--builtin-schema vendor.github-issue-forms",
        "--builtin-schema vendor.dependabot",
    ):
        assert entry in entries, entry


def test_dvc_git_hooks_run_at_their_git_stages():
    by_id = {h["id"]: h for h in HOOKS}
    for hook_id, entry, stage in (
        ("dvc-pre-commit", "dvc git-hook pre-commit", "pre-commit"),
        ("dvc-pre-push", "dvc git-hook pre-push", "pre-push"),
        # a branch checkout only, quiet when a fresh clone has nothing cached yet
        ("dvc-post-checkout", "python scripts/hooks/dvc_post_checkout.py", "post-checkout"),
    ):
        hook = by_id[hook_id]
        assert hook["entry"] == entry
        assert hook["stages"] == [stage]
        assert hook["pass_filenames"] is False
    assert set(CONFIG["default_install_hook_types"]) == {"pre-commit", "pre-push", "post-checkout"}
    # The other hooks must not run again at push or checkout.
    assert set(CONFIG["default_stages"]) <= {"pre-commit", "manual"}


def test_build_outputs_are_excluded():
    exclude = re.compile(CONFIG["exclude"])
    for path in (
        "docs/_build/html/index.html",
        "report/build/report.log",
        "report/generated/x.tex",
    ):
        assert exclude.search(path), path
    assert not exclude.search("docs/index.md")


def hooks_matching(path: str) -> set[str]:
    """The ids of the schema hooks whose `files` pattern selects `path`."""
    return {
        hook["id"]
        for hook in HOOKS
        if "check-jsonschema" in hook["entry"] and re.search(hook["files"], path)
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".github/workflows/ci.yml", {"check-github-workflows", "check-github-workflows-timeout"}),
        (".github/ISSUE_TEMPLATE/claim.yml", {"check-github-issue-forms"}),
        (".github/ISSUE_TEMPLATE/config.yml", {"check-github-issue-config"}),
        (".github/dependabot.yml", {"check-dependabot"}),
        (".github/actions/setup-env/action.yml", {"check-github-actions"}),
        ("params.yaml", set()),
    ],
)
def test_schema_hooks_select_the_right_files(path, expected):
    assert hooks_matching(path) == expected


def test_every_github_yaml_file_is_validated_by_a_hook():
    for path in (REPO_ROOT / ".github").rglob("*.y*ml"):
        relative = path.relative_to(REPO_ROOT).as_posix()
        assert hooks_matching(relative), f"no schema hook validates {relative}"

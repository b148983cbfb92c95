"""The contributor's path of CONTRIBUTING.md works, from a fresh clone to a commit.

The slow test takes its commands from CONTRIBUTING.md (so it breaks when the document drifts)
and runs them in a fresh ``git clone`` of a repository that holds this working tree: the git
hooks, a branch switch (whose post-checkout hook must not print DVC's "Checkout failed" just
because the clone has no DVC cache yet), an edit, ``dvc exp run -S``, every pre-commit hook on
every file, the commit, and the profile check refusing a smoke params.yaml. The fast tests
check the hook scripts of scripts/hooks/ on their own and the pull-request metrics workflow's
wiring.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from pipeline_helpers import committed_copy, git_env
from test_docs_commands import commands, shell_blocks

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.prefix) / "bin"
HOOKS = {
    h["id"]: h
    for r in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
    for h in r["hooks"]
}


def load_script(name: str) -> ModuleType:
    """A script of scripts/hooks/ as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sh(words: list[str], cwd: Path, check: bool = True, timeout: int = 300) -> str:
    """Run one command; return its standard output and error together."""
    result = subprocess.run(
        words, cwd=cwd, env=git_env(), capture_output=True, text=True, timeout=timeout
    )
    out = result.stdout + result.stderr
    if check:
        assert result.returncode == 0, f"{shlex.join(words)} failed:\n{out[-4000:]}"
    return out


def documented(prefix: str) -> list[str]:
    """The first command of CONTRIBUTING.md's shell blocks that starts with ``prefix``."""
    wanted = shlex.split(prefix)
    for language, body in shell_blocks((ROOT / "CONTRIBUTING.md").read_text()):
        for words in commands(language, body):
            if words[: len(wanted)] == wanted:
                return words
    raise AssertionError(f"CONTRIBUTING.md shows no `{prefix} ...` command")


# --- the whole path, from a fresh clone (slow) -------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_contributor_path_from_a_fresh_clone(tmp_path):
    origin = committed_copy(tmp_path / "origin")
    clone_cmd = documented("git clone")
    assert clone_cmd[2].startswith("https://github.com/"), clone_cmd
    sh([*clone_cmd[:2], str(origin), "clone"], cwd=tmp_path)  # GitHub is the temporary origin
    clone = tmp_path / "clone"
    (clone / ".venv").symlink_to(sys.prefix)

    sh(documented(".venv/bin/pre-commit install"), clone)
    for hook in ("pre-commit", "pre-push", "post-checkout"):
        assert "pre-commit" in (clone / ".git" / "hooks" / hook).read_text(), hook

    sh(documented("git switch main"), clone)
    sh(documented("git pull"), clone)
    switch = sh(documented("git switch -c"), clone)
    # the clone has no DVC cache: one informative line, not DVC's "Checkout failed"
    assert "dvc checkout" in switch and "Passed" in switch, switch
    assert "Failed" not in switch and "ERROR" not in switch and "WARNING" not in switch, switch
    assert re.search(r"^dvc: \d+ outputs? not in the local cache", switch, re.M), switch

    notes = clone / "docs" / "guides" / "quickstart.md"
    notes.write_text(notes.read_text() + "\nA contributor's note.\n")  # the edit
    assert yaml.safe_load((clone / "params.yaml").read_text())["profile"] == "default"
    # The documented experiment, limited to the pipeline's budget stage: it reads the whole
    # `train` section (so -S train.lr reruns it) and takes seconds, where the whole default
    # pipeline takes most of an hour. DVC rewrites params.yaml the same way either way.
    exp_run = documented(".venv/bin/dvc exp run -S")
    out = sh([*exp_run, "budget"], clone)
    assert "Running stage 'budget'" in out, out
    key, _, value = exp_run[exp_run.index("-S") + 1].partition("=")
    section, name = key.split(".")
    params = yaml.safe_load((clone / "params.yaml").read_text())
    assert params[section][name] == float(value)
    assert "dvc.lock" in sh(["git", "status", "--short"], clone)

    out = sh(documented(".venv/bin/pre-commit run --all-files"), clone, check=False)
    assert "Failed" not in out, out  # e.g. trailing whitespace in the rewritten params.yaml
    sh(documented("git add"), clone)
    sh(["git", "add", str(notes.relative_to(clone))], clone)
    commit = sh(documented("git commit"), clone)
    assert "Failed" not in commit, commit
    assert sh(["git", "status", "--short", "--untracked-files=no"], clone).strip() == ""
    assert "params.yaml" in sh(["git", "show", "--stat", "HEAD"], clone)

    # a params.yaml left on the smoke profile is refused, with how to switch back
    sh([str(BIN / "python"), "-m", "repro.config", "use", "smoke"], clone)
    sh(["git", "add", "params.yaml"], clone)
    refused = sh(["git", "commit", "-m", "smoke params"], clone, check=False)
    assert "profile is 'smoke'" in refused and "make profile-default" in refused, refused
    assert "smoke params" not in sh(["git", "log", "--oneline", "-1"], clone)


# --- dvc exp run -S keeps the committable params clean ----------------------------------


@pytest.mark.parametrize("path", ["params.yaml", "configs/default.yaml"])
def test_dvc_set_param_leaves_no_trailing_whitespace(tmp_path, path):
    """``dvc exp run -S`` rewrites params.yaml with ruamel at 80 columns: a flow collection or
    a ``key: value`` line that does not fit is wrapped after ``, `` or ``: ``, leaving trailing
    whitespace that the pre-commit hook then rejects. The profile that is committed must not
    have such lines (block style, or a long scalar as a ``|-`` literal, keeps it clean)."""
    from dvc.utils.hydra import apply_overrides  # what `dvc exp run -S` calls

    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / path, params)
    apply_overrides(params, ["train.lr=0.001"])
    lines = params.read_text().splitlines()
    assert yaml.safe_load(params.read_text())["train"]["lr"] == 0.001
    wrapped = [f"{i}: {line!r}" for i, line in enumerate(lines, 1) if line != line.rstrip()]
    assert not wrapped, f"{path} after -S train.lr=0.001:\n" + "\n".join(wrapped)


# --- the hook scripts on their own --------------------------------------------------------


def test_profile_hook_is_configured_for_every_commit():
    hook = HOOKS["params-default-profile"]
    assert hook["entry"] == "python scripts/hooks/check_profile.py"
    assert hook["always_run"] is True and hook["pass_filenames"] is False
    assert hook.get("stages", ["pre-commit"]) == ["pre-commit"]


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("profile: default\nseed: 0\n", 0, ""),
        (
            "profile: smoke\n",
            1,
            "params.yaml: profile is 'smoke', but only the 'default' profile may be "
            "committed; switch back with `make profile-default`\n",
        ),
        ("seed: 0\n", 1, "params.yaml: profile is None"),
        ("profile: [unclosed\n", 1, "params.yaml: not valid YAML ("),
    ],
)
def test_profile_hook(tmp_path, monkeypatch, capsys, text, code, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(text)
    assert load_script("check_profile").main([]) == code
    out = capsys.readouterr().out
    assert out.startswith(message) and out.count("\n") == (1 if code else 0), out


def test_profile_hook_ignores_a_repository_without_params(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_script("check_profile").main([]) == 0


def test_post_checkout_hook_is_the_script_at_branch_checkouts():
    hook = HOOKS["dvc-post-checkout"]
    assert hook["entry"] == "python scripts/hooks/dvc_post_checkout.py"
    assert hook["stages"] == ["post-checkout"] and hook["verbose"] is True
    assert "dvc==" in " ".join(hook["additional_dependencies"])


@pytest.fixture
def dvc_repo(tmp_path) -> Path:
    """A git + DVC repository with one run stage (out.txt, cached) and one never run."""
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        sh(cmd, tmp_path)
    stage = "cmd: echo hello > {0}\n    outs: [{0}]\n"
    stages = "stages:\n  made:\n    " + stage.format("out.txt") + "  later:\n    " + stage
    (tmp_path / "dvc.yaml").write_text(stages.format("later.txt"))
    sh([str(BIN / "dvc"), "repro", "made"], tmp_path)
    sh(["git", "add", "-A"], tmp_path)
    sh(["git", "commit", "-qm", "one stage"], tmp_path)
    (tmp_path / "out.txt").unlink()
    return tmp_path


def post_checkout(repo: Path, checkout_type: str = "1") -> subprocess.CompletedProcess:
    script = ROOT / "scripts" / "hooks" / "dvc_post_checkout.py"
    env = {k: v for k, v in git_env().items() if k != "PRE_COMMIT_CHECKOUT_TYPE"}
    return subprocess.run(
        [str(BIN / "python"), str(script), "HEAD", "HEAD", checkout_type],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_post_checkout_restores_a_cached_output(dvc_repo):
    result = post_checkout(dvc_repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "A\tout.txt",
        "dvc: 1 output never produced (`dvc repro` makes it)",
    ]
    assert result.stderr == ""  # no per-output "No file hash info found" warning
    assert (dvc_repo / "out.txt").read_text() == "hello\n"


def test_post_checkout_in_a_clone_without_cache_is_one_line(dvc_repo):
    shutil.rmtree(dvc_repo / ".dvc" / "cache")
    result = post_checkout(dvc_repo)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "dvc: 1 output not in the local cache (`dvc pull` fetches it), "
        "1 output never produced (`dvc repro` makes it)\n"
    )
    assert result.stderr == ""


def test_post_checkout_ignores_file_checkouts(dvc_repo):
    result = post_checkout(dvc_repo, checkout_type="0")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (dvc_repo / "out.txt").exists()


def test_post_checkout_shows_a_real_failure(dvc_repo):
    (dvc_repo / "dvc.yaml").write_text("stages: [\n")
    result = post_checkout(dvc_repo)
    assert result.returncode == 1
    assert result.stdout.startswith("dvc checkout failed: ") and "dvc.yaml" in result.stdout


def test_dvc_plots_output_is_ignored():
    out = sh(["git", "check-ignore", "dvc_plots/index.html", ".venv"], ROOT)
    assert out.split() == ["dvc_plots/index.html", ".venv"]


# --- the pull-request metrics workflow's wiring ------------------------------------------


def test_pr_metrics_workflow_runs_both_sides_and_links_the_curves():
    from repro.reporting.pr_comment import MARKER

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pr-metrics.yml").read_text())
    smoke = workflow["jobs"]["smoke"]
    steps = {s.get("id"): s for s in smoke["steps"]}
    runs = "\n".join(s.get("run", "") for s in smoke["steps"])
    assert 'bash scripts/pr_metrics.sh "origin/$BASE_REF" "$RUNNER_TEMP/pr-metrics"' in runs
    upload = steps["curves"]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["path"].endswith("/pr-metrics/curves.png")
    render = steps["render"]
    assert "python -m repro.reporting.pr_comment render" in render["run"]
    assert render["env"]["PLOT_URL"] == "${{ steps.curves.outputs.artifact-url }}"
    assert '--plot-url "$PLOT_URL"' in render["run"] and "$GITHUB_OUTPUT" in render["run"]
    assert smoke["outputs"]["body"] == "${{ steps.render.outputs.body }}"
    assert (
        f'const marker = "{MARKER}";' in workflow["jobs"]["comment"]["steps"][0]["with"]["script"]
    )
    for script in ("pr_metrics.sh", "smoke_metrics.sh"):
        sh(["bash", "-n", str(ROOT / "scripts" / script)], ROOT)  # parses

"""The repository as a copier template: ``copier.yml`` and ``template/``.

``copier copy`` of this repository writes a new reproduction: the kit taken from this
repository's own files (through the symlinks and ``{% include %}`` files of ``template/``),
the paper-specific files rendered from the answers, and the toy paper package. The tests
generate a project from the working tree (uncommitted changes included, as copier does for
a local ``--vcs-ref HEAD``), check what it holds, run the toy paper's tests in it, take a
kit change through ``copier update``, and (slow) run its smoke and default pipelines and
its fast tests with this repository's virtual environment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template"
BIN = Path(sys.executable).parent
PACKAGE = "toy"
ANSWERS = {
    # long enough to be wrapped in toy/paper.py, with a character LaTeX must escape
    "paper_title": (
        "Learning to Reverse & Other Tricks: What Tiny Transformers Do With Words, Symbols "
        "and Other Sequences"
    ),
    "package_name": PACKAGE,
    "authors": "Ada Lovelace, Alan Turing",
    "github_repo": "toy-lab/reverse-repro",
}
#: Files every generated project has: the kit, the skeleton, the toy paper.
_PROJECT_FILES = """
repro/paper.py pipelines/train.py dvc.yaml params.yaml configs/smoke.yaml
configs/default.yaml configs/paper.yaml Makefile .ci/run scripts/setup.sh
.pre-commit-config.yaml .gitignore .dvc/config .github/workflows/ci.yml
.github/ISSUE_TEMPLATE/claim.yml .github/ISSUE_TEMPLATE/config.yml
.github/PULL_REQUEST_TEMPLATE.md .github/CODEOWNERS CONTRIBUTING.md README.md pyproject.toml
requirements/constraints.txt docs/conf.py docs/index.md docs/paper-to-code.md
docs/guides/adapting.md docs/api/paper-interface.md report/report.tex report/claims.yaml
report/references.bib toy/__init__.py toy/paper.py toy/task.py toy/model.py toy/config.py
toy/experiment.py tests/toy/test_model.py tests/conftest.py .copier-answers.yml
"""
PROJECT_FILES = _PROJECT_FILES.split()
MLRC_HEADINGS = (
    r"\section*{Reproducibility Summary}",
    r"\section{Introduction}",
    r"\section{Scope of reproducibility}",
    r"\section{Methodology}",
    r"\subsection{Model descriptions}",
    r"\subsection{Datasets}",
    r"\subsection{Hyperparameters}",
    r"\subsection{Experimental setup and code}",
    r"\subsection{Computational requirements}",
    r"\section{Results}",
    r"\subsection{Results reproducing the original paper}",
    r"\subsection{Results beyond the original paper}",
    r"\section{Discussion}",
)


def run(cmd: list[str], cwd: Path, timeout: int = 300, **env: str) -> str:
    """Run ``cmd`` offline (W&B, DVC analytics); return stdout, or fail with its output."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "DVC_"))}
    environ.update(WANDB_MODE="offline", WANDB_SILENT="true", DVC_NO_ANALYTICS="1", **env)
    result = subprocess.run(
        cmd, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def copier(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "copier"), *map(str, args)]
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert not check or result.returncode == 0, result.stderr[-4000:]
    return result


def answers(**override: str | None) -> list[str]:
    """``--data`` arguments: :data:`ANSWERS` with ``override`` (``None``: not given)."""
    given = {k: v for k, v in {**ANSWERS, **override}.items() if v is not None}
    return [arg for k, v in given.items() for arg in ("--data", f"{k}={v}")]


def generate(source: Path, dest: Path, ref: str = "HEAD") -> Path:
    """``copier copy`` of ``source`` at ``ref`` into ``dest`` with :data:`ANSWERS`."""
    copier(
        "copy", "--defaults", "--quiet", "--vcs-ref", ref, *answers(), source, dest, cwd=dest.parent
    )
    return dest


def git(*args: str, cwd: Path) -> str:
    return run(["git", *args], cwd)


def commit_all(repo: Path, message: str) -> None:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "--no-verify", "-m", message, cwd=repo)


def copy_working_tree(dest: Path) -> Path:
    """This repository's files, symlinks kept as symlinks, in a new git repository: a
    template whose history the test controls."""
    for name in listed_files():
        source, target = ROOT / name, dest / name
        if not os.path.lexists(source) or os.path.lexists(target):
            continue  # deleted in the working tree, or already copied
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    git("init", "-q", cwd=dest)
    commit_all(dest, "template")
    return dest


def project_files(project: Path) -> set[str]:
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }


def listed_files() -> list[str]:
    """This repository's files that git tracks or would track (not ignored): what copier,
    which copies from a clone, sees."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name]


def symlinked_files() -> dict[str, Path]:
    """Project path -> this repository's file, for every file a template symlink copies."""
    listed = {ROOT / name for name in listed_files()}
    out: dict[str, Path] = {}
    for link in (p for p in TEMPLATE.rglob("*") if p.is_symlink()):
        rel, target = link.relative_to(TEMPLATE), link.resolve()
        if target.is_file():
            out[rel.as_posix()] = target
        for f in target.rglob("*") if target.is_dir() else ():
            if f in listed and f.is_file():
                out[(rel / f.relative_to(target)).as_posix()] = f
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project generated from the working tree with :data:`ANSWERS`."""
    return generate(ROOT, tmp_path_factory.mktemp("generated") / "reverse-repro")


# --- the template itself ---------------------------------------------------------------------


def test_template_symlinks_are_relative_and_point_into_the_repository():
    links = [p for p in TEMPLATE.rglob("*") if p.is_symlink()]
    assert links, "template/ has no symlinks: the kit would not be copied"
    for link in links:
        where = link.relative_to(ROOT)
        assert not os.path.isabs(os.readlink(link)), f"{where}: use a relative link"
        target = link.resolve()
        assert target.exists(), f"{where}: points at nothing ({os.readlink(link)})"
        assert target.is_relative_to(ROOT) and not target.is_relative_to(TEMPLATE), where
        # git refuses a symlinked .gitignore, DVC would see a second dvc.yaml or .dvc/:
        # those come through {% include %} files instead
        assert link.name not in (".gitignore", "dvc.yaml", ".dvc", ".gitattributes"), where


def test_copier_yml_asks_the_four_questions():
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    asked = [k for k, v in config.items() if not k.startswith("_") and v.get("when") is not False]
    assert asked == ["paper_title", "package_name", "authors", "github_repo"]
    assert config["_subdirectory"] == "template"
    assert config["_templates_suffix"] == ".jinja"
    assert config["_answers_file"] == ".copier-answers.yml"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("package_name", "My-Paper", "lowercase Python package name"),
        ("package_name", "repro", "is a folder of the kit"),
        ("github_repo", "no-slash", "must be org/repo"),
        ("paper_title", " ", "the title is required"),
    ],
)
def test_bad_answers_are_refused_with_one_line(tmp_path, key, value, message):
    dest = tmp_path / "p"
    args = ("copy", "--defaults", "--vcs-ref", "HEAD", *answers(**{key: value}), ROOT, dest)
    result = copier(*args, cwd=tmp_path, check=False)
    assert result.returncode != 0 and message in result.stderr
    assert not (dest / "repro").exists()


def test_package_name_defaults_to_the_titles_first_words(tmp_path):
    title = "3D Gaussian Splatting for Real-Time Rendering"
    dest = tmp_path / "p"
    args = answers(paper_title=title, package_name=None)
    copier("copy", "--defaults", "--quiet", "--vcs-ref", "HEAD", *args, ROOT, dest, cwd=tmp_path)
    assert (dest / "paper_3d_gaussian_splatting" / "paper.py").is_file()


# --- the generated project -------------------------------------------------------------------


def test_project_has_the_kit_and_the_paper_skeleton(project):
    files = project_files(project)
    for path in PROJECT_FILES:
        assert path in files, path
    for absent in ("reformer", "metrics", "dvc.lock", "tests/reformer", "template", "copier.yml"):
        assert not (project / absent).exists(), absent
    assert "tests/repo/test_template.py" not in files
    assert not any(f.endswith((".jinja", ".pyc")) for f in files)
    assert executable(project / ".ci/run") and executable(project / "scripts/setup.sh")


def executable(path: Path) -> bool:
    return os.access(path, os.X_OK)


def test_kit_files_are_this_repositorys_files(project):
    copied = symlinked_files()
    assert "repro/training/loop.py" in copied and ".github/workflows/ci.yml" in copied
    for rel, source in copied.items():
        assert (project / rel).read_bytes() == source.read_bytes(), rel
    # the files that come through {% include %}: byte for byte, or with the names filled in
    for rel in (".gitignore", "dvc.yaml", ".dvc/config", ".dvc/.gitignore"):
        assert (project / rel).read_bytes() == (ROOT / rel).read_bytes(), rel
    issue_config = (ROOT / ".github/ISSUE_TEMPLATE/config.yml").read_text()
    assert (project / ".github/ISSUE_TEMPLATE/config.yml").read_text() == issue_config.replace(
        "https://ORG.github.io/REPO/", "https://toy-lab.github.io/reverse-repro/"
    ).replace("ORG/REPO", "toy-lab/reverse-repro")
    workflow = (project / ".github/workflows/ci.yml").read_text()
    assert "${{" in workflow  # GitHub expressions are copied, not rendered


def test_answers_fill_in_the_project(project):
    readme = (project / "README.md").read_text()
    assert readme.startswith(f"# {ANSWERS['paper_title']}, reproduced\n")
    assert "https://github.com/toy-lab/reverse-repro/actions/workflows/ci.yml/badge.svg" in readme
    assert "https://toy-lab.github.io/reverse-repro/" in readme
    assert "make reproduce\nmake test\n" in readme
    assert "<!-- results:start -->" in readme and "<!-- results:end -->" in readme
    assert "ORG" not in readme and "REPO" not in readme

    owners = (project / ".github/CODEOWNERS").read_text()
    assert re.search(r"^/toy/\s+@toy-lab/model$", owners, re.M)
    assert "@ORG" not in owners

    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params == yaml.safe_load((project / "configs/default.yaml").read_text())
    for profile in ("smoke", "default", "paper"):
        data = yaml.safe_load((project / f"configs/{profile}.yaml").read_text())
        assert (data["paper"], data["profile"]) == (PACKAGE, profile)
        assert data["tracking"]["project"] == "reverse-repro"

    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "reverse-repro"' in pyproject
    assert '{ name = "Ada Lovelace" },\n  { name = "Alan Turing" },' in pyproject
    assert 'include = ["toy*", "repro*"]' in pyproject

    report = (project / "report/report.tex").read_text()
    title = ANSWERS["paper_title"].replace("&", r"\&")
    assert rf"\title{{[Re] {title}}}" in report
    assert r"\author{Ada Lovelace, Alan Turing}" in report

    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {k: recorded[k] for k in ANSWERS} == ANSWERS
    assert recorded["_src_path"] and recorded["_commit"]


def test_report_skeleton_has_the_mlrc_headings_and_one_claim(project):
    text = "\n".join(p.read_text() for p in sorted((project / "report/sections").glob("*.tex")))
    positions = [text.find(heading) for heading in MLRC_HEADINGS]
    assert -1 not in positions, [h for h, p in zip(MLRC_HEADINGS, positions, strict=True) if p < 0]
    report = (project / "report/report.tex").read_text()
    sections = ("summary", "introduction", "scope", "methodology", "results", "discussion")
    order = [report.find(rf"\input{{sections/{s}}}") for s in sections]
    assert -1 not in order and order == sorted(order)
    claims = yaml.safe_load((project / "report/claims.yaml").read_text())["claims"]
    assert len(claims) == 1 and claims[0]["experiments"] == ["reverse"]
    assert claims[0]["metric"] == "eval/accuracy"
    default = yaml.safe_load((project / "configs/default.yaml").read_text())
    assert "reverse" in default["experiments"]


def test_paper_to_code_names_tests_that_exist(project):
    page = (project / "docs/paper-to-code.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", page)
    assert named
    for path, test in named:
        assert f"def {test}(" in (project / path).read_text(), f"{path}::{test}"


#: The Reformer's package (imports, paths, ``paper: reformer``) and the project's old name;
#: the docs may still say "the Reformer" in prose (the paper this kit was first built for).
REFORMER = re.compile(r"\breformer\b(?!-pytorch)|Reformer reproduction")


def test_nothing_of_the_reformer_reaches_the_project(project):
    mentions = []
    for rel in sorted(project_files(project)):
        try:
            text = (project / rel).read_text()
        except UnicodeDecodeError:
            continue
        mentions += [
            f"{rel}:{i}: {line.strip()[:100]}"
            for i, line in enumerate(text.splitlines(), 1)
            if REFORMER.search(line)
        ]
    assert not mentions, "\n".join(mentions)


def test_generated_python_passes_the_linters(project):
    ruff = str(BIN / "ruff")
    run([ruff, "check", "--no-cache", "."], project)
    run([ruff, "format", "--check", "--no-cache", "."], project)


def test_generated_project_passes_its_pre_commit_hooks(project, tmp_path):
    """`make lint` of a new project: every hook of its .pre-commit-config.yaml but DVC's
    (its pipeline has not run yet), on a first commit of exactly what copier wrote."""
    repo = Path(shutil.copytree(project, tmp_path / "repo", symlinks=True))
    git("init", "-q", cwd=repo)
    commit_all(repo, "start from the template")
    result = subprocess.run(
        [str(BIN / "pre-commit"), "run", "--all-files", "--show-diff-on-failure"],
        cwd=repo,
        env={**os.environ, "SKIP": "dvc-pre-commit"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_toy_paper_tests_and_doctests_pass_in_the_project(project):
    """Run by the ``pytest`` script, as the project's `make test` runs it: the project's folder
    is then on sys.path only through its pyproject.toml, ahead of tests/toy."""
    out = run(
        [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "tests/toy", "toy"],
        project,
        OMP_NUM_THREADS="1",
    )
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 14, out[-2000:]  # 3 tests, 11 doctests


def test_toy_paper_plugs_into_the_kit(project, tmp_path, monkeypatch):
    """The toy's task, model and evaluation through the kit's own functions."""
    import torch

    from repro.paper import Paper, load_paper
    from repro.training import evaluate_lm

    monkeypatch.syspath_prepend(str(project))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        monkeypatch.delitem(sys.modules, name)
    paper = load_paper(PACKAGE)
    assert isinstance(paper, Paper) and paper.name == PACKAGE
    assert paper.title == ANSWERS["paper_title"] and list(paper.tasks) == ["reversal"]

    task = paper.task("reversal")
    params = task.validate(dict(length=3, vocab_size=6, n_train=16, n_valid=4, n_test=8, seed=0))
    with pytest.raises(ValueError, match=r"^length = 0: must be an integer >= 1$"):
        task.validate({**params, "length": 0})
    data = task.prepare(tmp_path / "reversal", params)
    assert sorted(p.name for p in data.iterdir()) == [
        "manifest.json",
        "test.npy",
        "train.npy",
        "valid.npy",
    ]
    seq_len = task.seq_len(params, None)
    train = task.load_split(data, "train", seq_len)
    assert (len(train), train.vocab_size, seq_len, task.min_train_items(params)) == (16, 6, 7, 16)
    item = train[0]
    word = item["tokens"][:3]
    assert item["tokens"].tolist() == [*word.tolist(), 0, *word.flip(0).tolist()]
    assert item["loss_mask"].tolist() == [False, False, False, True, True, True, False]

    exp = SimpleNamespace(  # the fields of repro.config.ExperimentConfig the toy reads
        seq_len=seq_len,
        model=paper.model_config(d_model=8, n_heads=2, d_ff=16),
        evaluate=paper.evaluate_config(batch_size=4),
        train=SimpleNamespace(precision="fp32"),
    )
    built = paper.build_model(exp, train.vocab_size)
    assert built.core is built.trainable
    tokens = torch.stack([train[i]["tokens"] for i in range(4)])
    assert built.core(tokens).shape == (4, seq_len, 6)

    saved = {
        "model_class": type(built.core).__name__,
        "model_config": built.config,
        "state_dict": built.core.state_dict(),
    }
    restored = paper.load_model(saved)
    torch.testing.assert_close(restored(tokens), built.core(tokens))
    with pytest.raises(ValueError, match="model_class = 'Other'"):
        paper.load_model({**saved, "model_class": "Other"})

    result = paper.evaluate(exp, restored, data, torch.device("cpu"))
    expected = evaluate_lm(restored, task.load_split(data, "test", seq_len), 4, torch.device("cpu"))
    assert result.metrics["accuracy"] == round(expected["accuracy"], 6)
    assert result.summary == {
        "eval/accuracy": result.metrics["accuracy"],
        "eval/loss": result.metrics["loss"],
    }
    assert "accuracy" in result.line
    with pytest.raises(ValueError, match=r"model\.d_model = 30: must be a multiple"):
        paper.check_experiment(
            SimpleNamespace(model=paper.model_config(d_model=30, n_heads=4)), None
        )


# --- copier update ---------------------------------------------------------------------------


def test_update_brings_kit_changes_and_leaves_the_paper_alone(tmp_path):
    template = copy_working_tree(tmp_path / "template")
    git("tag", "v1", cwd=template)
    project = generate(template, tmp_path / "project", ref="v1")
    git("init", "-q", cwd=project)
    commit_all(project, "start from the template")

    # The team writes its paper: its own model, a new module, one toy file gone, its README.
    (project / "toy/model.py").write_text('"""Our paper\'s model."""\n')
    (project / "toy/attention.py").write_text('"""Our attention."""\n')
    (project / "toy/task.py").unlink()
    (project / "configs/smoke.yaml").write_text("# our smoke profile\n")
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nOur notes.\n")
    commit_all(project, "our paper")
    ours = {rel: (project / rel).read_bytes() for rel in project_files(project)}

    # The template fixes the kit (and changes its toy paper, which must not reach the team).
    loop, workflow = template / "repro/training/loop.py", template / ".github/workflows/ci.yml"
    loop.write_text(loop.read_text() + "\n# a fix in the training loop\n")
    workflow.write_text(workflow.read_text() + "# a fix in CI\n")
    toy_model = template / "template/{{ package_name }}/model.py"
    toy_model.write_text(toy_model.read_text() + "\n# the template's toy changed\n")
    commit_all(template, "kit fixes")
    git("tag", "v2", cwd=template)

    copier("update", "--defaults", "--vcs-ref", "v2", cwd=project)

    assert (
        (project / "repro/training/loop.py").read_text().endswith("# a fix in the training loop\n")
    )
    assert (project / ".github/workflows/ci.yml").read_text().endswith("# a fix in CI\n")
    assert not (project / "toy/task.py").exists()
    changed = sorted(
        rel
        for rel in project_files(project) | set(ours)
        if not (project / rel).is_file() or (project / rel).read_bytes() != ours.get(rel)
    )
    assert changed == [
        ".copier-answers.yml",
        ".github/workflows/ci.yml",
        "repro/training/loop.py",
    ]
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert recorded["_commit"] == "v2"
    assert not list(project.rglob("*.rej"))


# --- the generated project runs (slow) -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(1500)
def test_generated_project_runs_smoke_and_default_pipelines_and_its_tests(tmp_path):
    """What the generated README promises: `dvc repro` (smoke, then the default profile,
    whose claim is reproduced) and the fast tests, with this repository's environment, in
    which the Reformer's package is hidden as it is from a real project."""
    project = generate(ROOT, tmp_path / "reverse-repro")
    (project / ".venv").symlink_to(sys.prefix)  # dvc.yaml and the Makefile run .venv/bin/...
    hidden = tmp_path / "hidden" / "reformer"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'reformer'\", name='reformer')\n"
    )
    env = {"PYTHONPATH": str(hidden.parent), "OMP_NUM_THREADS": "1"}
    git("init", "-q", cwd=project)
    commit_all(project, "start from the template")
    python, dvc = str(project / ".venv/bin/python"), str(project / ".venv/bin/dvc")

    run([python, "-m", "repro.config", "use", "smoke"], project, **env)
    out = run([dvc, "repro"], project, timeout=600, **env)
    for stage in ("prepare@reversal", "train@reverse", "evaluate@reverse", "report"):
        assert f"Running stage '{stage}'" in out, out[-3000:]
    metrics = json.loads((project / "metrics/reverse.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["train_steps"] == 20
    assert (project / "report/build/report.pdf").stat().st_size > 10_000

    run([python, "-m", "repro.config", "use", "default"], project, **env)
    run([dvc, "repro"], project, timeout=900, **env)
    for exp in ("reverse", "reverse-2layer"):
        assert json.loads((project / f"metrics/{exp}.json").read_text())["accuracy"] >= 0.99
    macros = (project / "report/generated/macros.tex").read_text()
    assert re.search(r"\\newcommand\{\\ClaimsReproduced\}\{1\}", macros), macros[:2000]

    # `.venv/bin/pytest` as `make test` runs it (not `python -m pytest`, which would put the
    # project's folder on sys.path and hide a tests/repro folder taken for the package)
    pytest_bin = str(project / ".venv/bin/pytest")
    out = run(
        [pytest_bin, "-q", "-p", "no:cacheprovider", "-m", "not slow"],
        project,
        timeout=1200,
        **env,
    )
    assert " passed" in out and " failed" not in out, out[-3000:]

    # `make docs`: the generated project's Sphinx site, warnings as errors
    sphinx = str(project / ".venv/bin/sphinx-build")
    run([sphinx, "-E", "-W", "-n", "-q", "-b", "html", "docs", "docs/_build/html"], project, **env)
    assert (project / "docs/_build/html/api/generated/public.html").is_file()

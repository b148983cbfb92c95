"""Claims, verdicts and generated LaTeX, checked on real offline W&B runs written here.

A separate Python process writes the runs with wandb in offline mode, the way the pipeline
does: a training run with a history, then evaluation reopening it to add ``eval/...``
numbers to its summary. The expected verdicts below are worked out by hand from the
numbers in ``RUNS`` and the thresholds in ``report/claims.yaml``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from repro.reporting import (
    Claim,
    Macros,
    MissingRunError,
    evaluate_claim,
    experiments_from_params,
    format_number,
    generate,
    latex_escape,
    load_claims,
    load_runs,
    macro_name,
)
from repro.tracking.reader import Run

REPO = Path(__file__).resolve().parents[1]
CLAIMS = REPO / "report" / "claims.yaml"

# experiment -> accuracy by evaluation mode (None: the run crashed before evaluation)
RUNS: dict[str, dict[str, float] | None] = {
    "dup-full": {"full": 1.0, "lsh8": 0.62, "lsh4": 0.55, "lsh2": 0.41, "lsh1": 0.3},
    "dup-lsh4": {"full": 0.12, "lsh8": 0.995, "lsh4": 0.991, "lsh2": 0.93, "lsh1": 0.81},
    "dup-lsh1": {"full": 0.3, "lsh8": 0.93, "lsh4": 0.92, "lsh2": 0.88, "lsh1": 0.7},
    "dup-lsh2": None,
}

WRITER = textwrap.dedent(
    """
    import json, os, sys, wandb
    root, spec = sys.argv[1], json.loads(sys.argv[2])
    for exp, acc in spec.items():
        run = wandb.init(project="report-test", dir=root, name=exp, group="g-test",
                         config={"task": "duplication", "model": {"attention": exp[4:]},
                                 "train": {"steps": 100, "lr": 0.001}})
        for i in range(0, 101, 10):
            run.log({"train/loss": 3.0 / (i + 1), "train/accuracy": i / 100}, step=i)
        run_dir = os.path.relpath(os.path.dirname(run.dir), root)
        ref = {"experiment": exp, "mode": "offline", "run_dir": run_dir, "entity": None,
               "project": "report-test", "id": run.id, "group": "g-test", "url": None}
        os.makedirs(os.path.join(root, "models", exp), exist_ok=True)
        with open(os.path.join(root, "models", exp, "run.json"), "w") as f:
            json.dump(ref, f)
        if acc is None:
            run.finish(exit_code=1)  # failed before evaluation
            continue
        run.finish()
        run = wandb.init(project="report-test", dir=root, id=ref["id"], resume="allow")
        run.summary.update({f"eval/accuracy_{k}": v for k, v in acc.items()})
        run.finish()
        os.makedirs(os.path.join(root, "metrics"), exist_ok=True)
        with open(os.path.join(root, "metrics", exp + ".json"), "w") as f:
            json.dump({"accuracy": acc, "train_steps": 100, "final_train_loss": 3 / 101}, f)
    """
)


def wandb_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DIR=str(root),
        WANDB_CONFIG_DIR=str(root / ".config"),
        WANDB_CACHE_DIR=str(root / ".cache"),
        WANDB_DATA_DIR=str(root / ".data"),
        WANDB_DISABLE_GIT="true",
    )
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    script = root / "writer.py"
    script.write_text(WRITER)
    subprocess.run(
        [sys.executable, str(script), str(root), json.dumps(RUNS)],
        env=wandb_env(root),
        check=True,
        timeout=120,
    )
    (root / "params.yaml").write_text(
        "experiments:\n" + "".join(f"  {exp}: {{task: duplication}}\n" for exp in RUNS)
    )
    return root


@pytest.fixture(scope="module")
def runs(project: Path) -> dict[str, Run]:
    return load_runs(list(RUNS), root=project)


def _claim(claims: list[Claim], claim_id: str) -> Claim:
    return next(c for c in claims if c.id == claim_id)


# ----------------------------------------------------------------------------- verdicts


def test_runs_read_back_as_logged(runs: dict[str, Run]) -> None:
    assert runs["dup-lsh4"].summary["eval/accuracy_lsh8"] == 0.995
    assert runs["dup-lsh4"].state == "finished" and runs["dup-lsh2"].state == "crashed"
    assert runs["dup-full"].series("train/loss")[1][-1] == 3.0 / 101


def test_table2_claims_on_real_runs(runs: dict[str, Run]) -> None:
    claims = list(load_claims(CLAIMS).claims)
    expected = {
        # 99.1 % >= 99.9 - 5
        "lsh-four-eval-four": ("reproduced", 99.1),
        # 99.5 % >= 100 - 5
        "lsh-four-eval-eight": ("reproduced", 99.5),
        "full-eval-full": ("reproduced", 100.0),
        # 62 % < 94.8 - 5: the fast.ai side of the disagreement
        "full-eval-lsh-eight": ("not reproduced", 62.0),
        # 12 % > 0.8 + 5
        "lsh-four-eval-full": ("not reproduced", 12.0),
    }
    for claim_id, (verdict, ours) in expected.items():
        result = evaluate_claim(_claim(claims, claim_id), runs)
        assert result.verdict == verdict, claim_id
        assert result.ours == pytest.approx(ours), claim_id
    trend = evaluate_claim(_claim(claims, "lsh-one-more-rounds"), runs)
    assert trend.verdict == "reproduced"
    assert trend.ours == pytest.approx([70.0, 88.0, 92.0, 93.0])


def test_claims_without_runs_are_not_run_and_show_no_value(runs: dict[str, Run]) -> None:
    claims = load_claims(CLAIMS).claims
    for claim in claims:
        if claim.kind == "benchmark" or any(
            e.startswith(("enwik8", "wmt14")) for e in claim.experiments
        ):
            result = evaluate_claim(claim, runs, benchmark=None)
            assert (result.verdict, result.ours) == ("not run", None), claim.id
            assert result.note, claim.id


def test_comparisons_tolerances_and_missing_metrics(runs: dict[str, Run]) -> None:
    def claim(**kw) -> Claim:
        base = {"id": "c", "title": "t", "statement": "s", "where": "w", "scale": 100}
        return Claim(**{**base, **kw})

    lsh8 = {"experiments": ("dup-lsh4",), "metric": "eval/accuracy_lsh8"}  # ours: 99.5
    assert evaluate_claim(claim(paper=100, tolerance=0.4, **lsh8), runs).verdict == "not reproduced"
    assert evaluate_claim(claim(paper=100, tolerance=0.6, **lsh8), runs).verdict == "reproduced"
    at_most = claim(paper=99, tolerance=0.4, comparison="at_most", **lsh8)
    assert evaluate_claim(at_most, runs).verdict == "not reproduced"
    within = claim(paper=99.7, tolerance=0.25, comparison="within", **lsh8)
    assert evaluate_claim(within, runs).verdict == "reproduced"
    # difference: 99.5 - 62.0 = 37.5 points
    diff = claim(
        kind="difference",
        experiments=("dup-lsh4", "dup-full"),
        metric="eval/accuracy_lsh8",
        threshold=37.0,
    )
    result = evaluate_claim(diff, runs)
    assert result.ours == pytest.approx(37.5) and result.verdict == "reproduced"
    # a trend over experiments that goes down by more than the tolerance: 93.0 -> 62.0
    trend = claim(kind="trend", experiments=("dup-lsh1", "dup-full"), metric="eval/accuracy_lsh8")
    assert evaluate_claim(trend, runs).verdict == "not reproduced"
    # the crashed run has no evaluation: not run, and the note says why
    crashed = evaluate_claim(
        claim(paper=100, experiments=("dup-lsh2",), metric="eval/accuracy_lsh2"), runs
    )
    assert crashed.verdict == "not run" and "dup-lsh2 has no eval/accuracy_lsh2" in crashed.note
    missing = evaluate_claim(claim(paper=1, experiments=("dup-lsh4",), metric="eval/nope"), runs)
    assert (missing.verdict, missing.ours) == ("not run", None)


def test_benchmark_claims() -> None:
    claims = load_claims(CLAIMS).claims
    bench = {
        "attention_time": {
            "x": [1024, 65536],
            "series": {"lsh1": [0.04, 0.06], "full": [0.05, None]},
        },
        "depth_memory": {"x": [2, 12], "series": {"reversible": [400.0, 600.0]}},
    }
    flat = evaluate_claim(_claim(list(claims), "lsh-time-flat"), {}, bench)
    assert flat.ours == pytest.approx(1.5) and flat.verdict == "reproduced"  # <= 2.0
    memory = evaluate_claim(_claim(list(claims), "reversible-memory"), {}, bench)
    assert memory.ours == pytest.approx(1.5) and memory.verdict == "not reproduced"  # > 1.2
    # full attention has a single finite point: longest/shortest over it is 1 -> not >= 4
    grows = evaluate_claim(_claim(list(claims), "full-time-grows"), {}, bench)
    assert grows.verdict == "not reproduced"


def test_bad_claims_files(tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    good = "{id: a, title: t, statement: s, where: w, paper: 1, experiments: [e], metric: m}"
    path.write_text(f"claims:\n  - {good[:-1]}, comparison: roughly}}\n")
    with pytest.raises(ValueError, match=r"comparison='roughly' is not allowed") as info:
        load_claims(path)
    assert "\n" not in str(info.value) and "claims[0] (a)" in str(info.value)
    path.write_text(f"claims:\n  - {good}\n  - {good}\n")
    with pytest.raises(ValueError, match="ids must be unique"):
        load_claims(path)
    path.write_text(f"claims:\n  - {good[:-1]}, tolerence: 1}}\n")
    with pytest.raises(ValueError, match="key='tolerence'"):
        load_claims(path)


# ----------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "digits", "signed", "text"),
    [
        (99.123, 1, False, "99.1"),
        (0.05, 3, False, "0.050"),
        (None, 1, False, "---"),
        (-0.0004, 2, False, "0.00"),
        (0.0123, 3, True, "+0.012"),
        (-1.5, 1, True, "$-$1.5"),
        (float("nan"), 1, False, "NaN"),
    ],
)
def test_format_number(value: float | None, digits: int, signed: bool, text: str) -> None:
    assert format_number(value, digits, signed=signed) == text


def test_macro_names_and_definitions() -> None:
    assert macro_name("acc", "lsh4", "eval", "lsh8") == "AccLshFourEvalLshEight"
    assert macro_name("dup-lsh2") == "DupLshTwo"
    assert macro_name("enwik8-12l") == "EnwikEightTwelveL"
    macros = Macros()
    macros.add("Good", "1")
    with pytest.raises(ValueError, match="defined twice"):
        macros.add("Good", "2")
    with pytest.raises(ValueError, match="only letters"):
        macros.add("Acc4", "1")
    with pytest.raises(ValueError, match="hold no letters"):
        macro_name("--")


@pytest.mark.skipif(
    shutil.which("pdflatex") is None or shutil.which("pdftotext") is None,
    reason="needs pdflatex and pdftotext",
)
def test_latex_escape_prints_the_original_text(tmp_path: Path) -> None:
    """The escaped text, typeset by LaTeX and read back, is the text we started from."""
    text = r"a_b 50% & $5 #1 {x} ~ ^ back\slash"
    (tmp_path / "t.tex").write_text(
        "\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{lmodern}"
        f"\\newcommand{{\\Sample}}{{{latex_escape(text)}}}"
        "\\begin{document}\\pagestyle{empty}START \\Sample{} END\\end{document}\n"
    )
    subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=60,
    )
    out = subprocess.run(
        ["pdftotext", "t.pdf", "-"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    shown = re.search(r"START (.*) END", out, re.S)
    assert shown is not None and shown.group(1).strip() == text


# ----------------------------------------------------------------------------- generation


def test_generate_writes_macros_tables_and_figures(runs: dict[str, Run], tmp_path: Path) -> None:
    summary = generate(runs, CLAIMS, tmp_path, experiments=list(RUNS))
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
    assert defs["DupFullRunId"] == latex_escape(runs["dup-full"].id)
    assert defs["DupFullFinalLoss"] == f"{3 / 101:.3f}"
    assert defs["ClaimSharedQkOurs"] == "---" and defs["ClaimSharedQkVerdict"] == "not run"
    assert r"\newcommand{\IfRunDupFull}[2]{#1}" in macros
    assert r"\newcommand{\CaseClaimFullEvalLshEight}[3]{#2}" in macros
    counts = summary.counts()
    assert defs["ClaimsReproduced"] == str(counts["reproduced"]) and counts["reproduced"] >= 4
    # every macro a generated table uses is defined
    for name in ("table2.tex", "claims.tex", "runs.tex"):
        used = set(re.findall(r"\\([A-Z][A-Za-z]+)", (tmp_path / name).read_text()))
        assert used - {"Paper", "Fastai"} <= set(names), name
    assert (tmp_path / "fig-training.pdf").read_bytes().startswith(b"%PDF")
    assert "Not run" in (tmp_path / "benchmark.tex").read_text()
    assert "Not run" in (tmp_path / "budget.tex").read_text()


def test_generate_is_deterministic(runs: dict[str, Run], tmp_path: Path) -> None:
    generate(runs, CLAIMS, tmp_path / "a", experiments=list(RUNS))
    generate(runs, CLAIMS, tmp_path / "b", experiments=list(RUNS))
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


# ----------------------------------------------------------------------------- runs and params


def test_missing_run_names_the_experiment(project: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingRunError, match=r"experiment 'dup-lsh8' has no run file .*run\.json"):
        load_runs(["dup-full", "dup-lsh8"], root=project)
    params = tmp_path / "params.yaml"
    params.write_text("experiments:\n  dup-full: {}\n  dup-lsh8: {}\n")
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "pipelines" / "report.py"),
            "--root",
            str(project),
            "--params",
            str(params),
            "--no-pdf",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "dup-lsh8" in lines[0] and "dup-full" not in lines[0]


def test_experiments_from_params() -> None:
    assert experiments_from_params({"experiments": {"a": {}, "b": {}}}) == ["a", "b"]
    assert experiments_from_params({"experiments": ["a", {"name": "b"}]}) == ["a", "b"]
    with pytest.raises(ValueError, match="experiments=None"):
        experiments_from_params({"tasks": {}})


def _report_module():
    spec = importlib.util.spec_from_file_location("report_stage", REPO / "pipelines" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metrics_file_must_agree_with_the_run(runs: dict[str, Run], tmp_path: Path) -> None:
    report = _report_module()
    metrics = tmp_path / "dup-lsh4.json"
    metrics.write_text(json.dumps({"accuracy": {**RUNS["dup-lsh4"], "lsh4": 0.5}}))  # type: ignore[dict-item]
    with pytest.raises(report.ReportError, match=r"'dup-lsh4'.*accuracy\.lsh4=0\.5.*0\.991"):
        report.check_metrics("dup-lsh4", runs["dup-lsh4"], metrics)
    metrics.write_text(json.dumps({"accuracy": {"lsh16": 0.9}}))
    notes = report.check_metrics("dup-lsh4", runs["dup-lsh4"], metrics)
    assert len(notes) == 1 and "eval/accuracy_lsh16" in notes[0]


# ----------------------------------------------------------------------------- budget tables


def _budget_row(name: str, params: int, hours: float) -> dict:
    # shaped like a row of `python -m reformer.budget --json`
    return {
        "experiment": name,
        "params": params,
        "tokens_per_step": 32768,
        "attention_flops": 7.42e12,
        "ff_flops": 5.77e12,
        "total_flops": 13.3e12,
        "activation_bytes": 2 * 2**30,
        "table3_bytes": 3 * 2**29,
        "steps": 100000,
        "gpu_hours": hours,
    }


def test_budget_tables_have_units_readable_numbers_and_a_total() -> None:
    from repro.reporting import _budget, format_significant

    a100 = {"params_file": "params.yaml", "accelerator": "a100", "peak_tflops": 312.0, "mfu": 0.3}
    h100 = {
        "params_file": "configs/paper.yaml",
        "accelerator": "h100",
        "peak_tflops": 989.0,
        "mfu": 0.4,
    }
    data = {
        "assumptions": a100,
        "experiments": [_budget_row("dup-full", 145_000, 5.97e-6)],
        "paper": {
            "assumptions": h100,
            "experiments": [
                _budget_row("enwik8-lsh4", 35_600_000, 3.94),
                _budget_row("wmt14_big", 210_000_000, 1.06),
            ],
        },
    }
    tex = _budget(data)
    current, paper = tex.split("\n\n")
    for table in (current, paper):
        for header in (
            "Experiment",
            "Parameters (M)",
            "Tokens per step",
            "Steps",
            r"\multicolumn{3}{c}{TFLOP per step}",
            "Attention",
            "Feed-forward",
            "Training (PFLOP)",
            r"\multicolumn{2}{c}{Activations per device (GiB)}",
            "Ours",
            "Table~3",
        ):
            assert header in table, header
        assert "_" not in table.split(r"\midrule")[0].split(r"\toprule")[1]  # no raw keys
    assert r"A100-hours at 30\% MFU \\" in current and r"\label{tab:budget}" in current
    assert r"H100-hours at 40\% MFU \\" in paper and r"\label{tab:budget-paper}" in paper
    # 13.3e12 FLOPs per step = 13.3 TFLOP; x 100,000 steps = 1.33e18 = 1,330 PFLOP;
    # 2 x 2^30 bytes = 2.00 GiB, 1.5 x 2^30 = 1.50 GiB
    cells = "enwik8-lsh4 & 35.6 & 32,768 & 100,000 & 7.42 & 5.77 & 13.3 & 1,330 & 2.00 & 1.50"
    assert cells + r" & 3.94 \\" in paper
    assert r"wmt14\_big & 210 &" in paper
    assert r"dup-full & 0.145 &" in current and r"5.97$\times 10^{-6}$ \\" in current
    # total row: training compute and hours add up, the per-experiment columns do not
    assert r"Total &  &  &  &  &  &  & 2,660 &  &  & 5.00 \\" in paper
    assert "5.00 H100-hours in total at 40\\% MFU" in paper
    assert format_significant(-0.012345) == "$-$0.0123"


def test_budget_table_of_older_files_and_of_the_paper_profile_itself() -> None:
    from repro.reporting import _budget

    rows = [_budget_row("dup-full", 145_000, 2.0)]
    old = _budget(rows)  # a bare list of rows: no assumptions, so no accelerator name
    assert r"& GPU-hours \\" in old and "tab:budget-paper" not in old
    # params.yaml is the paper profile: one table, said to be the paper profile
    same = _budget({"assumptions": {}, "experiments": rows, "paper": {"experiments": rows}})
    assert same.count(r"\begin{table}") == 1 and "the paper profile" in same
    assert "Not run" in _budget(None) and "Not run" in _budget({"experiments": []})

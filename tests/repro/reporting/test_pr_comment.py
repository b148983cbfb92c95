"""The pull-request comment: metrics folders compared, formatted, plotted and collected.

The slow test renders the comment from two real smoke runs made the way the workflow makes
them (``scripts/pr_metrics.sh``): a base commit and a head that lowers the smoke profile's
learning rate, and checks every number of the comment against the metrics files themselves.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import committed_copy, git_env

from repro.reporting.pr_comment import (
    MARKER,
    ExperimentDiff,
    collect,
    compare,
    flatten,
    format_change,
    format_value,
    main,
    render,
)
from repro.reporting.pr_curves import plot

METRICS = {
    "accuracy": {"full": 0.5, "lsh1": 0.25},
    "train_steps": 20,
    "final_train_loss": 1.9328,
    "bleu": {"beam": {"cased": 90.06}},
    "sacrebleu_signature": "nrefs:1|case:mixed",
    "converged": True,
    "lengths": [1, 2],
    "missing": float("nan"),
}


def write_folder(folder: Path, runs: dict[str, dict], params: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, metrics in runs.items():
        (folder / f"{name}.json").write_text(json.dumps(metrics))
    if params is not None:
        (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR), read without matplotlib."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_flatten_keeps_the_numbers_only():
    assert flatten(METRICS) == {
        "accuracy.full": 0.5,
        "accuracy.lsh1": 0.25,
        "train_steps": 20,
        "final_train_loss": 1.9328,
        "bleu.beam.cased": 90.06,
    }


def test_compare_marks_changes_new_and_removed():
    base = {"a": {"x": 1.0, "y": 2.0, "gone": 3.0}, "old": {"x": 1.0}}
    head = {"a": {"x": 1.00005, "y": 2.5, "new": 4}, "fresh": {"x": 7.0}}
    assert compare(base, head) == [
        ExperimentDiff(
            "a", "compared", [("y", 2.0, 2.5), ("gone", 3.0, None), ("new", None, 4)], 1
        ),
        ExperimentDiff("fresh", "new", [("x", None, 7.0)]),
        ExperimentDiff("old", "removed", [("x", 1.0, None)]),
    ]
    # the tolerance is relative: 1.00005 vs 1.0 is 5e-5, a change only below rtol=1e-5
    assert compare({"a": {"x": 1.0}}, {"a": {"x": 1.00005}}, rtol=1e-5)[0].rows == [
        ("x", 1.0, 1.00005)
    ]


def test_numbers_are_formatted_consistently():
    assert [format_value(v) for v in (20, 0.123456, 0.174, 123456.7, 1e-7, 2.0, None)] == [
        "20",
        "0.1235",
        "0.1740",
        "1.235e+05",
        "1.000e-07",
        "2.000",
        "—",
    ]
    assert format_change(0.1823, 0.1667) == "-0.01560 (-8.56%)"
    assert format_change(94.26, 84.42) == "-9.840 (-10.4%)"
    assert format_change(20, 300) == "+280 (+1.40e+03%)"
    assert format_change(0.0, 0.5) == "+0.5000"  # no relative change from zero


def test_render_tables_notes_params_and_link(tmp_path):
    base = write_folder(
        tmp_path / "base",
        {"dup": {"acc": 0.5, "loss": 2.0, "steps": 20}, "old": {"acc": 0.1}},
        {"train": {"lr": 0.003, "steps": 20}},
    )
    head = write_folder(
        tmp_path / "head",
        {"dup": {"acc": 0.75, "loss": 2.0, "steps": 20}, "new|x": {"acc": 0.9}},
        {"train": {"lr": 0.001, "steps": 20}},
    )
    text = render(base, head, base_label="main", head_label="pr", plot_url="https://x/y")
    assert text.startswith(MARKER + "\n### Smoke metrics: pr against main\n")
    assert "**3 of 3 experiments changed.**" in text
    assert "**dup**: 1 changed, 2 unchanged\n\n| metric | base | head | change |" in text
    assert "| acc | 0.5000 | 0.7500 | +0.2500 (+50.0%) |" in text
    assert "**new|x** (new experiment): 1 metrics" in text
    assert "| acc | — | 0.9000 | new |" in text
    assert "**old** (removed experiment): 1 metrics on the base" in text
    assert "[Training curves (PNG)](https://x/y): main dashed, pr solid." in text
    assert "<summary>Smoke params that differ: 1</summary>" in text
    assert "| train.lr | 0.003 | 0.001 |" in text
    assert "loss" not in text.split("| acc | 0.5000")[1].split("**")[0]  # unchanged: not listed


def test_render_without_base_metrics_says_why(tmp_path):
    head = write_folder(tmp_path / "head", {"dup": {"acc": 0.75}}, {"seed": 0})
    text = render(tmp_path / "nothing", head, base_error="the smoke run of main failed: boom")
    assert "> the smoke run of main failed: boom; every experiment shows as new." in text
    assert "Smoke params" not in text  # one side did not run: no params difference
    assert "> base has no smoke metrics" in render(tmp_path / "nothing", head)


def test_collect_copies_exactly_the_profile_experiments(tmp_path):
    root = tmp_path / "run"
    (root / "metrics" / "curves").mkdir(parents=True)
    (root / "params.yaml").write_text("experiments:\n  a: {}\n  b: {}\n")
    for name in ("a", "b", "stale-profile"):
        (root / "metrics" / f"{name}.json").write_text('{"acc": 1}')
        (root / "metrics" / "curves" / f"{name}.csv").write_text("step,train_loss\n1,2\n")
    out = write_folder(tmp_path / "out", {"removed": {"acc": 0}})
    assert collect(root, out) == ["a", "b"]
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["a.json", "b.json", "curves/a.csv", "curves/b.csv", "params.yaml"]
    (root / "metrics" / "b.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"b\.json: missing; did evaluate@b run\?"):
        collect(root, out)


def test_plot_draws_every_experiment_of_either_side(tmp_path):
    header = "step,train_loss,train_accuracy,lr,valid_loss,valid_accuracy\n"
    for side, names in (("base", ["a"]), ("head", ["a", "b"])):
        (tmp_path / side / "curves").mkdir(parents=True)
        for name in names:
            rows = [f"{s},{2 - s / 10},{s / 10},0.001,{2 - s / 20}," for s in (5, 10)]
            (tmp_path / side / "curves" / f"{name}.csv").write_text(header + "\n".join(rows))
    out = plot(tmp_path / "base", tmp_path / "head", tmp_path / "curves.png")
    width, height = png_size(out)
    # two rows (a, b) of three panels (accuracy, loss, lr) at 100 dpi
    assert 800 < width < 1100 and 400 < height < 560, (width, height)
    with pytest.raises(ValueError, match="no curves"):
        plot(tmp_path / "none", tmp_path / "none", tmp_path / "x.png")


def test_command_line_errors_are_one_line(tmp_path, capsys):
    bad = write_folder(tmp_path / "bad", {})
    (bad / "x.json").write_text("{not json")
    assert main(["render", str(bad), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pr_comment render: ") and "x.json: not valid JSON" in err
    assert err.count("\n") == 1
    assert main(["render", str(tmp_path), str(tmp_path), "--rtol", "-1"]) == 1
    assert capsys.readouterr().err == "pr_comment render: --rtol must be >= 0, got -1.0\n"


# --- two real smoke runs (slow) --------------------------------------------------------


def table_rows(section: str) -> dict[str, tuple[str, str]]:
    """metric -> (base, head) cells of one experiment's table in the comment."""
    rows = re.findall(r"^\| ([^|]+) \| ([^|]+) \| ([^|]+) \| [^|]+ \|$", section, re.M)
    return {m: (b, h) for m, b, h in rows if m not in ("metric", "---")}


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_comment_from_two_real_smoke_runs(tmp_path):
    repo = committed_copy(tmp_path / "repo")
    smoke = repo / "configs" / "smoke.yaml"
    text = smoke.read_text()
    params = yaml.safe_load(text)
    old_lr = params["train"]["lr"]
    # the head lowers the smoke profile's default learning rate
    lines = text.splitlines(keepends=True)
    train = lines.index("train:\n")
    at = next(i for i in range(train, len(lines)) if lines[i].startswith("  lr:"))
    lines[at] = "  lr: 1.0e-3\n"
    smoke.write_text("".join(lines))
    assert yaml.safe_load(smoke.read_text())["train"]["lr"] == 1e-3 != old_lr
    subprocess.run(["git", "commit", "-qam", "lower lr"], cwd=repo, check=True, env=git_env())
    subprocess.run(["git", "branch", "base", "HEAD~1"], cwd=repo, check=True, env=git_env())

    out = tmp_path / "pr-metrics"
    result = subprocess.run(
        ["bash", "scripts/pr_metrics.sh", "base", str(out)],
        cwd=repo,
        env=git_env(),
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (out / "base-error.txt").read_text() == ""
    comment = (out / "comment.md").read_text()
    print(comment)  # the rendered comment, for the record (pytest -s)
    assert comment.startswith(MARKER)
    assert f"| train.lr | {old_lr} | 0.001 |" in comment
    assert not subprocess.run(  # the head's working tree kept its own profile
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()

    sections = dict(
        re.findall(r"^\*\*([\w-]+)\*\*(.*?)(?=^\*\*|^\[Training|\Z)", comment, re.M | re.S)
    )
    experiments = list(params["experiments"])
    assert sorted(sections) == sorted(experiments)
    changed = 0
    for name in experiments:
        base = flatten(json.loads((out / "base" / f"{name}.json").read_text()))
        head = flatten(json.loads((out / "head" / f"{name}.json").read_text()))
        assert base.keys() == head.keys()
        rows = table_rows(sections[name])
        # every metric that moved is in the table, with both values to 4 significant digits
        moved = {k for k in base if not math.isclose(base[k], head[k], rel_tol=1e-4)}
        assert set(rows) == moved, (name, rows, moved)
        for key, (b, h) in rows.items():
            assert math.isclose(float(b), base[key], rel_tol=1e-3), (key, b, base[key])
            assert math.isclose(float(h), head[key], rel_tol=1e-3), (key, h, head[key])
        assert f": {len(moved)} changed, {len(base) - len(moved)} unchanged" in sections[name]
        changed += bool(moved)
    assert changed >= 1
    # an experiment with its own learning rate is untouched by the change
    for name, spec in params["experiments"].items():
        if "lr" in (spec.get("train") or {}):
            assert ": 0 changed" in sections[name], name
    width, height = png_size(out / "curves.png")
    assert width > 600 and height > 200 * len(experiments)

"""Claims and verdicts, checked on real offline W&B runs (see ``reporting_runs.py``).

The claims are the fixture paper's (``tests/repro/minipaper/claims.yaml``); the expected
verdicts below are worked out by hand from the numbers in ``RUNS`` and its thresholds. The
reproduced paper's own claims file has its tests beside the paper's other tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reporting_runs import CLAIMS

from repro.reporting import Claim, evaluate_claim, load_claims
from repro.tracking.reader import Run


def _claim(claims: list[Claim], claim_id: str) -> Claim:
    return next(c for c in claims if c.id == claim_id)


def test_runs_read_back_as_logged(runs: dict[str, Run]) -> None:
    assert runs["copy-r4"].summary["eval/accuracy_r8"] == 0.995
    assert runs["copy-r4"].state == "finished" and runs["copy-r2"].state == "crashed"
    assert runs["copy-full"].series("train/loss")[1][-1] == 3.0 / 101


def test_value_and_trend_claims_on_real_runs(runs: dict[str, Run]) -> None:
    claims = list(load_claims(CLAIMS).claims)
    expected = {
        # 99.1 % >= 99.9 - 5
        "r-four-eval-four": ("reproduced", 99.1),
        # 99.5 % >= 100 - 5
        "r-four-eval-eight": ("reproduced", 99.5),
        "full-eval-full": ("reproduced", 100.0),
        # 62 % < 94.8 - 5
        "full-eval-r-eight": ("not reproduced", 62.0),
        # 12 % > 0.8 + 5
        "r-four-eval-full": ("not reproduced", 12.0),
    }
    for claim_id, (verdict, ours) in expected.items():
        result = evaluate_claim(_claim(claims, claim_id), runs)
        assert result.verdict == verdict, claim_id
        assert result.ours == pytest.approx(ours), claim_id
    trend = evaluate_claim(_claim(claims, "r-one-more-rounds"), runs)
    assert trend.verdict == "reproduced"
    assert trend.ours == pytest.approx([70.0, 88.0, 92.0, 93.0])


def test_claims_without_runs_are_not_run_and_show_no_value(runs: dict[str, Run]) -> None:
    claims = load_claims(CLAIMS).claims
    for claim in claims:
        if claim.kind == "benchmark" or any(e.startswith("text-") for e in claim.experiments):
            result = evaluate_claim(claim, runs, benchmark=None)
            assert (result.verdict, result.ours) == ("not run", None), claim.id
            assert result.note, claim.id


def test_comparisons_tolerances_and_missing_metrics(runs: dict[str, Run]) -> None:
    def claim(**kw) -> Claim:
        base = {"id": "c", "title": "t", "statement": "s", "where": "w", "scale": 100}
        return Claim(**{**base, **kw})

    r8 = {"experiments": ("copy-r4",), "metric": "eval/accuracy_r8"}  # ours: 99.5
    assert evaluate_claim(claim(paper=100, tolerance=0.4, **r8), runs).verdict == "not reproduced"
    assert evaluate_claim(claim(paper=100, tolerance=0.6, **r8), runs).verdict == "reproduced"
    at_most = claim(paper=99, tolerance=0.4, comparison="at_most", **r8)
    assert evaluate_claim(at_most, runs).verdict == "not reproduced"
    within = claim(paper=99.7, tolerance=0.25, comparison="within", **r8)
    assert evaluate_claim(within, runs).verdict == "reproduced"
    # difference: 99.5 - 62.0 = 37.5 points
    diff = claim(
        kind="difference",
        experiments=("copy-r4", "copy-full"),
        metric="eval/accuracy_r8",
        threshold=37.0,
    )
    result = evaluate_claim(diff, runs)
    assert result.ours == pytest.approx(37.5) and result.verdict == "reproduced"
    # a trend over experiments that goes down by more than the tolerance: 93.0 -> 62.0
    trend = claim(kind="trend", experiments=("copy-r1", "copy-full"), metric="eval/accuracy_r8")
    assert evaluate_claim(trend, runs).verdict == "not reproduced"
    # the crashed run has no evaluation: not run, and the note says why
    crashed = evaluate_claim(
        claim(paper=100, experiments=("copy-r2",), metric="eval/accuracy_r2"), runs
    )
    assert crashed.verdict == "not run" and "copy-r2 has no eval/accuracy_r2" in crashed.note
    missing = evaluate_claim(claim(paper=1, experiments=("copy-r4",), metric="eval/nope"), runs)
    assert (missing.verdict, missing.ours) == ("not run", None)


def test_benchmark_claims() -> None:
    claims = load_claims(CLAIMS).claims
    bench = {
        "step_time": {
            "x": [1024, 65536],
            "series": {"plain": [0.04, 0.06], "fancy": [0.05, None]},
        },
        "depth_memory": {"x": [2, 12], "series": {"shared": [400.0, 600.0]}},
    }
    flat = evaluate_claim(_claim(list(claims), "time-flat"), {}, bench)
    assert flat.ours == pytest.approx(1.5) and flat.verdict == "reproduced"  # <= 2.0
    memory = evaluate_claim(_claim(list(claims), "memory-flat"), {}, bench)
    assert memory.ours == pytest.approx(1.5) and memory.verdict == "not reproduced"  # > 1.2
    # the fancy series has a single finite point: longest/shortest over it is 1 -> not >= 4
    grows = evaluate_claim(_claim(list(claims), "time-grows"), {}, bench)
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
    # a count of converged runs: several runs of one model, and the value that counts
    seeds = "{id: s, title: t, statement: s, where: w, threshold: 5, kind: converged"
    path.write_text(f"claims:\n  - {seeds}, experiments: [a, b], metric: m}}\n")
    with pytest.raises(ValueError, match=r"converged_at=None") as info:
        load_claims(path)
    assert "\n" not in str(info.value)
    path.write_text(f"claims:\n  - {seeds}, experiments: [a], metric: m, converged_at: 9}}\n")
    with pytest.raises(ValueError, match=r"experiments=\['a'\].*2\+, with a metric"):
        load_claims(path)
    path.write_text(f"claims:\n  - {seeds}, experiments: [a, b], metric: m, converged_at: 9}}\n")
    assert load_claims(path).claims[0].converged_at == 9


# ----------------------------------------------------------------------------- sources, tables


def test_the_claims_file_quotes_other_reproductions_by_source() -> None:
    """``others``: other reproductions' numbers, keyed by the file's ``sources``."""
    spec = load_claims(CLAIMS)
    assert spec.sources == {"other": "Another reproduction (2024)"}
    claims = {c.id: c for c in spec.claims}
    assert claims["r-four-eval-four"].others == {"other": 99.77}
    assert claims["full-eval-r-eight"].others == {"other": 1.37}
    assert claims["fancy"].others == {"other": 0.11}
    assert [t["type"] for t in spec.tables] == ["modes"]
    assert spec.tables[0]["name"] == "modes"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a source the file does not declare
        (
            "claims:\n  - {id: a, title: t, statement: s, where: w, paper: 1, "
            "experiments: [e], metric: m, others: {fastai: 1}}\n",
            r"claims\[0\] \(a\): others='fastai' is not allowed \(keys of sources: \(none\)\)",
        ),
        (
            "sources: {x: X}\nclaims:\n  - {id: a, title: t, statement: s, where: w, paper: 1, "
            "experiments: [e], metric: m, others: {x: high}}\n",
            r"others\.x='high' is not allowed \(a number is required\)",
        ),
        ("sources: [fastai]\nclaims: []\n", r"sources=\['fastai'\] is not allowed"),
        # the old top-level table2 section points to its replacement
        ("table2: {}\nclaims: []\n", r"key='table2' is not allowed .*under tables: with a type"),
        ("tables: {type: t}\nclaims: []\n", r"tables=\{'type': 't'\} is not allowed"),
        ("tables: [{name: t}]\nclaims: []\n", r"tables\[0\]: type=None is not allowed"),
        ("tables: [{type: t, name: a/b}]\nclaims: []\n", r"tables\[0\]: name='a/b'"),
        ("tables: [{type: t}, {type: t}]\nclaims: []\n", r"tables\[1\]: name='t' .*taken"),
        ("tables: [{type: claims}]\nclaims: []\n", r"tables\[0\]: name='claims' .*taken"),
    ],
)
def test_bad_sources_and_tables_are_one_line_errors(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load_claims(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)

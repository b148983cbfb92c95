"""The verdict of each claim: ``reproduced``, ``not reproduced`` or ``not run``.

:func:`evaluate_claim` tests a claim of ``report/claims.yaml`` (:mod:`repro.reporting.claims`)
against the runs that exist and the benchmark results. A claim whose runs or numbers do not
exist is ``not run`` and shows no value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from repro.reporting.claims import Claim
from repro.reporting.runs import run_metric
from repro.tracking.reader import Run

__all__ = ["ClaimResult", "Verdict", "evaluate_claim"]

Verdict = Literal["reproduced", "not reproduced", "not run"]


@dataclass(frozen=True)
class ClaimResult:
    """A claim's outcome.

    Attributes:
        claim: the claim.
        ours: our number in the claim's unit, a list for a trend, or ``None`` (not run).
        verdict: ``reproduced``, ``not reproduced`` or ``not run``.
        note: why, in a few words (which run or key is missing, a crashed run).
    """

    claim: Claim
    ours: float | list[float] | None
    verdict: Verdict
    note: str = ""


def _benchmark_measure(
    benchmark: Mapping[str, Any] | None, spec: Mapping[str, str]
) -> tuple[float | None, str]:
    if benchmark is None:
        return None, "no benchmark results"
    section = benchmark.get(spec["section"])
    series = section.get("series", {}).get(spec["series"]) if isinstance(section, Mapping) else None
    values = [float(v) for v in series or [] if isinstance(v, int | float)]
    if not values:
        return None, f"benchmark has no {spec['section']}.{spec['series']}"
    measure = spec["measure"]
    if measure == "last":
        return values[-1], ""
    if measure == "first":
        return values[0], ""
    if measure == "last_over_first":
        return values[-1] / values[0], ""
    if measure == "first_over_last":
        return values[0] / values[-1], ""
    return max(values) / min(values), ""


def evaluate_claim(
    claim: Claim, runs: Mapping[str, Run], benchmark: Mapping[str, Any] | None = None
) -> ClaimResult:
    """Test one claim against the runs (and benchmark results) that exist.

    Args:
        claim: the claim.
        runs: experiment name -> :class:`~repro.tracking.reader.Run`.
        benchmark: the parsed ``metrics/benchmark.json``, if it exists.

    Returns:
        The :class:`ClaimResult`; ``not run`` whenever a run or number is missing.

    Example:
        >>> claim = Claim("full-solves", "t", "s", "Table 2", paper=100, unit="%", scale=100,
        ...               experiments=("dup-full",), metric="eval/accuracy_full", tolerance=5)
        >>> run = Run("id", None, None, {}, {"eval/accuracy_full": 0.97}, [], "finished", "")
        >>> evaluate_claim(claim, {"dup-full": run}).verdict
        'reproduced'
        >>> evaluate_claim(claim, {}).verdict, evaluate_claim(claim, {}).ours
        ('not run', None)
    """
    notes: list[str] = []

    def get(exp: str, key: str) -> float | None:
        value, note = run_metric(runs, exp, key)
        if note and note not in notes:
            notes.append(note)
        return None if value is None else value * claim.scale

    ours: float | list[float] | None
    if claim.kind == "benchmark":
        assert claim.benchmark is not None
        ours, note = _benchmark_measure(benchmark, claim.benchmark)
        notes += [note] if note else []
    elif claim.kind == "value":
        ours = get(claim.experiments[0], claim.metric or "")
    elif claim.kind == "difference":
        a, b = (get(exp, claim.metric or "") for exp in claim.experiments)
        ours = None if a is None or b is None else a - b
    elif claim.kind == "converged":  # every seed's run must exist: a missing one is no count
        found = [get(exp, claim.metric or "") for exp in claim.experiments]
        at = float(claim.converged_at or 0.0)
        below = claim.direction == "decreasing"  # a loss: converged at or below the bound
        ours = (
            None
            if any(v is None for v in found)
            else float(sum(1 for v in found if v is not None and (v <= at if below else v >= at)))
        )
    else:
        if len(claim.metrics) == len(claim.experiments):  # one metric per experiment
            pairs = list(zip(claim.experiments, claim.metrics, strict=True))
        elif claim.metrics:  # several metrics of one experiment
            pairs = [(claim.experiments[0], key) for key in claim.metrics]
        else:  # one metric over several experiments
            pairs = [(exp, claim.metric or "") for exp in claim.experiments]
        values = [get(exp, key) for exp, key in pairs]
        ours = (
            None if any(v is None for v in values) else [float(v) for v in values if v is not None]
        )

    note = "; ".join(n for n in notes if n)
    if ours is None:
        return ClaimResult(claim, None, "not run", note)
    if isinstance(ours, list):
        sign = 1.0 if claim.direction == "increasing" else -1.0
        ok = all(sign * (b - a) >= -claim.tolerance for a, b in zip(ours, ours[1:], strict=False))
    else:
        bound = claim.bound()
        assert bound is not None
        if claim.comparison == "at_least":
            ok = ours >= bound
        elif claim.comparison == "at_most":
            ok = ours <= bound
        else:
            ok = abs(ours - bound) <= claim.tolerance
    return ClaimResult(claim, ours, "reproduced" if ok else "not reproduced", note)

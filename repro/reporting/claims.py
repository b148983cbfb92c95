"""The claims file (``report/claims.yaml``): the paper's claims and how each is tested.

A claim is tested by a metric of one or more runs (a W&B summary key) or by a benchmark
measure; :mod:`repro.reporting.verdicts` gives its verdict.

Besides the claims the file holds:

- ``sources``: the other reproductions whose numbers the claims quote, by key, with their
  display name (``{fastai: "fast.ai reproduction (2020)"}``); a claim's ``others`` maps
  these keys to that source's number;
- ``tables``: the paper's own tables, a list of ``{type: <name known to the paper>, ...}``
  entries that the paper's ``report_tables`` plug-in renders (the kit reads only ``type``
  and the optional ``name`` of the generated file);
- ``facts``: strings the prose quotes, as macros; ``curves``: the training-figure panels.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from repro.reporting.latex import macro_name

__all__ = ["Claim", "ClaimsFile", "load_claims"]

_COMPARISONS = ("at_least", "at_most", "within")
_KINDS = ("value", "difference", "trend", "benchmark", "converged")
_MEASURES = ("last_over_first", "first_over_last", "max_over_min", "last", "first")
_TOP_KEYS = ("claims", "curves", "facts", "sources", "tables")
#: generated files of the kit's own; a paper table may not take one of these names
_RESERVED = (
    "benchmark",
    "budget",
    "claims",
    "claims-list",
    "hyperparameters",
    "macros",
    "runs",
    "saved-runs",
)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and how this reproduction tests it.

    Attributes:
        id: a short slug, unique in the file; it names the claim's macros.
        title: a short label for the claims table.
        statement: the claim in words.
        where: where the paper states it (e.g. "Table 2", "Figure 5").
        paper: the paper's number in ``unit``, a list of numbers for a trend, or ``None``
            where the paper shows only curves.
        paper_text: how to show the paper's side when ``paper`` is ``None``.
        others: other reproductions' numbers, by the keys of the file's ``sources``.
        unit: shown after numbers: ``"%"``, ``"bpc"``, ``"BLEU"``, ``"x"`` ...
        scale: multiplies the run's value to give ``unit`` (0.99 accuracy x 100 = 99 %).
        digits: decimals shown.
        kind: ``value`` (one experiment's metric), ``difference`` (first minus second
            experiment), ``trend`` (the metric over experiments, or ``metrics`` over one
            experiment, moves in ``direction``), ``benchmark`` (a benchmark measure),
            ``converged`` (how many of the experiments, the same model over seeds, reach
            ``converged_at``: a count of runs).
        experiments: the experiments (params.yaml names) whose runs test it.
        metric: the W&B summary key.
        metrics: for a trend, the summary keys in order: several of one experiment, or one
            per experiment.
        comparison: ``at_least``, ``at_most`` or ``within`` (value, difference, benchmark).
        tolerance: slack around ``paper`` (or per step of a trend).
        threshold: the bound to compare with, when it is not ``paper`` +/- ``tolerance``.
        direction: ``increasing`` or ``decreasing`` for a trend (and kind converged).
        benchmark: ``{"section": ..., "series": ..., "measure": ...}`` for kind benchmark.
        converged_at: for kind converged, the metric value (in ``unit``, after ``scale``)
            from which a run counts as converged (``direction: decreasing``: at or below
            it, for a loss); ``comparison`` and ``threshold`` then judge the count.
    """

    id: str
    title: str
    statement: str
    where: str
    paper: float | list[float] | None = None
    paper_text: str | None = None
    others: Mapping[str, float] = field(default_factory=dict)
    unit: str = ""
    scale: float = 1.0
    digits: int = 1
    kind: str = "value"
    experiments: tuple[str, ...] = ()
    metric: str | None = None
    metrics: tuple[str, ...] = ()
    comparison: str = "at_least"
    tolerance: float = 0.0
    threshold: float | None = None
    direction: str = "increasing"
    benchmark: Mapping[str, str] | None = None
    converged_at: float | None = None

    @property
    def macro(self) -> str:
        """The stem of this claim's macros: ``Claim`` + the id in CamelCase."""
        return macro_name("claim", self.id)

    def bound(self) -> float | None:
        """The number ``ours`` is compared with (``None`` for trends)."""
        if self.threshold is not None:
            return float(self.threshold)
        if isinstance(self.paper, int | float):
            if self.comparison == "at_least":
                return float(self.paper) - self.tolerance
            if self.comparison == "at_most":
                return float(self.paper) + self.tolerance
            return float(self.paper)
        return None


@dataclass(frozen=True)
class ClaimsFile:
    """Everything ``report/claims.yaml`` holds.

    Attributes:
        claims: the claims, in file order.
        tables: the paper's tables, each ``{"type": ..., "name": ..., ...}`` (``name``
            defaults to ``type``; it names ``report/generated/<name>.tex``).
        facts: macro name -> text, for the prose.
        curves: the training figure's settings (``panels``).
        sources: other reproductions' key -> display name.
    """

    claims: tuple[Claim, ...]
    tables: tuple[Mapping[str, Any], ...] = ()
    facts: Mapping[str, str] = field(default_factory=dict)
    curves: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)


def _claim_error(where: str, key: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{where}: {key}={value!r} is not allowed ({allowed})")


def _parse_claim(raw: Mapping[str, Any], where: str, sources: Mapping[str, str]) -> Claim:
    known = set(Claim.__dataclass_fields__)
    for key in raw:
        if key not in known:
            raise _claim_error(where, "key", key, "allowed: " + ", ".join(sorted(known)))
    for key in ("id", "title", "statement", "where"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _claim_error(where, key, raw.get(key), "a non-empty string is required")
    data = dict(raw)
    data["experiments"] = tuple(raw.get("experiments") or ())
    data["metrics"] = tuple(raw.get("metrics") or ())
    data["others"] = dict(raw.get("others") or {})
    claim = Claim(**data)
    where = f"{where} ({claim.id})"
    for source, value in claim.others.items():
        if source not in sources:
            allowed = "keys of sources: " + (", ".join(sources) or "(none)")
            raise _claim_error(where, "others", source, allowed)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _claim_error(where, f"others.{source}", value, "a number is required")
    if claim.kind not in _KINDS:
        raise _claim_error(where, "kind", claim.kind, "allowed: " + ", ".join(_KINDS))
    if claim.comparison not in _COMPARISONS:
        raise _claim_error(where, "comparison", claim.comparison, ", ".join(_COMPARISONS))
    if not isinstance(claim.tolerance, int | float) or claim.tolerance < 0:
        raise _claim_error(where, "tolerance", claim.tolerance, "a number >= 0 is required")
    if claim.kind == "value" and (len(claim.experiments) != 1 or not claim.metric):
        raise _claim_error(where, "experiments", list(claim.experiments), "one, with a metric")
    if claim.kind == "difference" and (len(claim.experiments) != 2 or not claim.metric):
        raise _claim_error(where, "experiments", list(claim.experiments), "two, with a metric")
    if claim.kind == "trend":
        if claim.direction not in ("increasing", "decreasing"):
            raise _claim_error(where, "direction", claim.direction, "increasing or decreasing")
        one_run = len(claim.experiments) == 1 and len(claim.metrics) >= 2
        many_runs = len(claim.experiments) >= 2 and (
            claim.metric or len(claim.metrics) == len(claim.experiments)
        )
        if not (one_run or many_runs):
            raise _claim_error(
                where,
                "experiments",
                list(claim.experiments),
                "2+ with a metric (or one metric each), or 1 with 2+ metrics",
            )
    if claim.kind == "converged":
        if claim.direction not in ("increasing", "decreasing"):
            raise _claim_error(where, "direction", claim.direction, "increasing or decreasing")
        if len(claim.experiments) < 2 or not claim.metric:
            raise _claim_error(where, "experiments", list(claim.experiments), "2+, with a metric")
        at = claim.converged_at
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise _claim_error(where, "converged_at", at, "a number in the claim's unit")
    if claim.kind == "benchmark":
        spec = claim.benchmark or {}
        if not {"section", "series", "measure"} <= set(spec):
            raise _claim_error(where, "benchmark", spec, "needs section, series and measure")
        if spec["measure"] not in _MEASURES:
            raise _claim_error(where, "benchmark.measure", spec["measure"], ", ".join(_MEASURES))
    if claim.kind != "trend" and claim.bound() is None:
        raise _claim_error(where, "paper", claim.paper, "a number, or give a threshold")
    return claim


def _parse_sources(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _claim_error(where, "sources", raw, "a mapping of key -> display name")
    for key, name in raw.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key):
            raise _claim_error(f"{where}: sources", "key", key, "a word starting with a letter")
        if not isinstance(name, str) or not name.strip():
            raise _claim_error(f"{where}: sources", key, name, "a non-empty display name")
    return {str(k): str(v) for k, v in raw.items()}


def _parse_tables(raw: Any, where: str) -> tuple[Mapping[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _claim_error(where, "tables", raw, "a list of {type: ..., ...} entries")
    tables: list[Mapping[str, Any]] = []
    for i, entry in enumerate(raw):
        at = f"{where}: tables[{i}]"
        if not isinstance(entry, Mapping):
            raise _claim_error(at, "entry", entry, "a mapping with a type")
        kind = entry.get("type")
        if not isinstance(kind, str) or not kind.strip():
            raise _claim_error(at, "type", kind, "the name of a table type the paper knows")
        name = entry.get("name", kind)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise _claim_error(at, "name", name, "letters, digits, - and _ (a file name)")
        if name in _RESERVED or name in {t["name"] for t in tables}:
            taken = ", ".join([*_RESERVED, *(t["name"] for t in tables)])
            raise _claim_error(at, "name", name, f"taken: {taken}")
        tables.append({**entry, "name": name})
    return tuple(tables)


def load_claims(path: str | os.PathLike[str]) -> ClaimsFile:
    """Read and validate ``report/claims.yaml``.

    Args:
        path: the claims file.

    Returns:
        The claims, the paper's table entries, the sources and the paper facts.

    Raises:
        ValueError: one line naming the file, the entry and what is allowed.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "claims.yaml"
        >>> _ = p.write_text('''
        ... sources: {fastai: fast.ai reproduction (2020)}
        ... claims:
        ...   - {id: full-solves, title: Full solves it, statement: Full attention solves it.,
        ...      where: Table 2, paper: 100, others: {fastai: 100}, unit: "%", scale: 100,
        ...      experiments: [dup-full], metric: eval/accuracy_full, tolerance: 5}
        ... ''')
        >>> claims = load_claims(p).claims
        >>> claims[0].macro, claims[0].bound(), claims[0].others
        ('ClaimFullSolves', 95.0, {'fastai': 100})
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the claims file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("claims"), list):
        raise ValueError(f"{path}: expected a mapping with a 'claims' list")
    for key in raw:
        if key not in _TOP_KEYS:
            hint = "; list a paper table under tables: with a type" if key == "table2" else ""
            raise _claim_error(str(path), "key", key, "allowed: " + ", ".join(_TOP_KEYS) + hint)
    sources = _parse_sources(raw.get("sources"), str(path))
    claims = []
    seen: set[str] = set()
    for i, item in enumerate(raw["claims"]):
        if not isinstance(item, Mapping):
            raise ValueError(f"{path}: claims[{i}] must be a mapping")
        claim = _parse_claim(item, f"{path}: claims[{i}]", sources)
        if claim.id in seen or claim.macro in {macro_name("claim", s) for s in seen}:
            raise _claim_error(f"{path}: claims[{i}]", "id", claim.id, "ids must be unique")
        seen.add(claim.id)
        claims.append(claim)
    facts = {str(k): str(v) for k, v in (raw.get("facts") or {}).items()}
    for name in facts:
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise _claim_error(f"{path}: facts", "name", name, "letters only")
    tables = _parse_tables(raw.get("tables"), str(path))
    return ClaimsFile(tuple(claims), tables, facts, raw.get("curves") or {}, sources)

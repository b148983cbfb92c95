"""From W&B runs to the LaTeX report: claims and verdicts, macros, tables and figures.

The report's text never types a number. Everything numeric reaches the PDF through files
that :func:`generate` writes into ``report/generated/``:

- ``macros.tex``: one ``\\newcommand`` per number the text uses (names are letters only,
  e.g. ``\\AccLshFourEvalLshEight``), plus ``\\IfRun<Experiment>{run}{not run}`` and
  ``\\Case<Claim>{reproduced}{not reproduced}{not run}`` switches for the prose;
- ``table2.tex``: the paper's Table 2 grid, the earlier (fast.ai) reproduction's and ours;
- ``claims.tex`` (paper vs ours vs verdict) and ``claims-list.tex`` (the claims in words);
- ``runs.tex`` and ``hyperparameters.tex``: what each run did and its resolved config;
- ``training.tex`` + ``fig-training.pdf``: training curves from the run histories;
- ``benchmark.tex`` (+ ``fig-speed.pdf``, ``fig-memory.pdf``) from ``metrics/benchmark.json``
  and ``budget.tex`` from ``metrics/budget.json``, or "not run" placeholders while those
  files do not exist.

A claim (``report/claims.yaml``) is tested by a metric of one or more runs (a W&B summary
key) or by a benchmark measure; its verdict is ``reproduced``, ``not reproduced`` or
``not run``. A claim whose runs or numbers do not exist is ``not run`` and shows no value.

Optional benchmark file, ``metrics/benchmark.json``: any top-level section shaped like a
curve, ``{"x_label": str, "x": [numbers], "unit": str, "series": {name: [number|null]}}``,
can be tested by a claim; ``attention_time`` (seconds per step against sequence length at a
fixed number of tokens, the paper's Figure 5) and ``depth_memory`` (peak memory against the
number of layers) are drawn, and a ``peer_table`` list of flat dicts becomes a table
(``pipelines/benchmark.py`` writes all three).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from repro.tracking.reader import Run, RunFetchError, read_run

__all__ = [
    "Claim",
    "ClaimResult",
    "ClaimsFile",
    "Macros",
    "MissingRunError",
    "RunLoadError",
    "Table2",
    "evaluate_claim",
    "experiments_from_params",
    "format_duration",
    "format_number",
    "generate",
    "latex_escape",
    "load_claims",
    "load_runs",
    "macro_name",
    "published",
]

Verdict = Literal["reproduced", "not reproduced", "not run"]
MISSING = "---"  # what a table cell shows for a number that does not exist (not run)

# ----------------------------------------------------------------------------- formatting

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: object) -> str:
    """Escape a string for LaTeX text mode.

    Args:
        text: anything; it is converted with ``str``.

    Example:
        >>> latex_escape("eval/accuracy_lsh4 = 50% & {more}")
        'eval/accuracy\\\\_lsh4 = 50\\\\% \\\\& \\\\{more\\\\}'
    """
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text))


_WORDS = (
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
    "Twenty",
)


def _number_word(digits: str) -> str:
    value = int(digits)
    if value <= 20:
        return _WORDS[value]
    return "".join(_WORDS[int(d)] for d in digits)


def macro_name(*parts: str) -> str:
    """A LaTeX macro name (letters only) from words that may hold digits and punctuation.

    Args:
        parts: pieces such as ``"acc"``, ``"lsh4"``, ``"dup-full"``.

    Returns:
        CamelCase letters; each number is spelled out (12 -> Twelve, 1024 -> OneZeroTwoFour).

    Example:
        >>> macro_name("acc", "lsh4", "eval", "lsh8")
        'AccLshFourEvalLshEight'
        >>> macro_name("enwik8-12l", "bpc")
        'EnwikEightTwelveLBpc'
    """
    words: list[str] = []
    for part in parts:
        for token in re.findall(r"[A-Za-z]+|\d+", str(part)):
            words.append(_number_word(token) if token.isdigit() else token[0].upper() + token[1:])
    name = "".join(words)
    if not name:
        raise ValueError(f"macro name: parts={parts!r} hold no letters or digits")
    return name


def format_number(value: float | None, digits: int = 1, *, signed: bool = False) -> str:
    """Format a number for the report with a fixed number of decimals; ``None`` -> ``---``.

    Args:
        value: the number, or ``None`` when it does not exist (not run).
        digits: decimals.
        signed: always show the sign (for differences).

    Example:
        >>> format_number(99.8765, 1), format_number(None), format_number(-0.0123, 3, signed=True)
        ('99.9', '---', '$-$0.012')
        >>> format_number(float("nan"))
        'NaN'
    """
    if value is None:
        return MISSING
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return r"$\infty$" if value > 0 else r"$-\infty$"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    if text.lstrip("+-").strip("0.") == "":  # -0.0 is 0.0
        text = f"{0.0:.{digits}f}"
        text = ("+" + text) if signed else text
    return text.replace("-", "$-$")


class Macros:
    """An ordered set of ``\\newcommand`` definitions; a name defined twice is an error.

    Example:
        >>> m = Macros()
        >>> m.add("AccFullEvalFull", "99.9")
        >>> m.add_switch("IfRunDupFull", 2, 1)
        >>> print(m.render(), end="")
        \\newcommand{\\AccFullEvalFull}{99.9}
        \\newcommand{\\IfRunDupFull}[2]{#1}
    """

    def __init__(self) -> None:
        self._defs: dict[str, str] = {}

    def _check(self, name: str) -> None:
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise ValueError(f"macro name {name!r}: only letters are allowed")
        if name in self._defs:
            raise ValueError(f"macro name {name!r} is defined twice")

    def add(self, name: str, tex: str) -> None:
        """Define ``\\name`` to expand to ``tex`` (already LaTeX: escape text first)."""
        self._check(name)
        self._defs[name] = f"\\newcommand{{\\{name}}}{{{tex}}}"

    def add_switch(self, name: str, n_args: int, chosen: int) -> None:
        """Define ``\\name`` taking ``n_args`` arguments and expanding to argument ``chosen``."""
        self._check(name)
        if not 1 <= chosen <= n_args:
            raise ValueError(f"macro {name}: chosen={chosen} must be in 1..{n_args}")
        self._defs[name] = f"\\newcommand{{\\{name}}}[{n_args}]{{#{chosen}}}"

    def __contains__(self, name: str) -> bool:
        return name in self._defs

    def render(self) -> str:
        """The definitions, one per line."""
        return "".join(line + "\n" for line in self._defs.values())


# ----------------------------------------------------------------------------- claims

_COMPARISONS = ("at_least", "at_most", "within")
_KINDS = ("value", "difference", "trend", "benchmark")
_MEASURES = ("last_over_first", "first_over_last", "max_over_min", "last", "first")


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
        fastai: the earlier reproduction's number, if it has one.
        unit: shown after numbers: ``"%"``, ``"bpc"``, ``"BLEU"``, ``"x"`` ...
        scale: multiplies the run's value to give ``unit`` (0.99 accuracy x 100 = 99 %).
        digits: decimals shown.
        kind: ``value`` (one experiment's metric), ``difference`` (first minus second
            experiment), ``trend`` (the metric over experiments, or ``metrics`` over one
            experiment, moves in ``direction``), ``benchmark`` (a benchmark measure).
        experiments: the experiments (params.yaml names) whose runs test it.
        metric: the W&B summary key.
        metrics: for a trend, the summary keys in order: several of one experiment, or one
            per experiment.
        comparison: ``at_least``, ``at_most`` or ``within`` (value, difference, benchmark).
        tolerance: slack around ``paper`` (or per step of a trend).
        threshold: the bound to compare with, when it is not ``paper`` +/- ``tolerance``.
        direction: ``increasing`` or ``decreasing`` for a trend.
        benchmark: ``{"section": ..., "series": ..., "measure": ...}`` for kind benchmark.
    """

    id: str
    title: str
    statement: str
    where: str
    paper: float | list[float] | None = None
    paper_text: str | None = None
    fastai: float | None = None
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
class Table2:
    """The Table 2 grid: rows are training attention (experiments), columns evaluation keys."""

    rows: tuple[Mapping[str, str], ...]
    columns: tuple[Mapping[str, str], ...]
    paper: tuple[tuple[float, ...], ...]
    fastai: tuple[tuple[float, ...], ...]
    scale: float = 100.0
    digits: int = 1
    where: str = "Table 2"


@dataclass(frozen=True)
class ClaimsFile:
    """Everything ``report/claims.yaml`` holds."""

    claims: tuple[Claim, ...]
    table2: Table2 | None
    facts: Mapping[str, str] = field(default_factory=dict)
    curves: Mapping[str, Any] = field(default_factory=dict)


def _claim_error(where: str, key: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{where}: {key}={value!r} is not allowed ({allowed})")


def _parse_claim(raw: Mapping[str, Any], where: str) -> Claim:
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
    claim = Claim(**data)
    where = f"{where} ({claim.id})"
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
    if claim.kind == "benchmark":
        spec = claim.benchmark or {}
        if not {"section", "series", "measure"} <= set(spec):
            raise _claim_error(where, "benchmark", spec, "needs section, series and measure")
        if spec["measure"] not in _MEASURES:
            raise _claim_error(where, "benchmark.measure", spec["measure"], ", ".join(_MEASURES))
    if claim.kind != "trend" and claim.bound() is None:
        raise _claim_error(where, "paper", claim.paper, "a number, or give a threshold")
    return claim


def load_claims(path: str | os.PathLike[str]) -> ClaimsFile:
    """Read and validate ``report/claims.yaml``.

    Args:
        path: the claims file.

    Returns:
        The claims, the Table 2 grid specification and the paper facts.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "claims.yaml"
        >>> _ = p.write_text('''
        ... claims:
        ...   - {id: full-solves, title: Full solves it, statement: Full attention solves it.,
        ...      where: Table 2, paper: 100, unit: "%", scale: 100, experiments: [dup-full],
        ...      metric: eval/accuracy_full, comparison: at_least, tolerance: 5}
        ... ''')
        >>> claims = load_claims(p).claims
        >>> claims[0].macro, claims[0].bound()
        ('ClaimFullSolves', 95.0)
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
    claims = []
    seen: set[str] = set()
    for i, item in enumerate(raw["claims"]):
        if not isinstance(item, Mapping):
            raise ValueError(f"{path}: claims[{i}] must be a mapping")
        claim = _parse_claim(item, f"{path}: claims[{i}]")
        if claim.id in seen or claim.macro in {macro_name("claim", s) for s in seen}:
            raise _claim_error(f"{path}: claims[{i}]", "id", claim.id, "ids must be unique")
        seen.add(claim.id)
        claims.append(claim)
    table2 = None
    if raw.get("table2") is not None:
        t = raw["table2"]
        n_rows, n_cols = len(t["rows"]), len(t["columns"])
        for grid in ("paper", "fastai"):
            shape = [len(r) for r in t[grid]]
            if shape != [n_cols] * n_rows:
                raise _claim_error(f"{path}: table2", grid, shape, f"{n_rows} rows of {n_cols}")
        table2 = Table2(
            rows=tuple(t["rows"]),
            columns=tuple(t["columns"]),
            paper=tuple(tuple(r) for r in t["paper"]),
            fastai=tuple(tuple(r) for r in t["fastai"]),
            scale=t.get("scale", 100.0),
            digits=t.get("digits", 1),
            where=t.get("where", "Table 2"),
        )
    facts = {str(k): str(v) for k, v in (raw.get("facts") or {}).items()}
    for name in facts:
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise _claim_error(f"{path}: facts", "name", name, "letters only")
    return ClaimsFile(tuple(claims), table2, facts, raw.get("curves") or {})


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


def _metric(runs: Mapping[str, Run], exp: str, key: str) -> tuple[float | None, str]:
    run = runs.get(exp)
    if run is None:
        return None, f"no run for {exp}"
    value = run.summary.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None, f"{exp} has no {key}"
    return float(value), ("run crashed" if run.state == "crashed" else "")


def _benchmark_measure(
    benchmark: Mapping[str, Any] | None, spec: Mapping[str, str]
) -> tuple[float | None, str]:
    if benchmark is None:
        return None, "no benchmark results"
    section = benchmark.get(spec["section"])
    series = (section or {}).get("series", {}).get(spec["series"]) if section else None
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
        value, note = _metric(runs, exp, key)
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


# ----------------------------------------------------------------------------- runs


class MissingRunError(ValueError):
    """An experiment listed in params.yaml has no run file; the message names it."""


class RunLoadError(ValueError):
    """An experiment's run could not be read (bad run.json or record file); names both."""


def experiments_from_params(params: Mapping[str, Any]) -> list[str]:
    """The experiment names that params.yaml defines.

    Accepted shapes: ``experiments: {name: {...}}``, ``experiments: [name, ...]`` or
    ``experiments: [{name: ...}, ...]``, at the top level or under ``train``.

    Args:
        params: the parsed params.yaml.

    Example:
        >>> experiments_from_params({"experiments": {"dup-full": {}, "dup-lsh4": {}}})
        ['dup-full', 'dup-lsh4']
        >>> experiments_from_params({"train": {"experiments": [{"name": "dup-lsh1"}]}})
        ['dup-lsh1']
    """
    found = params.get("experiments")
    if found is None and isinstance(params.get("train"), Mapping):
        found = params["train"].get("experiments")
    if isinstance(found, Mapping):
        return [str(name) for name in found]
    if isinstance(found, list):
        names = [item.get("name") if isinstance(item, Mapping) else item for item in found]
        if all(isinstance(n, str) and n for n in names):
            return list(names)
    raise ValueError(
        f"params: experiments={found!r} must be a mapping or a list of experiment names "
        "(looked at 'experiments' and 'train.experiments')"
    )


def load_runs(
    experiments: Iterable[str],
    root: str | os.PathLike[str] = ".",
    models_dir: str = "models",
) -> dict[str, Run]:
    """Read the W&B run of every experiment through its ``models/<exp>/run.json``.

    Args:
        experiments: experiment names.
        root: the project root (run directories in run.json are relative to it).
        models_dir: where the per-experiment folders are, relative to ``root``.

    Returns:
        experiment -> :class:`~repro.tracking.reader.Run`.

    Raises:
        MissingRunError: an experiment has no run.json (one line naming it); checked for
            every experiment before any run is read.
        RunLoadError: a run.json or record file is malformed (names experiment and file).
        RunFetchError: an online run could not be fetched (names the experiment).

    Example:
        >>> load_runs(["dup-lsh2"], root="/nonexistent")
        Traceback (most recent call last):
        ...
        repro.reporting.MissingRunError: experiment 'dup-lsh2' has no run file /nonexistent/models/dup-lsh2/run.json: run its training stage first
    """  # noqa: E501
    root = Path(root)
    refs = {exp: root / models_dir / exp / "run.json" for exp in experiments}
    for exp, ref in refs.items():  # all present before any (slow) read
        if not ref.is_file():
            raise MissingRunError(
                f"experiment {exp!r} has no run file {ref}: run its training stage first"
            )
    runs: dict[str, Run] = {}
    for exp, ref in refs.items():
        try:
            runs[exp] = read_run(ref, root=root)
        except RunFetchError as exc:
            raise RunFetchError(f"experiment {exp!r}: {exc}") from None
        except ValueError as exc:  # RunFileError, a bad run.json
            raise RunLoadError(f"experiment {exp!r}: {exc}") from None
    return runs


# ----------------------------------------------------------------------------- generation


@dataclass
class GenerationSummary:
    """What :func:`generate` produced."""

    results: list[ClaimResult]
    files: list[Path]

    def counts(self) -> dict[str, int]:
        """Number of claims per verdict."""
        out = {"reproduced": 0, "not reproduced": 0, "not run": 0}
        for r in self.results:
            out[r.verdict] += 1
        return out


def _unit(unit: str) -> str:
    if unit == "%":
        return r"\,\%"
    if unit == "x":
        return r"$\times$"
    return rf"~{latex_escape(unit)}" if unit else ""


def published(value: float) -> str:
    """A number from a paper as it was printed: no padding zeros (``100``, ``94.8``, ``1.37``).

    Example:
        >>> published(100.0), published(94.8), published(1.37), published(-0.5)
        ('100', '94.8', '1.37', '$-$0.5')
    """
    return f"{float(value):g}".replace("-", "$-$")


def _show(
    values: float | list[float] | None, claim: Claim, signed: bool = False, paper: bool = False
) -> str:
    def one(v: float) -> str:
        return published(v) if paper else format_number(v, claim.digits, signed=signed)

    if values is None:
        return MISSING
    if isinstance(values, list):  # a trend; spaces let a narrow column break the line
        return r" $\to$ ".join(one(v) for v in values)
    return one(values) + _unit(claim.unit)


_VERDICT_TEX = {
    "reproduced": r"\textcolor{ReproGreen}{reproduced}",
    "not reproduced": r"\textcolor{ReproRed}{not reproduced}",
    "not run": r"\textcolor{ReproGrey}{not run}",
}


def _last(run: Run, key: str) -> float | None:
    _, values = run.series(key)
    numeric = [v for v in values if isinstance(v, int | float)]
    return float(numeric[-1]) if numeric else None


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _run_facts(run: Run) -> dict[str, float | None]:
    steps = [row["_step"] for row in run.history if "train/loss" in row]
    _, tps = run.series("train/tokens_per_s")
    # training time: what the training loop measured, else the longest logged runtime (the
    # summary's own _runtime may be that of a later, short evaluation session)
    seconds = _number(run.summary.get("train/elapsed_s"))
    if seconds is None:
        runtimes = [_number(row.get("_runtime")) for row in run.history]
        runtimes.append(_number(run.summary.get("_runtime")))
        seconds = max((r for r in runtimes if r is not None), default=None)
    return {
        "steps": float(max(steps)) if steps else None,
        "loss": _last(run, "train/loss"),
        "seconds": seconds,
        "tokens": _median([float(v) for v in tps if isinstance(v, int | float)]),
    }


def format_duration(seconds: float | None) -> str:
    r"""A duration in the unit that suits it: seconds, minutes or hours; ``None`` -> ``---``.

    Example:
        >>> [format_duration(t) for t in (42.04, 750, 9000, None)]
        ['42.0\\,s', '12.5\\,min', '2.5\\,h', '---']
    """
    if seconds is None:
        return MISSING
    if seconds < 60:
        return format_number(seconds, 1) + r"\,s"
    if seconds < 3600:
        return format_number(seconds / 60, 1) + r"\,min"
    return format_number(seconds / 3600, 1) + r"\,h"


def _write(path: Path, text: str, written: list[Path]) -> None:
    path.write_text(text)
    written.append(path)


def generate(
    runs: Mapping[str, Run],
    claims: ClaimsFile | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    benchmark: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    budget: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
    experiments: Sequence[str] | None = None,
) -> GenerationSummary:
    """Write every generated LaTeX file and figure of the report into ``out_dir``.

    Args:
        runs: experiment -> run, for the experiments that exist.
        claims: the claims file or its path.
        out_dir: ``report/generated``.
        benchmark: ``metrics/benchmark.json`` (path or parsed); a missing file is "not run".
        budget: ``metrics/budget.json`` (path or parsed rows); a missing file is "not run".
        experiments: the order of experiments in tables (default: the order of ``runs``).

    Returns:
        The claim results and the files written.
    """
    spec = claims if isinstance(claims, ClaimsFile) else load_claims(claims)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    order = list(experiments) if experiments is not None else list(runs)
    bench = _load_optional_json(benchmark)
    budget_rows = _load_optional_json(budget)
    written: list[Path] = []
    macros = Macros()
    for name, value in spec.facts.items():
        macros.add(name, latex_escape(value))

    # one switch and a few numbers per experiment: those of params.yaml, and those the
    # claims name (the prose may mention them in any profile; absent ones are "not run")
    named = [e for c in spec.claims for e in c.experiments]
    named += [str(row["experiment"]) for row in (spec.table2.rows if spec.table2 else ())]
    run_rows = []
    for exp in dict.fromkeys([*order, *named]):
        stem = macro_name(exp)
        run = runs.get(exp)
        macros.add_switch(f"IfRun{stem}", 2, 1 if run is not None else 2)
        facts = (
            _run_facts(run)
            if run is not None
            else dict.fromkeys(("steps", "loss", "seconds", "tokens"))
        )
        macros.add(f"{stem}Steps", format_number(facts["steps"], 0))
        macros.add(f"{stem}FinalLoss", format_number(facts["loss"], 3))
        macros.add(f"{stem}WallTime", format_duration(facts["seconds"]))
        macros.add(f"{stem}TokensPerSecond", format_number(facts["tokens"], 0))
        macros.add(f"{stem}RunId", latex_escape(run.id) if run else MISSING)
        macros.add(f"{stem}State", latex_escape(run.state) if run else "not run")
        if exp in order:  # the tables list the experiments of this profile
            run_rows.append((exp, stem, run))

    # claims
    results = [evaluate_claim(c, runs, bench) for c in spec.claims]
    for r in results:
        c = r.claim
        paper = (
            _show([float(v) for v in c.paper], c, paper=True)
            if isinstance(c.paper, list)
            else (
                _show(float(c.paper), c, paper=True)
                if c.paper is not None
                else latex_escape(c.paper_text or "")
            )
        )
        macros.add(f"{c.macro}Paper", paper)
        macros.add(f"{c.macro}Ours", _show(r.ours, c, signed=c.kind == "difference"))
        macros.add(f"{c.macro}Verdict", r.verdict)
        macros.add_switch(
            f"Case{c.macro}", 3, {"reproduced": 1, "not reproduced": 2, "not run": 3}[r.verdict]
        )
    counts = GenerationSummary(results, []).counts()
    macros.add("ClaimsTotal", str(len(results)))
    macros.add("ClaimsReproduced", str(counts["reproduced"]))
    macros.add("ClaimsNotReproduced", str(counts["not reproduced"]))
    macros.add("ClaimsNotRun", str(counts["not run"]))
    macros.add("ExperimentsRun", str(sum(1 for _, _, run in run_rows if run is not None)))
    macros.add("ExperimentsTotal", str(len(run_rows)))
    groups = sorted({run.group for _, _, run in run_rows if run is not None and run.group})
    macros.add("RunGroup", latex_escape(", ".join(groups)) if groups else MISSING)
    seconds = [_run_facts(run)["seconds"] for _, _, run in run_rows if run is not None]
    known = [t for t in seconds if t is not None]
    macros.add("TotalTrainTime", format_duration(sum(known) if known else None))

    if spec.table2 is not None:
        _write(out / "table2.tex", _table2(spec.table2, runs, macros), written)
    else:
        _write(out / "table2.tex", "% no table2 section in the claims file\n", written)
    _write(out / "claims.tex", _claims_table(results), written)
    _write(out / "claims-list.tex", _claims_list(results), written)
    _write(out / "runs.tex", _runs_table(run_rows), written)
    _write(out / "hyperparameters.tex", _hyperparameters(run_rows), written)
    _write(out / "training.tex", _training_figure(run_rows, out, written, spec.curves), written)
    _write(out / "benchmark.tex", _benchmark(bench, out, written), written)
    _write(out / "budget.tex", _budget(budget_rows), written)
    _write(
        out / "macros.tex",
        "% generated by repro.reporting: do not edit\n" + macros.render(),
        written,
    )
    return GenerationSummary(results, written)


def _load_optional_json(source: Any) -> Any:
    if source is None or isinstance(source, Mapping | list | tuple):
        return source
    path = Path(source)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def _table2(t: Table2, runs: Mapping[str, Run], macros: Macros) -> str:
    cols = len(t.columns)
    lines = [
        r"\begin{tabular}{@{}ll" + "r" * cols + "@{}}",
        r"\toprule",
        r" & & \multicolumn{" + str(cols) + r"}{c}{Evaluated with} \\",
        r"\cmidrule(l){3-" + str(cols + 2) + "}",
        "Trained with & Source & "
        + " & ".join(latex_escape(c["label"]) for c in t.columns)
        + r" \\",
        r"\midrule",
    ]
    for i, row in enumerate(t.rows):
        cells = {"Paper": [], "Fastai": [], "": []}
        for j, col in enumerate(t.columns):
            stem = macro_name("acc", row["name"], "eval", col["name"])
            value, _ = _metric(runs, row["experiment"], col["metric"])
            macros.add(stem, format_number(None if value is None else value * t.scale, t.digits))
            macros.add("Paper" + stem, published(t.paper[i][j]))
            macros.add("Fastai" + stem, published(t.fastai[i][j]))
            for prefix in cells:
                cells[prefix].append("\\" + prefix + stem)
        label = latex_escape(row["label"])
        lines.append(f"{label} & paper & " + " & ".join(cells["Paper"]) + r" \\")
        lines.append(" & fast.ai & " + " & ".join(cells["Fastai"]) + r" \\")
        ours = [r"\textbf{" + c + "}" for c in cells[""]]
        lines.append(" & ours & " + " & ".join(ours) + r" \\")
        lines.append(r"\midrule" if i < len(t.rows) - 1 else r"\bottomrule")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def _claims_table(results: Sequence[ClaimResult]) -> str:
    lines = [
        r"\begin{tabularx}{\linewidth}{@{}>{\raggedright\arraybackslash}X"
        r">{\raggedright\arraybackslash}p{0.14\linewidth}"
        r">{\raggedleft\arraybackslash}p{0.13\linewidth}"
        r">{\raggedleft\arraybackslash}p{0.13\linewidth}l@{}}",
        r"\toprule",
        r"Claim & Where & Paper & Ours & Verdict \\",
        r"\midrule",
    ]
    for r in results:
        c = r.claim
        lines.append(
            f"{latex_escape(c.title)} & {latex_escape(c.where)} & \\{c.macro}Paper & "
            f"\\{c.macro}Ours & {_VERDICT_TEX[r.verdict]} \\\\"
        )
    lines += [r"\bottomrule", r"\end{tabularx}"]
    return "\n".join(lines) + "\n"


def _claims_list(results: Sequence[ClaimResult]) -> str:
    lines = [r"\begin{enumerate}"]
    for r in results:
        c = r.claim
        if c.kind == "benchmark":
            assert c.benchmark is not None
            spec = c.benchmark
            test = rf"\texttt{{{latex_escape(spec['section'] + '.' + spec['series'])}}} " + (
                r"in \texttt{metrics/benchmark.json}"
            )
        elif len(c.metrics) == len(c.experiments):
            pairs = [f"{m} of {e}" for e, m in zip(c.experiments, c.metrics, strict=True)]
            test = ", ".join(rf"\texttt{{{latex_escape(p)}}}" for p in pairs)
        else:
            keys = ", ".join(c.metrics) if c.metrics else (c.metric or "")
            exps = latex_escape(", ".join(c.experiments))
            test = rf"\texttt{{{latex_escape(keys)}}} of \texttt{{{exps}}}"
        lines.append(
            rf"\item \textbf{{{latex_escape(c.title)}.}} {latex_escape(c.statement)} "
            rf"({latex_escape(c.where)}; tested by {test}.)"
        )
    lines.append(r"\end{enumerate}")
    return "\n".join(lines) + "\n"


def _runs_table(run_rows: Sequence[tuple[str, str, Run | None]]) -> str:
    if not run_rows:
        return r"\emph{No experiment is defined in params.yaml.}" + "\n"
    lines = [
        r"\begin{tabular}{@{}lllrrrr@{}}",
        r"\toprule",
        r"Experiment & W\&B run & State & Steps & Final loss & Wall time & Tokens/s \\",
        r"\midrule",
    ]
    for exp, stem, _ in run_rows:
        lines.append(
            f"{latex_escape(exp)} & \\texttt{{\\{stem}RunId}} & \\{stem}State & \\{stem}Steps & "
            f"\\{stem}FinalLoss & \\{stem}WallTime & \\{stem}TokensPerSecond \\\\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | float | str):
        text = str(value)
        return text if len(text) <= 40 else None
    if isinstance(value, list) and len(str(value)) <= 40:
        return str(value)
    return None


def _hyperparameters(run_rows: Sequence[tuple[str, str, Run | None]]) -> str:
    present = [(exp, run) for exp, _, run in run_rows if run is not None]
    keys = sorted({k for _, run in present for k, v in run.config.items() if _short(v) is not None})
    shared, differing = [], []
    for key in keys:
        values = [_short(run.config.get(key)) for _, run in present]
        (shared if len(set(values)) == 1 else differing).append((key, values))
    lines = [
        r"\begin{small}",
        r"\begin{longtable}{@{}ll@{}}",
        r"\caption{Configuration shared by every run (from the W\&B run config).}"
        r"\label{tab:config}\\",
        r"\toprule Key & Value \\ \midrule \endfirsthead",
        r"\toprule Key & Value \\ \midrule \endhead",
        r"\bottomrule \endfoot",
    ]
    lines += [f"\\texttt{{{latex_escape(k)}}} & {latex_escape(v[0])} \\\\" for k, v in shared]
    if not shared:
        lines.append(r"\multicolumn{2}{@{}l@{}}{\emph{No run exists yet.}} \\")
    lines += [r"\end{longtable}", r"\end{small}"]
    lines += [
        r"\begin{table}[htbp]\centering\small",
        r"\caption{Configuration that differs between runs.}\label{tab:config-diff}",
    ]
    if differing:
        lines += [
            r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
            r"\begin{tabular}{@{}l" + "l" * len(present) + "@{}}",
            r"\toprule",
            "Key & " + " & ".join(latex_escape(exp) for exp, _ in present) + r" \\",
            r"\midrule",
        ]
        for key, values in differing:
            cells = [latex_escape(v) if v is not None else MISSING for v in values]
            lines.append(f"\\texttt{{{latex_escape(key)}}} & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}}"]
    else:
        lines.append(
            r"\emph{None: "
            + ("no run exists yet" if not present else "every run has the same configuration")
            + ".}"
        )
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "pdf.fonttype": 42,  # embedded TrueType: selectable text, accepted by venues
            "ps.fonttype": 42,
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "lines.linewidth": 1.4,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
    return plt


def _save(fig: Any, path: Path, written: list[Path]) -> None:
    # no creation date in the file: the same runs give the same bytes (DVC stays a no-op)
    fig.savefig(path, bbox_inches="tight", metadata={"CreationDate": None})
    written.append(path)


def _training_figure(
    run_rows: Sequence[tuple[str, str, Run | None]],
    out: Path,
    written: list[Path],
    curves: Mapping[str, Any],
) -> str:
    panels = curves.get("panels") or [
        {"title": "Training loss", "keys": ["train/loss"], "log_y": True},
        {"title": "Accuracy", "keys": ["valid/accuracy", "train/accuracy"], "log_y": False},
    ]
    present = [(exp, run) for exp, _, run in run_rows if run is not None]
    drawn: list[tuple[dict, list[tuple[str, str, list[int], list[float]]]]] = []
    for panel in panels:
        lines = []
        for exp, run in present:
            for key in panel["keys"]:  # the first key a run logs
                steps, values = run.series(key)
                pairs = [
                    (s, float(v))
                    for s, v in zip(steps, values, strict=True)
                    if isinstance(v, int | float)
                ]
                if pairs:
                    lines.append((exp, key, [p[0] for p in pairs], [p[1] for p in pairs]))
                    break
        if lines:
            drawn.append((panel, lines))
    if not drawn:
        return r"\emph{Training curves appear here once the experiments have run.}" + "\n"
    plt = _pyplot()
    colour = {exp: f"C{i % 10}" for i, (exp, _) in enumerate(present)}  # same in every panel
    fig, axes = plt.subplots(1, len(drawn), figsize=(3.3 * len(drawn), 2.8), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], drawn, strict=True):
        keys = sorted({key for _, key, _, _ in lines})
        for exp, _, steps, values in lines:
            ax.plot(steps, values, label=exp, color=colour[exp])
        if panel.get("log_y") and all(v > 0 for *_, vs in lines for v in vs):
            ax.set_yscale("log")
        ax.set_title(panel["title"])
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(" / ".join(keys))
    handles, labels = [], []
    for ax in axes[0]:  # one legend for all panels, above them, so it hides no curve
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 6), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    path = out / "fig-training.pdf"
    _save(fig, path, written)
    plt.close(fig)
    return (
        "\\begin{figure}[htbp]\n\\centering\n"
        "\\includegraphics[width=\\linewidth]{generated/fig-training.pdf}\n"
        "\\caption{Training curves of every run, read from the W\\&B run histories.}\n"
        "\\label{fig:training}\n\\end{figure}\n"
    )


def _curve_figure(
    section: Mapping[str, Any], path: Path, written: list[Path], log_x: bool, log_y: bool
) -> bool:
    xs = section.get("x") or []
    series = section.get("series") or {}
    if not xs or not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    for name, values in series.items():
        pairs = [(x, v) for x, v in zip(xs, values, strict=False) if isinstance(v, int | float)]
        if pairs:
            ax.plot(*zip(*pairs, strict=True), marker="o", markersize=3, label=str(name))
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 1024 and 0.1, not 2^10 and 10^-1
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks([x for x in xs if isinstance(x, int | float) and x > 0])
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(str(section.get("x_label", "x")))
    ax.set_ylabel(str(section.get("unit", "")))
    # beside the axes, so the legend never hides a curve
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    _save(fig, path, written)
    plt.close(fig)
    return True


def _generic_table(rows: Sequence[Mapping[str, Any]], caption: str, label: str) -> str:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)

    def cell(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return latex_escape(value) if value is not None else MISSING
        if value != 0 and not 1e-3 <= abs(value) < 1e5:  # 3.4e12 -> 3.4 x 10^12
            mantissa, exponent = f"{value:.2e}".split("e")
            mantissa = f"{float(mantissa):g}".replace("-", "$-$")
            return rf"{mantissa}$\times 10^{{{int(exponent)}}}$"
        if isinstance(value, int):
            return str(value)
        return format_number(value, 3 if abs(value) < 10 else 1)

    lines = [
        r"\begin{table}[htbp]\centering\small",
        rf"\caption{{{caption}}}\label{{{label}}}",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        r"\begin{tabular}{@{}" + "l" * len(columns) + "@{}}",
        r"\toprule",
        " & ".join(latex_escape(str(c).replace("_", " ")) for c in columns) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(cell(row.get(c)) for c in columns) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def benchmark_targets(bench: Mapping[str, Any]) -> list[dict[str, str]]:
    """The performance targets of ``metrics/benchmark.json``, one row each: ``target``
    (its description), ``measured`` (the deciding number: a worst-case or single ratio, or
    the longest length, noting cells whose baseline was over the time cap and cells where
    every peer ran out of memory), ``threshold`` and ``met`` (yes / no / — when not
    measured).

    Example:
        >>> benchmark_targets({"targets": {"t": {"description": "fast", "threshold": 1.5,
        ...                                      "ratio": 2.0, "passed": True}}})
        [{'target': 'fast', 'measured': '2.00', 'threshold': '1.50', 'met': 'yes'}]
    """
    targets = bench.get("targets")
    if not isinstance(targets, Mapping):
        return []

    def number(value: Any) -> str:  # token counts as 1,048,576; ratios as 1.50
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "—"
        return f"{value:,}" if isinstance(value, int) else f"{value:.2f}"

    rows = []
    for name, t in targets.items():
        if not isinstance(t, Mapping):
            continue
        keys = ("worst_speedup", "speedup_at_length", "ratio", "longest", "value")
        measured = next((t[k] for k in keys if k in t), None)
        # Cells where the baseline was over the time cap give only a bound, so a target can
        # be unmet with every measured cell above its threshold; cells where every peer ran
        # out of memory have no ratio at all: say so.
        entries = t.get("entries")
        cells = [e for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else []
        bounded = [e for e in cells if "speedup_lower_bound" in e]
        out_of_memory = [e for e in cells if e.get("peer") == "(out of memory)"]
        notes = []
        if bounded:
            notes.append(f"{len(bounded)} cell(s) unmeasured: baseline over the time cap")
        if out_of_memory:
            notes.append(f"{len(out_of_memory)} cell(s) where every peer ran out of memory")
        note = f" ({'; '.join(notes)})" if notes else ""
        rows.append(
            {
                "target": str(t.get("description", name)),
                "measured": number(measured) + note,
                "threshold": number(t.get("threshold")),
                "met": {True: "yes", False: "no"}.get(t.get("passed"), "—"),
            }
        )
    return rows


def _benchmark(bench: Mapping[str, Any] | None, out: Path, written: list[Path]) -> str:
    if not isinstance(bench, Mapping):
        return (
            r"\emph{Not run: the benchmark stage has not written \texttt{metrics/benchmark.json} "
            r"yet, so the speed (Figure~5 of the paper) and memory results are missing.}" + "\n"
        )
    parts = []
    time_section = bench.get("attention_time")
    if isinstance(time_section, Mapping) and _curve_figure(
        time_section, out / "fig-speed.pdf", written, log_x=True, log_y=True
    ):
        parts.append(
            "\\begin{figure}[htbp]\n\\centering\n"
            "\\includegraphics[width=0.7\\linewidth]{generated/fig-speed.pdf}\n"
            "\\caption{Time per training step of one attention layer (forward and backward) "
            "against sequence length at a fixed number of tokens per step, as in Figure~5 "
            "of the paper; from \\texttt{metrics/benchmark.json}.}\n"
            "\\label{fig:speed}\n\\end{figure}\n"
        )
    else:
        parts.append(r"\emph{Not run: the benchmark results have no attention timings.}" + "\n")
    memory_section = bench.get("depth_memory")
    if isinstance(memory_section, Mapping) and _curve_figure(
        memory_section, out / "fig-memory.pdf", written, log_x=False, log_y=False
    ):
        parts.append(
            "\\begin{figure}[htbp]\n\\centering\n"
            "\\includegraphics[width=0.7\\linewidth]{generated/fig-memory.pdf}\n"
            "\\caption{Peak memory of one training step against depth; "
            "from \\texttt{metrics/benchmark.json}.}\n\\label{fig:memory}\n\\end{figure}\n"
        )
    targets = benchmark_targets(bench)
    if targets:
        parts.append(
            _generic_table(
                targets,
                "The performance targets, each decided by ratios measured in one benchmark run "
                "on this machine (2 CPU cores).",
                "tab:targets",
            )
        )
    peers = bench.get("peer_table")
    if isinstance(peers, list) and peers and all(isinstance(r, Mapping) for r in peers):
        parts.append(
            _generic_table(
                peers,
                "Our LSH attention against the public implementations: seconds per forward "
                "and backward step of one causal layer, measured in one process; speedup is "
                "the faster peer's time over ours.",
                "tab:peers",
            )
        )
    return "\n".join(parts)


def format_significant(value: float | None, digits: int = 3) -> str:
    """A table number with ``digits`` significant digits, commas between thousands.

    Whole digits are never dropped (``150000`` stays ``150,000``); below ``1e-3`` the number
    is written as a power of ten. ``None`` (no value) is ``---``.

    Example:
        >>> [format_significant(v) for v in (0.14491, 38.44, 581.6, 150000, 0, None)]
        ['0.145', '38.4', '582', '150,000', '0', '---']
        >>> print(format_significant(5.97e-6))
        5.97$\\times 10^{-6}$
    """
    if value is None:
        return MISSING
    value = float(value)
    if not math.isfinite(value):
        return format_number(value)
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        mantissa = f"{float(mantissa):g}".replace("-", "$-$")
        return rf"{mantissa}$\times 10^{{{int(exponent)}}}$"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}".replace("-", "$-$")


_GIB = 2**30  # bytes


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scaled(row: Mapping[str, Any], key: str, scale: float, times: str | None = None) -> Any:
    """``row[key] / scale`` (times ``row[times]``), or ``None`` when a value is not a number."""
    values = [row.get(key), row.get(times) if times else 1]
    if not all(_is_number(v) for v in values):
        return None
    return values[0] * values[1] / scale


#: The budget tables' columns after the experiment: (group header, header, value of a row).
#: Units: FLOPs of one optimizer step over the global batch in TFLOP (1e12 FLOPs), of the
#: whole training run in PFLOP (1e15 FLOPs); activation bytes of one device in GiB (2^30
#: bytes); the ``hours`` header is :func:`_hours_header`'s.
_BUDGET_COLUMNS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], Any]], ...] = (
    ("", "Parameters (M)", lambda r: _scaled(r, "params", 1e6)),
    ("", "Tokens per step", lambda r: r.get("tokens_per_step")),
    ("", "Steps", lambda r: r.get("steps")),
    ("TFLOP per step", "Attention", lambda r: _scaled(r, "attention_flops", 1e12)),
    ("TFLOP per step", "Feed-forward", lambda r: _scaled(r, "ff_flops", 1e12)),
    ("TFLOP per step", "Total", lambda r: _scaled(r, "total_flops", 1e12)),
    ("", "Training (PFLOP)", lambda r: _scaled(r, "total_flops", 1e15, "steps")),
    ("Activations per device (GiB)", "Ours", lambda r: _scaled(r, "activation_bytes", _GIB)),
    ("Activations per device (GiB)", "Table~3", lambda r: _scaled(r, "table3_bytes", _GIB)),
    ("", "hours", lambda r: r.get("gpu_hours")),
)
_BUDGET_SUMMED = ("Training (PFLOP)", "hours")  # the columns the total row adds up


def _hours_header(assumptions: Mapping[str, Any]) -> str:
    """``A100-hours at 30\\% MFU``, or ``GPU-hours at 400 TFLOP/s, 30\\% MFU`` for a custom
    peak, from the ``assumptions`` of ``metrics/budget.json``.

    Example:
        >>> _hours_header({"accelerator": "a100", "peak_tflops": 312.0, "mfu": 0.3})
        'A100-hours at 30\\\\% MFU'
    """
    accelerator, peak, mfu = (assumptions.get(k) for k in ("accelerator", "peak_tflops", "mfu"))
    if not _is_number(mfu):
        return "GPU-hours"
    if isinstance(accelerator, str) and accelerator != "custom":
        return rf"{latex_escape(accelerator.upper())}-hours at {mfu * 100:g}\% MFU"
    if _is_number(peak):
        return rf"GPU-hours at {peak:g} TFLOP/s, {mfu * 100:g}\% MFU"
    return rf"GPU-hours at {mfu * 100:g}\% MFU"


def _budget_rows(section: Any) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]] | None:
    """``(rows, assumptions)`` of one estimate (a ``--json`` object or its bare row list)."""
    assumptions: Any = {}
    if isinstance(section, Mapping):
        assumptions = section.get("assumptions") or {}
        section = section.get("experiments", section.get("rows"))
    if not isinstance(section, list) or not section:
        return None
    if not all(isinstance(r, Mapping) for r in section):
        return None
    return section, (assumptions if isinstance(assumptions, Mapping) else {})


def _budget_total_hours(rows: Sequence[Mapping[str, Any]]) -> float | None:
    hours = [r.get("gpu_hours") for r in rows]
    return float(sum(hours)) if all(_is_number(h) for h in hours) else None


def _budget_table(
    rows: Sequence[Mapping[str, Any]], assumptions: Mapping[str, Any], caption: str, label: str
) -> str:
    """One budget table: a row per experiment (units in the headers), then a total row.

    The total row sums the columns that add up over experiments: the training compute
    (PFLOP) and the accelerator-hours.
    """
    n = len(_BUDGET_COLUMNS)
    headers = [h if h != "hours" else _hours_header(assumptions) for _, h, _ in _BUDGET_COLUMNS]
    groups: list[str] = []
    rules: list[str] = []
    i = 0
    while i < n:  # neighbouring columns of one group share a \multicolumn header
        group = _BUDGET_COLUMNS[i][0]
        j = i
        while group and j + 1 < n and _BUDGET_COLUMNS[j + 1][0] == group:
            j += 1
        if group:
            groups.append(rf"\multicolumn{{{j - i + 1}}}{{c}}{{{group}}}")
            rules.append(rf"\cmidrule(lr){{{i + 2}-{j + 2}}}")  # column 1 is the experiment
        else:
            groups.append("")
        i = j + 1
    values = [[value(row) for _, _, value in _BUDGET_COLUMNS] for row in rows]
    total = []
    for k, (_, header, _) in enumerate(_BUDGET_COLUMNS):
        column = [v[k] for v in values]
        summed = header in _BUDGET_SUMMED and all(_is_number(v) for v in column)
        total.append(format_significant(sum(column)) if summed else "")
    lines = [
        r"\begin{table}[htbp]\centering\small",
        rf"\caption{{{caption}}}\label{{{label}}}",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        r"\begin{tabular}{@{}l" + "r" * n + "@{}}",
        r"\toprule",
        " & ".join(["", *groups]) + r" \\",
        "".join(rules),
        " & ".join(["Experiment", *headers]) + r" \\",
        r"\midrule",
    ]
    for row, cells in zip(rows, values, strict=True):
        name = latex_escape(row.get("experiment", MISSING))
        lines.append(" & ".join([name, *map(format_significant, cells)]) + r" \\")
    lines += [r"\midrule", " & ".join(["Total", *total]) + r" \\"]
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _budget(data: Any) -> str:
    """The "Computational requirements" tables from ``metrics/budget.json``.

    ``data``: the parsed file (``assumptions`` and ``experiments`` of the current profile,
    optionally ``paper`` holding the same for ``configs/paper.yaml``), or a bare list of
    rows (older files); ``None`` gives the "not run" note. The paper profile's table
    (``tab:budget-paper``) follows the current one (``tab:budget``) unless both hold the
    same rows, i.e. the current profile is the paper profile.
    """
    current = _budget_rows(data)
    if current is None:
        return (
            r"\emph{Not run: the compute-budget estimate (\texttt{metrics/budget.json}) "
            r"does not exist yet.}" + "\n"
        )
    rows, assumptions = current
    paper = _budget_rows(data.get("paper")) if isinstance(data, Mapping) else None
    same = paper is not None and list(paper[0]) == list(rows)
    source = latex_escape(assumptions.get("params_file", "params.yaml"))
    peak, mfu = assumptions.get("peak_tflops"), assumptions.get("mfu")
    at = (
        rf" at {peak:g} TFLOP/s peak and {mfu * 100:g}\% model FLOPs utilisation (MFU)"
        if _is_number(peak) and _is_number(mfu)
        else ""
    )
    caption = (
        rf"Estimated compute of the experiments of this report (\texttt{{{source}}}"
        + (", the paper profile" if same else "")
        + "): for one optimizer step (global batch) the tokens and the matmul FLOPs of the "
        "forward and backward passes (2 FLOPs per multiply-accumulate; the total includes "
        "the output head); the training compute over all steps; the activations one device "
        "keeps for the backward pass, in our implementation and by the paper's Table~3 "
        rf"formula; and the accelerator-hours{at}."
    )
    parts = [_budget_table(rows, assumptions, caption, "tab:budget")]
    if paper is not None and not same:
        p_rows, p_assumptions = paper
        hours = _budget_total_hours(p_rows)
        total = (
            f", {format_significant(hours)} "
            + _hours_header(p_assumptions).replace(" at ", " in total at ", 1)
            if hours is not None
            else ""
        )
        p_source = latex_escape(p_assumptions.get("params_file", "configs/paper.yaml"))
        caption = (
            rf"Estimated compute of the paper profile (\texttt{{{p_source}}}): what "
            rf"reproducing every experiment at the paper's hyperparameters costs{total}. "
            r"Columns as in Table~\ref{tab:budget}."
        )
        parts.append(_budget_table(p_rows, p_assumptions, caption, "tab:budget-paper"))
    return "\n".join(parts)

"""The report's generated folder: every macro, table and figure the LaTeX text uses.

The report's text never types a number. Everything numeric reaches the PDF through files
that :func:`generate` writes into ``report/generated/``:

- ``macros.tex``: one ``\\newcommand`` per number the text uses (names are letters only,
  e.g. ``\\ClaimLshFourEvalFourOurs``), plus ``\\IfRun<Experiment>{run}{not run}`` and
  ``\\Case<Claim>{reproduced}{not reproduced}{not run}`` switches for the prose, the claims
  file's ``facts`` and ``\\Source<Key>`` for each of its ``sources``;
- ``<name>.tex`` for each entry of the claims file's ``tables``: the paper's own tables,
  from its ``report_tables(spec, runs, macros)`` plug-in (which may add macros);
- ``claims.tex`` (paper vs ours vs verdict) and ``claims-list.tex`` (the claims in words);
- ``runs.tex`` and ``hyperparameters.tex``: what each run did and its resolved config;
- ``training.tex`` + ``fig-training.pdf``: training curves from the run histories;
- ``benchmark.tex`` (:mod:`repro.reporting.benchmark`) from ``metrics/benchmark.json`` and
  ``budget.tex`` (:mod:`repro.reporting.budget`) from ``metrics/budget.json``, or "not
  run" notes while those files do not exist.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.reporting.benchmark import BENCHMARK_FILE, benchmark_section
from repro.reporting.budget import budget_tables
from repro.reporting.claims import Claim, ClaimsFile, load_claims
from repro.reporting.figures import training_figure
from repro.reporting.latex import (
    MISSING,
    Macros,
    format_duration,
    format_number,
    latex_escape,
    macro_name,
    published,
    unit_suffix,
)
from repro.reporting.runs import run_facts
from repro.reporting.tables import (
    claims_list,
    claims_table,
    hyperparameters,
    runs_table,
    saved_runs_table,
)
from repro.reporting.verdicts import ClaimResult, evaluate_claim
from repro.tracking.reader import Run

if TYPE_CHECKING:  # saved_runs is also a command (python -m): the package does not import it
    from repro.reporting.saved_runs import SavedProfile

__all__ = ["GenerationSummary", "generate", "table_experiments"]


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


def _show(
    values: float | list[float] | None, claim: Claim, signed: bool = False, paper: bool = False
) -> str:
    def one(v: float) -> str:
        return published(v) if paper else format_number(v, claim.digits, signed=signed)

    if values is None:
        return MISSING
    if claim.kind == "converged" and not paper:  # a count of runs: "4 of 5"
        return f"{int(values)} of {len(claim.experiments)}"  # type: ignore[arg-type]
    if isinstance(values, list):  # a trend; spaces let a narrow column break the line
        return r" $\to$ ".join(one(v) for v in values)
    return one(values) + unit_suffix(claim.unit)


def table_experiments(spec: Any) -> list[str]:
    """The experiments a paper table names: every ``experiment: <name>`` and
    ``experiments: [<name>, ...]`` inside the entry, in order.

    Example:
        >>> table_experiments({"type": "grid", "rows": [{"experiment": "a"}, {"experiment": "b"}]})
        ['a', 'b']
    """
    found: list[str] = []
    if isinstance(spec, Mapping):
        for key, value in spec.items():
            if key == "experiment" and isinstance(value, str):
                found.append(value)
            elif key == "experiments" and isinstance(value, list):
                found += [v for v in value if isinstance(v, str)]
            else:
                found += table_experiments(value)
    elif isinstance(spec, list):
        for item in spec:
            found += table_experiments(item)
    return found


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


def _paper_table(
    paper: Any, spec: Mapping[str, Any], i: int, runs: Mapping[str, Run], macros: Macros, at: str
) -> str:
    """One entry of ``tables:`` through the paper's ``report_tables`` plug-in."""
    where = f"{at}: tables[{i}] (type {spec['type']!r})"
    if paper is None:  # generate() called without a paper: say so in the PDF, do not guess
        return rf"\emph{{Table {latex_escape(spec['name'])} not generated: no paper given.}}" + "\n"
    hook = getattr(paper, "report_tables", None)
    if hook is None:
        name = getattr(paper, "name", "?")
        raise ValueError(f"{where}: paper {name!r} has no report_tables plug-in to render it")
    try:
        tex = hook(spec, runs, macros)
    except (ValueError, KeyError, TypeError) as exc:  # the plug-in's one line, located
        raise ValueError(f"{where}: {exc}") from None
    if not isinstance(tex, str):
        raise ValueError(f"{where}: report_tables returned {type(tex).__name__}, not LaTeX text")
    return tex


def generate(
    runs: Mapping[str, Run],
    claims: ClaimsFile | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    benchmark: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    budget: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
    experiments: Sequence[str] | None = None,
    paper: Any = None,
    root: str | os.PathLike[str] = ".",
    saved: Mapping[str, SavedProfile] | None = None,
) -> GenerationSummary:
    """Write every generated LaTeX file and figure of the report into ``out_dir``.

    Args:
        runs: experiment -> run, for the experiments that exist.
        claims: the claims file or its path.
        out_dir: ``report/generated``.
        benchmark: ``metrics/benchmark.json`` (path or parsed); a missing file is "not run".
        budget: ``metrics/budget.json`` (path or parsed rows); a missing file is "not run".
        experiments: the order of experiments in tables (default: the order of ``runs``).
        paper: the :class:`repro.paper.Paper` (anything with ``report_tables``) that renders
            the claims file's ``tables``; ``None`` writes a "not generated" note for each.
        root: the project root; a benchmark figure's ``path`` is relative to it.
        saved: the other profiles whose runs ``runs`` holds as ``<profile>/<experiment>``
            (``results/index.yaml``); listed in ``saved-runs.tex``.

    Returns:
        The claim results and the files written.

    Raises:
        ValueError: one line: a bad claims or benchmark file, or a table the paper cannot
            render.
    """
    at = str(claims) if not isinstance(claims, ClaimsFile) else "claims file"
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
    for key, display in spec.sources.items():
        macros.add(macro_name("source", key), latex_escape(display))

    # one switch and a few numbers per experiment: those of params.yaml, and those the
    # claims and tables name (the prose may mention them in any profile; absent: "not run")
    named = [e for c in spec.claims for e in c.experiments]
    named += [e for table in spec.tables for e in table_experiments(table)]
    run_rows = []
    for exp in dict.fromkeys([*order, *named]):
        stem = macro_name(exp)
        run = runs.get(exp)
        macros.add_switch(f"IfRun{stem}", 2, 1 if run is not None else 2)
        facts = run_facts(run) if run is not None else dict.fromkeys(("steps", "loss"))
        macros.add(f"{stem}Steps", format_number(facts.get("steps"), 0))
        macros.add(f"{stem}FinalLoss", format_number(facts.get("loss"), 3))
        macros.add(f"{stem}WallTime", format_duration(facts.get("seconds")))
        macros.add(f"{stem}TokensPerSecond", format_number(facts.get("tokens"), 0))
        macros.add(f"{stem}RunId", latex_escape(run.id) if run else MISSING)
        macros.add(f"{stem}State", latex_escape(run.state) if run else "not run")
        if exp in order:  # the tables list the experiments of this profile
            run_rows.append((exp, stem, run))

    results = [evaluate_claim(c, runs, bench) for c in spec.claims]
    for r in results:
        c = r.claim
        if isinstance(c.paper, list):
            paper_tex = _show([float(v) for v in c.paper], c, paper=True)
        elif c.paper is not None:
            paper_tex = _show(float(c.paper), c, paper=True)
        else:
            paper_tex = latex_escape(c.paper_text or "")
        macros.add(f"{c.macro}Paper", paper_tex)
        macros.add(f"{c.macro}Ours", _show(r.ours, c, signed=c.kind == "difference"))
        macros.add(f"{c.macro}Verdict", r.verdict)
        macros.add_switch(
            f"Case{c.macro}", 3, {"reproduced": 1, "not reproduced": 2, "not run": 3}[r.verdict]
        )
        for source, value in c.others.items():  # \Claim<Id><Source>: another reproduction's
            macros.add(c.macro + macro_name(source), _show(float(value), c, paper=True))
    counts = GenerationSummary(results, []).counts()
    macros.add("ClaimsTotal", str(len(results)))
    macros.add("ClaimsReproduced", str(counts["reproduced"]))
    macros.add("ClaimsNotReproduced", str(counts["not reproduced"]))
    macros.add("ClaimsNotRun", str(counts["not run"]))
    macros.add("ExperimentsRun", str(sum(1 for _, _, run in run_rows if run is not None)))
    macros.add("ExperimentsTotal", str(len(run_rows)))
    groups = sorted({run.group for _, _, run in run_rows if run is not None and run.group})
    macros.add("RunGroup", latex_escape(", ".join(groups)) if groups else MISSING)
    seconds = [run_facts(run)["seconds"] for _, _, run in run_rows if run is not None]
    known = [t for t in seconds if t is not None]
    macros.add("TotalTrainTime", format_duration(sum(known) if known else None))

    def write(name: str, text: str) -> None:
        (out / name).write_text(text)
        written.append(out / name)

    for i, table in enumerate(spec.tables):
        write(f"{table['name']}.tex", _paper_table(paper, table, i, runs, macros, at))
    write("claims.tex", claims_table(results))
    write("claims-list.tex", claims_list(results))
    write("runs.tex", runs_table(run_rows))
    write("saved-runs.tex", saved_runs_table(saved or {}, runs))
    write("hyperparameters.tex", hyperparameters(run_rows))
    write("training.tex", training_figure(run_rows, out, written, spec.curves))
    source = str(benchmark) if isinstance(benchmark, str | os.PathLike) else BENCHMARK_FILE
    write("benchmark.tex", benchmark_section(bench, out, written, root=root, source=source))
    write("budget.tex", budget_tables(budget_rows))
    write("macros.tex", "% generated by repro.reporting: do not edit\n" + macros.render())
    return GenerationSummary(results, written)

"""The benchmark plug-in: what a paper gives :func:`repro.benchmarking.sweep.run_sweep`.

A paper's package fills in one :class:`Workloads` (``Paper.benchmark``): its settings
(``defaults``, and ``quick`` shapes for the smoke profile and the tests), its sections in
the order they run, how the measurements turn into targets and report views, and its
figures. The kit loads the settings (:func:`repro.benchmarking.sweep.load_config`), runs
the sections, writes ``metrics/benchmark.json`` after every section, and renders the
targets and views without knowing the paper.

The kit itself reads these settings of ``defaults`` where they exist:

- ``threads`` (int >= 1), ``seed`` (int), ``quick`` (bool): torch threads, the seed, and
  whether the ``quick`` shapes replace the defaults;
- ``mode`` (``"full"`` or a key of ``modes``): a named set of settings over the defaults
  (for example a ``small`` sweep of a few minutes for a quick main job), under the
  params block's own settings;
- ``sections``: the names of the sections to run (a subset of ``sections``' keys; default:
  all of them);
- ``memory_guard_gb``: how much a configuration run by :meth:`Sweep.run` may grow;
- ``timing``: the keyword arguments of :func:`repro.benchmarking.measurement.measure_steps`
  that :meth:`Sweep.timing` hands out (``warmup``, ``repeats``, ``min_repeats``,
  ``max_repeats``, ``budget_s``, ``long_step_s``, ``quiet_wait_s``) and ``quiet_budget_s``
  (all waits for a quiet machine together);
- ``targets``: the thresholds that ``targets`` receives.

A paper without a speed-and-memory sweep on accelerators leaves ``accelerator`` unset; one
without a benchmark at all leaves ``Paper.benchmark`` unset, and :func:`missing_workloads`
says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repro.benchmarking.sweep import Sweep
    from repro.benchmarking.targets import Target

__all__ = ["Workloads", "load_workloads", "missing_workloads"]

Report = Mapping[str, Any]


@dataclass(frozen=True)
class Workloads:
    """A paper's benchmark: settings, sections, targets, views and figures.

    Attributes:
        name: the log prefix (``"benchmark"``); the default summary names the stage
            script ``pipelines/<name>.py``.
        defaults: every setting with its default (see the module docstring for the keys the
            kit reads); a params file may override any of them, and no other.
        quick: the overrides of the quick mode (tiny shapes, one sample each).
        modes: named overrides that a params block selects with ``mode: <name>`` (a smaller
            sweep, say); ``mode: full`` (or none) keeps the defaults.
        sections: section name -> ``run(sweep) -> dict``, in the order they run; each
            result is stored under its name in the report.
        targets: ``targets(report, thresholds) -> [Target, ...]``: the verdicts from the
            sections that were measured (a missing section gives no row or an undecided one).
        views: ``views(report) -> {"tables": [...], "figures": [...]}``: what the report's
            benchmark section shows (tables of ``caption``, ``label``, ``columns``,
            ``rows``; figures with ``caption``, ``label`` and a ``curve`` or a ``path``;
            optionally ``targets_caption``, the targets table's caption).
        derived: ``derived(report) -> dict``: entries computed from the measurements and
            stored at the top level of the report (curves that claims test, for example).
        plots: ``plots(report, folder) -> [path, ...]``: figures drawn after the
            measurements are saved; a failure is recorded and costs nothing else.
        setup: ``setup(sweep) -> dict``: run before the sections (thread settings, probes
            of optional dependencies); its entries go into the report.
        check: ``check(config)``: cross-field checks of the settings; raise ``ValueError``
            with one line naming the key (``benchmark.<section>.<key>=<value>: ...``).
        summary: ``summary(report) -> str``: the Markdown that ``--summary`` prints
            (default: the targets table and the machine).
        method: how the figures were measured, stored in the report.
        versions: distributions whose versions the report records.
        preload: modules the fork server imports once (:mod:`repro.benchmarking.isolation`).
        accelerator: the workloads of the accelerator benchmark, when the paper has one.
    """

    name: str
    defaults: Mapping[str, Any]
    quick: Mapping[str, Any]
    sections: Mapping[str, Callable[[Sweep], dict[str, Any]]]
    targets: Callable[[Report, Mapping[str, Any]], Sequence[Target]] | None = None
    views: Callable[[Report], dict[str, Any]] | None = None
    derived: Callable[[Report], dict[str, Any]] | None = None
    plots: Callable[[Report, Path], list[str]] | None = None
    setup: Callable[[Sweep], dict[str, Any]] | None = None
    check: Callable[[Mapping[str, Any]], None] | None = None
    summary: Callable[[Report], str] | None = None
    method: str = ""
    versions: Sequence[str] = ("torch",)
    preload: Sequence[str] = ()
    accelerator: Workloads | None = None
    modes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def load_workloads(
    params: str | os.PathLike[str], accelerator: bool = False
) -> tuple[Workloads, Any]:
    """The benchmark workloads of the paper a params file names, and its ``benchmark:``
    block (``None`` when it has none).

    A params file that does not exist gives the default paper (``[tool.repro] paper`` in
    ``pyproject.toml``) and no block, so the defaults apply.

    Args:
        params: the params file (``params.yaml``).
        accelerator: the paper's accelerator benchmark instead of its CPU sweep.

    Raises:
        ValueError: one line when the params are invalid or the paper has no such workloads.
    """
    from repro.config import ConfigError, default_paper, load_params
    from repro.paper import load_paper

    path = Path(params)
    if path.exists():
        loaded = load_params(path)
        name, block = loaded.paper, loaded.raw.get("benchmark")
    else:
        found = default_paper(path.resolve().parent)
        if found is None:
            raise ConfigError(f"{path}: not found, and no [tool.repro] paper names the paper")
        name, block = found[0], None
    paper = load_paper(name)
    workloads = paper.benchmark
    if accelerator and isinstance(workloads, Workloads):
        workloads = workloads.accelerator
    if not isinstance(workloads, Workloads):
        kind = "accelerator benchmark (Workloads.accelerator)" if accelerator else "benchmark"
        raise ValueError(
            f"paper {name!r} has no {kind}: set {name}/paper.py's PAPER.benchmark to a "
            "repro.benchmarking.Workloads"
        )
    return workloads, block


def missing_workloads(params: str | os.PathLike[str]) -> str | None:
    """Why the paper a params file names has no benchmark to run, or ``None`` when it has one.

    The benchmark is an optional plug-in (``PAPER.benchmark``): for a paper without one the
    stage writes a file that says so instead of failing. A params file that does not exist
    gives ``None``, leaving :func:`load_workloads` to say what is wrong.

    Raises:
        ValueError: one line when the params are invalid or name no importable paper.
    """
    from repro.config import load_params
    from repro.paper import load_paper

    if not Path(params).exists():
        return None
    paper = load_paper(load_params(params).paper)
    return None if paper.benchmark is not None else f"paper {paper.name!r} has no benchmark"

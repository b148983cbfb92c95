"""The plug-in interface: what a paper package gives the kit.

The kit (:mod:`repro`) runs a study without knowing which paper it reproduces. A paper
package (say ``my_paper/``) exposes one object,
``PAPER``, in its ``paper`` module; ``params.yaml`` names the package::

    paper: my_paper          # import my_paper.paper, use my_paper.paper.PAPER

and every pipeline stage looks it up with :func:`load_paper`. A new paper fills in:

- ``tasks``: one :class:`Task` per data set (prepare, load a split, check its params);
- ``model_config`` / ``evaluate_config``: pydantic models of the ``model:`` and
  ``evaluate:`` sections (each experiment may override any field);
- ``build_model``, ``load_model``, ``evaluate``: how a model is made from an experiment,
  restored from ``model.pt``, and measured on the test split;
- optionally ``check_experiment`` (cross-field checks), ``report_tables`` (the paper's own
  tables in the report), ``cost_model`` (:mod:`repro.budget`), ``benchmark`` (workloads
  for :mod:`repro.benchmarking`) and ``readme_tables`` (those tables in the README).

Everything else (the params schema's generic sections, the training loop, distributed
set-up, checkpoints, tracking, the claims engine, the report build) is the kit's.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and the config schema are imported late: `--help` stays fast
    import torch
    from torch import nn
    from torch.utils.data import Dataset

    from repro.config import DistributedConfig, ExperimentConfig

__all__ = [
    "BuiltModel",
    "Evaluation",
    "Paper",
    "PaperError",
    "Task",
    "load_paper",
    "source_files",
]


class PaperError(ValueError):
    """The configured paper package is missing or does not fill in the interface (one line)."""


@dataclass(frozen=True)
class Task:
    """One data set of the paper.

    Attributes:
        name: the key under ``tasks:`` in ``params.yaml`` (and ``data/<name>/``).
        prepare: ``prepare(out_dir, params) -> out_dir``: write the splits and a sha256
            manifest (:func:`repro.data.manifest.publish`); raise ``ValueError`` or
            :class:`repro.data.manifest.DataIntegrityError` with one line.
        load_split: ``load_split(data_dir, split, seq_len) -> Dataset`` whose items are
            ``{"tokens": LongTensor (l,), "loss_mask": BoolTensor (l,)}`` and which has a
            ``vocab_size`` attribute; checks the split against the manifest first.
        validate: ``validate(params) -> params``: the task's parameters with defaults
            filled in, or ``ValueError`` naming the bad key.
        seq_len: ``seq_len(params, requested) -> int``: the training sequence length from
            the task's parameters and ``train.seq_len`` (``None`` when unset), or
            ``ValueError`` saying what is allowed.
        min_train_items: ``min_train_items(params) -> int | None``: how many training
            sequences the prepared split holds, when known from the params alone (the
            config check refuses a batch larger than that).
    """

    name: str
    prepare: Callable[[Path, Mapping[str, Any]], Path]
    load_split: Callable[[Path, str, int | None], Dataset]
    validate: Callable[[Mapping[str, Any]], dict[str, Any]]
    seq_len: Callable[[Mapping[str, Any], int | None], int]
    min_train_items: Callable[[Mapping[str, Any]], int | None] = lambda params: None


@dataclass
class BuiltModel:
    """What :attr:`Paper.build_model` returns.

    Attributes:
        core: the module whose ``state_dict`` is saved in ``models/<exp>/model.pt``.
        trainable: the module the training loop calls, tokens ``(b, l)`` -> logits
            ``(b, l, V)`` (often ``core`` itself; a wrapper for packed inputs otherwise).
        config: the keyword arguments that rebuild ``core`` (saved next to the weights).
    """

    core: nn.Module
    trainable: nn.Module
    config: dict[str, Any]


@dataclass
class Evaluation:
    """What :attr:`Paper.evaluate` returns for one model.

    Attributes:
        metrics: written to ``metrics/<exp>.json`` (with the training fields added).
        summary: flat ``{"eval/<key>": number}`` for the W&B run's summary.
        line: one line that the stage prints when it is done.
    """

    metrics: dict[str, Any]
    summary: dict[str, float]
    line: str


@dataclass(frozen=True)
class Paper:
    """Everything the kit needs from a paper package (see the module docstring).

    Attributes:
        name: the package's import name (``params.yaml``'s ``paper:``).
        title: the paper's title, for logs and the report.
        tasks: task name -> :class:`Task`.
        model_config: pydantic model of the ``model:`` section.
        evaluate_config: pydantic model of the ``evaluate:`` section.
        build_model: ``build_model(exp, vocab_size) -> BuiltModel``.
        load_model: ``load_model(saved) -> nn.Module``: the ``core`` module from the
            dictionary saved in ``model.pt`` (keys ``model_class``, ``model_config``,
            ``state_dict``).
        evaluate: ``evaluate(exp, model, data_dir, device) -> Evaluation``.
        check_experiment: ``check_experiment(exp, distributed)``: cross-field checks
            (shapes the model can run); raise ``ValueError("<key> = <value>: <allowed>")``
            where ``<key>`` is relative to the experiment (``model.bucket_size``).
        report_tables: ``report_tables(spec, runs, macros) -> str``: LaTeX for the
            paper-specific tables named in ``report/claims.yaml`` under ``tables:``.
        cost_model: a :class:`repro.budget.CostModel` (parameters, FLOPs, memory).
        benchmark: a :class:`repro.benchmarking.Workloads` (speed and memory sections).
        source_dirs: folders whose code decides a training run (a change restarts it
            instead of resuming an old checkpoint); default: the package's own folder.
        readme_tables: ``readme_tables(spec, metrics) -> str``: Markdown for the same
            ``tables:`` entries in the README's results section (``metrics``: experiment
            -> its ``metrics/<experiment>.json``); ``""`` leaves a table out.
    """

    name: str
    title: str
    tasks: Mapping[str, Task]
    model_config: type
    evaluate_config: type
    build_model: Callable[[ExperimentConfig, int], BuiltModel]
    load_model: Callable[[Mapping[str, Any]], nn.Module]
    evaluate: Callable[[ExperimentConfig, nn.Module, Path, torch.device], Evaluation]
    check_experiment: Callable[[ExperimentConfig, DistributedConfig], None] | None = None
    report_tables: Callable[..., str] | None = None
    cost_model: Any = None
    benchmark: Any = None
    source_dirs: tuple[Path, ...] = field(default_factory=tuple)
    readme_tables: Callable[..., str] | None = None

    def task(self, name: str) -> Task:
        """The task called ``name``, or a one-line :class:`PaperError`."""
        if name not in self.tasks:
            raise PaperError(
                f"task {name!r} is unknown to paper {self.name!r}; allowed: "
                f"{', '.join(self.tasks) or '(none)'}"
            )
        return self.tasks[name]


_CACHE: dict[str, Paper] = {}


def load_paper(name: str) -> Paper:
    """Import ``<name>.paper`` and return its ``PAPER`` (cached per process).

    Raises:
        PaperError: one line when the package or its ``PAPER`` is missing.

    Example:
        >>> load_paper("no_such_paper_pkg")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        repro.paper.PaperError: paper 'no_such_paper_pkg': no module named 'no_such_paper_pkg'; ...
    """
    if name in _CACHE:
        return _CACHE[name]
    if not name.isidentifier():
        raise PaperError(f"paper = {name!r}: must be a Python package name (e.g. my_paper)")
    try:
        module = importlib.import_module(f"{name}.paper")
    except ModuleNotFoundError as err:
        missing = err.name or name
        raise PaperError(
            f"paper {name!r}: no module named {missing!r}; the package must be importable "
            f"from the repository root and define {name}/paper.py with PAPER"
        ) from None
    paper = getattr(module, "PAPER", None)
    if not isinstance(paper, Paper):
        raise PaperError(
            f"paper {name!r}: {name}/paper.py must define PAPER = repro.paper.Paper(...)"
        )
    _CACHE[name] = paper
    return paper


def source_files(paper: Paper) -> list[Path]:
    """The Python files that decide a training run: the kit's, the paper package's and
    those of its ``source_dirs``, sorted."""
    module = importlib.import_module(paper.name)
    kit = Path(__file__).resolve().parent
    dirs = [kit, Path(os.path.dirname(module.__file__ or "."))] + list(paper.source_dirs)
    return sorted({p for d in dirs for p in Path(d).rglob("*.py")})

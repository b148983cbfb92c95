"""Compute budget: parameters, FLOPs, activation memory and GPU-hours of every experiment.

The paper gives the formulas (:class:`CostModel`, ``Paper.cost_model``); the kit gives the
rest. For every experiment of a params file (or the one named with ``--experiment``) the
budget stage (``python pipelines/budget.py``) prints:

- **parameters**, from the cost model;
- **FLOPs per optimizer step** over the global batch, forward and backward, with the
  cost model's parts (:class:`Column`) next to the total;
- **activation memory** per device: what the implementation keeps for the backward pass,
  next to the paper's own formulas when the cost model gives them (``terms``);
- **GPU-hours** for ``train.steps`` steps at an accelerator's peak throughput
  (:data:`ACCELERATORS`, or ``--tflops``) times a model FLOPs utilisation (MFU).

``--json metrics/budget.json`` writes the table for the report (:mod:`repro.reporting`
turns its ``experiments`` rows into the "Computational requirements" table); with
``--paper-params configs/paper.yaml`` (as the pipeline's ``budget`` stage runs it) the file
also holds the paper profile's estimate under ``"paper"`` (the cost of the full
reproduction: the report's second table, with its total); ``--check`` measures the bytes
saved for backward in one real training step of every experiment of the smoke profile on
this machine (``CostModel.measure_activation_bytes``) and fails when the estimate is off by
more than 25%.

Modules: :mod:`~repro.budget.model` (the interface, the experiments of a params file),
:mod:`~repro.budget.estimates` (rows, hours, state, the table, the check),
:mod:`~repro.budget.cli` (flags, output).
"""

from .cli import SMOKE_PARAMS, build_parser, main, run
from .estimates import (
    ACCELERATORS,
    CHECK_TOLERANCE,
    DEFAULT_ACCELERATOR,
    DEFAULT_MFU,
    STATE_BYTES,
    check,
    estimate,
    format_bytes,
    format_table,
    gpu_hours,
    profile_estimate,
    state_bytes,
)
from .model import (
    BudgetError,
    Column,
    CostModel,
    ExperimentParams,
    Spec,
    read_experiments,
    specs,
)

__all__ = [
    "ACCELERATORS",
    "CHECK_TOLERANCE",
    "DEFAULT_ACCELERATOR",
    "DEFAULT_MFU",
    "SMOKE_PARAMS",
    "STATE_BYTES",
    "BudgetError",
    "Column",
    "CostModel",
    "ExperimentParams",
    "Spec",
    "build_parser",
    "check",
    "estimate",
    "format_bytes",
    "format_table",
    "gpu_hours",
    "main",
    "profile_estimate",
    "read_experiments",
    "run",
    "specs",
    "state_bytes",
]

"""GPU-hours, optimizer state and the table of one profile, from a paper's cost model.

FLOPs are global per optimizer step (``train.batch_size`` sequences over all ranks); hours
are those of one accelerator running all of them at ``mfu`` of its peak throughput.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .model import BudgetError, Column, CostModel, specs

__all__ = [
    "ACCELERATORS",
    "CHECK_TOLERANCE",
    "DEFAULT_ACCELERATOR",
    "DEFAULT_MFU",
    "STATE_BYTES",
    "check",
    "estimate",
    "format_bytes",
    "format_table",
    "gpu_hours",
    "profile_estimate",
    "state_bytes",
]

#: Dense bf16/fp16 tensor-core peak TFLOP/s (vendor data sheets; SXM parts, no sparsity).
ACCELERATORS: dict[str, float] = {
    "a100": 312.0,  # NVIDIA A100: 312 bf16/fp16 (19.5 fp32, 156 tf32)
    "h100": 989.0,  # NVIDIA H100 SXM: 989 bf16/fp16
    "h200": 989.0,  # NVIDIA H200: same tensor cores as the H100 SXM
    "v100": 125.0,  # NVIDIA V100 SXM2: 125 fp16 (no bf16)
}
DEFAULT_ACCELERATOR = "a100"
DEFAULT_MFU = 0.3  # a typical model FLOPs utilisation of a well-tuned PyTorch training run
CHECK_TOLERANCE = 0.25  # --check: |estimate / measured - 1| must be at most this

#: Bytes per parameter of weights, gradients and optimizer state (float32 master weights).
#: AdamW: weight + gradient + two moments. Adafactor (factored second moment, no first
#: moment): weight + gradient, plus row and column statistics, negligible for matrices.
STATE_BYTES: dict[str, int] = {"adamw": 16, "adafactor": 8}


def state_bytes(n_params: int, optimizer: str) -> int:
    """Bytes of weights, gradients and optimizer state (:data:`STATE_BYTES` per parameter).

    Example:
        >>> state_bytes(1000, "adamw"), state_bytes(1000, "adafactor")
        (16000, 8000)
        >>> state_bytes(1, "sgd")
        Traceback (most recent call last):
        ...
        repro.budget.model.BudgetError: train.optimizer = 'sgd': allowed: adamw, adafactor
    """
    if optimizer not in STATE_BYTES:
        raise BudgetError(f"train.optimizer = {optimizer!r}: allowed: {', '.join(STATE_BYTES)}")
    return n_params * STATE_BYTES[optimizer]


def gpu_hours(flops: float, peak_tflops: float, mfu: float) -> float:
    """GPU-hours for ``flops`` at ``mfu`` of ``peak_tflops`` (hours of one device).

    Example:
        >>> gpu_hours(312e12 * 0.3 * 3600, peak_tflops=312, mfu=0.3)
        1.0
    """
    return flops / (peak_tflops * 1e12 * mfu) / 3600.0


def _lookup(details: Mapping[str, Any], source: Sequence[str]) -> Any:
    value: Any = details
    for key in source:
        value = value[key]
    return value


def estimate(
    spec: Any, cost_model: CostModel, peak_tflops: float, mfu: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One experiment's table row and its detailed breakdown.

    Returns:
        ``(row, details)``: ``row`` holds the flat values of the report's table
        (``experiment``, ``params``, ``tokens_per_step``, the FLOP columns of the cost
        model, ``total_flops``, ``activation_bytes``, its other columns, ``steps``,
        ``gpu_hours``); ``details`` everything else (``task``, ``spec``, ``flops``, the
        terms, ``activation``, ``state_bytes`` and ``peak_bytes``: activations, the
        transient bytes of the backward pass and the state).
    """
    n_params = cost_model.parameters(spec)
    flops = dict(cost_model.flops_per_step(spec))
    memory = dict(cost_model.activation_bytes(spec))
    state = state_bytes(n_params, spec.optimizer)
    transient = memory[cost_model.transient_key] if cost_model.transient_key else 0
    details = {
        "task": spec.task,
        "spec": {
            k: (dict(v) if isinstance(v, Mapping) else v)
            for k, v in dataclasses.asdict(spec).items()
        },
        "flops": flops,
        **(dict(cost_model.terms(spec)) if cost_model.terms is not None else {}),
        "activation": memory,
        "state_bytes": state,
        "peak_bytes": memory["total"] + transient + state,
    }

    def extra(flop_columns: bool) -> dict[str, Any]:
        return {
            c.key: _lookup(details, c.source)
            for c in cost_model.columns
            if c.is_flops == flop_columns
        }

    row = {
        "experiment": spec.name,
        "params": n_params,
        "tokens_per_step": spec.tokens_per_step,
        **extra(True),
        "total_flops": flops["total"],
        "activation_bytes": memory["total"],
        **extra(False),
        "steps": spec.steps,
        "gpu_hours": gpu_hours(flops["total"] * spec.steps, peak_tflops, mfu),
    }
    return row, details


def profile_estimate(
    params_path: str | os.PathLike,
    cost_model: CostModel,
    peak_tflops: float,
    mfu: float,
    accelerator: str = "custom",
    experiment: str | None = None,
) -> dict[str, Any]:
    """The estimate of every experiment of one params file, as written to the JSON.

    Returns:
        ``{"assumptions": {...}, "experiments": [row, ...], "details": {name: {...}}}``
        with the rows of :func:`estimate` (FLOPs per optimizer step, bytes per device,
        hours of one accelerator); the assumptions name the file, the accelerator, its
        peak and the MFU, then the cost model's notes.
    """
    results = [
        estimate(spec, cost_model, peak_tflops, mfu)
        for spec in specs(params_path, cost_model, experiment)
    ]
    return {
        "assumptions": {
            "params_file": str(params_path),
            "accelerator": accelerator,
            "peak_tflops": peak_tflops,
            "mfu": mfu,
            **cost_model.assumptions,
        },
        "experiments": [r for r, _ in results],
        "details": {r["experiment"]: d for r, d in results},
    }


def _human(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{unit}"
    return f"{value:.3g}{unit}"


def format_bytes(value: float) -> str:
    """Bytes with a binary prefix, three significant digits.

    Example:
        >>> format_bytes(2048), format_bytes(3 * 2**30), format_bytes(12)
        ('2 KiB', '3 GiB', '12 B')
    """
    for factor, prefix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{int(value)} B"


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column] = ()) -> str:
    """The rows as a fixed-width text table, with the cost model's ``columns``.

    Example:
        >>> row = {"experiment": "e", "params": 1200, "tokens_per_step": 10,
        ...        "attention_flops": 2e9, "ff_flops": 3e9, "total_flops": 6e9,
        ...        "activation_bytes": 2048, "table3_bytes": 4096, "steps": 10, "gpu_hours": 0.5}
        >>> columns = [Column("attention_flops", "attn FLOP", ("flops", "attention")),
        ...            Column("ff_flops", "FF FLOP", ("flops", "feedforward")),
        ...            Column("table3_bytes", "act. (Table 3)", ("table3", "bytes"), "bytes")]
        >>> header, line = format_table([row], columns).splitlines()
        >>> line.split()
        ['e', '1.2k', '10', '2G', '3G', '6G', '2', 'KiB', '4', 'KiB', '10', '0.5']
        >>> format_table([row]).splitlines()[1].split()
        ['e', '1.2k', '10', '6G', '2', 'KiB', '10', '0.5']
    """
    flop_columns = [c for c in columns if c.is_flops]
    other_columns = [c for c in columns if not c.is_flops]

    def cell(column: Column, row: Mapping[str, Any]) -> str:
        value = row[column.key]
        return format_bytes(value) if column.unit == "bytes" else _human(value)

    header = [
        "experiment",
        "params",
        "tokens/step",
        *(c.label for c in flop_columns),
        "total FLOP",
        "act. (ours)",
        *(c.label for c in other_columns),
        "steps",
        "GPU-h",
    ]
    lines = [
        [
            str(r["experiment"]),
            _human(r["params"]),
            _human(r["tokens_per_step"]),
            *(cell(c, r) for c in flop_columns),
            _human(r["total_flops"]),
            format_bytes(r["activation_bytes"]),
            *(cell(c, r) for c in other_columns),
            str(r["steps"]),
            f"{r['gpu_hours']:.3g}",
        ]
        for r in rows
    ]
    widths = [max(len(c) for c in col) for col in zip(header, *lines, strict=True)]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *lines]
    ]
    return "\n".join(out)


def check(
    params_path: str | os.PathLike, cost_model: CostModel
) -> list[tuple[str, int, int, float]]:
    """Compare estimated and measured activation bytes for every experiment of a profile.

    Returns:
        A list of ``(experiment, estimated, measured, estimated / measured)``; the caller
        decides against :data:`CHECK_TOLERANCE`.

    Raises:
        BudgetError: the cost model cannot measure (no ``measure_activation_bytes``).
    """
    measure = cost_model.measure_activation_bytes
    if measure is None:
        raise BudgetError("--check: the paper's cost model has no measure_activation_bytes")
    rows = []
    for spec in specs(params_path, cost_model):
        estimated = int(cost_model.activation_bytes(spec)["total"])
        measured = int(measure(spec))
        rows.append((spec.name, estimated, measured, estimated / measured))
    return rows

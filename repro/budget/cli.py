"""The budget stage's command line: flags, the params' ``budget:`` section, output, --check.

The stage script (``pipelines/budget.py``) looks up the paper's cost model and calls
:func:`main`; every bad input ends in ``error: <one line>`` and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repro.io import atomic_write_json

from .estimates import (
    ACCELERATORS,
    CHECK_TOLERANCE,
    DEFAULT_ACCELERATOR,
    DEFAULT_MFU,
    check,
    format_bytes,
    format_table,
    profile_estimate,
)
from .model import BudgetError, Column, CostModel

__all__ = ["SMOKE_PARAMS", "build_parser", "main", "run"]

SMOKE_PARAMS = "configs/smoke.yaml"  # the profile --check measures by default


def _positive(name: str, value: float, upper: float | None = None) -> float:
    if not math.isfinite(value) or value <= 0 or (upper is not None and value > upper):
        allowed = f"in (0, {upper:g}]" if upper is not None else "> 0"
        raise BudgetError(f"{name} = {value!r}: must be {allowed}")
    return value


def _budget_section(params_path: str | os.PathLike) -> dict[str, Any]:
    """The optional ``budget:`` section of the params file: accelerator, tflops, mfu."""
    import yaml

    if not Path(params_path).is_file():
        raise BudgetError(f"{params_path}: file not found")
    try:
        raw = yaml.safe_load(Path(params_path).read_text()) or {}
    except yaml.YAMLError as err:
        raise BudgetError(f"{params_path}: not valid YAML ({str(err).splitlines()[0]})") from None
    section = (raw.get("budget") if isinstance(raw, Mapping) else None) or {}
    if not isinstance(section, Mapping):
        raise BudgetError(f"{params_path}: budget = {section!r}: must be a mapping")
    unknown = sorted(set(section) - {"accelerator", "tflops", "mfu"})
    if unknown:
        raise BudgetError(
            f"{params_path}: budget.{unknown[0]} is unknown; allowed: accelerator, tflops, mfu"
        )
    return {
        "accelerator": section.get("accelerator", DEFAULT_ACCELERATOR),
        "tflops": section.get("tflops"),
        "mfu": section.get("mfu", DEFAULT_MFU),
    }


def _peak_and_mfu(args: argparse.Namespace, params_path: str) -> tuple[str, float, float]:
    """``(accelerator name or "custom", peak TFLOP/s, MFU)`` for one params file.

    The flags win over the file's ``budget:`` section, which wins over the defaults.
    """
    section = _budget_section(params_path)
    mfu = _positive("--mfu", args.mfu if args.mfu is not None else section["mfu"], 1.0)
    accelerator = args.accelerator or section["accelerator"]
    tflops = args.tflops if args.tflops is not None else section["tflops"]
    if args.accelerator is not None and args.tflops is None:
        tflops = None  # an explicit preset wins over the params file's number
    if accelerator not in ACCELERATORS:
        raise BudgetError(
            f"budget.accelerator = {accelerator!r}: allowed: {', '.join(ACCELERATORS)}"
        )
    if tflops is not None:
        return "custom", _positive("--tflops", tflops), mfu
    return accelerator, ACCELERATORS[accelerator], mfu


def _print_profile(section: Mapping[str, Any], columns: Sequence[Column]) -> None:
    a = section["assumptions"]
    rows = section["experiments"]
    print(
        f"compute budget: {a['params_file']}, {a['peak_tflops']:g} TFLOP/s peak "
        f"({a['accelerator']}) at MFU {a['mfu']:g}"
    )
    print(format_table(rows, columns))
    total = sum(r["gpu_hours"] for r in rows)
    print(f"total: {total:.3g} GPU-h over {len(rows)} experiments")


def build_parser(prog: str = "python pipelines/budget.py") -> argparse.ArgumentParser:
    """The stage's flags (see :func:`main`)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Parameters, FLOPs per step, activation memory and GPU-hours per experiment.",
    )
    parser.add_argument("--params", default="params.yaml", help="params file (params.yaml)")
    parser.add_argument("--experiment", default=None, help="only this experiment (of --params)")
    parser.add_argument(
        "--paper-params",
        default=None,
        metavar="PATH",
        help="also estimate every experiment of this profile (configs/paper.yaml), printed "
        'after --params and written under "paper" in --json (default: none)',
    )
    parser.add_argument(
        "--accelerator",
        default=None,
        choices=sorted(ACCELERATORS),
        help="peak bf16 TFLOP/s preset: "
        + ", ".join(f"{k} {v:g}" for k, v in ACCELERATORS.items())
        + f" (default: params budget.accelerator, else {DEFAULT_ACCELERATOR})",
    )
    parser.add_argument(
        "--tflops",
        type=float,
        default=None,
        help="peak TFLOP/s (overrides --accelerator; default: params budget.tflops)",
    )
    parser.add_argument(
        "--mfu",
        type=float,
        default=None,
        help="model FLOPs utilisation, fraction of the peak "
        f"(default: params budget.mfu, else {DEFAULT_MFU})",
    )
    parser.add_argument(
        "--json", default=None, help="write the estimates as JSON (metrics/budget.json)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        # "%%": argparse %-formats help strings; a bare "%" breaks --help.
        help="measure one training step per experiment of --check-params and compare the "
        f"activation estimate (within {CHECK_TOLERANCE * 100:g}%%)",
    )
    parser.add_argument("--check-params", default=SMOKE_PARAMS, help="profile for --check")
    return parser


def _error(err: Exception) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace, cost_model: CostModel) -> int:
    """Estimate, print, write ``--json`` and run ``--check`` for parsed flags (see
    :func:`main`); returns the exit status."""
    try:
        accelerator, peak, mfu = _peak_and_mfu(args, args.params)
        payload = profile_estimate(args.params, cost_model, peak, mfu, accelerator, args.experiment)
        if args.paper_params is not None:
            if not Path(args.paper_params).is_file():
                raise BudgetError(f"--paper-params = {args.paper_params}: file not found")
            accelerator, peak, mfu = _peak_and_mfu(args, args.paper_params)
            payload["paper"] = profile_estimate(
                args.paper_params, cost_model, peak, mfu, accelerator
            )
    except (ValueError, OSError) as err:  # BudgetError is a ValueError
        return _error(err)
    _print_profile(payload, cost_model.columns)
    if "paper" in payload:
        print()
        _print_profile(payload["paper"], cost_model.columns)
    if args.json:
        atomic_write_json(args.json, payload)
        print(f"wrote {args.json}")
    if args.check:
        try:
            measured = check(args.check_params, cost_model)
        except (ValueError, OSError) as err:
            return _error(err)
        failed = False
        for name, est, got, ratio in measured:
            ok = abs(ratio - 1) <= CHECK_TOLERANCE
            failed |= not ok
            print(
                f"check {name}: estimated {format_bytes(est)}, measured {format_bytes(got)} "
                f"(ratio {ratio:.3f}) {'ok' if ok else 'OFF BY MORE THAN 25%'}"
            )
        if failed:
            return 1
    return 0


def main(
    argv: Sequence[str] | None, cost_model: CostModel, prog: str = "python pipelines/budget.py"
) -> int:
    """``[--params P] [--paper-params Q] [--json OUT] [--check]`` with a paper's cost model.

    The accelerator and utilisation come from the flags, else from an optional ``budget:``
    section of each params file (``{accelerator: h100, mfu: 0.4}`` or ``{tflops: 400}``),
    else from the defaults (A100 bf16 peak, MFU 0.3). ``--paper-params`` estimates a second
    profile (the pipeline passes ``configs/paper.yaml``: what the full reproduction costs);
    the JSON keeps ``--params``' estimate at the top level and adds that one as ``"paper"``.

    Returns the exit status: 0; 1 when ``--check`` finds an estimate off by more than 25%;
    2 after printing ``error: <one line>`` for bad input.

    Example:
        >>> main(["--params", "no/such.yaml"], CostModel(*[None] * 4))
        2
    """
    return run(build_parser(prog).parse_args(argv), cost_model)

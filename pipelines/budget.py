"""Stage ``budget``: parameters, FLOPs, activation memory and GPU-hours of every experiment.

Usage (from the repository root, as ``dvc.yaml`` runs it)::

    python pipelines/budget.py --json metrics/budget.json --paper-params configs/paper.yaml
    python pipelines/budget.py --params configs/paper.yaml --experiment enwik8-lsh4 --mfu 0.3
    python pipelines/budget.py --check   # the activation estimate against a measured step

The paper that ``--params`` names (its ``paper:`` key) gives the formulas
(``PAPER.cost_model``, a :class:`repro.budget.CostModel`); :mod:`repro.budget` does the
rest: see :func:`repro.budget.main` for the flags and the ``budget:`` section of a profile.

Exit status: 0 done, 1 ``--check`` found an estimate off by more than 25%, 2 bad input
(one line on stderr).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own packages, installed or not

import yaml  # noqa: E402

from repro import budget  # noqa: E402
from repro.config import default_paper  # noqa: E402
from repro.io import atomic_write_json  # noqa: E402
from repro.paper import load_paper  # noqa: E402

PROG = "python pipelines/budget.py"


def paper_name(params_path: str | Path) -> str:
    """The paper a params file names: its ``paper:`` key, else ``[tool.repro] paper`` of
    the ``pyproject.toml`` beside it or above (:func:`repro.config.default_paper`).

    Only that key is read here (as plain YAML): the budget reads the experiments itself,
    through :func:`repro.config.load_params` where it accepts the file.
    """
    path = Path(params_path)
    if not path.is_file():
        raise budget.BudgetError(f"{path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise budget.BudgetError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    name = raw.get("paper") if isinstance(raw, dict) else None
    if name is None:
        found = default_paper(path.parent)
        if found is None:
            raise budget.BudgetError(
                f"{path}: paper is not set; allowed: a `paper: <package>` key, or "
                '[tool.repro] paper = "<package>" in pyproject.toml'
            )
        name = found[0]
    return str(name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage; returns the exit status (see the module docstring)."""
    args = budget.build_parser(PROG).parse_args(argv)
    try:
        paper = load_paper(paper_name(args.params))
    except (ValueError, OSError) as err:  # BudgetError, PaperError: one line each
        print(f"error: {err}", file=sys.stderr)
        return 2
    if paper.cost_model is None:  # optional plug-in: the report says it is not available
        reason = f"paper {paper.name!r} has no cost model (PAPER.cost_model)"
        if args.json:
            atomic_write_json(args.json, {"available": False, "reason": reason})
        print(
            f"budget: {reason}; nothing to estimate" + (f", wrote {args.json}" if args.json else "")
        )
        return 0
    return budget.run(args, paper.cost_model)


if __name__ == "__main__":
    sys.exit(main())

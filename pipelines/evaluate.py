"""Stage ``evaluate@<experiment>``: one trained model measured on its task's test split.

Usage (from the repository root, as ``dvc.yaml`` runs it)::

    python pipelines/evaluate.py dup-lsh4

The paper named by ``params.yaml``'s ``paper:`` rebuilds ``models/<experiment>/model.pt``
and measures it with the ``evaluate`` section's settings under the experiment's own
overrides (its :attr:`repro.paper.Paper.evaluate` decides what is measured). The kit
(:func:`repro.evaluation.evaluate_experiment`) writes ``metrics/<experiment>.json`` and
the same numbers to the summary of the W&B run that trained the model, in a segment of
its own under ``runs/<experiment>/wandb/`` (this stage's DVC output).

Exit status: 0 done, 1 missing or bad inputs (a model file of another experiment or
truncated, a run folder that is not here), 2 bad params or ``WANDB_MODE=disabled``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own packages, installed or not

from repro.config import ConfigError, load_params  # noqa: E402
from repro.paper import PaperError, load_paper  # noqa: E402
from repro.tracking import RecordingDisabledError, require_recording  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Evaluate one experiment; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="a key of `experiments` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        exp = params.experiment(args.experiment)
        paper = load_paper(params.paper)
        require_recording(f"evaluate {args.experiment}")
    except (ConfigError, PaperError, RecordingDisabledError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from repro.evaluation import evaluate_experiment

    return evaluate_experiment(params, exp, paper, Path.cwd())


if __name__ == "__main__":
    sys.exit(main())

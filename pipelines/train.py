"""Stage ``train@<experiment>``: distributed training of one experiment.

``dvc.yaml`` launches it on every rank with torchrun::

    torchrun --standalone --nproc_per_node 2 pipelines/train.py dup-lsh4

(``python pipelines/train.py dup-lsh4`` trains in a single process.) The paper named by
``params.yaml``'s ``paper:`` builds the model and loads the data; the kit
(:func:`repro.training.experiment.train_experiment`) trains it and writes, on rank 0,
``models/<experiment>/`` (checkpoint, final weights, ``run.json`` and the W&B run's record
files in ``wandb/``) and ``metrics/curves/<experiment>.csv``.

Exit status: 0 done, 1 failed (data error, non-finite loss, a failed write, a rank died),
2 bad params or ``WANDB_MODE=disabled`` (the report reads every number from the runs),
130 interrupted (Ctrl-C; the last checkpoint is kept and the rerun resumes from it).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own packages, installed or not

from repro.config import ConfigError, check_runtime, load_params  # noqa: E402
from repro.paper import PaperError, load_paper  # noqa: E402
from repro.tracking import RecordingDisabledError, require_recording  # noqa: E402


def _die_with_launcher() -> None:
    """Under torchrun on Linux: end this rank when its launcher dies, even by SIGKILL.

    torchrun starts every rank in its own session, so a killed launcher would otherwise
    leave orphan ranks training (and writing) on their own.
    """
    if sys.platform.startswith("linux") and "TORCHELASTIC_RUN_ID" in os.environ:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() == 1:  # the launcher died before prctl took effect
                os._exit(1)
        except (OSError, AttributeError):
            pass


def main(argv: list[str] | None = None) -> int:
    """Train one experiment on this rank; returns the exit status."""
    _die_with_launcher()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="a key of `experiments` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun: only rank 0 speaks
    try:
        params = load_params(args.params)
        exp = params.experiment(args.experiment)
        check_runtime(params)
        load_paper(params.paper)
        require_recording(f"train {args.experiment}")
    except (ConfigError, PaperError, RecordingDisabledError) as err:
        if main_rank:
            print(f"error: {err}", file=sys.stderr)
        return 2

    try:
        from repro.training import cleanup_distributed, setup_distributed
        from repro.training.experiment import train_experiment

        dist = params.distributed
        ctx = setup_distributed(dist.backend, dist.device, dist.timeout_s, dist.threads_per_rank)
        try:
            return train_experiment(params, exp, ctx, Path.cwd())
        finally:
            cleanup_distributed(ctx)
    except KeyboardInterrupt:  # before training started or while the ranks shut down
        if main_rank:
            print(f"error: train {args.experiment}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

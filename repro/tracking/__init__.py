"""Experiment tracking with Weights & Biases.

- :mod:`repro.tracking.run`: run set-up for training and evaluation (rank 0 only,
  offline by default) and the ``run.json`` reference each trained model keeps.
- :mod:`repro.tracking.reader`: reads runs back (offline record files or the W&B API).

Example:
    >>> from repro.tracking import RunRef
    >>> RunRef("dup-full", "offline", None, None, "p", "id", "g", None).mode
    'offline'
"""

from repro.tracking.run import (
    RunRef,
    TrackedRun,
    git_commit,
    read_run_json,
    resume_run,
    run_group,
    start_run,
    wandb_mode,
    write_run_json,
)

__all__ = [
    "RunRef",
    "TrackedRun",
    "git_commit",
    "read_run_json",
    "resume_run",
    "run_group",
    "start_run",
    "wandb_mode",
    "write_run_json",
]

"""Experiment tracking with Weights & Biases.

- :mod:`repro.tracking.run`: run set-up for training and evaluation (rank 0 only,
  offline by default);
- :mod:`repro.tracking.run_ref`: the ``run.json`` reference each trained model keeps;
- :mod:`repro.tracking.reader`: reads runs back (offline record files or the W&B API),
  as :mod:`repro.tracking.run_data` records, parsing offline runs' `.wandb` files with
  :mod:`repro.tracking.record_file`.

Example:
    >>> from repro.tracking import RunRef
    >>> RunRef("dup-full", "offline", None, None, "p", "id", "g", None).mode
    'offline'
"""

from repro.tracking.reader import (
    OfflineRunReader,
    OnlineRunReader,
    RunFetchError,
    find_run_segments,
    read_run,
    run_from_api,
)
from repro.tracking.record_file import RunFileError, RunFileWarning, iter_records
from repro.tracking.run import (
    TrackedRun,
    git_commit,
    resume_run,
    run_group,
    start_run,
    wandb_mode,
)
from repro.tracking.run_data import Run, flatten
from repro.tracking.run_ref import RUN_JSON_KEYS, RunRef, read_run_json, write_run_json

__all__ = [
    "RUN_JSON_KEYS",
    "OfflineRunReader",
    "OnlineRunReader",
    "Run",
    "RunFetchError",
    "RunFileError",
    "RunFileWarning",
    "RunRef",
    "TrackedRun",
    "find_run_segments",
    "flatten",
    "git_commit",
    "iter_records",
    "read_run",
    "read_run_json",
    "resume_run",
    "run_from_api",
    "run_group",
    "start_run",
    "wandb_mode",
    "write_run_json",
]

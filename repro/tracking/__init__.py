"""Experiment tracking with Weights & Biases.

- :mod:`repro.tracking.mode`: the W&B mode (offline by default) and the stages' refusal of
  ``WANDB_MODE=disabled``;
- :mod:`repro.tracking.run`: run set-up for training and evaluation (rank 0 only);
- :mod:`repro.tracking.run_ref`: the ``run.json`` reference each trained model keeps;
- :mod:`repro.tracking.layout`: where a run's record files live, inside the DVC outputs
  (``models/<exp>/wandb``, ``runs/<exp>/wandb``), and what to do when they are missing;
- :mod:`repro.tracking.reader`: reads runs back (offline record files or the W&B API),
  as :mod:`repro.tracking.run_data` records, parsing offline runs' `.wandb` files with
  :mod:`repro.tracking.record_file`.

Example:
    >>> from repro.tracking import RunRef
    >>> RunRef("dup-full", "offline", None, None, "p", "id", "g", None).mode
    'offline'
"""

from repro.tracking.layout import (
    EVALUATION_DIR,
    RunMissingError,
    check_run_present,
    evaluation_home,
    find_run_segments,
    tidy_wandb_dir,
)
from repro.tracking.mode import RecordingDisabledError, require_recording, wandb_mode
from repro.tracking.reader import (
    OfflineRunReader,
    OnlineRunReader,
    RunFetchError,
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
)
from repro.tracking.run_data import Run, flatten
from repro.tracking.run_ref import RUN_JSON_KEYS, RunRef, read_run_json, write_run_json

__all__ = [
    "EVALUATION_DIR",
    "RUN_JSON_KEYS",
    "OfflineRunReader",
    "OnlineRunReader",
    "RecordingDisabledError",
    "Run",
    "RunFetchError",
    "RunFileError",
    "RunFileWarning",
    "RunMissingError",
    "RunRef",
    "TrackedRun",
    "check_run_present",
    "evaluation_home",
    "find_run_segments",
    "flatten",
    "git_commit",
    "iter_records",
    "read_run",
    "read_run_json",
    "require_recording",
    "resume_run",
    "run_from_api",
    "run_group",
    "start_run",
    "tidy_wandb_dir",
    "wandb_mode",
    "write_run_json",
]

"""Distributed training: process-group set-up, the training loop, checkpoints, schedules.

- :mod:`~repro.training.distributed`: ``torchrun`` environment -> process group (gloo on
  CPU, nccl on CUDA, with a timeout), collectives that are no-ops in one process;
- :mod:`~repro.training.loop`: :func:`fit`, DDP, gradient accumulation and clipping,
  mixed precision on CUDA, metrics averaged over ranks, atomic checkpoints and exact resume,
  a stop on non-finite loss;
- :mod:`~repro.training.sampling`: :func:`micro_batches`, each rank's shard of every epoch
  from a resumable ``DistributedSampler``;
- :mod:`~repro.training.metrics`: the masked language-modelling objective and evaluation
  (accuracy, loss, bits per character);
- :mod:`~repro.training.optim`, :mod:`~repro.training.schedules`: AdamW/Adafactor and
  warmup + decay schedules;
- :mod:`~repro.training.checkpoint`: atomic writes and RNG state capture.

Example:
    >>> from repro.training import lr_multiplier
    >>> lr_multiplier(0, "constant", total_steps=10, warmup_steps=2)
    0.5
"""

from repro.training.checkpoint import (
    CheckpointError,
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    source_digest,
)
from repro.training.distributed import (
    DistContext,
    all_gather_object,
    all_reduce_sum,
    barrier,
    cleanup_distributed,
    is_peer_failure,
    setup_distributed,
)
from repro.training.loop import HISTORY_FIELDS, NonFiniteLossError, TrainResult, fit
from repro.training.metrics import (
    LanguageModelObjective,
    autocast_context,
    evaluate_lm,
    shift_targets,
)
from repro.training.optim import OPTIMIZERS, build_optimizer, param_groups
from repro.training.sampling import micro_batches
from repro.training.schedules import SCHEDULES, LRSchedule, build_scheduler, lr_multiplier

__all__ = [
    "HISTORY_FIELDS",
    "OPTIMIZERS",
    "CheckpointError",
    "SCHEDULES",
    "DistContext",
    "LRSchedule",
    "LanguageModelObjective",
    "NonFiniteLossError",
    "TrainResult",
    "all_gather_object",
    "all_reduce_sum",
    "atomic_save",
    "atomic_write_json",
    "atomic_write_text",
    "autocast_context",
    "barrier",
    "build_optimizer",
    "build_scheduler",
    "capture_rng_state",
    "cleanup_distributed",
    "evaluate_lm",
    "fit",
    "is_peer_failure",
    "load_checkpoint",
    "lr_multiplier",
    "micro_batches",
    "param_groups",
    "restore_rng_state",
    "source_digest",
    "setup_distributed",
    "shift_targets",
]

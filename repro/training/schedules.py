"""Learning-rate schedules: warmup followed by a decay, as multipliers of the base rate.

``step`` counts optimizer steps from 0 (the step about to be taken), so the first step
already has a non-zero rate. With ``w = warmup_steps``, ``T = total_steps`` and the decay
progress ``p = (step - w) / max(1, T - w)`` after warmup, each schedule is:

- ``constant``: warmup ``(step + 1) / w``, then ``1``;
- ``linear``: warmup ``(step + 1) / w``, then ``m + (1 - m) (1 - p)``;
- ``cosine``: warmup ``(step + 1) / w``, then ``m + (1 - m) (1 + cos(pi p)) / 2``;
- ``rsqrt``: warmup ``(step + 1) / w``, then ``max(m, sqrt(w / (step + 1)))``;
- ``onecycle``: warmup ``lo + (1 - lo) (1 - cos(pi (step + 1) / w)) / 2``, then a cosine
  from 1 to ``m``.

``m`` is ``min_lr_ratio``; ``lo = 1 / 25`` is the one-cycle start (fast.ai's ``div``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["SCHEDULES", "LRSchedule", "build_scheduler", "lr_multiplier"]

SCHEDULES = ("constant", "linear", "cosine", "rsqrt", "onecycle")
ONECYCLE_START = 1 / 25


def lr_multiplier(
    step: int,
    schedule: str,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
) -> float:
    """The factor applied to the base learning rate at optimizer step ``step``.

    Args:
        step: optimizer steps already taken (0 for the first step).
        schedule: one of :data:`SCHEDULES`.
        total_steps: steps of the whole run (``T``).
        warmup_steps: steps of the warmup ramp (``w``, may be 0).
        min_lr_ratio: the final factor of the decaying schedules (``m``).

    Returns:
        The multiplier, in ``(0, 1]`` during the run (``m`` may be 0 at the very end).

    Example:
        >>> lr_multiplier(0, "cosine", total_steps=100, warmup_steps=10)
        0.1
        >>> lr_multiplier(55, "cosine", total_steps=100, warmup_steps=10)
        0.5
        >>> lr_multiplier(3, "triangle", 10)
        Traceback (most recent call last):
        ...
        ValueError: schedule = 'triangle': allowed: constant, linear, cosine, rsqrt, onecycle
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule = {schedule!r}: allowed: {', '.join(SCHEDULES)}")
    if total_steps < 1 or warmup_steps < 0:
        raise ValueError(
            f"total_steps = {total_steps}, warmup_steps = {warmup_steps}: "
            "need total_steps >= 1 and warmup_steps >= 0"
        )
    if step < warmup_steps:
        ramp = (step + 1) / warmup_steps
        if schedule == "onecycle":
            return ONECYCLE_START + (1 - ONECYCLE_START) * (1 - math.cos(math.pi * ramp)) / 2
        return ramp
    if schedule == "constant":
        return 1.0
    if schedule == "rsqrt":
        return max(min_lr_ratio, math.sqrt(max(1, warmup_steps) / (step + 1)))
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "linear":
        return min_lr_ratio + (1 - min_lr_ratio) * (1 - progress)
    # cosine, and the one-cycle's annealing phase
    return min_lr_ratio + (1 - min_lr_ratio) * (1 + math.cos(math.pi * progress)) / 2


@dataclass
class LRSchedule:
    """A picklable :func:`lr_multiplier` with its settings, for ``LambdaLR``.

    Example:
        >>> LRSchedule("linear", total_steps=10)(5)
        0.5
    """

    schedule: str
    total_steps: int
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0

    def __call__(self, step: int) -> float:
        return lr_multiplier(
            step, self.schedule, self.total_steps, self.warmup_steps, self.min_lr_ratio
        )


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping once per optimizer step with :func:`lr_multiplier`.

    Example:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = build_scheduler(opt, "linear", total_steps=4)
        >>> lrs = [opt.param_groups[0]["lr"]]
        >>> for _ in range(3):
        ...     opt.step()
        ...     sched.step()
        ...     lrs.append(opt.param_groups[0]["lr"])
        >>> lrs
        [1.0, 0.75, 0.5, 0.25]
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, LRSchedule(schedule, total_steps, warmup_steps, min_lr_ratio)
    )

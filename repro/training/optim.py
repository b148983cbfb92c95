"""Optimizers: AdamW, and Adafactor (Shazeer & Stern, 2018) as the paper's enwik8 runs use.

Both come from ``torch.optim``. torch's ``Adafactor`` is the paper's Algorithm 4 with the
relative step size: second moments of matrices factored into row and column means,
``1 - beta2_t = t ** -0.8``, update clipping at RMS ``d = 1``, and a step of
``max(eps2, RMS(param)) * min(lr, 1 / sqrt(t))`` (no first moment).

Weight decay (decoupled) applies to matrices only; biases, norms' gains and other vectors
are not decayed.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["OPTIMIZERS", "build_optimizer", "param_groups"]

OPTIMIZERS = ("adamw", "adafactor")


def param_groups(params: Iterable[nn.Parameter], weight_decay: float) -> list[dict]:
    """Split parameters into a decayed group (``dim >= 2``) and a non-decayed one.

    Example:
        >>> groups = param_groups(nn.Linear(3, 2).parameters(), weight_decay=0.1)
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
        [(1, 0.1), (1, 0.0)]
    """
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    params: Iterable[nn.Parameter],
    name: str,
    lr: float,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """Create the optimizer ``name`` over ``params``.

    Args:
        params: the model's parameters.
        name: ``"adamw"`` or ``"adafactor"``.
        lr: base learning rate (Adafactor: the cap of its relative step size).
        weight_decay: decoupled weight decay of matrices.
        betas: AdamW's ``(beta1, beta2)`` (Adafactor uses its decaying ``beta2``).

    Returns:
        A ``torch.optim.AdamW`` or ``torch.optim.Adafactor``.

    Example:
        >>> opt = build_optimizer(nn.Linear(4, 4).parameters(), "adafactor", lr=1e-2)
        >>> type(opt).__name__
        'Adafactor'
        >>> build_optimizer(nn.Linear(4, 4).parameters(), "sgd", lr=1e-2)
        Traceback (most recent call last):
        ...
        ValueError: optimizer = 'sgd': allowed: adamw, adafactor
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer = {name!r}: allowed: {', '.join(OPTIMIZERS)}")
    groups = param_groups(params, weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas))
    return torch.optim.Adafactor(groups, lr=lr)

"""Chunked cross-entropy: the output projection and the loss, a slice of the sequence at a time.

Paper section 3 ("chunking"): the ``(b, l, V)`` logits of a long sequence with a large
vocabulary can dwarf everything else a step holds, so they are computed, reduced and dropped
one slice at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from reformer.models.checks import check_positive

__all__ = ["chunked_cross_entropy"]


def _chunk_loss(
    head: Callable[[Tensor], Tensor], hidden: Tensor, targets: Tensor, mask: Tensor
) -> Tensor:
    logits = head(hidden)  # (b, c, V)
    targets = targets.masked_fill(~mask, -100)
    return F.cross_entropy(
        logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"
    )


def chunked_cross_entropy(
    hidden: Tensor,
    head: Callable[[Tensor], Tensor],
    targets: Tensor,
    mask: Tensor | None = None,
    chunks: int = 1,
) -> Tensor:
    """Mean cross-entropy of ``head(hidden)`` computed in ``chunks`` slices along the sequence.

    The logits of one slice, ``(b, l / chunks, V)``, are computed, reduced to a summed loss and
    dropped; with gradients enabled (and ``chunks > 1``) each slice runs under activation
    checkpointing, so its logits are recomputed in the backward pass instead of stored. The
    full ``(b, l, V)`` logits never exist at once (paper section 3, chunked log-probabilities).

    Args:
        hidden: ``(b, l, h)`` final hidden states.
        head: maps ``(b, c, h)`` to logits ``(b, c, V)`` (e.g. final norm + projection).
        targets: ``(b, l)`` integer class indices.
        mask: optional ``(b, l)`` bool, True = position counted in the loss.
        chunks: number of slices (``1`` = one ordinary computation).

    Returns:
        Scalar: the sum of the per-position losses over masked positions divided by their
        number (``0`` when no position is masked in).

    Example:
        >>> import torch
        >>> head = torch.nn.Linear(4, 10)
        >>> hidden, targets = torch.randn(2, 6, 4), torch.randint(0, 10, (2, 6))
        >>> full = torch.nn.functional.cross_entropy(head(hidden).flatten(0, 1), targets.flatten())
        >>> torch.allclose(chunked_cross_entropy(hidden, head, targets, chunks=3), full)
        True
    """
    check_positive(chunks=chunks)
    if mask is None:
        mask = torch.ones(targets.shape, dtype=torch.bool, device=targets.device)
    use_checkpoint = chunks > 1 and torch.is_grad_enabled()
    total: Tensor | float = 0.0
    pieces = zip(
        hidden.chunk(chunks, dim=1),
        targets.chunk(chunks, dim=1),
        mask.chunk(chunks, dim=1),
        strict=True,
    )
    for h, t, m in pieces:
        if use_checkpoint:
            total = total + checkpoint(_chunk_loss, head, h, t, m, use_reentrant=False)
        else:
            total = total + _chunk_loss(head, h, t, m)
    return total / mask.sum().clamp(min=1)

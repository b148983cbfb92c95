"""The language-modelling objective and masked metrics: loss, accuracy, bits per character.

A batch is ``{"tokens": (b, l) int64, "loss_mask": (b, l) bool}`` where ``loss_mask[:, t]``
says whether predicting ``tokens[:, t + 1]`` counts (the duplication task: the second half
only). Targets are the tokens shifted left by one; the last position has no target and
never counts.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .distributed import DistContext, all_reduce_sum

__all__ = ["LanguageModelObjective", "autocast_context", "evaluate_lm", "shift_targets"]


def shift_targets(tokens: Tensor, loss_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Next-token targets and the mask of positions that count.

    Args:
        tokens: ``(b, l)`` token ids.
        loss_mask: ``(b, l)`` bool.

    Returns:
        ``targets`` ``(b, l)`` (``tokens[:, t + 1]``; the last column is a dummy) and
        ``mask`` ``(b, l)`` bool (``loss_mask`` with the last column False).

    Example:
        >>> t, m = shift_targets(torch.tensor([[5, 6, 7]]), torch.tensor([[True, True, True]]))
        >>> t.tolist(), m.tolist()
        ([[6, 7, 5]], [[True, True, False]])
    """
    targets = tokens.roll(-1, dims=1)
    mask = loss_mask.clone()
    mask[:, -1] = False
    return targets, mask


class LanguageModelObjective(nn.Module):
    """Wraps a language model so that one ``forward`` gives the masked loss and counts.

    DistributedDataParallel synchronises gradients of what its wrapped module's
    ``forward`` computes, so the loss is computed inside ``forward``.

    Args:
        model: a module mapping tokens ``(b, l)`` to logits ``(b, l, V)``; when it has
            ``loss_chunks > 1`` its own chunked ``loss(tokens, targets, loss_mask)`` is used
            and no accuracy is computed (the logits are never materialised).

    ``forward(tokens (b, l), loss_mask (b, l))`` returns ``(loss, correct, count)``: the mean
    cross-entropy over counted positions, how many of them the argmax predicts right
    (NaN when not computed) and how many there are.

    Example:
        >>> lm = nn.Sequential(nn.Embedding(5, 5))
        >>> loss, correct, count = LanguageModelObjective(lm)(
        ...     torch.tensor([[1, 2, 3]]), torch.tensor([[True, True, True]]))
        >>> loss.ndim, int(count)
        (0, 2)
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, loss_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        targets, mask = shift_targets(tokens, loss_mask)
        count = mask.sum()
        if getattr(self.model, "loss_chunks", 1) > 1:
            loss = self.model.loss(tokens, targets, mask)
            return loss, torch.full((), math.nan, device=tokens.device), count
        logits = self.model(tokens)  # (b, l, V)
        picked = logits[mask].float()  # (n, V): only the positions that count
        wanted = targets[mask]  # (n,)
        loss = F.cross_entropy(picked, wanted)
        correct = (picked.argmax(dim=-1) == wanted).sum()
        return loss, correct, count


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA (``"bf16"``/``"fp16"``); a no-op on CPU or for ``"fp32"``.

    Example:
        >>> with autocast_context(torch.device("cpu"), "bf16"):
        ...     (torch.ones(2) * 2).dtype
        torch.float32
    """
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _batches(dataset: Dataset, indices: list[int], batch_size: int) -> Iterator[dict]:
    # A private generator keeps the global RNG stream (LSH rotations) untouched.
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=indices,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(0),
    )
    yield from loader


@torch.no_grad()
def evaluate_lm(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int,
    device: torch.device,
    max_batches: int | None = None,
    ctx: DistContext | None = None,
    precision: str = "fp32",
) -> dict[str, float]:
    """Masked loss, accuracy, bits per token and copy rate of ``model`` on ``dataset``.

    The first ``max_batches * batch_size`` items (all when ``None``) are split between the
    ranks of ``ctx`` (rank ``r`` takes items ``r, r + world, ...``) and the sums are reduced,
    so every rank returns the same numbers. The model is put in eval mode and back.

    Args:
        model: tokens ``(b, l)`` -> logits ``(b, l, V)``.
        dataset: items ``{"tokens": (l,), "loss_mask": (l,)}``.
        batch_size: sequences per forward pass.
        device: where the model is.
        max_batches: evaluate at most this many global batches.
        ctx: the distributed context (``None``: this process evaluates everything).
        precision: autocast on CUDA, see :func:`autocast_context`.

    Returns:
        ``{"loss": nats per counted position, "accuracy": fraction of counted positions
        predicted right, "bpc": loss / ln 2, "copy_rate": fraction of counted positions
        whose prediction equals the current token, "count": counted positions}``. The copy
        rate is a diagnostic: a model that attends to its own position copies the token it
        reads (on the duplication task right with chance ``1 / (V - 1)``), one that attends
        uniformly does not.

    Example:
        >>> tokens = torch.tensor([[1, 2, 1, 2], [3, 4, 3, 4]])
        >>> mask = torch.tensor([[False, True, True, False]] * 2)  # predict tokens 2 and 3
        >>> data = [{"tokens": t, "loss_mask": m} for t, m in zip(tokens, mask)]
        >>> m = evaluate_lm(nn.Embedding(5, 5), data, batch_size=2, device=torch.device("cpu"))
        >>> sorted(m), m["count"]
        (['accuracy', 'bpc', 'copy_rate', 'count', 'loss'], 4.0)
    """
    n = len(dataset)  # type: ignore[arg-type]
    if max_batches is not None:
        n = min(n, max_batches * batch_size)
    rank, world = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    indices = list(range(rank, n, world))
    was_training = model.training
    model.eval()
    # loss sum, correct, count, predictions equal to the current token
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    try:
        for batch in _batches(dataset, indices, batch_size):
            tokens = batch["tokens"].to(device)
            targets, mask = shift_targets(tokens, batch["loss_mask"].to(device))
            with autocast_context(device, precision):
                logits = model(tokens)
            picked = logits[mask].float()
            wanted = targets[mask]
            predicted = picked.argmax(dim=-1)
            sums[0] += F.cross_entropy(picked, wanted, reduction="sum").double()
            sums[1] += (predicted == wanted).sum()
            sums[2] += mask.sum()
            sums[3] += (predicted == tokens[mask]).sum()
    finally:
        model.train(was_training)
    if ctx is not None:
        all_reduce_sum(sums, ctx)
    loss_sum, correct, count, copies = sums.tolist()
    loss = loss_sum / count if count else math.nan
    return {
        "loss": loss,
        "accuracy": correct / count if count else math.nan,
        "bpc": loss / math.log(2),
        "copy_rate": copies / count if count else math.nan,
        "count": count,
    }

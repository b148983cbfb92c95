"""Position-wise feed-forward layer computed in chunks along the sequence (paper, section 3).

The feed-forward layer acts on every position independently, so it can be applied to
``chunks`` slices of the sequence one after the other. The large ``(batch, length, d_ff)``
intermediate then only ever exists for one slice at a time: in the forward pass, and, because
each slice is wrapped in activation checkpointing while gradients are recorded, also in the
backward pass. This is the "chunked" row of the paper's Table 3, where the ``b l d_ff`` term
becomes ``b l d_model``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


class ChunkedFeedForward(nn.Module):
    """Position-wise feed-forward ``w2(dropout(act(w1(x))))``, applied in chunks of positions.

    Args:
        d_model: input and output feature size.
        d_ff: hidden feature size.
        chunks: number of slices along the sequence computed one after the other (``1`` = no
            chunking). With ``chunks > 1`` and gradients enabled each slice is checkpointed,
            so only its input ``(batch, length / chunks, d_model)`` is kept for backward.
        dropout: dropout probability applied to the hidden activations.
        activation: ``"gelu"`` or ``"relu"``.

    Shapes:
        - ``x``: ``(batch, length, d_model)``
        - output: ``(batch, length, d_model)``

    Chunking does not change the result (up to floating point summation order), except that
    with dropout the masks are drawn per slice.

    Example:
        >>> import torch
        >>> ff = ChunkedFeedForward(d_model=8, d_ff=16, chunks=2)
        >>> ff(torch.randn(2, 6, 8)).shape
        torch.Size([2, 6, 8])
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        chunks: int = 1,
        dropout: float = 0.0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("d_ff", d_ff), ("chunks", chunks)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed: must be a positive integer")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r} is not allowed: must be in [0, 1)")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is not allowed: choose one of {sorted(ACTIVATIONS)}"
            )
        self.chunks = chunks
        self.activation = activation
        self.w1 = nn.Linear(d_model, d_ff)
        self.w2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    # PreNorm hands its layer norm to this layer, which applies it per chunk (see forward).
    accepts_norm = True

    def _ff(self, x: Tensor, norm: nn.Module | None = None) -> Tensor:
        if norm is not None:
            x = norm(x)
        return self.w2(self.dropout(ACTIVATIONS[self.activation](self.w1(x))))

    def forward(self, x: Tensor, norm: nn.Module | None = None) -> Tensor:
        """Apply the feed-forward layer (to ``norm(x)`` when a norm is given).

        Args:
            x: ``(batch, length, d_model)``.
            norm: optional position-wise module (the block's layer norm) applied first. With
                ``chunks > 1`` it runs inside each chunk, so its full-length output is never
                held (it is recomputed with the chunk in backward).

        Returns:
            ``(batch, length, d_model)``.
        """
        if self.chunks == 1 or x.shape[1] <= 1:
            return self._ff(x, norm)
        pieces = x.chunk(self.chunks, dim=1)  # each (batch, <= ceil(length / chunks), d_model)
        if torch.is_grad_enabled():
            # Keep only each slice's input for backward; the d_ff-wide hidden state of a
            # slice is recomputed when its gradient is needed (dropout masks are replayed).
            outs = [checkpoint(self._ff, p, norm, use_reentrant=False) for p in pieces]
            return torch.cat(outs, dim=1)
        # Without gradients, write every slice straight into the output.
        first = self._ff(pieces[0], norm)
        out = first.new_empty(*x.shape[:-1], first.shape[-1])
        start = 0
        for piece in pieces:
            out[:, start : start + piece.shape[1]] = first if start == 0 else self._ff(piece, norm)
            start += piece.shape[1]
        return out

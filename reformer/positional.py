"""Positional embeddings: learned absolute, fixed sinusoidal, and axial (factorised).

Every module here takes the token embeddings ``x`` of shape ``(batch, length, d_model)`` only
to read ``length``, device and dtype, and returns the positional embedding of shape
``(1, length, d_model)``, which broadcasts over the batch when added to ``x``.

The axial embedding is the one the paper's enwik8 configuration uses for long sequences
(trax: ``axial_shape=(128, 512)``, ``d_axial_pos_embs=(256, 512)``): position ``p`` is
written as ``p = i * b + j`` with ``i < a``, ``j < b``, and gets the embedding built from
row ``i`` of a table of ``a`` rows and row ``j`` of a table of ``b`` rows, so ``a + b``
learned rows cover ``a * b`` positions.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

INIT_STD = 0.02


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed: must be a positive integer")


def _check_length(length: int, max_seq_len: int) -> None:
    if length > max_seq_len:
        raise ValueError(
            f"sequence length {length} is not allowed: must be <= max_seq_len={max_seq_len}"
        )


class AbsolutePositionalEmbedding(nn.Module):
    """Learned absolute positional embedding: one trainable vector per position.

    Args:
        max_seq_len: the number of positions with an embedding.
        d_model: embedding size.

    Shapes:
        - ``x``: ``(batch, length, d_model)`` with ``length <= max_seq_len``
        - output: ``(1, length, d_model)``

    Example:
        >>> import torch
        >>> pos = AbsolutePositionalEmbedding(max_seq_len=16, d_model=8)
        >>> pos(torch.zeros(2, 5, 8)).shape
        torch.Size([1, 5, 8])
    """

    def __init__(self, max_seq_len: int, d_model: int) -> None:
        super().__init__()
        _check_positive(max_seq_len=max_seq_len, d_model=d_model)
        self.max_seq_len = max_seq_len
        self.emb = nn.Embedding(max_seq_len, d_model)
        nn.init.normal_(self.emb.weight, std=INIT_STD)

    def forward(self, x: Tensor) -> Tensor:
        """Return the embeddings of positions ``0 .. length - 1``: ``(1, length, d_model)``."""
        length = x.shape[1]
        _check_length(length, self.max_seq_len)
        return self.emb.weight[:length].unsqueeze(0)


class FixedPositionalEmbedding(nn.Module):
    """Sinusoidal positional encoding of Vaswani et al. (2017), not trained.

    ``pe[p, 2k] = sin(p / 10000^(2k / d_model))`` and ``pe[p, 2k + 1] = cos(...)`` (same
    frequency). The table is a non-persistent buffer: it is not part of the ``state_dict``.

    Args:
        max_seq_len: the number of positions in the table.
        d_model: embedding size.

    Shapes:
        - ``x``: ``(batch, length, d_model)`` with ``length <= max_seq_len``
        - output: ``(1, length, d_model)``, in the dtype of ``x``

    Example:
        >>> import torch
        >>> pos = FixedPositionalEmbedding(max_seq_len=16, d_model=4)
        >>> pe = pos(torch.zeros(1, 3, 4))
        >>> pe.shape, pe[0, 0].tolist()
        (torch.Size([1, 3, 4]), [0.0, 1.0, 0.0, 1.0])
    """

    def __init__(self, max_seq_len: int, d_model: int) -> None:
        super().__init__()
        _check_positive(max_seq_len=max_seq_len, d_model=d_model)
        self.max_seq_len = max_seq_len
        position = torch.arange(max_seq_len, dtype=torch.float64).unsqueeze(1)  # (l, 1)
        freq = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model)
        )  # (ceil(d / 2),)
        pe = torch.zeros(max_seq_len, d_model, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq[: d_model // 2])
        self.register_buffer("pe", pe.float(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Return the encodings of positions ``0 .. length - 1``: ``(1, length, d_model)``."""
        length = x.shape[1]
        _check_length(length, self.max_seq_len)
        return self.pe[:length].to(x.dtype).unsqueeze(0)


class AxialPositionalEmbedding(nn.Module):
    """Axial (factorised) learned positional embedding, as in the paper's enwik8 model.

    Position ``p = i * b + j`` (``axial_shape = (a, b)``) gets

    - ``axial_dims=None``: ``w1[i] + w2[j]`` with both tables ``d_model`` wide (summed), or
    - ``axial_dims=(d1, d2)``, ``d1 + d2 = d_model``: ``concat(w1[i], w2[j])`` (concatenated,
      the trax configuration).

    Args:
        d_model: embedding size.
        axial_shape: ``(a, b)``; sequences may be up to ``a * b`` long.
        axial_dims: ``None`` to sum, or ``(d1, d2)`` summing to ``d_model`` to concatenate.

    Shapes:
        - ``x``: ``(batch, length, d_model)`` with ``length <= a * b``
        - ``w1``: ``(a, 1, d1)``; ``w2``: ``(1, b, d2)`` (``d1 = d2 = d_model`` when summed)
        - output: ``(1, length, d_model)``

    Example:
        >>> import torch
        >>> pos = AxialPositionalEmbedding(d_model=8, axial_shape=(4, 8), axial_dims=(3, 5))
        >>> pos(torch.zeros(2, 30, 8)).shape
        torch.Size([1, 30, 8])
        >>> pos.max_seq_len
        32
    """

    def __init__(
        self,
        d_model: int,
        axial_shape: tuple[int, int],
        axial_dims: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        _check_positive(d_model=d_model)
        if (
            not isinstance(axial_shape, (tuple, list))
            or len(axial_shape) != 2
            or not all(isinstance(s, int) and s >= 1 for s in axial_shape)
        ):
            raise ValueError(
                f"axial_shape={axial_shape!r} is not allowed: must be two positive integers (a, b)"
            )
        if axial_dims is None:
            dims = (d_model, d_model)
        else:
            if (
                not isinstance(axial_dims, (tuple, list))
                or len(axial_dims) != 2
                or not all(isinstance(d, int) and d >= 1 for d in axial_dims)
                or sum(axial_dims) != d_model
            ):
                raise ValueError(
                    f"axial_dims={axial_dims!r} is not allowed: must be None or two positive "
                    f"integers summing to d_model={d_model}"
                )
            dims = tuple(axial_dims)
        self.axial_shape = tuple(axial_shape)
        self.axial_dims = None if axial_dims is None else dims
        self.max_seq_len = axial_shape[0] * axial_shape[1]
        a, b = self.axial_shape
        self.w1 = nn.Parameter(torch.randn(a, 1, dims[0]) * INIT_STD)
        self.w2 = nn.Parameter(torch.randn(1, b, dims[1]) * INIT_STD)

    def forward(self, x: Tensor) -> Tensor:
        """Return the embeddings of positions ``0 .. length - 1``: ``(1, length, d_model)``."""
        length = x.shape[1]
        if length > self.max_seq_len:
            raise ValueError(
                f"sequence length {length} is not allowed: must be <= a * b = {self.max_seq_len}"
                f" for axial_shape={self.axial_shape}"
            )
        b = self.axial_shape[1]
        rows = -(-length // b)  # only the rows that hold positions < length
        w1 = self.w1[:rows]  # (rows, 1, d1)
        if self.axial_dims is None:
            grid = w1 + self.w2  # (rows, b, d_model)
        else:
            grid = torch.cat([w1.expand(rows, b, -1), self.w2.expand(rows, b, -1)], dim=-1)
        return rearrange(grid, "a b d -> 1 (a b) d")[:, :length]

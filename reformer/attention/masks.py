"""Mask constants and shape checks shared by the attention modules.

Two kinds of "forbidden" score are used (paper, Section 2, Eq. 16 and the text after it):

* the **self-mask**: with shared query/key projections a query is always most similar to
  itself, so the score of ``i -> i`` is replaced by a large negative constant (``-1e5`` in
  the paper). A position then attends to itself only when nothing else is allowed.
* the **hard mask** (causal, padding, other bucket, outside the chunk window): a value that
  is much more negative still, so that a query whose only allowed key is itself puts all its
  weight on itself rather than on a masked key.

Both values are finite (never ``-inf``), so a row in which every key is masked (only a
padded query whose own key is padding) never gives ``nan``: full attention returns the
uniform average there and LSH attention zero. In float16 ``-1e5`` is not representable, so the
self value becomes ``-5e4`` there (as in reformer-pytorch) and the hard mask ``-6e4``.
"""

from __future__ import annotations

import torch

SELF_MASK_VALUE = -1e5
"""Score given to ``i -> i`` with shared QK (paper, Eq. 16)."""

HARD_MASK_VALUE = -1e9
"""Score given to masked pairs (causal, padding, other bucket) in float32/64 and bfloat16."""


def self_mask_value(dtype: torch.dtype) -> float:
    """The self-mask score for scores of type ``dtype``.

    Args:
        dtype: floating dtype of the attention scores.

    Returns:
        ``-1e5`` (``-5e4`` for float16, whose largest finite value is 65504).

    Example:
        >>> self_mask_value(torch.float64), self_mask_value(torch.float16)
        (-100000.0, -50000.0)
    """
    return -5e4 if dtype == torch.float16 else SELF_MASK_VALUE


def hard_mask_value(dtype: torch.dtype) -> float:
    """The score of a masked pair, well below :func:`self_mask_value`.

    Args:
        dtype: floating dtype of the attention scores.

    Returns:
        ``-1e9`` (``-6e4`` for float16).

    Example:
        >>> hard_mask_value(torch.float32), hard_mask_value(torch.float16)
        (-1000000000.0, -60000.0)
    """
    return -6e4 if dtype == torch.float16 else HARD_MASK_VALUE


def check_heads(d_model: int, n_heads: int) -> int:
    """Validate the head split and return the head dimension ``d_model // n_heads``.

    Raises:
        ValueError: when ``n_heads`` is not positive or does not divide ``d_model``.

    Example:
        >>> check_heads(256, 4)
        64
    """
    if n_heads <= 0 or d_model <= 0 or d_model % n_heads != 0:
        raise ValueError(f"d_model={d_model} must be a positive multiple of n_heads={n_heads}")
    return d_model // n_heads


def check_padding_mask(mask: torch.Tensor | None, batch: int, length: int) -> None:
    """Validate a padding mask of shape ``(batch, length)`` (bool, True = real token).

    Raises:
        ValueError: when the mask has another shape or is not boolean.

    Example:
        >>> check_padding_mask(torch.ones(2, 8, dtype=torch.bool), 2, 8)
    """
    if mask is None:
        return
    if mask.dtype != torch.bool or tuple(mask.shape) != (batch, length):
        raise ValueError(
            f"mask must be a bool tensor of shape ({batch}, {length}), "
            f"got {mask.dtype} of shape {tuple(mask.shape)}"
        )

"""Token and positional embeddings of the language models.

The token embedding is a plain ``nn.Embedding`` drawn from ``N(0, std^2)``; the positional
embedding is learned (``"absolute"``), sinusoidal (``"fixed"``) or axial (``"axial"``, the
paper's choice for enwik8; see :mod:`reformer.positional`). Both give ``(b, l, d)`` for
tokens ``(b, l)``, and the models add them.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from reformer.positional import (
    AbsolutePositionalEmbedding,
    AxialPositionalEmbedding,
    FixedPositionalEmbedding,
)

__all__ = [
    "EMBEDDING_INIT_STD",
    "POSITIONALS",
    "check_positional",
    "positional_embedding",
    "token_embedding",
]

POSITIONALS = ("absolute", "fixed", "axial")
"""The ``positional`` values: learned, sinusoidal or axial."""

EMBEDDING_INIT_STD = 0.02
"""Standard deviation of the language models' token embedding entries."""


def token_embedding(vocab_size: int, d_model: int, std: float = EMBEDDING_INIT_STD) -> nn.Embedding:
    """``nn.Embedding(vocab_size, d_model)`` with ``N(0, std^2)`` entries.

    Example:
        >>> token_embedding(10, 4).weight.shape
        torch.Size([10, 4])
    """
    embedding = nn.Embedding(vocab_size, d_model)
    nn.init.normal_(embedding.weight, std=std)
    return embedding


def check_positional(positional: str, axial_shape: Sequence[int] | None, max_seq_len: int) -> None:
    """An axial embedding needs ``axial_shape = (a, b)`` with ``a * b >= max_seq_len``.

    (``positional`` itself is checked with the other model arguments; a malformed
    ``axial_shape`` is left to :class:`~reformer.positional.AxialPositionalEmbedding`.)

    Example:
        >>> check_positional("axial", (4, 4), 32)
        Traceback (most recent call last):
        ...
        ValueError: axial_shape=(4, 4) is not allowed: a * b must be >= max_seq_len=32
    """
    if positional != "axial":
        return
    if axial_shape is None:
        raise ValueError(
            "axial_shape=None is not allowed with positional='axial': give (a, b) "
            f"with a * b >= max_seq_len={max_seq_len}"
        )
    if (
        isinstance(axial_shape, (tuple, list))
        and len(axial_shape) == 2
        and all(isinstance(s, int) for s in axial_shape)
        and axial_shape[0] * axial_shape[1] < max_seq_len
    ):
        raise ValueError(
            f"axial_shape={tuple(axial_shape)} is not allowed: a * b must be >= "
            f"max_seq_len={max_seq_len}"
        )


def positional_embedding(
    positional: str,
    max_seq_len: int,
    d_model: int,
    axial_shape: Sequence[int] | None = None,
    axial_dims: Sequence[int] | None = None,
) -> nn.Module:
    """The positional embedding called ``positional`` (one of :data:`POSITIONALS`).

    Args:
        positional: ``"absolute"`` (learned), ``"fixed"`` (sinusoidal) or ``"axial"``.
        max_seq_len: longest sequence.
        d_model: embedding width.
        axial_shape: ``(a, b)`` for ``"axial"``.
        axial_dims: ``None`` (summed axial tables) or ``(d1, d2)`` for ``"axial"``.

    Returns:
        A module mapping ``x`` ``(b, l, d)`` to positional embeddings of the same shape.

    Example:
        >>> type(positional_embedding("fixed", 16, 8)).__name__
        'FixedPositionalEmbedding'
    """
    if positional == "absolute":
        return AbsolutePositionalEmbedding(max_seq_len, d_model)
    if positional == "fixed":
        return FixedPositionalEmbedding(max_seq_len, d_model)
    return AxialPositionalEmbedding(d_model, axial_shape, axial_dims)

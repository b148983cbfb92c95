"""Argument checks shared by the models: each bad value gives a one-line ValueError.

The message names the argument, its value and what is allowed, so a wrong ``params.yaml``
entry is found without reading a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from reformer.attention.buckets import BUCKET_RULES

__all__ = [
    "check_choice",
    "check_dropout",
    "check_lsh_length",
    "check_model_args",
    "check_positive",
    "check_tokens",
]


def check_positive(**values: Any) -> None:
    """Every keyword value must be a positive integer (``bool`` is not an integer here).

    Example:
        >>> check_positive(n_layers=2, d_model=8)
        >>> check_positive(n_layers=0)
        Traceback (most recent call last):
        ...
        ValueError: n_layers=0 is not allowed: must be a positive integer
    """
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} is not allowed: must be a positive integer")


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """``value`` must be one of ``allowed``.

    Example:
        >>> check_choice("attention", "sparse", ("lsh", "full"))
        Traceback (most recent call last):
        ...
        ValueError: attention='sparse' is not allowed: choose one of ['lsh', 'full']
    """
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed: choose one of {list(allowed)}")


def check_dropout(dropout: float) -> None:
    """``dropout`` must be a number in [0, 1).

    Example:
        >>> check_dropout(1.0)
        Traceback (most recent call last):
        ...
        ValueError: dropout=1.0 is not allowed: must be in [0, 1)
    """
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r} is not allowed: must be in [0, 1)")


def check_model_args(
    *,
    dropout: float,
    choices: dict[str, tuple[Any, Sequence[Any]]] | None = None,
    **sizes: Any,
) -> None:
    """The constructor checks every model shares, in this order, so errors stay the same.

    ``sizes`` (keyword order kept) must be positive integers and include ``d_model`` and
    ``n_heads``; ``choices`` maps a name to ``(value, allowed values)``. Then ``dropout`` must
    be in [0, 1) and ``n_heads`` must divide ``d_model``. Raises a one-line ValueError.

    Example:
        >>> check_model_args(dropout=0.0, d_model=10, n_heads=4)
        Traceback (most recent call last):
        ...
        ValueError: d_model=10 is not allowed with n_heads=4: d_model must be a multiple of n_heads
    """
    check_positive(**sizes)
    for name, (value, allowed) in (choices or {}).items():
        check_choice(name, value, allowed)
    check_dropout(dropout)
    d_model, n_heads = sizes["d_model"], sizes["n_heads"]
    if d_model % n_heads != 0:
        raise ValueError(
            f"d_model={d_model} is not allowed with n_heads={n_heads}: "
            "d_model must be a multiple of n_heads"
        )


def check_lsh_length(length: int, bucket_size: int, bucket_rule: str = "paper") -> None:
    """LSH attention needs ``length`` to be a multiple of ``bucket_size``; with
    ``bucket_rule="half"`` (``length / bucket_size`` buckets) the quotient must be 1 or even.

    Example:
        >>> check_lsh_length(48, 16)  # 3 chunks, 6 buckets by the paper's rule
        >>> check_lsh_length(48, 16, "half")
        Traceback (most recent call last):
        ...
        ValueError: max_seq_len=48 is not allowed with bucket_size=16 and attention='lsh': with bucket_rule='half' it must be bucket_size times 1 or an even number
        >>> check_lsh_length(50, 16)
        Traceback (most recent call last):
        ...
        ValueError: max_seq_len=50 is not allowed with bucket_size=16 and attention='lsh': it must be a multiple of bucket_size
    """  # noqa: E501
    check_choice("bucket_rule", bucket_rule, BUCKET_RULES)
    what = f"max_seq_len={length} is not allowed with bucket_size={bucket_size} and attention='lsh'"
    if length % bucket_size != 0:
        raise ValueError(f"{what}: it must be a multiple of bucket_size")
    n_buckets = length // bucket_size
    if bucket_rule == "half" and n_buckets != 1 and n_buckets % 2 != 0:
        raise ValueError(
            f"{what}: with bucket_rule='half' it must be bucket_size times 1 or an even number"
        )


def check_tokens(name: str, tokens: Tensor) -> None:
    """``tokens`` must be an integer tensor of shape ``(batch, length)``.

    Example:
        >>> check_tokens("tokens", torch.zeros(2, 3, dtype=torch.long))
        >>> check_tokens("tokens", torch.zeros(3))
        Traceback (most recent call last):
        ...
        ValueError: tokens of shape (3,) and dtype torch.float32 is not allowed: must be an integer tensor of shape (batch, length)
    """  # noqa: E501
    if tokens.dim() != 2 or tokens.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"{name} of shape {tuple(tokens.shape)} and dtype {tokens.dtype} is not allowed: "
            "must be an integer tensor of shape (batch, length)"
        )

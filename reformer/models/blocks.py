"""The building blocks of every model's layer stack: pre-norm sub-layers and residual stacks.

A layer is a pair ``(F, G)``: ``F`` the attention, ``G`` the feed-forward, each a
:class:`PreNorm` (layer norm inside, residual dropout on the output). The pairs are run by

- :class:`ResidualSequence` (ordinary residuals): ``x = x + F(x)``; ``x = x + G(x)``, or
- :class:`~reformer.reversible.ReversibleSequence` (paper section 3): ``y1 = x1 + F(x2)``,
  ``y2 = x2 + G(y1)`` with activations recomputed in the backward pass;

:func:`layer_stack` picks one. Both hold the pairs as ``blocks[i].f`` and ``blocks[i].g``, so
the parameter names (``blocks.<i>.f.fn.to_qk.weight``, ...) are the same in either stack.

Shape notation: ``b`` batch, ``l`` sequence length, ``d`` ``d_model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from reformer.reversible import ReversibleSequence

__all__ = ["PreNorm", "ResidualBlock", "ResidualSequence", "layer_stack"]


class PreNorm(nn.Module):
    """``dropout(fn(LayerNorm(x), **kwargs))``: a sub-layer with its layer norm inside.

    This is the ``F`` or ``G`` of a residual or reversible block (the residual sum itself is
    done by the stack). The dropout is the residual dropout of Vaswani et al.

    Args:
        d_model: feature size of ``x``.
        fn: module mapping ``(b, l, d)`` (plus keyword arguments) to ``(b, l, d)``.
        dropout: dropout probability on the output of ``fn``.

    Shapes:
        - ``x``: ``(b, l, d)``; output: ``(b, l, d)``

    Example:
        >>> import torch
        >>> PreNorm(8, torch.nn.Linear(8, 8))(torch.randn(2, 3, 8)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, d_model: int, fn: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.fn = fn
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        """Apply ``fn`` to the normalised ``x`` (``(b, l, d)`` -> ``(b, l, d)``)."""
        if getattr(self.fn, "accepts_norm", False):
            # The layer applies the norm itself, where it can avoid holding its output
            # (LSHSelfAttention with head_chunks > 1); the result is the same.
            return self.dropout(self.fn(x, norm=self.norm, **kwargs))
        return self.dropout(self.fn(self.norm(x), **kwargs))


class ResidualBlock(nn.Module):
    """Ordinary residual block ``x = x + F(x)``; ``x = x + G(x)`` (pre-norm Transformer layer).

    Holds ``F`` and ``G`` under the same names (``f``, ``g``) as
    :class:`~reformer.reversible.ReversibleBlock`, so both stacks have the same parameter names.

    Args:
        f: module ``(b, l, d) -> (b, l, d)``, called with the keyword arguments of ``forward``.
        g: module ``(b, l, d) -> (b, l, d)``.

    Example:
        >>> import torch
        >>> ResidualBlock(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))(torch.randn(2, 3, 4)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, f: nn.Module, g: nn.Module) -> None:
        super().__init__()
        self.f = f
        self.g = g

    def forward(self, x: Tensor, **f_kwargs: Any) -> Tensor:
        """``(b, l, d) -> (b, l, d)``."""
        x = x + self.f(x, **f_kwargs)
        return x + self.g(x)


class ResidualSequence(nn.Module):
    """A stack of :class:`ResidualBlock` (the non-reversible counterpart of ReversibleSequence).

    Args:
        blocks: ``(F, G)`` pairs of modules.

    Shapes:
        - ``x``: ``(b, l, d)``; output: ``(b, l, d)``

    Example:
        >>> import torch
        >>> seq = ResidualSequence([(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))])
        >>> seq(torch.randn(2, 3, 4)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, blocks: Sequence[tuple[nn.Module, nn.Module]]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ResidualBlock(f, g) for f, g in blocks)

    def forward(self, x: Tensor, **f_kwargs: Any) -> Tensor:
        """Run the blocks in order; ``f_kwargs`` (e.g. ``mask``) go to every ``F``."""
        for block in self.blocks:
            x = block(x, **f_kwargs)
        return x


def layer_stack(blocks: Sequence[tuple[nn.Module, nn.Module]], reversible: bool) -> nn.Module:
    """The ``(F, G)`` pairs as a :class:`~reformer.reversible.ReversibleSequence` or a
    :class:`ResidualSequence`.

    The reversible stack takes and returns two halves, ``(x1, x2) -> (y1, y2)``, each
    ``(b, l, d)``; the residual stack ``x -> y``. The caller decides how to start from one
    embedding and how to merge the halves.

    Example:
        >>> import torch
        >>> type(layer_stack([(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4))], True)).__name__
        'ReversibleSequence'
    """
    return ReversibleSequence(blocks) if reversible else ResidualSequence(blocks)

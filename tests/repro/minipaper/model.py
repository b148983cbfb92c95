"""The fixture paper's model: a tiny causal Transformer language model.

``TinyLM`` maps tokens ``(b, l)`` to next-token logits ``(b, l, V)``: token and learned
position embeddings, ``layers`` pre-norm blocks (causal multi-head self-attention, and for
``kind="fancy"`` a two-layer feed-forward network after it, each added to its input, with
dropout), a final layer norm and a read-out that reuses the token embedding when
``shared``. Dropout makes training draw random numbers, so a resumed run is bit-identical
only if the kit restores the random state too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["TinyLM"]


class Block(nn.Module):
    """``x + drop(attention(norm(x)))`` on ``(b, l, width)``, then (fancy) the same with the
    feed-forward network of ``ff`` hidden units."""

    def __init__(self, width: int, heads: int, ff: int | None, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(width)
        # no bias: a key bias shifts every score of a query alike, so its gradient is zero
        # up to rounding, which Adam would scale up into noise
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.out = nn.Linear(width, width)
        self.ff = None
        if ff is not None:
            self.ff = nn.Sequential(
                nn.LayerNorm(width), nn.Linear(width, ff), nn.GELU(), nn.Linear(ff, width)
            )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        qkv = rearrange(self.qkv(self.norm(x)), "b l (n h d) -> n b h l d", n=3, h=self.heads)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
        x = x + self.drop(self.out(rearrange(y, "b h l d -> b l (h d)")))
        return x if self.ff is None else x + self.drop(self.ff(x))


class TinyLM(nn.Module):
    """A causal language model: tokens ``(b, l)`` -> logits ``(b, l, vocab_size)``.

    Args:
        vocab_size: the number of token ids.
        max_seq_len: the longest sequence (the position table's size).
        width, heads: model width and attention heads (``heads`` divides ``width``).
        kind: ``plain`` (attention only) or ``fancy`` (attention and feed-forward).
        shared: the read-out reuses the token embedding's weights.
        dropout: after attention and the feed-forward network, in training.
        shape: ``(layers, feed-forward units)``; ``None``: ``(1, 2 * width)``.

    Example:
        >>> model = TinyLM(vocab_size=6, max_seq_len=8, width=8, heads=2, kind="fancy")
        >>> model(torch.zeros(3, 8, dtype=torch.long)).shape
        torch.Size([3, 8, 6])
    """

    def __init__(
        self,
        vocab_size: int,
        max_seq_len: int,
        width: int = 32,
        heads: int = 2,
        kind: str = "plain",
        shared: bool = True,
        dropout: float = 0.0,
        shape: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width = {width}: must be a multiple of heads ({heads})")
        layers, ff = shape or (1, 2 * width)
        self.max_seq_len = max_seq_len
        self.embed = nn.Embedding(vocab_size, width)
        self.pos = nn.Embedding(max_seq_len, width)
        hidden = ff if kind == "fancy" else None
        self.blocks = nn.ModuleList(Block(width, heads, hidden, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = None if shared else nn.Linear(width, vocab_size)
        for table in (self.embed, self.pos):  # small: the shared read-out starts near uniform
            nn.init.normal_(table.weight, std=0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        length = tokens.shape[1]
        if length > self.max_seq_len:
            raise ValueError(f"sequence length {length}: at most {self.max_seq_len} tokens")
        x = self.embed(tokens) + self.pos(torch.arange(length, device=tokens.device))
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x @ self.embed.weight.T if self.head is None else self.head(x)

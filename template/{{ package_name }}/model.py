"""The toy paper's model: a tiny causal Transformer language model.

``TinyTransformer`` maps token ids ``(b, l)`` to next-token logits ``(b, l, V)``: token and
learned position embeddings, ``n_layers`` pre-norm blocks (causal multi-head self-attention,
then a two-layer feed-forward network, each added to its input), a final layer norm and a
linear read-out. ``tests/<package>/test_model.py`` checks it against a loop-by-loop
reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["CausalSelfAttention", "TinyTransformer"]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``t`` sees positions ``0`` to ``t`` only.

    Args:
        d_model: width of the input and output.
        n_heads: heads; each has ``d_model // n_heads`` dimensions.

    ``forward(x (b, l, d_model)) -> (b, l, d_model)``.

    Example:
        >>> attn = CausalSelfAttention(8, 2)
        >>> attn(torch.zeros(3, 5, 8)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model = {d_model}: must be a multiple of n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = rearrange(
            self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.n_heads
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # softmax(qk^T/sqrt(d)) v
        return self.out(rearrange(y, "b h l d -> b l (h d)"))


class Block(nn.Module):
    """A pre-norm block on ``(b, l, d_model)``: ``x + attention(norm(x))``, then the same with
    the feed-forward network."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.ff(self.norm2(x)))


class TinyTransformer(nn.Module):
    """A causal Transformer language model: tokens ``(b, l)`` -> logits ``(b, l, V)``.

    Args:
        vocab_size: ``V``, the number of token ids.
        max_seq_len: the longest sequence (the position table's size).
        d_model, n_heads, d_ff, n_layers, dropout: the usual Transformer sizes.

    Example:
        >>> model = TinyTransformer(vocab_size=6, max_seq_len=9, d_model=8, n_heads=2, d_ff=16)
        >>> model(torch.zeros(2, 9, dtype=torch.long)).shape
        torch.Size([2, 9, 6])
    """

    def __init__(
        self,
        vocab_size: int,
        max_seq_len: int,
        d_model: int = 32,
        n_heads: int = 2,
        d_ff: int = 64,
        n_layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_seq_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens: Tensor) -> Tensor:
        length = tokens.shape[1]
        if length > self.max_seq_len:
            raise ValueError(
                f"sequence length {length}: this model takes at most {self.max_seq_len} tokens"
            )
        x = self.embed(tokens) + self.pos(torch.arange(length, device=tokens.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

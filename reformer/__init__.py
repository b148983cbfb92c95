"""Reformer: The Efficient Transformer (Kitaev, Kaiser, Levskaya, ICLR 2020), in PyTorch.

The public API gathers the paper's building blocks and models:

* attention (Section 2): :class:`LSHSelfAttention`, :class:`FullSelfAttention`,
  :class:`FullCrossAttention`;
* reversible residual layers (Section 3): :class:`ReversibleBlock`,
  :class:`ReversibleSequence`;
* chunked feed-forward (Section 3): :class:`ChunkedFeedForward`;
* positional embeddings: :class:`AbsolutePositionalEmbedding`,
  :class:`FixedPositionalEmbedding`, :class:`AxialPositionalEmbedding`;
* models: :class:`ReformerLM`, :class:`TransformerLM`, :class:`ReformerEncoderDecoder`,
  and :func:`chunked_cross_entropy` for the chunked output log-probabilities.

Example:
    >>> import torch
    >>> from reformer import ReformerLM
    >>> model = ReformerLM(vocab_size=16, d_model=32, n_heads=2, d_ff=32, max_seq_len=32,
    ...                    bucket_size=8, n_hashes=2)
    >>> model(torch.randint(0, 16, (2, 32))).shape
    torch.Size([2, 32, 16])
"""

from reformer.attention import FullCrossAttention, FullSelfAttention, LSHSelfAttention
from reformer.feedforward import ChunkedFeedForward
from reformer.models import (
    ReformerEncoderDecoder,
    ReformerLM,
    TransformerLM,
    chunked_cross_entropy,
)
from reformer.positional import (
    AbsolutePositionalEmbedding,
    AxialPositionalEmbedding,
    FixedPositionalEmbedding,
)
from reformer.reversible import ReversibleBlock, ReversibleSequence

__version__ = "0.1.0"

__all__ = [
    "AbsolutePositionalEmbedding",
    "AxialPositionalEmbedding",
    "ChunkedFeedForward",
    "FixedPositionalEmbedding",
    "FullCrossAttention",
    "FullSelfAttention",
    "LSHSelfAttention",
    "ReformerEncoderDecoder",
    "ReformerLM",
    "ReversibleBlock",
    "ReversibleSequence",
    "TransformerLM",
    "chunked_cross_entropy",
]

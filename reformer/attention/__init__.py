"""Attention layers: full scaled dot-product attention and LSH attention (paper, Section 2).

Every module maps ``x`` of shape ``(batch, length, d_model)`` to the same shape.

* :mod:`reformer.attention.full`: ``FullSelfAttention`` (optionally shared QK with the
  self-mask) and ``FullCrossAttention``, on ``scaled_dot_product_attention``;
* :mod:`reformer.attention.lsh`: ``LSHSelfAttention`` and its functional pieces
  (``hash_vectors``, ``lsh_attend``) plus the generator-state helpers a reversible
  recompute uses (``get_rng_states``, ``set_rng_states``);
* :mod:`reformer.attention.masks`: the self-mask and hard-mask values and shape checks.

Example:
    >>> import torch
    >>> from reformer.attention import LSHSelfAttention
    >>> attn = LSHSelfAttention(d_model=8, n_heads=2, bucket_size=4, n_hashes=2, causal=True)
    >>> attn(torch.randn(1, 16, 8)).shape
    torch.Size([1, 16, 8])
"""

from reformer.attention.full import FullCrossAttention, FullSelfAttention
from reformer.attention.lsh import (
    LSHSelfAttention,
    get_rng_states,
    hash_vectors,
    lsh_attend,
    set_rng_states,
)

__all__ = [
    "FullCrossAttention",
    "FullSelfAttention",
    "LSHSelfAttention",
    "get_rng_states",
    "hash_vectors",
    "lsh_attend",
    "set_rng_states",
]

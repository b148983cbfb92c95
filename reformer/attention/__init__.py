"""Attention layers: full scaled dot-product attention and LSH attention (paper, Section 2).

Every module maps ``x`` of shape ``(batch, length, d_model)`` to the same shape.

* :mod:`reformer.attention.full`: ``FullSelfAttention`` (optionally shared QK with the
  self-mask) and ``FullCrossAttention``, on ``scaled_dot_product_attention``;
* :mod:`reformer.attention.lsh`: ``LSHSelfAttention`` (the paper-to-code map of LSH
  attention is its module docstring) plus the generator-state helpers a reversible
  recompute uses (``get_rng_states``, ``set_rng_states``), built from
  :mod:`reformer.attention.hashing` (``hash_vectors``), :mod:`reformer.attention.chunked`
  (``lsh_attend``: sort, chunk, mask, combine the rounds), :mod:`reformer.attention.window`
  (the chunked window attention's autograd function) and
  :mod:`reformer.attention.head_groups` (a group of heads at a time);
* :mod:`reformer.attention.buckets`: how many buckets a length gets (``bucket_rule``);
* :mod:`reformer.attention.masks`: the self-mask and hard-mask values and shape checks.

Example:
    >>> import torch
    >>> from reformer.attention import LSHSelfAttention
    >>> attn = LSHSelfAttention(d_model=8, n_heads=2, bucket_size=4, n_hashes=2, causal=True)
    >>> attn(torch.randn(1, 16, 8)).shape
    torch.Size([1, 16, 8])
"""

from reformer.attention.buckets import BUCKET_RULES, n_buckets_for
from reformer.attention.chunked import lsh_attend
from reformer.attention.full import FullCrossAttention, FullSelfAttention
from reformer.attention.hashing import hash_vectors
from reformer.attention.lsh import LSHSelfAttention
from reformer.attention.rng_states import get_rng_states, set_rng_states

__all__ = [
    "BUCKET_RULES",
    "FullCrossAttention",
    "FullSelfAttention",
    "LSHSelfAttention",
    "get_rng_states",
    "hash_vectors",
    "lsh_attend",
    "n_buckets_for",
    "set_rng_states",
]

"""Angular locality-sensitive hashing of the shared query/key vectors (paper, Section 2).

For each head and each round a random matrix ``R`` of shape ``(d_head, n_buckets / 2)`` is
drawn (by :meth:`~reformer.attention.lsh.LSHSelfAttention.random_rotations`) and a vector's
bucket is ``h(x) = argmax([xR; -xR])``: nearby vectors land in the same bucket with high
probability. :func:`hash_vectors` computes it for all positions, heads and rounds at once.

Shape notation: ``b`` batch, ``l`` length, ``h`` heads, ``d`` head dimension, ``r`` rounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["hash_vectors"]

# Positions hashed at once: bounds the ``(b, h, r, slice, n_buckets / 2)`` projection that
# the max and min read (1 Mi elements, 4 MiB in float32), so long sequences with many buckets
# do not materialise an ``l x n_buckets`` tensor, and the two reductions read it from cache:
# with 64 columns 1.33 times as fast as 64 Mi-element slices (CPU time, interleaved A/B). A
# slice keeps at least ``_HASH_SLAB >> 10`` positions (1024), so a wide rotation (1024
# columns) still multiplies tall matrices: as fast as before there.
_HASH_SLAB = 1 << 20


def _hash_one(qk: torch.Tensor, rotations: torch.Tensor, out: torch.Tensor) -> None:
    """``out[b, h, r, l] = argmax([xR; -xR])`` for one rotation tensor, in length slices.

    The argmax over the concatenation is taken as a max and a min of ``xR`` (the largest
    entry of ``-xR`` is minus the smallest of ``xR``), so ``[xR; -xR]`` is never built. Ties
    resolve as the argmax of the concatenation does: the first index, and the positive
    half before the negative one.
    """
    b, l, h, _ = qk.shape
    half = rotations.shape[-1]
    step = max(1, _HASH_SLAB // max(1, b * h * rotations.shape[1] * half), _HASH_SLAB >> 10)
    for start in range(0, l, step):
        proj = torch.einsum("blhd,hrdk->bhrlk", qk[:, start : start + step], rotations)
        top, top_idx = proj.max(dim=-1)
        low, low_idx = proj.min(dim=-1)
        torch.where(top >= -low, top_idx, low_idx + half, out=out[..., start : start + step])


def hash_vectors(
    qk: torch.Tensor, rotations: torch.Tensor | Sequence[torch.Tensor]
) -> torch.Tensor:
    """Angular LSH: ``h(x) = argmax([xR; -xR])`` per head and round (paper, Section 2).

    With a sequence of rotation tensors the buckets are factorised: each factor ``i`` hashes
    into ``n_i`` buckets with its own rotations and the bucket id is the mixed-radix number
    ``h_0 + n_0 (h_1 + n_1 (h_2 + ...))``, so ``prod n_i`` buckets cost ``sum n_i / 2``
    projections per vector instead of ``prod n_i / 2`` (for long sequences, where the number
    of buckets grows with the length; the authors' trax code offers the same).

    Computed in at least float32 (outside autocast), so low-precision inputs do not create
    ties; no gradient flows through the hash.

    Args:
        qk: ``(b, l, h, d)`` shared query/key vectors.
        rotations: ``(h, r, d, n_buckets // 2)`` random matrices, or a sequence of them with
            the factors' bucket counts.

    Returns:
        ``(b, h, r, l)`` int64 bucket ids in ``[0, n_buckets)``.

    Example:
        >>> qk = torch.tensor([[[[1.0, 0.0]], [[-1.0, 0.0]]]])  # (b=1, l=2, h=1, d=2)
        >>> rotations = torch.eye(2).reshape(1, 1, 2, 2)  # (h=1, r=1, d=2, n_buckets/2=2)
        >>> hash_vectors(qk, rotations).tolist()
        [[[[0, 2]]]]
        >>> hash_vectors(qk, [rotations, rotations]).tolist()  # 4 x 4 factorised buckets
        [[[[0, 10]]]]
    """
    factors = [rotations] if isinstance(rotations, torch.Tensor) else list(rotations)
    b, l, h, _ = qk.shape
    dtype = torch.promote_types(qk.dtype, torch.float32)
    buckets = torch.empty(b, h, factors[0].shape[1], l, dtype=torch.long, device=qk.device)
    with torch.no_grad(), torch.autocast(qk.device.type, enabled=False):
        x = qk.detach().to(dtype)
        _hash_one(x, factors[0].to(qk.device, dtype), buckets)
        radix = 2 * factors[0].shape[-1]
        scratch = torch.empty_like(buckets) if len(factors) > 1 else None
        for factor in factors[1:]:  # the next digits of the mixed-radix bucket id
            _hash_one(x, factor.to(qk.device, dtype), scratch)
            buckets.add_(scratch, alpha=radix)
            radix *= 2 * factor.shape[-1]
    return buckets

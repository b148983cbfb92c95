"""How many hash buckets LSH attention uses for a sequence (paper, Section 2).

The paper's analysis and the authors' trax code take ``n_buckets = 2 l / m`` for a sequence
of length ``l`` cut into chunks of length ``m`` (the bucket size): on average a bucket holds
half a chunk, so a query's bucket-mates usually sit in its own chunk or the one before.
trax computes ``2 * max(1, l // m)`` when ``n_buckets`` is not set; HF transformers rounds
the same number down to a power of two (equal for the power-of-two lengths used here).
reformer-pytorch uses ``l / m``: half as many buckets, so more keys share a bucket and LSH
misses fewer of a query's neighbours. Both rules are selectable (``bucket_rule``).
"""

from __future__ import annotations

__all__ = ["BUCKET_RULES", "n_buckets_for"]

#: How the number of buckets follows from the length ``l`` and the bucket (chunk) size ``m``:
#: ``paper``: ``2 l / m`` (Section 2: on average a bucket holds half a chunk; the authors'
#: trax code computes ``2 * max(1, l // m)``); ``half``: ``l / m`` (reformer-pytorch's rule:
#: half as many buckets, which makes LSH more forgiving).
BUCKET_RULES = ("paper", "half")


def n_buckets_for(length: int, bucket_size: int, rule: str = "paper") -> int:
    """The number of hash buckets for a sequence of ``length`` cut into chunks of ``bucket_size``.

    ``paper``: ``2 * max(1, length // bucket_size)``, the trax rule (always even; HF
    transformers rounds the same number down to a power of two, which changes nothing for
    the power-of-two lengths used here). ``half``: ``length // bucket_size``, which must be 1
    (no hashing) or even.

    Raises:
        ValueError: ``length`` is not a multiple of ``bucket_size``, the rule is unknown, or
            the ``half`` rule gives an odd number of buckets (one line).

    Example:
        >>> n_buckets_for(1024, 64), n_buckets_for(1024, 64, "half"), n_buckets_for(64, 64)
        (32, 16, 2)
    """
    if rule not in BUCKET_RULES:
        raise ValueError(f"bucket_rule={rule!r} is not allowed: choose one of {list(BUCKET_RULES)}")
    if length % bucket_size:
        raise ValueError(f"sequence length {length} must be divisible by bucket_size={bucket_size}")
    chunks = length // bucket_size
    if rule == "paper":
        return 2 * max(1, chunks)
    if chunks != 1 and chunks % 2:
        raise ValueError(
            f"n_buckets = length {length} // bucket_size {bucket_size} = {chunks} "
            "must be 1 or even (bucket_rule='half'); use an even multiple of bucket_size, "
            "bucket_rule='paper' or set n_buckets"
        )
    return chunks

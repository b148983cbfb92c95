"""The public Reformer implementations used as performance baselines, built like for like.

* ``reformer-pytorch`` (package ``reformer_pytorch``): ``LSHSelfAttention`` and
  ``ReformerLM``. Its own defaults are kept where the paper's choice would make it do more
  work (duplicate attention and attention across buckets allowed, one set of rotations for
  all heads), so the comparison is against its fastest setting. ``ReformerLM`` gets
  ``ff_chunks=1`` (its default of 100 chunks costs it 11-40% of the time; the models
  compared here do not chunk the feed-forward layer either).
* HuggingFace ``transformers``: ``ReformerAttention`` (layer norm, LSH self-attention, output
  projection) and ``ReformerModelWithLMHead``, randomly initialised from a
  ``ReformerConfig``; nothing is downloaded. Set like for like: a causal decoder
  (``is_decoder=True``), chunk length = bucket size, one chunk before and none after,
  the same number of buckets as ours (``num_buckets``, factorised where ours is), LSH
  layers only, axial positions whose shape multiplies to the length.

The number of buckets follows the length by the paper's rule (``2 l / m``,
:func:`reformer.attention.n_buckets_for`) for every implementation. reformer-pytorch ties its
bucket count to its chunk length (``l / bucket_size``); :func:`attention` makes it hash into
the same number of buckets as ours while keeping chunks of ``bucket_size`` (its rotations get
the columns of the larger count, and nothing else changes). It cannot factorise the buckets:
where ours and HF's do, it computes the full rotation.

Neither package is a dependency of the library: both come with the ``bench`` extra, and
:func:`availability` says why a peer cannot be used.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from reformer.attention import n_buckets_for

# Peer name -> the module whose import makes it available.
PEERS = {
    "reformer_pytorch": "reformer_pytorch",
    "hf_transformers": "transformers.models.reformer.modeling_reformer",
}
# Distribution names, for version records.
DISTRIBUTIONS = {"reformer_pytorch": "reformer-pytorch", "hf_transformers": "transformers"}


def availability(peer: str) -> str | None:
    """``None`` when ``peer`` can be used, else the reason it cannot (for the report)."""
    try:
        importlib.import_module(PEERS[peer])
    except Exception as error:  # any import failure makes the peer "skipped"
        return f"{type(error).__name__}: {error}"
    return None


def axial_shape(length: int) -> tuple[int, int]:
    """Two factors of ``length`` as close to each other as powers of two allow."""
    if length & (length - 1):
        raise ValueError(f"length={length} must be a power of two for the axial shape")
    k = length.bit_length() - 1
    return 2 ** (k // 2), 2 ** (k - k // 2)


def hf_config(
    length: int,
    d_model: int,
    n_heads: int,
    bucket_size: int,
    n_hashes: int,
    n_layers: int = 1,
    d_ff: int = 512,
    vocab_size: int = 256,
    n_buckets: int | tuple[int, ...] | None = None,
) -> Any:
    """A like-for-like ``transformers.ReformerConfig`` (see the module docstring);
    ``n_buckets`` default: the paper's rule."""
    from transformers import ReformerConfig
    from transformers.utils import logging

    logging.set_verbosity_error()  # no advice about settings chosen on purpose

    a, b = axial_shape(length)
    if n_buckets is None:
        n_buckets = n_buckets_for(length, bucket_size)
    return ReformerConfig(
        vocab_size=vocab_size,
        hidden_size=d_model,
        num_attention_heads=n_heads,
        attention_head_size=d_model // n_heads,
        feed_forward_size=d_ff,
        hidden_act="gelu",
        attn_layers=["lsh"] * n_layers,
        lsh_attn_chunk_length=bucket_size,
        lsh_num_chunks_before=1,
        lsh_num_chunks_after=0,
        num_buckets=list(n_buckets) if isinstance(n_buckets, tuple) else n_buckets,
        num_hashes=n_hashes,
        is_decoder=True,
        axial_pos_embds=True,
        axial_pos_shape=[a, b],
        axial_pos_embds_dim=[d_model // 2, d_model - d_model // 2],
        max_position_embeddings=length,
        hidden_dropout_prob=0.0,
        lsh_attention_probs_dropout_prob=0.0,
        local_attention_probs_dropout_prob=0.0,
        chunk_size_feed_forward=0,
        chunk_size_lm_head=0,
        tie_word_embeddings=False,
    )


def same_buckets(layer: nn.Module, length: int, bucket_size: int, n_buckets: int) -> None:
    """Make a reformer-pytorch ``LSHSelfAttention`` hash into ``n_buckets`` buckets per round
    at ``length`` while its chunks keep ``bucket_size`` positions.

    It takes ``length // bucket_size`` buckets and chunks alike; hashing into a multiple of
    that (the rotations get ``n_buckets / 2`` columns, and the per-round offsets follow the
    count it is given) keeps its sort and its chunking as they are.
    """
    per_chunk, rest = divmod(n_buckets, length // bucket_size)
    if rest or per_chunk < 1:
        raise ValueError(
            f"n_buckets={n_buckets} must be a multiple of length {length} // bucket_size "
            f"{bucket_size} for reformer-pytorch"
        )
    if per_chunk == 1:
        return
    lsh = layer.lsh_attn
    hash_vectors = lsh.hash_vectors
    lsh.hash_vectors = lambda n, vecs, **kw: hash_vectors(n * per_chunk, vecs, **kw)


def attention(
    peer: str,
    length: int,
    d_model: int,
    n_heads: int,
    bucket_size: int,
    n_hashes: int,
    n_buckets: int | tuple[int, ...] | None = None,
) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """A peer's causal LSH self-attention layer and ``x (b, l, d) -> (b, l, d)``, hashing into
    ``n_buckets`` buckets (default: the paper's rule; a tuple: factorised, which HF does too
    and reformer-pytorch cannot: it hashes into their product with one rotation)."""
    if n_buckets is None:
        n_buckets = n_buckets_for(length, bucket_size)
    if peer == "reformer_pytorch":
        from reformer_pytorch import LSHSelfAttention

        layer = LSHSelfAttention(
            dim=d_model,
            heads=n_heads,
            dim_head=d_model // n_heads,
            bucket_size=bucket_size,
            n_hashes=n_hashes,
            causal=True,
        )
        total = math.prod(n_buckets) if isinstance(n_buckets, tuple) else n_buckets
        same_buckets(layer, length, bucket_size, total)
        return layer, layer
    if peer == "hf_transformers":
        from transformers.models.reformer.modeling_reformer import ReformerAttention

        config = hf_config(length, d_model, n_heads, bucket_size, n_hashes, n_buckets=n_buckets)
        layer = ReformerAttention(config, 0)
        return layer, lambda x: layer(x).hidden_states
    raise ValueError(f"peer={peer!r} is not allowed: use one of {sorted(PEERS)}")


def language_model(
    peer: str,
    length: int,
    vocab_size: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    d_ff: int,
    bucket_size: int,
    n_hashes: int,
    n_buckets: int | tuple[int, ...] | None = None,
) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """A peer's reversible LSH language model and ``tokens (b, l) -> scalar loss``, hashing
    into ``n_buckets`` buckets as :func:`attention` does."""
    if n_buckets is None:
        n_buckets = n_buckets_for(length, bucket_size)
    if peer == "reformer_pytorch":
        from reformer_pytorch import ReformerLM

        model = ReformerLM(
            num_tokens=vocab_size,
            dim=d_model,
            depth=n_layers,
            max_seq_len=length,
            heads=n_heads,
            dim_head=d_model // n_heads,
            bucket_size=bucket_size,
            n_hashes=n_hashes,
            ff_chunks=1,
            ff_mult=max(1, d_ff // d_model),
            causal=True,
            axial_position_emb=True,
            axial_position_shape=axial_shape(length),
        )
        total = math.prod(n_buckets) if isinstance(n_buckets, tuple) else n_buckets
        for module in model.modules():  # every layer at our bucket count
            if hasattr(module, "lsh_attn"):
                same_buckets(module, length, bucket_size, total)

        def loss(tokens: torch.Tensor) -> torch.Tensor:
            logits = model(tokens)
            return nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, vocab_size), tokens[:, 1:].reshape(-1)
            )

        return model, loss
    if peer == "hf_transformers":
        from transformers.models.reformer.modeling_reformer import ReformerModelWithLMHead

        config = hf_config(
            length, d_model, n_heads, bucket_size, n_hashes, n_layers, d_ff, vocab_size, n_buckets
        )
        model = ReformerModelWithLMHead(config)
        return model, lambda tokens: model(input_ids=tokens, labels=tokens).loss
    raise ValueError(f"peer={peer!r} is not allowed: use one of {sorted(PEERS)}")

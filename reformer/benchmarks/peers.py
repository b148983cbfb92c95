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
  ``num_buckets = length // bucket_size``, LSH layers only, axial positions whose shape
  multiplies to the length.

Neither package is a dependency of the library: both come with the ``bench`` extra, and
:func:`availability` says why a peer cannot be used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

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
) -> Any:
    """A like-for-like ``transformers.ReformerConfig`` (see the module docstring)."""
    from transformers import ReformerConfig
    from transformers.utils import logging

    logging.set_verbosity_error()  # no advice about settings chosen on purpose

    a, b = axial_shape(length)
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
        num_buckets=length // bucket_size,
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


def attention(
    peer: str, length: int, d_model: int, n_heads: int, bucket_size: int, n_hashes: int
) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """A peer's causal LSH self-attention layer and ``x (b, l, d) -> (b, l, d)``."""
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
        return layer, layer
    if peer == "hf_transformers":
        from transformers.models.reformer.modeling_reformer import ReformerAttention

        layer = ReformerAttention(hf_config(length, d_model, n_heads, bucket_size, n_hashes), 0)
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
) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """A peer's reversible LSH language model and ``tokens (b, l) -> scalar loss``."""
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

        def loss(tokens: torch.Tensor) -> torch.Tensor:
            logits = model(tokens)
            return nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, vocab_size), tokens[:, 1:].reshape(-1)
            )

        return model, loss
    if peer == "hf_transformers":
        from transformers.models.reformer.modeling_reformer import ReformerModelWithLMHead

        config = hf_config(
            length, d_model, n_heads, bucket_size, n_hashes, n_layers, d_ff, vocab_size
        )
        model = ReformerModelWithLMHead(config)
        return model, lambda tokens: model(input_ids=tokens, labels=tokens).loss
    raise ValueError(f"peer={peer!r} is not allowed: use one of {sorted(PEERS)}")

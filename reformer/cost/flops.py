"""FLOPs of one training step of a Reformer experiment, and the paper's Table 1 terms.

Conventions (see :mod:`reformer.cost`): a multiply-accumulate (MAC) is 2 FLOPs; only
matrix products count; a training step is 3x the forward FLOPs (4x for reversible layers,
which recompute their forward pass in backward); full attention counts the whole
``l x l`` score matrix; FLOPs are global per optimizer step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reformer.attention.buckets import n_buckets_for

from .specs import LMSpec, Seq2SeqSpec, Spec

__all__ = ["flops_per_step", "table1_terms"]


def _attention_macs(
    tokens: int, l_q: int, l_k: int, d: int, m: Mapping[str, Any], *, cross: bool = False
) -> tuple[int, int]:
    """(projection + score/value MACs, hashing MACs) of one attention layer, forward.

    ``tokens`` query positions in all (``b l_q``), keys per query ``l_k`` for full
    attention. Shared QK (and LSH) has 3 projections of ``d x d`` (qk, v, out), separate
    Q and K have 4; cross-attention has 4 with the key/value projections applied to the
    ``tokens / l_q * l_k`` context positions.
    """
    b = tokens // l_q
    if cross:
        proj = 2 * tokens * d * d + 2 * b * l_k * d * d  # q, out on queries; k, v on context
        return proj + 2 * b * l_q * l_k * d, 0
    shared = m["attention"] == "lsh" or m["shared_qk"]
    proj = (3 if shared else 4) * tokens * d * d
    if m["attention"] == "full":
        # Q K^T and P V: (l_q x d_k) @ (d_k x l_k) per head, summed over heads -> l_q l_k d.
        return proj + 2 * b * l_q * l_k * d, 0
    chunk = m["bucket_size"]
    n_chunks = l_q // chunk
    window = chunk if n_chunks == 1 else 2 * chunk  # a chunk and the chunk before it
    r = m["n_hashes"]
    core = 2 * r * tokens * window * d  # per round: each query scores `window` keys
    core += r * tokens * d  # the rounds' outputs weighted by their softmax over rounds
    # Hashing: x R with R (d_k, n_buckets / 2) per head and round -> d * n_buckets / 2.
    n_buckets = n_buckets_for(l_q, chunk, m.get("bucket_rule", "paper"))
    hashing = r * tokens * d * (n_buckets // 2)
    return proj + core, hashing


def flops_per_step(spec: Spec) -> dict[str, float]:
    """FLOPs of one optimizer step (global batch), split into attention, feed-forward, head.

    Returns:
        ``{"attention", "feedforward", "head", "total"}`` in FLOPs, with the pass factors of
        the module docstring: 3x forward (1 forward + 2 backward), +1 forward for reversible
        layers (recomputed in backward) and for the checkpointed chunked loss; a checkpointed
        feed-forward chunk recomputes its first linear layer only (half its forward). LSH
        hashing acts on detached keys: it runs in the forward pass (and the reversible
        recomputation) only.

    Example:
        >>> spec = Seq2SeqSpec("t", 100, 8, 8, 2, 2, 1, {"d_model": 16, "n_heads": 2,
        ...                    "d_ff": 32, "n_layers": 1, "reversible": False})
        >>> f = flops_per_step(spec)
        >>> f["head"] == 2 * 3 * 16 * 100 * 2 * 8  # tied output matrix on every target position
        True
    """
    m = spec.m
    d, f, n_l = m["d_model"], m["d_ff"], m["n_layers"]
    rev = bool(m["reversible"])
    block_factor = 4 if rev else 3
    # A checkpointed FF chunk re-runs its forward during backward (also inside the reversible
    # recomputation, which records a graph), but only up to the last tensor the backward
    # needs: the first linear layer and the activation, not the second linear layer.
    ff_extra = 1 if m["ff_chunks"] > 1 else 0
    head_factor = 4 if m["loss_chunks"] > 1 else 3
    hash_factor = 2 if rev else 1
    B = spec.batch_size
    if isinstance(spec, Seq2SeqSpec):
        ls, lt = spec.src_len, spec.tgt_len
        n_enc = m.get("n_encoder_layers", n_l)
        n_dec = m.get("n_decoder_layers", n_l)
        full = {**m, "attention": "full", "shared_qk": False}
        enc_attn, _ = _attention_macs(B * ls, ls, ls, d, full)
        dec_self, _ = _attention_macs(B * lt, lt, lt, d, full)
        dec_cross, _ = _attention_macs(B * lt, lt, ls, d, full, cross=True)
        attn_macs = n_enc * enc_attn + n_dec * (dec_self + dec_cross)
        ff_macs = (n_enc * B * ls + n_dec * B * lt) * 2 * d * f
        head_macs = B * lt * d * spec.vocab_size  # tied embedding matrix, target side
        attention = 2 * block_factor * attn_macs
    else:
        l = spec.seq_len
        tokens = B * l
        attn_macs, hash_macs = _attention_macs(tokens, l, l, d, m)
        attn_macs *= n_l
        ff_macs = n_l * tokens * 2 * d * f
        width = 2 * d if rev else d  # the reversible stack's halves are concatenated
        head_macs = tokens * width * spec.vocab_size
        attention = 2 * block_factor * attn_macs + 2 * hash_factor * n_l * hash_macs
    feedforward = 2 * block_factor * ff_macs + 2 * ff_extra * ff_macs // 2
    head = 2 * head_factor * head_macs
    return {
        "attention": float(attention),
        "feedforward": float(feedforward),
        "head": float(head),
        "total": float(attention + feedforward + head),
    }


def table1_terms(spec: Spec) -> dict[str, float]:
    """The paper's Table 1 terms for one attention layer of this experiment (global batch).

    ``full``: ``b n_h l^2 d_k`` (time of scaled dot-product attention; memory
    ``b n_h l^2``); ``lsh``: ``b n_h n_r l (4l/n_c)^2`` with ``4l/n_c = 2m`` (time and
    memory of LSH attention). ``b`` is the global batch.

    Example:
        >>> spec = LMSpec("e", "enwik8", 256, 64, 2, 2, 1, {"d_model": 16, "n_heads": 2,
        ...               "bucket_size": 8, "n_hashes": 4})
        >>> t = table1_terms(spec)
        >>> t["full_time"] == 2 * 2 * 64**2 * 8, t["lsh_time"] == 2 * 2 * 4 * 64 * 16**2
        (True, True)
    """
    m = spec.m
    h = m["n_heads"]
    d_k = m["d_model"] // h
    b = spec.batch_size
    l = spec.seq_len if isinstance(spec, LMSpec) else spec.tgt_len
    window = 2 * m["bucket_size"]  # 4 l / n_c
    return {
        "full_time": float(b * h * l * l * d_k),
        "full_memory": float(max(b * h * l * d_k, b * h * l * l)),
        "lsh_time": float(b * h * m["n_hashes"] * l * window**2),
        "lsh_memory": float(max(b * h * l * d_k, b * h * l * m["n_hashes"] * window**2)),
    }

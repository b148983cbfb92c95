"""Activation memory of a Reformer experiment: the paper's Table 3 and our exact count.

:func:`table3_activation` evaluates the paper's formula; :func:`activation_bytes` sums the
tensors our implementation keeps for the backward pass (checked against a measured step by
``pipelines/budget.py --check`` and the tests). Both are per device (the micro-batch).
"""

from __future__ import annotations

from typing import Any

from .specs import LMSpec, Seq2SeqSpec, Spec

__all__ = ["activation_bytes", "table3_activation"]

_FP32 = 4  # bytes of a float32 element
_INT64 = 8


def _bytes_mm(spec: Spec) -> int:
    # Under autocast (bf16/fp16, CUDA) matmul inputs and outputs are 2-byte; the residual
    # stream and layer-norm statistics stay float32.
    return 2 if spec.precision in ("bf16", "fp16") else _FP32


def table3_activation(spec: Spec) -> dict[str, Any]:
    """The paper's Table 3 activation-memory formula for this model, per device.

    Rows (``c = (4l/n_c)^2 = (2m)^2``, the paper's ``128^2`` for chunks of 64):
    Transformer ``max(b l d_ff, b n_h l^2) n_l``; reversible ``max(b l d_ff, b n_h l^2)``;
    chunked reversible ``max(b l d_model, b n_h l^2)``; Reformer
    ``max(b l d_model, b n_h l n_r c)``. LSH without reversibility keeps the factor
    ``n_l``; chunked feed-forward swaps ``d_ff`` for ``d_model``. ``b`` is the micro-batch.

    Returns:
        ``{"row": str, "elements": int, "bytes": int}`` (4-byte elements).

    Example:
        >>> spec = LMSpec("e", "enwik8", 256, 64, 2, 2, 1, {"d_model": 16, "n_heads": 2,
        ...               "d_ff": 32, "attention": "full", "reversible": False, "n_layers": 3})
        >>> table3_activation(spec)
        {'row': 'Transformer', 'elements': 49152, 'bytes': 196608}
    """
    m = spec.m
    b = spec.micro_batch
    l = spec.seq_len if isinstance(spec, LMSpec) else spec.src_len + spec.tgt_len
    h, n_l = m["n_heads"], m["n_layers"]
    if isinstance(spec, Seq2SeqSpec):
        n_l = m.get("n_encoder_layers", n_l) + m.get("n_decoder_layers", n_l)
    chunked = m["ff_chunks"] > 1
    width = b * l * (m["d_model"] if chunked else m["d_ff"])
    if m["attention"] == "lsh":
        attn = b * h * l * m["n_hashes"] * (2 * m["bucket_size"]) ** 2
    else:
        attn = b * h * l * l
    elements = max(width, attn) * (1 if m["reversible"] else n_l)
    if not m["reversible"]:
        row = "Transformer" if m["attention"] == "full" else "LSH, not reversible"
    elif m["attention"] == "lsh":
        row = "Reformer" if chunked else "Reversible LSH"
    else:
        row = "Chunked reversible" if chunked else "Reversible"
    return {"row": row, "elements": int(elements), "bytes": int(elements * _FP32)}


def _layer_norm(b: int, l: int, d: int) -> int:
    # Input (float32) and the per-position mean and reciprocal std.
    return b * l * d * _FP32 + 2 * b * l * _FP32


def _full_attention_bytes(
    b: int, l_q: int, l_k: int, d: int, h: int, s: int, shared_qk: bool, cross: bool = False
) -> int:
    """Saved for backward by one pre-norm full attention sub-layer (fused SDPA kernel)."""
    total = _layer_norm(b, l_q, d) + b * l_q * d * s  # norm input, normed projection input
    # The fused kernel keeps q, k, v, its output (which is also the output projection's
    # input: a view) and the log-sum-exp per query.
    total += 2 * b * l_q * d * s + 2 * b * l_k * d * s + b * h * l_q * _FP32
    if cross:
        total += b * l_k * d * s  # the context as the key/value projections' input
    if shared_qk:
        total += l_q * l_k * _FP32 + 2 * b * h * l_q * _FP32  # self-mask, key norms
    return total


def _lsh_attention_bytes(b: int, l: int, d: int, h: int, r: int, chunk: int, s: int) -> int:
    """Saved for backward by one pre-norm LSH attention sub-layer of our implementation."""
    n_chunks = l // chunk
    window = chunk if n_chunks == 1 else 2 * chunk
    d_k = d // h
    total = _layer_norm(b, l, d) + b * l * d * s  # norm input, normed projection input
    total += b * l * d * s + b * l * h * _FP32  # shared qk (normalised for the keys), norms
    total += 3 * (b * l * d * r + chunk * d_k) * s  # sorted q, k, v rows (all rounds)
    total += b * h * r * l * window * s  # attention weights per chunk window
    total += 2 * b * l * d * r * s  # sorted and unsorted per-round outputs
    total += 2 * b * l * h * r * _INT64  # the sort permutation and its inverse
    total += 2 * b * l * h * r * _FP32  # per-round log-sum-exp and round weights
    total += b * l * d * s  # output projection input
    return total


def _ff_bytes(b: int, l: int, d: int, f: int, chunks: int, s: int) -> int:
    total = _layer_norm(b, l, d) + b * l * d * s
    if chunks == 1:  # a checkpointed chunk keeps only its input (a view of the normed input)
        total += 2 * b * l * f * s  # hidden before and after the activation
    return total


def _dropout_bytes(b: int, l: int, d: int, f: int, dropout: float) -> int:
    # Boolean masks (1 byte) of the residual and feed-forward hidden dropouts. Full
    # attention's weight dropout lives in the fused kernel (an RNG seed, not a mask).
    return b * l * (2 * d + f) if dropout > 0 else 0


def activation_bytes(spec: Spec) -> dict[str, int]:
    """Bytes our implementation saves for backward in one training forward pass, per device.

    An analytic sum over the tensors each module keeps (layer-norm inputs and statistics,
    projection inputs, the fused attention kernel's q/k/v/output/log-sum-exp, LSH's sorted
    rows, chunk attention weights and permutations, feed-forward hidden activations, the
    head's input and the log-probabilities of the counted positions). Reversible stacks keep
    only their two output halves; during their backward pass one layer's activations exist
    again for a moment (``reversible_backward``, not part of ``total``).

    ``b`` is the micro-batch; matmul activations take 2 bytes under bf16/fp16 autocast.

    Returns:
        ``{"inputs", "layers", "head", "total", "per_layer", "reversible_backward"}``.

    Example:
        >>> spec = LMSpec("e", "duplication", 8, 32, 8, 4, 1, {"d_model": 32, "n_heads": 2,
        ...     "d_ff": 64, "n_hashes": 2, "bucket_size": 8})
        >>> activation_bytes(spec)["layers"]  # reversible: the two halves (4 x 32 x 32 fp32)
        32768
    """
    m = spec.m
    s = _bytes_mm(spec)
    b, d, h, f = spec.micro_batch, m["d_model"], m["n_heads"], m["d_ff"]
    n_l, rev, chunks = m["n_layers"], bool(m["reversible"]), m["ff_chunks"]
    V = spec.vocab_size
    if isinstance(spec, Seq2SeqSpec):
        ls, lt = spec.src_len, spec.tgt_len
        n_enc = m.get("n_encoder_layers", n_l)
        n_dec = m.get("n_decoder_layers", n_l)
        enc_layer = _full_attention_bytes(b, ls, ls, d, h, s, False) + _ff_bytes(
            b, ls, d, f, chunks, s
        )
        dec_layer = (
            _full_attention_bytes(b, lt, lt, d, h, s, False)
            + _full_attention_bytes(b, lt, ls, d, h, s, False, cross=True)
            - b * lt * d * _FP32  # the cross-attention's norm input is x + s, kept once
            + _ff_bytes(b, lt, d, f, chunks, s)
        )
        enc_layer += _dropout_bytes(b, ls, d, f, m["dropout"])
        dec_layer += _dropout_bytes(b, lt, d, f, m["dropout"])
        inputs = b * (ls + lt) * (_INT64 + 1)  # packed token ids and the loss mask
        if rev:
            # Each stack keeps its two output halves; the encoder output (normed) is kept
            # as the decoder's context.
            layers = 2 * b * ls * d * _FP32 + 2 * b * lt * d * _FP32
            layers += _layer_norm(b, ls, d) + b * ls * d * _FP32 + b * ls
        else:
            layers = n_enc * enc_layer + n_dec * dec_layer + _layer_norm(b, ls, d)
        per_layer = max(enc_layer, dec_layer)
        width, l_head = d, lt
    else:
        l = spec.seq_len
        if m["attention"] == "lsh":
            attn = _lsh_attention_bytes(b, l, d, h, m["n_hashes"], m["bucket_size"], s)
        else:
            attn = _full_attention_bytes(b, l, l, d, h, s, bool(m["shared_qk"]))
        per_layer = (
            attn + _ff_bytes(b, l, d, f, chunks, s) + _dropout_bytes(b, l, d, f, m["dropout"])
        )
        inputs = b * l * (_INT64 + 1)  # token ids (the embedding's indices), loss mask
        layers = 2 * b * l * d * _FP32 if rev else n_l * per_layer
        width, l_head = (2 * d if rev else d), l
    counted = b * spec.counted_per_sequence
    if m["loss_chunks"] > 1:
        # Checkpointed head + loss: only the hidden states, targets and mask per chunk.
        head = b * l_head * width * _FP32 + b * l_head * (_INT64 + 1)
    else:
        head = _layer_norm(b, l_head, width) + b * l_head * width * s
        head += counted * V * _FP32 + counted * _INT64  # log-probabilities, targets
    total = inputs + layers + head
    return {
        "inputs": int(inputs),
        "layers": int(layers),
        "head": int(head),
        "total": int(total),
        "per_layer": int(per_layer),
        "reversible_backward": int(per_layer if rev else 0),
    }

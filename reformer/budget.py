"""Compute budget: parameters, FLOPs, activation memory and GPU-hours of every experiment.

``python -m reformer.budget`` reads ``params.yaml`` and prints, per experiment (or for the
one named with ``--experiment``):

- **parameters**: the exact count, from the model built on the ``meta`` device (no memory);
- **FLOPs per optimizer step**, attention and feed-forward separately (plus the output
  head), counted from the matmul shapes of our implementation;
- **activation memory** per device: the paper's Table 3 formula and a concrete byte estimate
  of what our implementation keeps for the backward pass;
- **GPU-hours** for ``train.steps`` steps at an accelerator's peak throughput times a model
  FLOPs utilisation (MFU).

``--json metrics/budget.json`` writes the table for the report (``repro.reporting`` turns
its ``experiments`` rows into the "Computational requirements" table); with
``--paper-params configs/paper.yaml`` (as the pipeline's ``budget`` stage runs it) the file
also holds the paper profile's estimate under ``"paper"`` (the cost of the full
reproduction: the report's second table, with its total); ``--check`` measures
the bytes saved for backward in one real training step of every experiment of the smoke
profile on this machine and fails when the estimate is off by more than 25%.

FLOP conventions (each documented where it is used):

- a multiply-accumulate (MAC) is 2 FLOPs;
- only matrix products count: the attention projections, the attention scores ``Q K^T``
  and the weighted sum ``P V``, the LSH hash projection, the feed-forward layers and the
  output head. Layer norms, softmax, sorting and other elementwise work are ignored; they
  are a few per cent at these widths and do not run on the matmul units that the peak
  throughput describes;
- a training step is the forward pass (1x) plus the backward pass (2x: the gradient with
  respect to the input and with respect to the weights of every matmul), so **3x** the
  forward FLOPs. Reversible layers recompute their forward pass during the backward pass:
  **4x** for the layer stack. Checkpointed pieces (chunked feed-forward, chunked loss) add
  one more forward each;
- full attention counts the whole ``l x l`` score matrix, also for causal models (what
  ``torch.utils.flop_counter`` counts; a causal flash kernel skips about half of it);
- FLOPs are global per optimizer step: ``train.batch_size`` sequences over all ranks.

The paper's Table 1 writes one full-attention layer's time as ``b n_h l^2 d_k``: exactly the
MACs of ``Q K^T`` (and again of ``P V``), so our count is ``2 x 2 x`` that term per pass. For
LSH attention Table 1 gives ``b n_h n_r l (4l/n_c)^2``, an asymptotic term without ``d_k``;
with ``4 l / n_c = 2 m`` (twice the chunk length ``m``: a chunk and the one before it, the
window every query attends to) our count is ``2 b n_h n_r l (2m) d_k`` MACs per pass. Both
Table 1 terms are reported next to the counts (``details`` in the JSON).

Example:
    >>> spec = LMSpec("demo", "duplication", vocab_size=16, seq_len=64, batch_size=8,
    ...               micro_batch=4, steps=100, model={"d_model": 32, "n_heads": 2,
    ...               "d_ff": 64, "attention": "full", "reversible": False})
    >>> f = flops_per_step(spec)
    >>> f["feedforward"] == 2 * 3 * (2 * 32 * 64) * 8 * 64  # 2 FLOP/MAC, 3 passes
    True
    >>> count_parameters(spec) > 0
    True
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "ACCELERATORS",
    "LMSpec",
    "Seq2SeqSpec",
    "activation_bytes",
    "count_parameters",
    "estimate",
    "experiment_specs",
    "flops_per_step",
    "gpu_hours",
    "main",
    "measure_activation_bytes",
    "profile_estimate",
    "table1_terms",
    "table3_activation",
]

#: Dense bf16/fp16 tensor-core peak TFLOP/s (vendor data sheets; SXM parts, no sparsity).
ACCELERATORS: dict[str, float] = {
    "a100": 312.0,  # NVIDIA A100: 312 bf16/fp16 (19.5 fp32, 156 tf32)
    "h100": 989.0,  # NVIDIA H100 SXM: 989 bf16/fp16
    "h200": 989.0,  # NVIDIA H200: same tensor cores as the H100 SXM
    "v100": 125.0,  # NVIDIA V100 SXM2: 125 fp16 (no bf16)
}
DEFAULT_ACCELERATOR = "a100"
DEFAULT_MFU = 0.3  # a typical model FLOPs utilisation of a well-tuned PyTorch training run
CHECK_TOLERANCE = 0.25  # --check: |estimate / measured - 1| must be at most this
_SMOKE_PARAMS = "configs/smoke.yaml"
_FP32 = 4  # bytes of a float32 element
_INT64 = 8

# ModelConfig's defaults, used when params.yaml cannot be read by reformer.config.
_MODEL_DEFAULTS: dict[str, Any] = {
    "d_model": 128,
    "n_layers": 1,
    "n_heads": 4,
    "d_ff": 256,
    "attention": "lsh",
    "n_hashes": 4,
    "bucket_size": 32,
    "shared_qk": True,
    "reversible": True,
    "ff_chunks": 1,
    "positional": "absolute",
    "axial_shape": None,
    "dropout": 0.0,
    "causal": True,
    "attend_across_buckets": False,
    "allow_duplicate_attention": False,
    "loss_chunks": 1,
}


class BudgetError(ValueError):
    """A params file or an option the estimator cannot use (one line).

    Example:
        >>> str(BudgetError("--mfu = 0: must be in (0, 1]"))
        '--mfu = 0: must be in (0, 1]'
    """


@dataclass(frozen=True)
class LMSpec:
    """One language-model experiment (:class:`reformer.models.ReformerLM`), resolved.

    Attributes:
        name: experiment name.
        task: ``duplication`` or ``enwik8`` (decides which positions count in the loss).
        vocab_size: ``V``.
        seq_len: tokens per sequence ``l``.
        batch_size: sequences per optimizer step over all ranks ``B``.
        micro_batch: sequences per forward pass on one device ``b``
            (``batch_size / (ranks x grad_accum)``).
        steps: optimizer steps.
        model: ReformerLM keyword arguments (missing keys take ModelConfig's defaults).
        precision: ``fp32``, ``bf16`` or ``fp16`` (bytes per matmul activation).
        optimizer: ``adamw`` or ``adafactor`` (bytes of optimizer state).

    Example:
        >>> LMSpec("e", "enwik8", 256, 128, 8, 8, 10, {"attention": "full"}).m["d_model"]
        128
    """

    name: str
    task: str
    vocab_size: int
    seq_len: int
    batch_size: int
    micro_batch: int
    steps: int
    model: Mapping[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    optimizer: str = "adamw"

    @property
    def m(self) -> dict[str, Any]:
        """The model settings with defaults filled in."""
        return {**_MODEL_DEFAULTS, **dict(self.model)}

    @property
    def counted_per_sequence(self) -> int:
        """Positions per sequence whose prediction counts in the loss.

        Duplication: ``l/2 .. l-2`` (the second copy); other tasks: every position but the
        last (which has no next token).
        """
        if self.task == "duplication":
            return self.seq_len - 1 - self.seq_len // 2
        return self.seq_len - 1


@dataclass(frozen=True)
class Seq2SeqSpec:
    """One translation experiment (:class:`reformer.models.ReformerEncoderDecoder`).

    Attributes:
        src_len, tgt_len: padded source and target lengths ``ls``, ``lt``.
        model: ``d_model``, ``n_layers`` (encoder and decoder each), ``n_heads``, ``d_ff``,
            ``reversible``, ``ff_chunks``, ``loss_chunks``, ``dropout``.

    The other attributes are as in :class:`LMSpec`.

    Example:
        >>> Seq2SeqSpec("t", 100, 8, 8, 4, 4, 1, {"d_model": 16}).m["d_model"]
        16
    """

    name: str
    vocab_size: int
    src_len: int
    tgt_len: int
    batch_size: int
    micro_batch: int
    steps: int
    model: Mapping[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    optimizer: str = "adamw"
    task: str = "wmt14"

    @property
    def m(self) -> dict[str, Any]:
        """The model settings with defaults filled in."""
        return {**_MODEL_DEFAULTS, "attention": "full", **dict(self.model)}

    @property
    def counted_per_sequence(self) -> int:
        """Target positions that count (an upper bound: padding is not known in advance)."""
        return self.tgt_len - 1


Spec = LMSpec | Seq2SeqSpec


# ----------------------------------------------------------------------------- parameters


def build_model(spec: Spec, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The experiment's model, built on ``device`` (``"meta"``: shapes only, no memory).

    Example:
        >>> spec = LMSpec("e", "enwik8", 256, 64, 8, 8, 1, {"d_model": 16, "n_heads": 2,
        ...               "bucket_size": 16})
        >>> type(build_model(spec, "meta")).__name__
        'ReformerLM'
    """
    from reformer.models import ReformerEncoderDecoder, ReformerLM

    m = spec.m
    with torch.device(device):
        if isinstance(spec, Seq2SeqSpec):
            return ReformerEncoderDecoder(
                vocab_size=spec.vocab_size,
                d_model=m["d_model"],
                n_encoder_layers=m.get("n_encoder_layers", m["n_layers"]),
                n_decoder_layers=m.get("n_decoder_layers", m["n_layers"]),
                n_heads=m["n_heads"],
                d_ff=m["d_ff"],
                max_seq_len=max(spec.src_len, spec.tgt_len),
                dropout=m["dropout"],
                reversible=m["reversible"],
                ff_chunks=m["ff_chunks"],
                loss_chunks=m["loss_chunks"],
            )
        kwargs = {k: v for k, v in m.items() if k in _MODEL_DEFAULTS}
        if kwargs.get("axial_shape") is not None:
            kwargs["axial_shape"] = tuple(kwargs["axial_shape"])
        return ReformerLM(vocab_size=spec.vocab_size, max_seq_len=spec.seq_len, **kwargs)


def count_parameters(spec: Spec) -> int:
    """Exact number of trainable parameters, counted on the ``meta`` device.

    Example:
        >>> spec = LMSpec("e", "enwik8", 10, 8, 1, 1, 1, {"d_model": 4, "n_heads": 1,
        ...     "d_ff": 4, "attention": "full", "reversible": False, "positional": "fixed"})
        >>> count_parameters(spec)  # emb 40 + attn 3*16 + ff 2*16+4+4 + 2 LN 16 + LN 8 + head 50
        202
    """
    model = build_model(spec, "meta")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------- FLOPs


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
    hashing = r * tokens * d * ((l_q // chunk) // 2)
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


# ----------------------------------------------------------------------------- memory


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


def state_bytes(n_params: int, optimizer: str) -> int:
    """Bytes of weights, gradients and optimizer state (float32 master weights).

    AdamW: weight + gradient + two moments = 16 bytes per parameter. Adafactor (factored
    second moment, no first moment): weight + gradient = 8 bytes per parameter, plus row and
    column statistics that are negligible for matrices.

    Example:
        >>> state_bytes(1000, "adamw"), state_bytes(1000, "adafactor")
        (16000, 8000)
    """
    return n_params * (16 if optimizer == "adamw" else 8)


def gpu_hours(flops: float, peak_tflops: float, mfu: float) -> float:
    """GPU-hours for ``flops`` at ``mfu`` of ``peak_tflops`` (hours of one device).

    Example:
        >>> gpu_hours(312e12 * 0.3 * 3600, peak_tflops=312, mfu=0.3)
        1.0
    """
    return flops / (peak_tflops * 1e12 * mfu) / 3600.0


# ----------------------------------------------------------------------------- specs


def _merge(*dicts: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in dicts:
        out.update(dict(d or {}))
    return out


def _task_vocab(task: str, task_params: Mapping[str, Any]) -> int:
    if task == "duplication":
        return int(task_params["vocab_size"])
    if task == "enwik8":
        return 256
    if task == "wmt14":
        return int(task_params.get("vocab_size", 32000))
    raise BudgetError(f"task {task!r} is unknown to the estimator; allowed: duplication, enwik8")


def _spec_from_parts(
    name: str,
    task: str,
    task_params: Mapping[str, Any],
    model: Mapping[str, Any],
    train: Mapping[str, Any],
    ranks: int,
    seq_len: int | None,
) -> Spec:
    batch = int(train.get("batch_size", 32))
    accum = int(train.get("grad_accum", 1))
    micro = max(1, batch // max(1, ranks * accum))
    common = {
        "batch_size": batch,
        "micro_batch": micro,
        "steps": int(train.get("steps", 600)),
        "precision": str(train.get("precision", "fp32")),
        "optimizer": str(train.get("optimizer", "adamw")),
    }
    vocab = _task_vocab(task, task_params)
    if task == "wmt14":
        max_len = int(task_params.get("max_len", seq_len // 2 if seq_len else 256))
        return Seq2SeqSpec(name, vocab, max_len, max_len, model=dict(model), **common)
    if seq_len is None:
        if task != "duplication":
            raise BudgetError(f"experiment {name!r}: train.seq_len is required for {task}")
        seq_len = int(task_params["length"])
    return LMSpec(name, task, vocab, int(seq_len), model=dict(model), **common)


def experiment_specs(
    params_path: str | os.PathLike = "params.yaml", experiment: str | None = None
) -> list[Spec]:
    """Resolved specs of every experiment of a params file (or of the one named).

    Uses :func:`reformer.config.load_params` (validated, defaults resolved); a file that it
    rejects (e.g. a task it does not know yet) is read as plain YAML with the same
    defaults-then-overrides rule.

    Raises:
        BudgetError: the file is missing, or the experiment does not exist (one line).

    Example:
        >>> experiment_specs("no/such.yaml")
        Traceback (most recent call last):
        ...
        reformer.budget.BudgetError: no/such.yaml: file not found
    """
    path = Path(params_path)
    if not path.is_file():
        raise BudgetError(f"{path}: file not found")
    specs: list[Spec] = []
    from reformer.config import ConfigError, load_params

    try:
        params = load_params(path)
    except ConfigError:
        params = None  # e.g. a task this version of reformer.config does not know yet
    if params is not None:
        ranks = params.distributed.nproc_per_node
        for name, exp in params.experiments.items():
            model = dataclasses.asdict(exp.model)
            train = dataclasses.asdict(exp.train)
            specs.append(
                _spec_from_parts(name, exp.task, exp.task_params, model, train, ranks, exp.seq_len)
            )
    else:
        import yaml

        raw = yaml.safe_load(path.read_text()) or {}
        ranks = int((raw.get("distributed") or {}).get("nproc_per_node", 1))
        tasks = raw.get("tasks") or {}
        for name, entry in (raw.get("experiments") or {}).items():
            task = entry.get("task")
            model = _merge(raw.get("model"), entry.get("model"))
            train = _merge(raw.get("train"), entry.get("train"))
            seq_len = train.get("seq_len")
            specs.append(
                _spec_from_parts(
                    str(name), str(task), tasks.get(task) or {}, model, train, ranks, seq_len
                )
            )
    if experiment is not None:
        chosen = [s for s in specs if s.name == experiment]
        if not chosen:
            allowed = ", ".join(s.name for s in specs) or "(none)"
            raise BudgetError(f"experiment {experiment!r} is not in {path}; allowed: {allowed}")
        return chosen
    return specs


# ----------------------------------------------------------------------------- estimate


def estimate(spec: Spec, peak_tflops: float, mfu: float) -> tuple[dict[str, Any], dict]:
    """One experiment's table row and its detailed breakdown.

    Returns:
        ``(row, details)``: ``row`` holds the flat values of the report's table
        (``experiment``, ``params``, ``tokens_per_step``, ``attention_flops``,
        ``ff_flops``, ``total_flops``, ``activation_bytes``, ``table3_bytes``, ``steps``,
        ``gpu_hours``); ``details`` everything else.

    Example:
        >>> spec = LMSpec("e", "enwik8", 256, 64, 8, 8, 1000, {"d_model": 16, "n_heads": 2,
        ...               "d_ff": 32, "attention": "full"})
        >>> row, details = estimate(spec, 312.0, 0.3)
        >>> row["gpu_hours"] == gpu_hours(row["total_flops"] * 1000, 312.0, 0.3)
        True
    """
    n_params = count_parameters(spec)
    flops = flops_per_step(spec)
    memory = activation_bytes(spec)
    paper = table3_activation(spec)
    if isinstance(spec, Seq2SeqSpec):
        tokens = spec.batch_size * (spec.src_len + spec.tgt_len)
    else:
        tokens = spec.batch_size * spec.seq_len
    row = {
        "experiment": spec.name,
        "params": n_params,
        "tokens_per_step": tokens,
        "attention_flops": flops["attention"],
        "ff_flops": flops["feedforward"],
        "total_flops": flops["total"],
        "activation_bytes": memory["total"],
        "table3_bytes": paper["bytes"],
        "steps": spec.steps,
        "gpu_hours": gpu_hours(flops["total"] * spec.steps, peak_tflops, mfu),
    }
    details = {
        "task": spec.task,
        "spec": {
            k: (dict(v) if isinstance(v, Mapping) else v)
            for k, v in dataclasses.asdict(spec).items()
        },
        "flops": flops,
        "table1": table1_terms(spec),
        "table3": paper,
        "activation": memory,
        "state_bytes": state_bytes(n_params, spec.optimizer),
        "peak_bytes": memory["total"]
        + memory["reversible_backward"]
        + state_bytes(n_params, spec.optimizer),
    }
    return row, details


def _human(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{unit}"
    return f"{value:.3g}{unit}"


def _bytes(value: float) -> str:
    for factor, prefix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{int(value)} B"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a fixed-width text table.

    Example:
        >>> row = {"experiment": "e", "params": 1200, "tokens_per_step": 10,
        ...        "attention_flops": 2e9, "ff_flops": 3e9, "total_flops": 6e9,
        ...        "activation_bytes": 2048, "table3_bytes": 4096, "steps": 10, "gpu_hours": 0.5}
        >>> header, line = format_table([row]).splitlines()
        >>> line.split()
        ['e', '1.2k', '10', '2G', '3G', '6G', '2', 'KiB', '4', 'KiB', '10', '0.5']
    """
    header = [
        "experiment",
        "params",
        "tokens/step",
        "attn FLOP",
        "FF FLOP",
        "total FLOP",
        "act. (ours)",
        "act. (Table 3)",
        "steps",
        "GPU-h",
    ]
    lines = [
        [
            str(r["experiment"]),
            _human(r["params"]),
            _human(r["tokens_per_step"]),
            _human(r["attention_flops"]),
            _human(r["ff_flops"]),
            _human(r["total_flops"]),
            _bytes(r["activation_bytes"]),
            _bytes(r["table3_bytes"]),
            str(r["steps"]),
            f"{r['gpu_hours']:.3g}",
        ]
        for r in rows
    ]
    widths = [max(len(c) for c in col) for col in zip(header, *lines, strict=True)]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *lines]
    ]
    return "\n".join(out)


# ----------------------------------------------------------------------------- measurement


def measure_activation_bytes(spec: Spec, seed: int = 0) -> int:
    """Bytes saved for backward by one real training forward pass on this machine (CPU).

    Builds the model in float32 on the CPU, draws a random micro-batch of the task's shape
    (the duplication task counts the second half only) and runs the training objective
    under :func:`reformer.memory.saved_tensor_bytes`, parameters excluded.

    Example:
        >>> spec = LMSpec("e", "duplication", 8, 32, 8, 4, 1, {"d_model": 32, "n_heads": 2,
        ...     "d_ff": 64, "n_hashes": 2, "bucket_size": 8})
        >>> measured = measure_activation_bytes(spec)
        >>> abs(activation_bytes(spec)["total"] / measured - 1) < 0.25
        True
    """
    from reformer.memory import saved_tensor_bytes
    from repro.training.metrics import LanguageModelObjective

    torch.manual_seed(seed)
    model = build_model(spec, "cpu")
    b = spec.micro_batch
    if isinstance(spec, Seq2SeqSpec):
        from reformer.tasks.wmt14 import PackedTranslationModel, packed_loss_mask

        model = PackedTranslationModel(model, spec.src_len)
        length = spec.src_len + spec.tgt_len
        tokens = torch.randint(3, spec.vocab_size, (b, length))
        loss_mask = packed_loss_mask(tokens, spec.src_len, pad_id=0)
    else:
        length = spec.seq_len
        tokens = torch.randint(0, spec.vocab_size, (b, length))
        loss_mask = torch.ones(b, length, dtype=torch.bool)
        if spec.task == "duplication":
            loss_mask[:, : length // 2] = False
    model.train()
    objective = LanguageModelObjective(model)
    return int(saved_tensor_bytes(objective, tokens, loss_mask, ignore=model.parameters()))


def check(params_path: str | os.PathLike = _SMOKE_PARAMS, tolerance: float = CHECK_TOLERANCE):
    """Compare estimated and measured activation bytes for every experiment of a profile.

    Returns:
        A list of ``(experiment, estimated, measured, ratio)``; the caller decides.

    Example:
        >>> rows = check(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml")
        >>> all(abs(ratio - 1) <= CHECK_TOLERANCE for _, _, _, ratio in rows)
        True
    """
    rows = []
    for spec in experiment_specs(params_path):
        estimated = activation_bytes(spec)["total"]
        measured = measure_activation_bytes(spec)
        rows.append((spec.name, estimated, measured, estimated / measured))
    return rows


# ----------------------------------------------------------------------------- CLI


def _positive(name: str, value: float, upper: float | None = None) -> float:
    if not math.isfinite(value) or value <= 0 or (upper is not None and value > upper):
        allowed = f"in (0, {upper:g}]" if upper is not None else "> 0"
        raise BudgetError(f"{name} = {value!r}: must be {allowed}")
    return value


def _budget_section(params_path: str | os.PathLike) -> dict[str, Any]:
    """The optional ``budget:`` section of the params file: accelerator, tflops, mfu."""
    import yaml

    if not Path(params_path).is_file():
        raise BudgetError(f"{params_path}: file not found")
    raw = yaml.safe_load(Path(params_path).read_text()) or {}
    section = raw.get("budget") or {}
    if not isinstance(section, Mapping):
        raise BudgetError(f"{params_path}: budget = {section!r}: must be a mapping")
    unknown = sorted(set(section) - {"accelerator", "tflops", "mfu"})
    if unknown:
        raise BudgetError(
            f"{params_path}: budget.{unknown[0]} is unknown; allowed: accelerator, tflops, mfu"
        )
    return {
        "accelerator": section.get("accelerator", DEFAULT_ACCELERATOR),
        "tflops": section.get("tflops"),
        "mfu": section.get("mfu", DEFAULT_MFU),
    }


def _peak_and_mfu(args: argparse.Namespace, params_path: str) -> tuple[str, float, float]:
    """``(accelerator name or "custom", peak TFLOP/s, MFU)`` for one params file.

    The flags win over the file's ``budget:`` section, which wins over the defaults.
    """
    section = _budget_section(params_path)
    mfu = _positive("--mfu", args.mfu if args.mfu is not None else section["mfu"], 1.0)
    accelerator = args.accelerator or section["accelerator"]
    tflops = args.tflops if args.tflops is not None else section["tflops"]
    if args.accelerator is not None and args.tflops is None:
        tflops = None  # an explicit preset wins over the params file's number
    if accelerator not in ACCELERATORS:
        raise BudgetError(
            f"budget.accelerator = {accelerator!r}: allowed: {', '.join(ACCELERATORS)}"
        )
    if tflops is not None:
        return "custom", _positive("--tflops", tflops), mfu
    return accelerator, ACCELERATORS[accelerator], mfu


def profile_estimate(
    params_path: str | os.PathLike,
    peak_tflops: float,
    mfu: float,
    accelerator: str = "custom",
    experiment: str | None = None,
) -> dict[str, Any]:
    """The estimate of every experiment of one params file, as written to the JSON.

    Returns:
        ``{"assumptions": {...}, "experiments": [row, ...], "details": {name: {...}}}``
        with the rows of :func:`estimate` (FLOPs per optimizer step, bytes per device,
        hours of one accelerator).

    Example:
        >>> smoke = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
        >>> out = profile_estimate(smoke, 312.0, 0.3, "a100", experiment="dup-full")
        >>> [r["experiment"] for r in out["experiments"]], out["assumptions"]["mfu"]
        (['dup-full'], 0.3)
    """
    specs = experiment_specs(params_path, experiment)
    results = [estimate(spec, peak_tflops, mfu) for spec in specs]
    return {
        "assumptions": {
            "params_file": str(params_path),
            "accelerator": accelerator,
            "peak_tflops": peak_tflops,
            "mfu": mfu,
            "flops": "matmul FLOPs per optimizer step (global batch), 2 FLOPs per MAC; "
            "3x forward (4x for reversible layers)",
            "activation_bytes": "saved for backward per device (micro-batch), ours",
            "table3_bytes": "the paper's Table 3 formula, 4-byte elements, per device",
        },
        "experiments": [r for r, _ in results],
        "details": {r["experiment"]: d for r, d in results},
    }


def _print_profile(section: Mapping[str, Any]) -> None:
    a = section["assumptions"]
    rows = section["experiments"]
    print(
        f"compute budget: {a['params_file']}, {a['peak_tflops']:g} TFLOP/s peak "
        f"({a['accelerator']}) at MFU {a['mfu']:g}"
    )
    print(format_table(rows))
    total = sum(r["gpu_hours"] for r in rows)
    print(f"total: {total:.3g} GPU-h over {len(rows)} experiments")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reformer.budget [--params P] [--paper-params Q] [--json OUT] [--check]``.

    The accelerator and utilisation come from the flags, else from an optional ``budget:``
    section of each params file (``{accelerator: h100, mfu: 0.4}`` or ``{tflops: 400}``),
    else from the defaults (A100 bf16 peak, MFU 0.3). ``--paper-params`` estimates a second
    profile (the pipeline passes ``configs/paper.yaml``: what the full reproduction costs);
    the JSON keeps ``--params``' estimate at the top level and adds that one as ``"paper"``.

    Returns the exit status: 0; 1 when ``--check`` finds an estimate off by more than 25%;
    2 after printing ``error: <one line>`` for bad input.

    Example:
        >>> main(["--params", "no/such.yaml"])
        2
    """
    parser = argparse.ArgumentParser(
        prog="python -m reformer.budget",
        description="Parameters, FLOPs per step, activation memory and GPU-hours per experiment.",
    )
    parser.add_argument("--params", default="params.yaml", help="params file (params.yaml)")
    parser.add_argument("--experiment", default=None, help="only this experiment (of --params)")
    parser.add_argument(
        "--paper-params",
        default=None,
        metavar="PATH",
        help="also estimate every experiment of this profile (configs/paper.yaml), printed "
        'after --params and written under "paper" in --json (default: none)',
    )
    parser.add_argument(
        "--accelerator",
        default=None,
        choices=sorted(ACCELERATORS),
        help="peak bf16 TFLOP/s preset: "
        + ", ".join(f"{k} {v:g}" for k, v in ACCELERATORS.items())
        + f" (default: params budget.accelerator, else {DEFAULT_ACCELERATOR})",
    )
    parser.add_argument(
        "--tflops",
        type=float,
        default=None,
        help="peak TFLOP/s (overrides --accelerator; default: params budget.tflops)",
    )
    parser.add_argument(
        "--mfu",
        type=float,
        default=None,
        help="model FLOPs utilisation, fraction of the peak "
        f"(default: params budget.mfu, else {DEFAULT_MFU})",
    )
    parser.add_argument(
        "--json", default=None, help="write the estimates as JSON (metrics/budget.json)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        # "%%": argparse %-formats help strings; a bare "%" breaks --help.
        help="measure one training step per experiment of --check-params and compare the "
        f"activation estimate (within {CHECK_TOLERANCE * 100:g}%%)",
    )
    parser.add_argument("--check-params", default=_SMOKE_PARAMS, help="profile for --check")
    args = parser.parse_args(argv)
    try:
        accelerator, peak, mfu = _peak_and_mfu(args, args.params)
        payload = profile_estimate(args.params, peak, mfu, accelerator, args.experiment)
        if args.paper_params is not None:
            if not Path(args.paper_params).is_file():
                raise BudgetError(f"--paper-params = {args.paper_params}: file not found")
            accelerator, peak, mfu = _peak_and_mfu(args, args.paper_params)
            payload["paper"] = profile_estimate(args.paper_params, peak, mfu, accelerator)
    except (BudgetError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_profile(payload)
    if "paper" in payload:
        print()
        _print_profile(payload["paper"])
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}")
    if args.check:
        try:
            measured = check(args.check_params)
        except (BudgetError, ValueError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        failed = False
        for name, est, got, ratio in measured:
            ok = abs(ratio - 1) <= CHECK_TOLERANCE
            failed |= not ok
            print(
                f"check {name}: estimated {_bytes(est)}, measured {_bytes(got)} "
                f"(ratio {ratio:.3f}) {'ok' if ok else 'OFF BY MORE THAN 25%'}"
            )
        if failed:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

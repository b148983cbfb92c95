"""The Reformer experiments the cost formulas describe, and the model they build.

A spec is one experiment of ``params.yaml`` resolved to the numbers the formulas need:
:class:`LMSpec` for a language model (:class:`reformer.models.ReformerLM`),
:class:`Seq2SeqSpec` for translation (:class:`reformer.models.ReformerEncoderDecoder`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repro.budget import BudgetError, ExperimentParams

if TYPE_CHECKING:  # torch is imported late: building the specs needs no tensors
    import torch

__all__ = [
    "MODEL_DEFAULTS",
    "LMSpec",
    "Seq2SeqSpec",
    "Spec",
    "build_model",
    "count_parameters",
    "measure_activation_bytes",
    "spec_from_experiment",
]

#: ModelConfig's defaults, for keys a params file read as plain YAML leaves out.
MODEL_DEFAULTS: dict[str, Any] = {
    "d_model": 128,
    "n_layers": 1,
    "n_heads": 4,
    "d_ff": 256,
    "attention": "lsh",
    "n_hashes": 4,
    "bucket_size": 32,
    "bucket_rule": "paper",
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
        return {**MODEL_DEFAULTS, **dict(self.model)}

    @property
    def tokens_per_step(self) -> int:
        """Tokens of one optimizer step: ``B l``."""
        return self.batch_size * self.seq_len

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
        return {**MODEL_DEFAULTS, "attention": "full", **dict(self.model)}

    @property
    def tokens_per_step(self) -> int:
        """Tokens of one optimizer step: ``B (ls + lt)`` (source and target packed)."""
        return self.batch_size * (self.src_len + self.tgt_len)

    @property
    def counted_per_sequence(self) -> int:
        """Target positions that count (an upper bound: padding is not known in advance)."""
        return self.tgt_len - 1


Spec = LMSpec | Seq2SeqSpec


def _task_vocab(task: str, task_params: Mapping[str, Any]) -> int:
    if task == "duplication":
        return int(task_params["vocab_size"])
    if task == "enwik8":
        return 256
    if task == "wmt14":
        return int(task_params.get("vocab_size", 32000))
    raise BudgetError(
        f"task {task!r} is unknown to the estimator; allowed: duplication, enwik8, wmt14"
    )


def spec_from_experiment(exp: ExperimentParams) -> Spec:
    """The spec of one experiment of a params file (``CostModel.spec``).

    Translation (``wmt14``) packs a source and a target of ``tasks.wmt14.max_len`` tokens
    each (default: half of ``train.seq_len``, else 256); the language-model tasks train on
    ``train.seq_len`` tokens (duplication: the task's ``length`` when unset).

    Example:
        >>> exp = ExperimentParams("d", "duplication", {"vocab_size": 8, "length": 32},
        ...                        {"d_model": 16}, {"batch_size": 4}, ranks=2)
        >>> spec = spec_from_experiment(exp)
        >>> spec.vocab_size, spec.seq_len, spec.micro_batch
        (8, 32, 2)
    """
    common = {
        "batch_size": exp.batch_size,
        "micro_batch": exp.micro_batch,
        "steps": exp.steps,
        "precision": exp.precision,
        "optimizer": exp.optimizer,
    }
    vocab = _task_vocab(exp.task, exp.task_params)
    seq_len = exp.seq_len
    if exp.task == "wmt14":
        max_len = int(exp.task_params.get("max_len", seq_len // 2 if seq_len else 256))
        return Seq2SeqSpec(exp.name, vocab, max_len, max_len, model=dict(exp.model), **common)
    if seq_len is None:
        if exp.task != "duplication":
            raise BudgetError(f"experiment {exp.name!r}: train.seq_len is required for {exp.task}")
        seq_len = int(exp.task_params["length"])
    return LMSpec(exp.name, exp.task, vocab, int(seq_len), model=dict(exp.model), **common)


def build_model(spec: Spec, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The experiment's model, built on ``device`` (``"meta"``: shapes only, no memory).

    Example:
        >>> spec = LMSpec("e", "enwik8", 256, 64, 8, 8, 1, {"d_model": 16, "n_heads": 2,
        ...               "bucket_size": 16})
        >>> type(build_model(spec, "meta")).__name__
        'ReformerLM'
    """
    import torch

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
        kwargs = {k: v for k, v in m.items() if k in MODEL_DEFAULTS}
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


def measure_activation_bytes(spec: Spec, seed: int = 0) -> int:
    """Bytes saved for backward by one real training forward pass on this machine (CPU).

    Builds the model in float32 on the CPU, draws a random micro-batch of the task's shape
    (the duplication task counts the second half only) and runs the training objective
    under :func:`reformer.memory.saved_tensor_bytes`, parameters excluded.

    Example:
        >>> from reformer.cost import activation_bytes
        >>> spec = LMSpec("e", "duplication", 8, 32, 8, 4, 1, {"d_model": 32, "n_heads": 2,
        ...     "d_ff": 64, "n_hashes": 2, "bucket_size": 8})
        >>> measured = measure_activation_bytes(spec)
        >>> abs(activation_bytes(spec)["total"] / measured - 1) < 0.25
        True
    """
    import torch

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

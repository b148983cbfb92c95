"""The Reformer's sections of ``params.yaml``: ``model`` and ``evaluate``, and their checks.

The kit (:mod:`repro.config`) reads the rest of the file; it validates these two sections
with :class:`ModelConfig` and :class:`EvaluateConfig` (each experiment may override any
field), and runs :func:`check_experiment` on every resolved experiment, so a shape the
model cannot run is refused before anything is trained:

- ``d_model`` divisible by ``n_heads``; LSH attention shares queries and keys;
- translation tasks use full attention (the paper's encoder-decoder);
- the sequence length divisible by ``bucket_size``, into 1 or an even number of buckets;
- ``positional: axial`` with an ``axial_shape`` that covers the length.

:func:`model_kwargs` and :func:`eval_modes` turn an experiment into model arguments and the
Table 2 evaluation grid.

Example:
    >>> from repro.config import parse_params
    >>> task = dict(length=64, vocab_size=16, n_train=64, n_valid=8, n_test=8, seed=0)
    >>> parse_params({"paper": "reformer", "tasks": {"duplication": task},
    ...               "experiments": {"e": {"task": "duplication",
    ...                                     "model": {"bucket_size": 24}}}})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    repro.config.errors.ConfigError: params.yaml: experiments.e.model.bucket_size = 24: ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

from repro.config import Bool, DistributedConfig, ExperimentConfig, Float, Int, bounded

__all__ = [
    "ACCURACY_TASKS",
    "TRANSLATION_TASKS",
    "EvaluateConfig",
    "ModelConfig",
    "check_experiment",
    "eval_modes",
    "model_kwargs",
]

#: Tasks whose evaluation is masked accuracy; the others get bits per character or BLEU.
ACCURACY_TASKS = ("duplication",)
#: Translation tasks: an encoder-decoder trained on packed (source, target) pairs, BLEU.
TRANSLATION_TASKS = ("wmt14",)

Positive = Annotated[Int, bounded(minimum=1)]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ModelConfig:
    """Arguments of :class:`reformer.models.ReformerLM` (vocabulary and length come from the task).

    Example:
        >>> ModelConfig().attention, ModelConfig(attention="full").shared_qk
        ('lsh', True)
    """

    d_model: Positive = 128
    n_layers: Positive = 1
    n_heads: Positive = 4
    d_ff: Positive = 256
    attention: Literal["lsh", "full"] = "lsh"
    n_hashes: Positive = 4
    bucket_size: Positive = 32
    shared_qk: Bool = True
    reversible: Bool = True
    ff_chunks: Positive = 1
    positional: Literal["absolute", "fixed", "axial"] = "absolute"
    axial_shape: tuple[Int, Int] | None = None
    dropout: Annotated[Float, bounded(minimum=0.0, below=1.0)] = 0.0
    causal: Bool = True
    attend_across_buckets: Bool = False
    allow_duplicate_attention: Bool = False
    loss_chunks: Positive = 1


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class EvaluateConfig:
    """What ``evaluate@<experiment>`` measures on the test split.

    Every model is evaluated with full attention (when ``full``) and with LSH at each of
    ``n_hashes`` rounds (shared-QK models only), the paper's Table 2 grid.

    Attributes:
        beam_size: translation: beam size (the paper: 4).
        length_penalty: translation: alpha (the paper: 0.6).

    Example:
        >>> EvaluateConfig().n_hashes
        [1, 2, 4, 8]
    """

    n_hashes: Annotated[list[Int], bounded(minimum=1)] = field(default_factory=lambda: [1, 2, 4, 8])
    full: Bool = True
    batch_size: Positive = 64
    max_batches: Annotated[Int | None, bounded(minimum=1)] = None
    seed: Annotated[Int, bounded(minimum=0)] = 0
    beam_size: Positive = 4
    length_penalty: Annotated[Float, bounded(minimum=0.0)] = 0.6


def _bad(key: str, value: Any, allowed: str) -> ValueError:
    """``<key> = <value>: <allowed>``, the key relative to the experiment (the kit adds it)."""
    return ValueError(f"{key} = {value!r}: {allowed}")


def check_experiment(exp: ExperimentConfig, distributed: DistributedConfig) -> None:
    """Cross-field checks of one experiment: the shapes the Reformer can run.

    Raises:
        ValueError: ``"model.<key> = <value>: <what is allowed>"`` (one line).

    Example:
        >>> exp = ExperimentConfig("e", "duplication", {}, ModelConfig(n_heads=3),
        ...                        None, 0, 64, EvaluateConfig())
        >>> check_experiment(exp, DistributedConfig())
        Traceback (most recent call last):
        ...
        ValueError: model.n_heads = 3: must divide model.d_model = 128
    """
    m, n = exp.model, exp.seq_len
    if m.d_model % m.n_heads:
        raise _bad("model.n_heads", m.n_heads, f"must divide model.d_model = {m.d_model}")
    if m.attention == "lsh" and not m.shared_qk:
        raise _bad(
            "model.shared_qk",
            False,
            "LSH attention shares queries and keys; allowed: true (or attention: full)",
        )
    if exp.task in TRANSLATION_TASKS and m.attention != "full":
        raise _bad(
            "model.attention",
            m.attention,
            "the encoder-decoder uses full attention (the paper's WMT model); allowed: full",
        )
    evaluate = exp.evaluate or EvaluateConfig()
    uses_lsh = exp.task not in TRANSLATION_TASKS and (
        m.attention == "lsh" or (m.shared_qk and bool(evaluate.n_hashes))
    )
    if uses_lsh and n % m.bucket_size:
        sizes = [d for d in range(1, n + 1) if n % d == 0 and (n // d == 1 or (n // d) % 2 == 0)]
        raise _bad(
            "model.bucket_size",
            m.bucket_size,
            f"the sequence length {n} is not divisible by it; allowed: "
            f"one of {', '.join(map(str, sizes[-6:]))}",
        )
    if uses_lsh and n // m.bucket_size != 1 and (n // m.bucket_size) % 2:
        raise _bad(
            "model.bucket_size",
            m.bucket_size,
            f"gives an odd number of buckets ({n} / {m.bucket_size} = {n // m.bucket_size}); "
            "allowed: a bucket size giving 1 or an even number",
        )
    if m.positional == "axial" and (
        m.axial_shape is None or m.axial_shape[0] * m.axial_shape[1] < n
    ):
        raise _bad(
            "model.axial_shape",
            m.axial_shape,
            f"positional: axial needs [a, b] with a * b >= {n}",
        )


def model_kwargs(exp: ExperimentConfig, vocab_size: int) -> dict[str, Any]:
    """Keyword arguments for :class:`reformer.models.ReformerLM` (translation tasks:
    :class:`reformer.models.ReformerEncoderDecoder`, ``n_layers`` encoder and decoder
    blocks, ``max_seq_len`` half the packed length).

    Example:
        >>> exp = ExperimentConfig("e", "duplication", {}, ModelConfig(), None, 0, 64)
        >>> kw = model_kwargs(exp, 16)
        >>> kw["vocab_size"], kw["max_seq_len"], kw["attention"]
        (16, 64, 'lsh')
    """
    kwargs = dataclasses.asdict(exp.model)
    if exp.task in TRANSLATION_TASKS:
        from reformer.tasks.wmt14 import encoder_decoder_kwargs

        return encoder_decoder_kwargs(kwargs, vocab_size, exp.seq_len // 2)
    if kwargs["axial_shape"] is not None:
        kwargs["axial_shape"] = tuple(kwargs["axial_shape"])
    return {"vocab_size": vocab_size, "max_seq_len": exp.seq_len, **kwargs}


def eval_modes(
    exp: ExperimentConfig, evaluate: EvaluateConfig
) -> list[tuple[str, str, int | None]]:
    """The (label, attention, n_hashes) settings an experiment is evaluated with.

    Shared-QK models get full attention and every LSH round count (Table 2); others only
    full attention; translation models beam search and greedy decoding.

    Example:
        >>> exp = ExperimentConfig("e", "duplication", {}, ModelConfig(), None, 0, 64)
        >>> [m[0] for m in eval_modes(exp, EvaluateConfig(n_hashes=[1, 8]))]
        ['full', 'lsh1', 'lsh8']
    """
    if exp.task in TRANSLATION_TASKS:
        return [("beam", "full", None), ("greedy", "full", None)]  # decoding methods
    modes: list[tuple[str, str, int | None]] = []
    if evaluate.full or not exp.model.shared_qk:
        modes.append(("full", "full", None))
    if exp.model.shared_qk:
        modes += [(f"lsh{r}", "lsh", r) for r in evaluate.n_hashes]
    return modes

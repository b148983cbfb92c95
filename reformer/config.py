"""The Reformer's sections of ``params.yaml``: ``model`` and ``evaluate``, and their checks.

The kit (:mod:`repro.config`) reads the rest of the file; it validates these two sections
with :class:`ModelConfig` and :class:`EvaluateConfig` (each experiment may override any
field), and runs :func:`check_experiment` on every resolved experiment, so a shape the
model cannot run is refused before anything is trained:

- ``d_model`` divisible by ``n_heads``; LSH attention shares queries and keys;
- translation tasks use full attention (the paper's encoder-decoder);
- the sequence length divisible by ``bucket_size`` (and by every evaluation bucket size);
  with ``bucket_rule: half`` into 1 or an even number of buckets (the paper's rule,
  ``2 * length / bucket_size`` buckets, is always even);
- ``positional: axial`` with an ``axial_shape`` that covers the length.

:func:`model_kwargs` and :func:`eval_modes` turn an experiment into model arguments and the
evaluation grid: Table 2's columns and the evaluation-time experiments (other bucket sizes,
full attention without the self-mask, LSH on a model with separate Q and K).

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
import math
from dataclasses import field
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

from reformer.attention.buckets import n_buckets_for
from repro.config import Bool, DistributedConfig, ExperimentConfig, Float, Int, Seed, bounded

__all__ = [
    "ACCURACY_TASKS",
    "TRANSLATION_TASKS",
    "EvalMode",
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
#: LSH rounds: the chunked attention counts a key's rounds in uint8
#: (:func:`reformer.attention.chunked.lsh_attend`).
Rounds = Annotated[Int, bounded(minimum=1, maximum=255)]


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ModelConfig:
    """Arguments of :class:`reformer.models.ReformerLM` (vocabulary and length come from the task).

    ``bucket_rule``: LSH buckets per sequence, ``paper`` (``2 * length / bucket_size``, the
    paper's Section 2 and the authors' code) or ``half`` (``length / bucket_size``,
    reformer-pytorch's); see :mod:`reformer.attention.buckets`. ``unit_keys``: full
    shared-QK attention normalises its keys (the paper) or, ``false``, uses the raw queries
    as keys, as the fast.ai reproduction's full-attention path did.

    Example:
        >>> ModelConfig().attention, ModelConfig(attention="full").shared_qk
        ('lsh', True)
        >>> ModelConfig().bucket_rule
        'paper'
    """

    d_model: Positive = 128
    n_layers: Positive = 1
    n_heads: Positive = 4
    d_ff: Positive = 256
    attention: Literal["lsh", "full"] = "lsh"
    n_hashes: Rounds = 4
    bucket_size: Positive = 32
    shared_qk: Bool = True
    reversible: Bool = True
    ff_chunks: Positive = 1
    positional: Literal["absolute", "fixed", "axial"] = "absolute"
    axial_shape: Annotated[tuple[Int, Int] | None, bounded(minimum=1)] = None
    dropout: Annotated[Float, bounded(minimum=0.0, below=1.0)] = 0.0
    causal: Bool = True
    attend_across_buckets: Bool = False
    allow_duplicate_attention: Bool = False
    loss_chunks: Positive = 1
    bucket_rule: Literal["paper", "half"] = "paper"
    unit_keys: Bool = True


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class EvaluateConfig:
    """What ``evaluate@<experiment>`` measures on the test split.

    Every model is evaluated with full attention (when ``full``) and with LSH at each of
    ``n_hashes`` rounds (shared-QK models, and separate-QK ones with ``lsh_separate_qk``),
    the paper's Table 2 grid; the other fields add the evaluation-time experiments of
    :func:`eval_modes`. Duplication models also report the share of predictions equal to
    the current token (``copy_rate``) in every mode.

    Attributes:
        bucket_sizes: also evaluate LSH with these bucket sizes (the model's ``bucket_rule``
            gives the number of buckets), at each of ``bucket_rounds`` rounds: modes
            ``lsh<r>-b<size>``.
        bucket_rounds: rounds of the ``bucket_sizes`` and ``bucket_rules`` evaluations.
        bucket_rules: also evaluate LSH at the trained bucket size with these bucket rules
            (``paper``: ``2 l / m`` buckets, ``half``: ``l / m``) instead of the model's:
            modes ``lsh<r>-<rule>``.
        no_self_mask: also evaluate shared-QK models with full attention without the
            self-mask (mode ``full-noself``).
        raw_keys: also evaluate shared-QK models with full attention whose keys are the raw
            queries, not normalised (mode ``full-rawkeys``): the fast.ai reproduction's
            full-attention path.
        qk_scales: also evaluate shared-QK models with full attention whose queries are
            multiplied by each of these factors (the scores too: sharper attention, as much
            longer training gives), with and without the self-mask (modes ``full-x<s>``,
            ``full-noself-x<s>``): a counterfactual that shows how sharp attention must be
            for the self-mask to matter.
        lsh_separate_qk: evaluate a model with separate Q and K with LSH too, hashing and
            attending with its query projection as the shared query/key (its key projection
            unused).
        beam_size: translation: beam size (the paper: 4).
        length_penalty: translation: alpha, 0 to 10 (the paper: 0.6).

    Example:
        >>> EvaluateConfig().n_hashes, EvaluateConfig().bucket_sizes
        ([1, 2, 4, 8], [])
    """

    n_hashes: Annotated[list[Int], bounded(minimum=1, maximum=255)] = field(
        default_factory=lambda: [1, 2, 4, 8]
    )
    full: Bool = True
    bucket_sizes: Annotated[list[Int], bounded(minimum=1)] = field(default_factory=list)
    bucket_rounds: Annotated[list[Int], bounded(minimum=1, maximum=255)] = field(
        default_factory=lambda: [1, 2]
    )
    bucket_rules: list[Literal["paper", "half"]] = field(default_factory=list)
    no_self_mask: Bool = False
    raw_keys: Bool = False
    qk_scales: Annotated[list[Int], bounded(minimum=1)] = field(default_factory=list)
    lsh_separate_qk: Bool = False
    batch_size: Positive = 64
    max_batches: Annotated[Int | None, bounded(minimum=1)] = None
    seed: Seed = 0
    beam_size: Positive = 4
    # ((5 + length) / 6) ** alpha overflows a float from alpha ~ 190 at length 256
    length_penalty: Annotated[Float, bounded(minimum=0.0, maximum=10.0)] = 0.6


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
    if m.attention == "lsh" and not m.unit_keys:
        raise _bad(
            "model.unit_keys",
            False,
            "LSH attention normalises its keys; allowed: true (or attention: full)",
        )
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
    lsh_eval = (m.shared_qk or evaluate.lsh_separate_qk) and bool(evaluate.n_hashes)
    uses_lsh = exp.task not in TRANSLATION_TASKS and (m.attention == "lsh" or lsh_eval)
    if uses_lsh:
        _check_buckets("model.bucket_size", m.bucket_size, n, m.bucket_rule)
    if exp.task not in TRANSLATION_TASKS and (m.shared_qk or evaluate.lsh_separate_qk):
        for size in evaluate.bucket_sizes:
            _check_buckets("evaluate.bucket_sizes", size, n, m.bucket_rule)
        for rule in evaluate.bucket_rules:
            _check_buckets(
                f"model.bucket_size (evaluate.bucket_rules: {rule})", m.bucket_size, n, rule
            )
    if m.positional == "axial" and (
        m.axial_shape is None or m.axial_shape[0] * m.axial_shape[1] < n
    ):
        raise _bad(
            "model.axial_shape",
            m.axial_shape,
            f"positional: axial needs [a, b] with a * b >= {n}",
        )


def _check_buckets(key: str, size: int, n: int, rule: str) -> None:
    """``size`` must cut length ``n`` into chunks, with a number of buckets ``rule`` allows."""
    try:
        n_buckets_for(n, size, rule)
    except ValueError:
        good = [d for d in _divisors(n) if rule == "paper" or _even(n // d)]
        why = (
            f"the sequence length {n} is not divisible by it"
            if n % size
            else f"gives an odd number of buckets ({n} / {size} = {n // size}) with bucket_rule "
            "'half'"
        )
        raise _bad(key, size, f"{why}; allowed: one of {', '.join(map(str, good[-6:]))}") from None


def _even(chunks: int) -> bool:
    return chunks == 1 or chunks % 2 == 0


def _divisors(n: int, limit: int = 10**5) -> list[int]:
    """The divisors ``d`` and ``n / d`` of ``n`` for ``d`` up to ``sqrt(n)`` or ``limit``, in
    increasing order: all of them, or (for ``n > limit**2``) the largest and smallest ones,
    in a bounded time (a length of 10**18 must not keep ``config check`` busy for hours).

    Example:
        >>> _divisors(12), _divisors(1), _divisors(2 * 3 * 5 * 7, limit=3)
        ([1, 2, 3, 4, 6, 12], [1], [1, 2, 3, 70, 105, 210])
    """
    small = [d for d in range(1, min(math.isqrt(n), limit) + 1) if n % d == 0]
    return sorted(set(small) | {n // d for d in small})


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


class EvalMode(NamedTuple):
    """One evaluation setting of a trained model.

    Attributes:
        label: the mode's name in ``metrics/<exp>.json`` and in the W&B summary key
            (``eval/accuracy_<label>``): ``full``, ``full-noself``, ``lsh<r>``,
            ``lsh<r>-b<size>``; for translation ``beam`` and ``greedy``.
        attention: ``full`` or ``lsh``.
        n_hashes: LSH rounds (``None`` for full attention).
        bucket_size: LSH bucket size (``None``: the one trained with).
        self_mask: full shared-QK attention masks ``i -> i`` (the paper) or not.
        qk_scale: the queries (and so the scores) multiplied by this factor.
        bucket_rule: LSH bucket rule (``None``: the one trained with).
        unit_keys: full shared-QK attention with keys of unit length or the raw queries
            (``None``: as trained).
    """

    label: str
    attention: str
    n_hashes: int | None
    bucket_size: int | None = None
    self_mask: bool = True
    qk_scale: int = 1
    bucket_rule: str | None = None
    unit_keys: bool | None = None


def eval_modes(exp: ExperimentConfig, evaluate: EvaluateConfig) -> list[EvalMode]:
    """The settings an experiment is evaluated with, in order.

    - ``full``: full attention (when ``evaluate.full``, and always for separate Q and K);
    - ``full-noself``: full shared-QK attention without the self-mask (``no_self_mask``);
    - ``full-rawkeys``: full shared-QK attention with the raw queries as keys (``raw_keys``);
    - ``full-x<s>``, ``full-noself-x<s>``: the same with the queries scaled by ``s``
      (``qk_scales``; shared-QK models);
    - ``lsh<r>``: LSH with ``r`` rounds for each of ``n_hashes`` (shared-QK models, and
      separate-QK ones with ``lsh_separate_qk``: the query projection hashes and attends);
    - ``lsh<r>-b<size>``: LSH with another bucket size (``bucket_sizes`` x
      ``bucket_rounds``); ``lsh<r>-<rule>``: with another bucket rule (``bucket_rules``);
    - translation: beam search and greedy decoding.

    Example:
        >>> exp = ExperimentConfig("e", "duplication", {}, ModelConfig(), None, 0, 64)
        >>> ev = EvaluateConfig(n_hashes=[1, 8], bucket_sizes=[16], bucket_rounds=[1],
        ...                     no_self_mask=True)
        >>> [m.label for m in eval_modes(exp, ev)]
        ['full', 'full-noself', 'lsh1', 'lsh8', 'lsh1-b16']
        >>> eval_modes(exp, ev)[-1][:4]
        ('lsh1-b16', 'lsh', 1, 16)
    """
    if exp.task in TRANSLATION_TASKS:  # decoding methods
        return [EvalMode("beam", "full", None), EvalMode("greedy", "full", None)]
    shared = exp.model.shared_qk
    modes: list[EvalMode] = []
    if evaluate.full or not shared:
        modes.append(EvalMode("full", "full", None))
    if evaluate.no_self_mask and shared:
        modes.append(EvalMode("full-noself", "full", None, self_mask=False))
    if evaluate.raw_keys and shared:
        modes.append(EvalMode("full-rawkeys", "full", None, unit_keys=False))
    for scale in evaluate.qk_scales if shared else []:
        modes.append(EvalMode(f"full-x{scale}", "full", None, qk_scale=scale))
        modes.append(
            EvalMode(f"full-noself-x{scale}", "full", None, self_mask=False, qk_scale=scale)
        )
    if shared or evaluate.lsh_separate_qk:
        modes += [EvalMode(f"lsh{r}", "lsh", r) for r in evaluate.n_hashes]
        modes += [
            EvalMode(f"lsh{r}-b{size}", "lsh", r, bucket_size=size)
            for size in evaluate.bucket_sizes
            for r in evaluate.bucket_rounds
        ]
        modes += [
            EvalMode(f"lsh{r}-{rule}", "lsh", r, bucket_rule=rule)
            for rule in evaluate.bucket_rules
            for r in evaluate.bucket_rounds
        ]
    return modes

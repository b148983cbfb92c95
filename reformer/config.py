"""Typed, validated configuration of the pipeline, read from ``params.yaml``.

``params.yaml`` holds every parameter of the study; ``dvc.yaml`` generates its stages from
it. Its sections:

- ``profile``: the name of the profile the file was written from (informational);
- ``seed``: the default seed of every experiment;
- ``tasks``: one entry per data set (``duplication``, ``enwik8``, ``wmt14``), holding that
  task's preparation parameters (see :mod:`reformer.tasks`); each gives a ``prepare@<task>``
  stage;
- ``model`` and ``train``: defaults shared by every experiment (:class:`ModelConfig`,
  :class:`TrainConfig`);
- ``distributed``, ``evaluate``, ``tracking``: :class:`DistributedConfig`,
  :class:`EvaluateConfig`, :class:`TrackingConfig`;
- ``experiments``: name -> ``{task, model: {...}, train: {...}, evaluate: {...}, seed}``;
  each entry is a task x model variant whose ``model``/``train``/``evaluate`` keys override
  the defaults (``evaluate``: e.g. no full-attention evaluation of a 65536-token model, whose
  ``l x l`` scores would not fit), and gives a ``train@<name>`` and an ``evaluate@<name>``
  stage. Adding an experiment is a params edit.

Sections used by other stages (``report``, ``benchmark``, ``budget``) are passed through
unvalidated; any other unknown key is an error.

Every problem raises :class:`ConfigError` with one line naming the key, its value and
what is allowed, before anything is trained or written.

Profiles live in ``configs/<name>.yaml``; ``python -m reformer.config use <name>`` copies
one to ``params.yaml`` and ``python -m reformer.config check`` validates the current file.

Example:
    >>> text = '''
    ... tasks:
    ...   duplication: {length: 64, vocab_size: 16, n_train: 64, n_valid: 8, n_test: 8, seed: 0}
    ... model: {d_model: 32, n_heads: 2, bucket_size: 16}
    ... experiments:
    ...   dup-lsh2: {task: duplication, model: {n_hashes: 2}}
    ... '''
    >>> params = parse_params(yaml.safe_load(text))
    >>> exp = params.experiments["dup-lsh2"]
    >>> exp.model.n_hashes, exp.model.d_model, exp.seq_len
    (2, 32, 64)
    >>> parse_params({**yaml.safe_load(text), "trian": {}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    reformer.config.ConfigError: params.yaml: unknown key 'trian' (did you mean 'train'?); ...
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import json
import math
import numbers
import os
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

__all__ = [
    "ConfigError",
    "DistributedConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "ModelConfig",
    "Params",
    "TrackingConfig",
    "TrainConfig",
    "TASK_NAMES",
    "check_runtime",
    "load_params",
    "parse_params",
    "use_profile",
]

PARAMS_FILE = "params.yaml"
PROFILES_DIR = "configs"
TASK_NAMES = ("duplication", "enwik8", "wmt14")
#: Sections owned by other stages: accepted as they are, validated by their owners.
PASSTHROUGH_SECTIONS = ("report", "benchmark", "budget")
#: Tasks whose evaluation is masked accuracy; the others get bits per character or BLEU.
ACCURACY_TASKS = ("duplication",)
#: Translation tasks: an encoder-decoder trained on packed (source, target) pairs, BLEU.
TRANSLATION_TASKS = ("wmt14",)


class ConfigError(ValueError):
    """A bad parameter: one line naming the key, its value and what is allowed.

    Example:
        >>> str(ConfigError("params.yaml: train.steps = 0: must be an integer >= 1"))
        'params.yaml: train.steps = 0: must be an integer >= 1'
    """


def _param(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
    doc: str = "",
) -> Any:
    """A dataclass field with bounds that :func:`_build` checks."""
    meta = {"min": minimum, "max": maximum, "below": below, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ModelConfig:
    """Arguments of :class:`reformer.models.ReformerLM` (vocabulary and length come from the task).

    Example:
        >>> ModelConfig().attention, ModelConfig(attention="full").shared_qk
        ('lsh', True)
    """

    d_model: int = _param(128, minimum=1)
    n_layers: int = _param(1, minimum=1)
    n_heads: int = _param(4, minimum=1)
    d_ff: int = _param(256, minimum=1)
    attention: Literal["lsh", "full"] = "lsh"
    n_hashes: int = _param(4, minimum=1)
    bucket_size: int = _param(32, minimum=1)
    shared_qk: bool = True
    reversible: bool = True
    ff_chunks: int = _param(1, minimum=1)
    positional: Literal["absolute", "fixed", "axial"] = "absolute"
    axial_shape: tuple[int, int] | None = None
    dropout: float = _param(0.0, minimum=0.0, below=1.0)
    causal: bool = True
    attend_across_buckets: bool = False
    allow_duplicate_attention: bool = False
    loss_chunks: int = _param(1, minimum=1)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one experiment.

    ``batch_size`` is the global number of sequences per optimizer step, over all ranks and
    accumulation steps: each rank's micro-batch is
    ``batch_size // (nproc_per_node * grad_accum)``.

    Example:
        >>> TrainConfig().optimizer, TrainConfig().schedule
        ('adamw', 'cosine')
    """

    steps: int = _param(600, minimum=1)
    batch_size: int = _param(32, minimum=1)
    grad_accum: int = _param(1, minimum=1)
    seq_len: int | None = _param(None, minimum=2)
    optimizer: Literal["adamw", "adafactor"] = "adamw"
    lr: float = _param(1e-3, minimum=0.0)
    betas: tuple[float, float] = _param((0.9, 0.999), minimum=0.0, below=1.0)
    weight_decay: float = _param(0.0, minimum=0.0)
    schedule: Literal["constant", "cosine", "linear", "rsqrt", "onecycle"] = "cosine"
    warmup_steps: int = _param(0, minimum=0)
    min_lr_ratio: float = _param(0.0, minimum=0.0, maximum=1.0)
    clip_grad_norm: float | None = _param(1.0, minimum=0.0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    log_every: int = _param(25, minimum=1)
    valid_batches: int = _param(2, minimum=0)
    checkpoint_every: int = _param(100, minimum=1)
    resume: bool = True
    num_workers: int = _param(0, minimum=0)


@dataclass(frozen=True)
class DistributedConfig:
    """How ``torchrun`` runs training.

    ``backend``/``device`` ``auto``: nccl on CUDA when a GPU is present, else gloo on CPU.
    ``threads_per_rank`` null: the machine's cores divided by ``nproc_per_node``.

    Example:
        >>> DistributedConfig().backend
        'auto'
    """

    nproc_per_node: int = _param(2, minimum=1)
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    timeout_s: int = _param(300, minimum=1)
    threads_per_rank: int | None = _param(None, minimum=1)


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``evaluate@<experiment>`` measures on the test split.

    Every model is evaluated with full attention (when ``full``) and with LSH at each of
    ``n_hashes`` rounds (shared-QK models only), the paper's Table 2 grid.

    Example:
        >>> EvaluateConfig().n_hashes
        [1, 2, 4, 8]
    """

    n_hashes: list[int] = _param([1, 2, 4, 8], minimum=1)
    full: bool = True
    batch_size: int = _param(64, minimum=1)
    max_batches: int | None = _param(None, minimum=1)
    seed: int = _param(0, minimum=0)
    beam_size: int = _param(4, minimum=1, doc="translation: beam size (the paper: 4)")
    length_penalty: float = _param(0.6, minimum=0.0, doc="translation: alpha (the paper: 0.6)")


@dataclass(frozen=True)
class TrackingConfig:
    """Weights & Biases settings (mode comes from ``WANDB_MODE``: offline by default).

    Example:
        >>> TrackingConfig().project
        'reformer-reproduction'
    """

    project: str = "reformer-reproduction"
    entity: str | None = None
    tags: list[str] = _param([])
    init_timeout_s: int = _param(30, minimum=1)
    alerts: bool = True


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: a task and a model variant, with defaults resolved.

    Attributes:
        name: the experiment's key in ``params.yaml`` (stage ``train@<name>``).
        task: the task name (a key of ``tasks``).
        task_params: the task's preparation parameters.
        model, train: the resolved model and training settings.
        seed: the experiment's seed.
        seq_len: tokens per training sequence (the task's ``length`` for duplication,
            ``train.seq_len`` for enwik8, ``2 x max_len`` packed pairs for wmt14).
        evaluate: the experiment's evaluation settings (the ``evaluate`` section with the
            experiment's overrides); None: the section's.

    Example:
        >>> exp = ExperimentConfig("dup-lsh4", "duplication", {}, ModelConfig(n_hashes=4),
        ...                        TrainConfig(), seed=0, seq_len=128)
        >>> exp.model.n_hashes, exp.seq_len
        (4, 128)
    """

    name: str
    task: str
    task_params: dict
    model: ModelConfig
    train: TrainConfig
    seed: int
    seq_len: int
    evaluate: EvaluateConfig | None = None

    def model_kwargs(self, vocab_size: int) -> dict[str, Any]:
        """Keyword arguments for :class:`reformer.models.ReformerLM` (translation tasks:
        :class:`reformer.models.ReformerEncoderDecoder`, ``n_layers`` encoder and decoder
        blocks, ``max_seq_len`` half the packed length).

        Example:
            >>> exp = ExperimentConfig("e", "duplication", {}, ModelConfig(), TrainConfig(), 0, 64)
            >>> kw = exp.model_kwargs(16)
            >>> kw["vocab_size"], kw["max_seq_len"], kw["attention"]
            (16, 64, 'lsh')
        """
        kwargs = dataclasses.asdict(self.model)
        if self.task in TRANSLATION_TASKS:
            from reformer.tasks.wmt14 import encoder_decoder_kwargs

            return encoder_decoder_kwargs(kwargs, vocab_size, self.seq_len // 2)
        if kwargs["axial_shape"] is not None:
            kwargs["axial_shape"] = tuple(kwargs["axial_shape"])
        return {"vocab_size": vocab_size, "max_seq_len": self.seq_len, **kwargs}

    def eval_modes(self, evaluate: EvaluateConfig) -> list[tuple[str, str, int | None]]:
        """The (label, attention, n_hashes) settings this experiment is evaluated with.

        Shared-QK models get full attention and every LSH round count (Table 2); others
        only full attention.

        Example:
            >>> exp = ExperimentConfig("e", "duplication", {}, ModelConfig(), TrainConfig(), 0, 64)
            >>> [m[0] for m in exp.eval_modes(EvaluateConfig(n_hashes=[1, 8]))]
            ['full', 'lsh1', 'lsh8']
        """
        modes: list[tuple[str, str, int | None]] = []
        if self.task in TRANSLATION_TASKS:
            return [("beam", "full", None), ("greedy", "full", None)]  # decoding methods
        if evaluate.full or not self.model.shared_qk:
            modes.append(("full", "full", None))
        if self.model.shared_qk:
            modes += [(f"lsh{r}", "lsh", r) for r in evaluate.n_hashes]
        return modes

    def fingerprint(self, world_size: int) -> str:
        """Hash of everything that determines the training trajectory (for safe resume).

        Example:
            >>> exp = ExperimentConfig("e", "duplication", {}, ModelConfig(), TrainConfig(), 0, 64)
            >>> exp.fingerprint(2) == exp.fingerprint(2) != exp.fingerprint(1)
            True
        """
        train = dataclasses.asdict(self.train)
        train.pop("resume")
        train.pop("num_workers")
        state = {
            "task": self.task,
            "task_params": self.task_params,
            "model": dataclasses.asdict(self.model),
            "train": train,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "world_size": world_size,
        }
        blob = json.dumps(state, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class Params:
    """The whole validated ``params.yaml``.

    Attributes:
        raw: the file as parsed (plain data, for logging the resolved params).

    Example:
        >>> params = parse_params({"train": {"steps": 50}})
        >>> params.train.steps, params.model.attention, params.experiments
        (50, 'lsh', {})
    """

    profile: str
    seed: int
    tasks: dict[str, dict]
    model: ModelConfig
    train: TrainConfig
    distributed: DistributedConfig
    evaluate: EvaluateConfig
    tracking: TrackingConfig
    experiments: dict[str, ExperimentConfig]
    raw: dict

    def experiment(self, name: str) -> ExperimentConfig:
        """The experiment called ``name``, or a :class:`ConfigError` with a suggestion.

        Example:
            >>> p = parse_params({"tasks": {}, "experiments": {}})
            >>> p.experiment("dup-ful")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            reformer.config.ConfigError: params.yaml: experiment 'dup-ful' is unknown; ...
        """
        if name not in self.experiments:
            raise ConfigError(
                f"params.yaml: experiment {name!r} is unknown{_suggest(name, self.experiments)}"
                f"; allowed: {', '.join(self.experiments) or '(none)'}"
            )
        return self.experiments[name]

    def wandb_config(self, experiment: str) -> dict[str, Any]:
        """The resolved parameters of one experiment, as logged to the W&B run config.

        Example:
            >>> task = dict(length=8, vocab_size=4, n_train=64, n_valid=2, n_test=2, seed=0)
            >>> p = parse_params({"tasks": {"duplication": task}, "model": {"bucket_size": 4},
            ...                   "experiments": {"e": {"task": "duplication"}}})
            >>> sorted(p.wandb_config("e"))[:4]
            ['distributed', 'evaluate', 'experiment', 'model']
        """
        exp = self.experiment(experiment)
        return {
            "experiment": exp.name,
            "profile": self.profile,
            "task": exp.task,
            "task_params": exp.task_params,
            "seed": exp.seed,
            "seq_len": exp.seq_len,
            "model": dataclasses.asdict(exp.model),
            "train": dataclasses.asdict(exp.train),
            "distributed": dataclasses.asdict(self.distributed),
            "evaluate": dataclasses.asdict(exp.evaluate or self.evaluate),
        }


# ----------------------------------------------------------------------------- parsing


def _suggest(key: str, allowed: Sequence[str] | Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fail(path: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"params.yaml: {path} = {value!r}: {allowed}")


def _check_keys(data: Mapping, allowed: Sequence[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            name = f"{where}.{key}" if where else str(key)
            raise ConfigError(
                f"params.yaml: unknown key {name!r}{_suggest(str(key), allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )


def _as_mapping(value: Any, path: str) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(path, value, "must be a mapping of keys to values")
    return value


def _coerce(value: Any, hint: Any, path: str) -> Any:
    """Check ``value`` against the type ``hint``; return it in canonical form."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], path)
    if origin is Literal:
        if value not in args:
            raise _fail(path, value, f"allowed: {', '.join(map(str, args))}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _fail(path, value, "must be true or false")
        return value
    if hint is int:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _fail(path, value, "must be an integer") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _fail(path, value, "must be an integer")
        return int(value)
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise _fail(path, value, "must be a number") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _fail(path, value, "must be a number")
        if not math.isfinite(value):
            raise _fail(path, value, "must be a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str) or not value:
            raise _fail(path, value, "must be a non-empty string")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(path, value, "must be a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _fail(path, value, f"must be a list of {len(args)} values")
            pairs = enumerate(zip(value, args, strict=True))
            return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in pairs)
        return [_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"unsupported config type {hint!r} at {path}")  # a bug here, not in params


def _check_bounds(value: Any, meta: Mapping, path: str) -> None:
    if value is None:
        return
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(item, numbers.Real):
            continue
        kind = "an integer" if isinstance(item, int) else "a number"
        if meta.get("min") is not None and item < meta["min"]:
            raise _fail(path, value, f"must be {kind} >= {meta['min']}")
        if meta.get("max") is not None and item > meta["max"]:
            raise _fail(path, value, f"must be {kind} <= {meta['max']}")
        if meta.get("below") is not None and item >= meta["below"]:
            raise _fail(path, value, f"must be {kind} < {meta['below']}")


def _build(cls: type, data: Mapping, where: str, base: Any = None) -> Any:
    """Build dataclass ``cls`` from ``data`` (over ``base`` or the defaults), checking all."""
    data = _as_mapping(data, where)
    names = [f.name for f in dataclasses.fields(cls)]
    _check_keys(data, names, where)
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        path = f"{where}.{f.name}"
        if f.name in data:
            value = _coerce(data[f.name], hints[f.name], path)
        elif base is not None:
            value = getattr(base, f.name)
        else:
            value = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
        _check_bounds(value, f.metadata, path)
        values[f.name] = value
    return cls(**values)


def _validate_task(name: str, params: Any) -> dict:
    if name not in TASK_NAMES:
        raise ConfigError(
            f"params.yaml: task {('tasks.' + str(name))!r} is unknown{_suggest(name, TASK_NAMES)}"
            f"; allowed: {', '.join(TASK_NAMES)}"
        )
    params = dict(_as_mapping(params, f"tasks.{name}"))
    # The data package owns the meaning of its parameters; reuse its checks.
    if name == "duplication":
        from reformer.tasks.duplication import validate_params
    elif name == "wmt14":
        from reformer.tasks.wmt14 import validate_params
    else:
        from reformer.tasks.enwik8 import validate_params
    try:
        validate_params(params)
    except ValueError as err:
        raise ConfigError(f"params.yaml: tasks.{name}: {err}") from None
    return params


def _check_experiment(
    exp: ExperimentConfig, distributed: DistributedConfig, evaluate: EvaluateConfig
) -> None:
    """Cross-field checks: the shapes the model and the data loader can run."""
    where = f"experiments.{exp.name}"
    m, t = exp.model, exp.train
    if m.d_model % m.n_heads:
        raise _fail(f"{where}.model.n_heads", m.n_heads, f"must divide model.d_model = {m.d_model}")
    if m.attention == "lsh" and not m.shared_qk:
        raise _fail(
            f"{where}.model.shared_qk",
            False,
            "LSH attention shares queries and keys; allowed: true (or attention: full)",
        )
    if exp.task in TRANSLATION_TASKS and m.attention != "full":
        raise _fail(
            f"{where}.model.attention",
            m.attention,
            "the encoder-decoder uses full attention (the paper's WMT model); allowed: full",
        )
    uses_lsh = exp.task not in TRANSLATION_TASKS and (
        m.attention == "lsh" or (m.shared_qk and bool(evaluate.n_hashes))
    )
    if uses_lsh:
        if exp.seq_len % m.bucket_size:
            divisors = [
                d
                for d in range(1, exp.seq_len + 1)
                if exp.seq_len % d == 0 and (exp.seq_len // d == 1 or (exp.seq_len // d) % 2 == 0)
            ]
            raise _fail(
                f"{where}.model.bucket_size",
                m.bucket_size,
                f"the sequence length {exp.seq_len} is not divisible by it; allowed: "
                f"one of {', '.join(map(str, divisors[-6:]))}",
            )
        n_buckets = exp.seq_len // m.bucket_size
        if n_buckets != 1 and n_buckets % 2:
            raise _fail(
                f"{where}.model.bucket_size",
                m.bucket_size,
                f"gives an odd number of buckets ({exp.seq_len} / {m.bucket_size} = "
                f"{n_buckets}); allowed: a bucket size giving 1 or an even number",
            )
    if m.positional == "axial" and (
        m.axial_shape is None or m.axial_shape[0] * m.axial_shape[1] < exp.seq_len
    ):
        raise _fail(
            f"{where}.model.axial_shape",
            m.axial_shape,
            f"positional: axial needs [a, b] with a * b >= {exp.seq_len}",
        )
    per_step = distributed.nproc_per_node * t.grad_accum
    if t.batch_size % per_step:
        raise _fail(
            f"{where}.train.batch_size",
            t.batch_size,
            f"must be a multiple of nproc_per_node x grad_accum = {per_step}",
        )
    if t.warmup_steps > t.steps:
        raise _fail(
            f"{where}.train.warmup_steps",
            t.warmup_steps,
            f"must be at most train.steps = {t.steps}",
        )
    if exp.task == "duplication":
        n_train = exp.task_params["n_train"]
        if n_train < t.batch_size // t.grad_accum:
            raise _fail(
                f"tasks.{exp.task}.n_train",
                n_train,
                f"must hold at least one batch of every rank ({where}.train.batch_size"
                f" / grad_accum = {t.batch_size // t.grad_accum})",
            )


def _resolve_seq_len(name: str, task: str, task_params: dict, train: TrainConfig) -> int:
    if task == "duplication":
        length = int(task_params["length"])
        if train.seq_len is not None and train.seq_len != length:
            raise _fail(
                f"experiments.{name}.train.seq_len",
                train.seq_len,
                f"the duplication task has length {length}; allowed: null or {length}",
            )
        return length
    if task in TRANSLATION_TASKS:
        # A training sequence packs a source and a target of max_len tokens each.
        from reformer.tasks.wmt14 import DEFAULT_PARAMS

        packed = 2 * int(task_params.get("max_len", DEFAULT_PARAMS["max_len"]))
        if train.seq_len is not None and train.seq_len != packed:
            raise _fail(
                f"experiments.{name}.train.seq_len",
                train.seq_len,
                f"{task} packs source and target into 2 x tasks.{task}.max_len = {packed}; "
                f"allowed: null or {packed}",
            )
        return packed
    if train.seq_len is None:
        raise _fail(
            f"experiments.{name}.train.seq_len",
            None,
            f"task {task!r} needs a sequence length; allowed: an integer >= 2",
        )
    return train.seq_len


TOP_KEYS = (
    "profile",
    "seed",
    "tasks",
    "model",
    "train",
    "distributed",
    "evaluate",
    "tracking",
    "experiments",
    *PASSTHROUGH_SECTIONS,
)
EXPERIMENT_KEYS = ("task", "model", "train", "evaluate", "seed", "description")


def parse_params(data: Any) -> Params:
    """Validate parsed ``params.yaml`` data and resolve every experiment.

    Args:
        data: the YAML document as plain Python data.

    Returns:
        The validated :class:`Params`.

    Raises:
        ConfigError: one line naming the key, its value and what is allowed.

    Example:
        >>> parse_params({"train": {"steps": 0}})
        Traceback (most recent call last):
        ...
        reformer.config.ConfigError: params.yaml: train.steps = 0: must be an integer >= 1
    """
    data = _as_mapping(data, "(top level)")
    _check_keys(data, TOP_KEYS, "")
    profile = _coerce(data.get("profile", "custom"), str, "profile")
    seed = _coerce(data.get("seed", 0), int, "seed")
    _check_bounds(seed, {"min": 0}, "seed")
    model = _build(ModelConfig, data.get("model"), "model")
    train = _build(TrainConfig, data.get("train"), "train")
    distributed = _build(DistributedConfig, data.get("distributed"), "distributed")
    evaluate = _build(EvaluateConfig, data.get("evaluate"), "evaluate")
    tracking = _build(TrackingConfig, data.get("tracking"), "tracking")
    tasks = {
        str(k): _validate_task(str(k), v)
        for k, v in _as_mapping(data.get("tasks"), "tasks").items()
    }
    experiments: dict[str, ExperimentConfig] = {}
    for name, entry in _as_mapping(data.get("experiments"), "experiments").items():
        name = str(name)
        where = f"experiments.{name}"
        if not name.replace("-", "").replace("_", "").isalnum():
            raise _fail(where, name, "an experiment name may use letters, digits, - and _")
        entry = _as_mapping(entry, where)
        _check_keys(entry, EXPERIMENT_KEYS, where)
        if "task" not in entry:
            raise _fail(f"{where}.task", None, f"required; allowed: {', '.join(tasks) or '(none)'}")
        task = entry["task"]
        if task not in tasks:
            known = [t for t in TASK_NAMES if t not in tasks]
            hint = (
                f" (add it under tasks: first; known tasks: {', '.join(TASK_NAMES)})"
                if task in known
                else _suggest(str(task), list(tasks))
            )
            raise ConfigError(
                f"params.yaml: {where}.task = {task!r} is unknown{hint}; allowed: "
                f"{', '.join(tasks) or '(no tasks defined)'}"
            )
        exp_model = _build(ModelConfig, entry.get("model"), f"{where}.model", base=model)
        exp_train = _build(TrainConfig, entry.get("train"), f"{where}.train", base=train)
        exp_eval = _build(EvaluateConfig, entry.get("evaluate"), f"{where}.evaluate", base=evaluate)
        exp_seed = _coerce(entry.get("seed", seed), int, f"{where}.seed")
        _check_bounds(exp_seed, {"min": 0}, f"{where}.seed")
        seq_len = _resolve_seq_len(name, task, tasks[task], exp_train)
        exp = ExperimentConfig(
            name, task, tasks[task], exp_model, exp_train, exp_seed, seq_len, exp_eval
        )
        _check_experiment(exp, distributed, exp_eval)
        experiments[name] = exp
    return Params(
        profile,
        seed,
        tasks,
        model,
        train,
        distributed,
        evaluate,
        tracking,
        experiments,
        raw=json.loads(json.dumps(data, default=str)),
    )


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Read and validate a params file.

    Raises:
        ConfigError: the file is missing, is not YAML, or holds a bad parameter.

    Example:
        >>> load_params("no/such/params.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        reformer.config.ConfigError: no/such/params.yaml: file not found; create it with ...
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found; create it with `python -m reformer.config use default`"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    try:
        return parse_params(data)
    except ConfigError as err:
        if path.name != PARAMS_FILE:
            raise ConfigError(str(err).replace("params.yaml:", f"{path}:", 1)) from None
        raise


def resolve_device(distributed: DistributedConfig) -> str:
    """``"cuda"`` or ``"cpu"``: the device training runs on (``auto``: CUDA when present).

    Example:
        >>> resolve_device(DistributedConfig(device="cpu"))
        'cpu'
    """
    if distributed.device != "auto":
        return distributed.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_runtime(
    params: Params, cpu_count: int | None = None, gpu_count: int | None = None
) -> None:
    """Checks that depend on this machine: enough cores or GPUs for the ranks, a GPU for nccl.

    Args:
        params: validated params.
        cpu_count: CPU cores (default: those this process may use).
        gpu_count: CUDA devices (default: ``torch.cuda.device_count()`` when the device is CUDA).

    Raises:
        ConfigError: one line naming the key, its value and what this machine allows.

    Example:
        >>> p = parse_params({"distributed": {"nproc_per_node": 4, "device": "cpu"}})
        >>> check_runtime(p, cpu_count=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        reformer.config.ConfigError: params.yaml: distributed.nproc_per_node = 4: more ranks ...
    """
    dist = params.distributed
    device = resolve_device(dist)
    n = dist.nproc_per_node
    if device == "cpu":
        if dist.backend == "nccl":
            raise _fail("distributed.backend", "nccl", "needs CUDA GPUs; allowed here: auto, gloo")
        cores = cpu_count if cpu_count is not None else _usable_cpus()
        if n > cores:
            raise _fail(
                "distributed.nproc_per_node",
                n,
                f"more ranks than the {cores} CPU cores of this machine; allowed: 1 to {cores}",
            )
    else:
        if gpu_count is None:
            import torch

            gpu_count = torch.cuda.device_count()
        if gpu_count == 0:
            raise _fail("distributed.device", "cuda", "no CUDA GPU found; allowed here: auto, cpu")
        if n > gpu_count:
            raise _fail(
                "distributed.nproc_per_node",
                n,
                f"more ranks than the {gpu_count} GPUs of this machine; allowed: 1 to {gpu_count}",
            )


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------- profiles


def use_profile(profile: str, root: str | os.PathLike = ".") -> Path:
    """Validate ``configs/<profile>.yaml`` and copy it, verbatim, to ``params.yaml``.

    Args:
        profile: a file name under ``configs/`` without ``.yaml`` (smoke, default, paper).
        root: the repository root.

    Returns:
        The written ``params.yaml``.

    Raises:
        ConfigError: unknown profile, or the profile holds a bad parameter.

    Example:
        >>> use_profile("nope", root="/nonexistent")
        Traceback (most recent call last):
        ...
        reformer.config.ConfigError: profile 'nope' is unknown; allowed: (no configs/*.yaml found)
    """
    root = Path(root)
    profiles = sorted(p.stem for p in (root / PROFILES_DIR).glob("*.yaml"))
    if profile not in profiles:
        raise ConfigError(
            f"profile {profile!r} is unknown{_suggest(profile, profiles)}; allowed: "
            f"{', '.join(profiles) or '(no configs/*.yaml found)'}"
        )
    source = root / PROFILES_DIR / f"{profile}.yaml"
    load_params(source)
    target = root / PARAMS_FILE
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(source.read_text())
    os.replace(tmp, target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reformer.config {use PROFILE | check [EXPERIMENT ...] | show EXPERIMENT}``.

    Returns the exit status: 0, or 2 after printing ``error: <one line>`` to stderr.

    Example:
        >>> main(["check", "--params", "no/such/params.yaml"])
        2
    """
    parser = argparse.ArgumentParser(
        prog="python -m reformer.config", description="Profiles and validation of params.yaml."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    use = sub.add_parser("use", help="copy configs/PROFILE.yaml to params.yaml")
    use.add_argument("profile")
    check = sub.add_parser("check", help="validate params.yaml (and this machine's resources)")
    check.add_argument("experiments", nargs="*", help="also require these experiments to exist")
    show = sub.add_parser("show", help="print one experiment's resolved parameters as JSON")
    show.add_argument("experiment")
    for p in (use, check, show):
        p.add_argument("--params", default=PARAMS_FILE, help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "use":
            target = use_profile(args.profile, Path(args.params).parent)
            params = load_params(target)
            print(
                f"{target}: profile {args.profile!r} with experiments "
                f"{', '.join(params.experiments)}"
            )
        elif args.command == "check":
            params = load_params(args.params)
            for name in args.experiments:
                params.experiment(name)
            check_runtime(params)
            print(
                f"{args.params}: ok (profile {params.profile!r}, "
                f"{len(params.experiments)} experiments: {', '.join(params.experiments)})"
            )
        else:
            params = load_params(args.params)
            print(json.dumps(params.wandb_config(args.experiment), indent=2))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

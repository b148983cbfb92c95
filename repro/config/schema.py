"""The kit's sections of ``params.yaml`` and the resolved experiment.

``train``, ``distributed`` and ``tracking`` mean the same for every paper
(:class:`TrainConfig`, :class:`DistributedConfig`, :class:`TrackingConfig`); ``model`` and
``evaluate`` are the paper's (:attr:`repro.paper.Paper.model_config`,
:attr:`~repro.paper.Paper.evaluate_config`). :class:`ParamsFile` and
:class:`ExperimentEntry` give the file's top level and one ``experiments:`` entry: which
keys exist, and which must be mappings. :class:`ExperimentConfig` is one experiment with
every default resolved.

The sections are pydantic dataclasses: validated on construction, and plain dataclasses
too (``dataclasses.asdict`` and ``dataclasses.replace`` work on them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as section

from .fields import Bool, Float, Int, Section, Seed, Str, as_dict, bounded, limited

__all__ = [
    "DistributedConfig",
    "ExperimentConfig",
    "ExperimentEntry",
    "ParamsFile",
    "TrackingConfig",
    "TrainConfig",
]

STRICT = ConfigDict(extra="forbid")


Positive = Annotated[Int, bounded(minimum=1)]
NonNegative = Annotated[Int, bounded(minimum=0)]
#: A wait in seconds: at most a year (longer is a hang; ``datetime.timedelta``, which the
#: process group's timeout goes through, overflows at 10**14 s).
Seconds = Annotated[Int, bounded(minimum=1, maximum=365 * 24 * 3600)]
#: W&B's limits: a project name of at most 128 characters without ``/ \ # ? % :``, tags of
#: 1 to 64 characters; wandb.init refuses others, and the run would go unrecorded.
WandbProject = Annotated[Str, limited(128, "/\\#?%:", " (a W&B project name)")]
WandbTag = Annotated[Str, limited(64, why=" (a W&B tag)")]


@section(frozen=True, config=STRICT)
class TrainConfig:
    """Optimisation settings of one experiment.

    ``batch_size`` is the global number of sequences per optimizer step, over all ranks and
    accumulation steps: each rank's micro-batch is
    ``batch_size // (nproc_per_node * grad_accum)``.

    Example:
        >>> TrainConfig().optimizer, TrainConfig().schedule
        ('adamw', 'cosine')
    """

    steps: Positive = 600
    batch_size: Positive = 32
    grad_accum: Positive = 1
    seq_len: Annotated[Int | None, bounded(minimum=2)] = None
    optimizer: Literal["adamw", "adafactor"] = "adamw"
    lr: Annotated[Float, bounded(minimum=0.0)] = 1e-3
    betas: Annotated[tuple[Float, Float], bounded(minimum=0.0, below=1.0)] = (0.9, 0.999)
    weight_decay: Annotated[Float, bounded(minimum=0.0)] = 0.0
    schedule: Literal["constant", "cosine", "linear", "rsqrt", "onecycle"] = "cosine"
    warmup_steps: NonNegative = 0
    min_lr_ratio: Annotated[Float, bounded(minimum=0.0, maximum=1.0)] = 0.0
    clip_grad_norm: Annotated[Float | None, bounded(minimum=0.0)] = 1.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    log_every: Positive = 25
    valid_batches: NonNegative = 2
    checkpoint_every: Positive = 100
    resume: Bool = True
    num_workers: NonNegative = 0


@section(frozen=True, config=STRICT)
class DistributedConfig:
    """How ``torchrun`` runs training.

    ``backend``/``device`` ``auto``: nccl on CUDA when a GPU is present, else gloo on CPU.
    ``threads_per_rank`` null: the machine's cores divided by ``nproc_per_node``.

    Example:
        >>> DistributedConfig().backend
        'auto'
    """

    nproc_per_node: Positive = 2
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    timeout_s: Seconds = 300
    threads_per_rank: Annotated[Int | None, bounded(minimum=1)] = None


@section(frozen=True, config=STRICT)
class TrackingConfig:
    """Weights & Biases settings (mode comes from ``WANDB_MODE``: offline by default).

    ``project`` not set in ``params.yaml``: ``<paper>-reproduction``.

    Example:
        >>> TrackingConfig(project="my-paper-reproduction").alerts
        True
    """

    project: WandbProject = "reproduction"
    entity: Str | None = None
    tags: list[WandbTag] = field(default_factory=list)
    init_timeout_s: Seconds = 30
    alerts: Bool = True


@section(frozen=True, config=STRICT)
class ParamsFile:
    """The top level of ``params.yaml``: its keys, with the sections checked later.

    ``report``, ``benchmark`` and ``budget`` belong to other stages and pass unvalidated.
    """

    paper: Str | None = None
    profile: Str = "custom"
    seed: Seed = 0
    tasks: Section = field(default_factory=dict)
    model: Section = field(default_factory=dict)
    train: Section = field(default_factory=dict)
    distributed: Section = field(default_factory=dict)
    evaluate: Section = field(default_factory=dict)
    tracking: Section = field(default_factory=dict)
    experiments: Section = field(default_factory=dict)
    report: Any = None
    benchmark: Any = None
    budget: Any = None


@section(frozen=True, config=STRICT)
class ExperimentEntry:
    """One entry of ``experiments:``: a task and overrides of the shared sections."""

    task: Str | None = None
    model: Section = field(default_factory=dict)
    train: Section = field(default_factory=dict)
    evaluate: Section = field(default_factory=dict)
    seed: Seed | None = None
    description: Any = None


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: a task and a model variant, with defaults resolved.

    Attributes:
        name: the experiment's key in ``params.yaml`` (stage ``train@<name>``).
        task: the task name (a key of ``tasks``).
        task_params: the task's parameters as written in ``params.yaml``.
        model: the paper's resolved ``model`` section (:attr:`repro.paper.Paper.model_config`).
        train: the resolved training settings.
        seed: the experiment's seed.
        seq_len: tokens per training sequence (from :attr:`repro.paper.Task.seq_len`).
        evaluate: the paper's ``evaluate`` section with the experiment's overrides.

    Example:
        >>> exp = ExperimentConfig("e", "copy", {}, {"width": 8}, TrainConfig(), 0, 128)
        >>> exp.train.steps, exp.seq_len
        (600, 128)
    """

    name: str
    task: str
    task_params: dict
    model: Any
    train: TrainConfig
    seed: int
    seq_len: int
    evaluate: Any = None

    def fingerprint(self, world_size: int) -> str:
        """Hash of everything that determines the training trajectory (for safe resume).

        Example:
            >>> exp = ExperimentConfig("e", "copy", {}, {"width": 8}, TrainConfig(), 0, 64)
            >>> exp.fingerprint(2) == exp.fingerprint(2) != exp.fingerprint(1)
            True
        """
        train = as_dict(self.train)
        train.pop("resume")
        train.pop("num_workers")
        state = {
            "task": self.task,
            "task_params": self.task_params,
            "model": self.model if isinstance(self.model, dict) else as_dict(self.model),
            "train": train,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "world_size": world_size,
        }
        blob = json.dumps(state, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

"""The cost-model interface a paper fills in, and the experiments of a params file.

The kit's budget (:mod:`repro.budget`) knows nothing about a model's architecture: the
paper's :class:`CostModel` turns one experiment of ``params.yaml`` into a *spec* (a frozen
dataclass of whatever the paper's formulas need) and counts its parameters, FLOPs per
optimizer step and activation bytes. The kit adds the rest: GPU-hours at an accelerator's
peak, optimizer state, the printed table, ``metrics/budget.json`` and the ``--check``
against a measured step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "BudgetError",
    "Column",
    "CostModel",
    "ExperimentParams",
    "Spec",
    "read_experiments",
    "specs",
]


class BudgetError(ValueError):
    """A params file or an option the estimator cannot use (one line).

    Example:
        >>> str(BudgetError("--mfu = 0: must be in (0, 1]"))
        '--mfu = 0: must be in (0, 1]'
    """


@dataclass(frozen=True)
class ExperimentParams:
    """One experiment of a params file: its sections merged (defaults, then its overrides).

    Attributes:
        name: the key under ``experiments:``.
        task: the experiment's task (a key under ``tasks:``).
        task_params: that task's section.
        model: the ``model:`` section with the experiment's overrides.
        train: the ``train:`` section with the experiment's overrides.
        ranks: ``distributed.nproc_per_node`` (devices that share the global batch).
        seq_len: the training sequence length when the params give it (``train.seq_len``,
            or the config's resolved value), else ``None`` (the paper's spec decides).

    Example:
        >>> e = ExperimentParams("e", "t", {}, {}, {"batch_size": 8, "grad_accum": 2}, ranks=2)
        >>> e.batch_size, e.micro_batch, e.steps, e.precision, e.optimizer
        (8, 2, 600, 'fp32', 'adamw')
    """

    name: str
    task: str
    task_params: Mapping[str, Any]
    model: Mapping[str, Any]
    train: Mapping[str, Any]
    ranks: int = 1
    seq_len: int | None = None

    # The training loop's defaults (repro.training) for keys a params file leaves out.
    @property
    def batch_size(self) -> int:
        """Sequences per optimizer step over all ranks and accumulation steps ``B``."""
        return int(self.train.get("batch_size", 32))

    @property
    def micro_batch(self) -> int:
        """Sequences per forward pass on one device: ``B / (ranks x grad_accum)``."""
        accum = int(self.train.get("grad_accum", 1))
        return max(1, self.batch_size // max(1, self.ranks * accum))

    @property
    def steps(self) -> int:
        """Optimizer steps of the training run."""
        return int(self.train.get("steps", 600))

    @property
    def precision(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``."""
        return str(self.train.get("precision", "fp32"))

    @property
    def optimizer(self) -> str:
        """The optimizer's name (``adamw``, ``adafactor``): decides the state bytes."""
        return str(self.train.get("optimizer", "adamw"))


class Spec(Protocol):
    """What the kit reads of a paper's spec; a frozen dataclass (its fields go to the JSON)."""

    @property
    def name(self) -> str: ...  # the experiment

    @property
    def task(self) -> str: ...

    @property
    def steps(self) -> int: ...  # optimizer steps

    @property
    def optimizer(self) -> str: ...  # a key of repro.budget.STATE_BYTES

    @property
    def tokens_per_step(self) -> int: ...  # tokens of one optimizer step, global batch


@dataclass(frozen=True)
class Column:
    """A paper-specific column of the budget table, read from an experiment's details.

    Attributes:
        key: the row's key in ``metrics/budget.json`` (``attention_flops``).
        label: the printed table's header (``attn FLOP``).
        source: the path of the value in the details: ``("flops", "attention")`` (a key of
            :attr:`CostModel.flops_per_step`'s dictionary) or ``(term, key)`` of
            :attr:`CostModel.terms`. FLOP columns stand before ``total_flops``, the others
            after ``activation_bytes``.
        unit: ``FLOP`` (printed with an SI prefix) or ``bytes`` (printed in KiB, MiB, ...).
    """

    key: str
    label: str
    source: tuple[str, ...]
    unit: str = "FLOP"

    @property
    def is_flops(self) -> bool:
        """Whether the column is a part of the FLOPs (it stands before the total)."""
        return self.source[0] == "flops"


@dataclass(frozen=True)
class CostModel:
    """The formulas a paper gives the kit's budget (``Paper.cost_model``).

    Attributes:
        spec: ``spec(experiment) -> Spec``: the paper's resolved description of one
            :class:`ExperimentParams` (raise :class:`BudgetError` naming the bad key).
        parameters: ``parameters(spec) -> int``: trainable parameters.
        flops_per_step: ``flops_per_step(spec) -> {"total": FLOPs, ...parts}``: FLOPs of one
            optimizer step over the global batch, forward and backward.
        activation_bytes: ``activation_bytes(spec) -> {"total": bytes, ...parts}``: bytes
            one device keeps for the backward pass (its micro-batch).
        terms: optional ``terms(spec) -> {name: {...}}``: the paper's own formulas (its
            tables' terms), written to the details next to the counts.
        columns: the paper's extra table columns (:class:`Column`), in order.
        transient_key: a key of ``activation_bytes``' dictionary holding bytes that exist
            for a moment during the backward pass on top of ``total`` (counted in the peak).
        measure_activation_bytes: optional ``measure(spec) -> int``: the bytes saved for
            backward by one real training step on this machine (for ``--check``).
        assumptions: notes on the conventions, written to the JSON's ``assumptions``.

    Example:
        A dense model's rule of thumb, 6 FLOPs per parameter and token:

        >>> @dataclass(frozen=True)
        ... class Dense:
        ...     name: str
        ...     task: str
        ...     steps: int
        ...     optimizer: str
        ...     n_params: int
        ...     tokens_per_step: int
        >>> dense = CostModel(
        ...     spec=lambda e: Dense(e.name, e.task, e.steps, e.optimizer,
        ...                          1000 * e.model["width"], e.batch_size * e.seq_len),
        ...     parameters=lambda s: s.n_params,
        ...     flops_per_step=lambda s: {"total": 6.0 * s.n_params * s.tokens_per_step},
        ...     activation_bytes=lambda s: {"total": 4 * s.tokens_per_step})
        >>> spec = dense.spec(ExperimentParams("e", "t", {}, {"width": 2}, {}, seq_len=10))
        >>> dense.flops_per_step(spec)["total"]
        3840000.0
    """

    spec: Callable[[ExperimentParams], Any]
    parameters: Callable[[Any], int]
    flops_per_step: Callable[[Any], Mapping[str, float]]
    activation_bytes: Callable[[Any], Mapping[str, int]]
    terms: Callable[[Any], Mapping[str, Any]] | None = None
    columns: tuple[Column, ...] = ()
    transient_key: str | None = None
    measure_activation_bytes: Callable[[Any], int] | None = None
    assumptions: Mapping[str, str] = field(default_factory=dict)


def _typed_experiments(path: Path) -> list[ExperimentParams] | None:
    """The experiments through :func:`repro.config.load_params` (validated, defaults
    resolved), or ``None`` when it rejects the file."""
    from repro.config import ConfigError, as_dict, load_params

    try:
        params = load_params(path)
    except ConfigError:  # e.g. a task this version of the config does not know yet
        return None
    ranks = int(params.distributed.nproc_per_node)
    return [
        ExperimentParams(
            str(name),
            str(exp.task),
            dict(exp.task_params),
            as_dict(exp.model),
            as_dict(exp.train),
            ranks,
            exp.seq_len,
        )
        for name, exp in params.experiments.items()
    ]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BudgetError(f"{where} = {value!r}: must be a mapping")
    return value


def _yaml_experiments(path: Path) -> list[ExperimentParams]:
    """The experiments read as plain YAML: each section's defaults, then the overrides."""
    import yaml

    try:
        raw = _mapping(yaml.safe_load(path.read_text()), str(path))
    except yaml.YAMLError as err:
        raise BudgetError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    tasks = _mapping(raw.get("tasks"), f"{path}: tasks")
    distributed = _mapping(raw.get("distributed"), f"{path}: distributed")
    ranks = int(distributed.get("nproc_per_node", 1))
    out = []
    for name, entry in _mapping(raw.get("experiments"), f"{path}: experiments").items():
        entry = _mapping(entry, f"{path}: experiments.{name}")
        if "task" not in entry:
            raise BudgetError(f"{path}: experiments.{name}.task is missing")
        task = str(entry["task"])
        where = f"{path}: experiments.{name}"
        model = {**_mapping(raw.get("model"), f"{path}: model")}
        model.update(_mapping(entry.get("model"), f"{where}.model"))
        train = {**_mapping(raw.get("train"), f"{path}: train")}
        train.update(_mapping(entry.get("train"), f"{where}.train"))
        task_params = _mapping(tasks.get(task), f"{path}: tasks.{task}")
        out.append(
            ExperimentParams(
                str(name), task, dict(task_params), model, train, ranks, train.get("seq_len")
            )
        )
    return out


def read_experiments(params_path: str | Path) -> list[ExperimentParams]:
    """Every experiment of a params file, in its order.

    Uses :func:`repro.config.load_params` when it accepts the file; a file that it rejects
    (e.g. a task it does not know yet) is read as plain YAML with the same
    defaults-then-overrides rule.

    Raises:
        BudgetError: the file is missing or not shaped like a params file (one line).

    Example:
        >>> read_experiments("no/such.yaml")
        Traceback (most recent call last):
        ...
        repro.budget.model.BudgetError: no/such.yaml: file not found
    """
    path = Path(params_path)
    if not path.is_file():
        raise BudgetError(f"{path}: file not found")
    typed = _typed_experiments(path)
    return typed if typed is not None else _yaml_experiments(path)


def specs(
    params_path: str | Path, cost_model: CostModel, experiment: str | None = None
) -> list[Any]:
    """The cost model's specs of every experiment of a params file (or of the one named).

    Raises:
        BudgetError: the file is missing, or the experiment does not exist (one line).
    """
    experiments = read_experiments(params_path)
    if experiment is not None:
        chosen = [e for e in experiments if e.name == experiment]
        if not chosen:
            allowed = ", ".join(e.name for e in experiments) or "(none)"
            raise BudgetError(
                f"experiment {experiment!r} is not in {params_path}; allowed: {allowed}"
            )
        experiments = chosen
    return [cost_model.spec(e) for e in experiments]

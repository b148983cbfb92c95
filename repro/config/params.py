"""Reading ``params.yaml``: the paper it names, its sections, and every experiment resolved.

:func:`load_params` reads the file, :func:`parse_params` validates the parsed data: the
kit's sections with :mod:`repro.config.schema`, the paper's ``model``/``evaluate`` sections
and tasks with the paper's own plug-ins (:class:`repro.paper.Paper`), then each experiment
(its overrides merged over the shared sections) through the generic cross-field checks and
the paper's ``check_experiment``.

Which paper: the file's ``paper:`` key; when absent, ``[tool.repro] paper = "..."`` in the
``pyproject.toml`` of the params file's directory (:mod:`repro.config.pyproject`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from repro.paper import Paper, PaperError, load_paper

from .errors import SOURCE, ConfigError, fail, suggest
from .fields import as_dict, as_mapping, validate_section
from .pyproject import default_paper
from .schema import (
    DistributedConfig,
    ExperimentConfig,
    ExperimentEntry,
    ParamsFile,
    TrackingConfig,
    TrainConfig,
)

__all__ = ["PARAMS_FILE", "Params", "load_params", "parse_params"]

PARAMS_FILE = "params.yaml"
MAX_NAME = 100  # an experiment's name is part of file names (255 bytes at most)


@dataclass(frozen=True)
class Params:
    """The whole validated ``params.yaml``.

    Attributes:
        paper: the paper package's name (:func:`repro.paper.load_paper` gives its plug-ins).
        tasks: task name -> its parameters as written.
        model, evaluate: the paper's sections (its ``model_config``, ``evaluate_config``).
        experiments: name -> :class:`~repro.config.schema.ExperimentConfig`.
        raw: the file as parsed (plain data, for logging the resolved params).

    Example:
        >>> params = parse_params({"train": {"steps": 50}})  # pyproject.toml names the paper
        >>> params.train.steps, params.experiments, params.paper == default_paper(".")[0]
        (50, {}, True)
    """

    profile: str
    seed: int
    paper: str
    tasks: dict[str, dict]
    model: Any
    train: TrainConfig
    distributed: DistributedConfig
    evaluate: Any
    tracking: TrackingConfig
    experiments: dict[str, ExperimentConfig]
    raw: dict

    def experiment(self, name: str) -> ExperimentConfig:
        """The experiment called ``name``, or a :class:`ConfigError` with a suggestion.

        Example:
            >>> parse_params({"experiments": {}}).experiment("big")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            repro.config.errors.ConfigError: params.yaml: experiment 'big' is unknown; allowed: ...
        """
        if name not in self.experiments:
            raise ConfigError(
                f"{SOURCE}: experiment {name!r} is unknown{suggest(name, self.experiments)}"
                f"; allowed: {', '.join(self.experiments) or '(none)'}"
            )
        return self.experiments[name]

    def wandb_config(self, experiment: str) -> dict[str, Any]:
        """The resolved parameters of one experiment, as logged to the W&B run config.

        Keys: ``experiment``, ``profile``, ``task``, ``task_params``, ``seed``, ``seq_len``,
        and the ``model``, ``train``, ``distributed`` and ``evaluate`` sections as dicts.
        """
        exp = self.experiment(experiment)
        return {
            "experiment": exp.name,
            "profile": self.profile,
            "task": exp.task,
            "task_params": exp.task_params,
            "seed": exp.seed,
            "seq_len": exp.seq_len,
            "model": as_dict(exp.model),
            "train": as_dict(exp.train),
            "distributed": as_dict(self.distributed),
            "evaluate": as_dict(exp.evaluate or self.evaluate),
        }


# ----------------------------------------------------------------------------- the paper


def _resolve_paper(name: str | None, root: Path) -> Paper:
    origin = ""
    if name is None:
        found = default_paper(root)
        if found is None:
            raise ConfigError(
                f"{SOURCE}: paper is not set; allowed: a `paper: <package>` key, or "
                '[tool.repro] paper = "<package>" in pyproject.toml'
            )
        name, pyproject = found
        origin = f" (the default set in {pyproject})"
    try:
        return load_paper(name)
    except PaperError as err:
        raise ConfigError(f"{SOURCE}: {err}{origin}") from None


# ----------------------------------------------------------------------------- parsing


def _task_params(paper: Paper, tasks: Mapping) -> tuple[dict[str, dict], dict[str, dict]]:
    """Each task's parameters as written, and as the task's ``validate`` completes them."""
    written, checked = {}, {}
    for name, entry in tasks.items():
        name = str(name)
        if name not in paper.tasks:
            raise ConfigError(
                f"{SOURCE}: task {('tasks.' + name)!r} is unknown{suggest(name, paper.tasks)}"
                f"; allowed: {', '.join(paper.tasks)}"
            )
        written[name] = dict(as_mapping(entry, f"tasks.{name}"))
        try:
            checked[name] = paper.tasks[name].validate(dict(written[name]))
        except ValueError as err:
            raise ConfigError(f"{SOURCE}: tasks.{name}: {err}") from None
    return written, checked


def _check_experiment(
    paper: Paper, exp: ExperimentConfig, distributed: DistributedConfig, n_train: int | None
) -> None:
    """Cross-field checks: the paper's (shapes its model can run), then the kit's."""
    where = f"experiments.{exp.name}"
    if paper.check_experiment is not None:
        try:
            paper.check_experiment(exp, distributed)
        except ConfigError:
            raise
        except ValueError as err:  # "model.bucket_size = 30: ...", relative to the experiment
            raise ConfigError(f"{SOURCE}: {where}.{err}") from None
    t = exp.train
    per_step = distributed.nproc_per_node * t.grad_accum
    if t.batch_size % per_step:
        raise fail(
            f"{where}.train.batch_size",
            t.batch_size,
            f"must be a multiple of nproc_per_node x grad_accum = {per_step}",
        )
    if t.warmup_steps > t.steps:
        raise fail(
            f"{where}.train.warmup_steps",
            t.warmup_steps,
            f"must be at most train.steps = {t.steps}",
        )
    if n_train is not None and n_train < t.batch_size // t.grad_accum:
        raise ConfigError(
            f"{SOURCE}: tasks.{exp.task} = {n_train} training sequences: must hold at least "
            f"one batch of every rank ({where}.train.batch_size / grad_accum = "
            f"{t.batch_size // t.grad_accum})"
        )


def _experiment(
    paper: Paper, name: str, entry: Any, shared: dict[str, Any], tasks: tuple[dict, dict]
) -> ExperimentConfig:
    """One ``experiments:`` entry resolved over the ``shared`` sections, and checked."""
    written, checked = tasks
    where = f"experiments.{name}"
    if not name.replace("-", "").replace("_", "").isalnum() or not name[0].isalnum():
        # it is a command-line argument of the stages ("-x" would read as an option)
        raise fail(
            where,
            name,
            "an experiment name may use letters, digits, - and _, and starts with a letter "
            "or digit",
        )
    if len(name) > MAX_NAME:  # models/<name>/, metrics/.<name>.json.<random>.tmp, ...
        raise fail(where, name, f"an experiment name may be at most {MAX_NAME} characters")
    e = validate_section(ExperimentEntry, entry, where)
    if e.task is None:
        raise fail(f"{where}.task", None, f"required; allowed: {', '.join(written) or '(none)'}")
    if e.task not in written:
        hint = (
            f" (add it under tasks: first; known tasks: {', '.join(paper.tasks)})"
            if e.task in paper.tasks
            else suggest(e.task, written)
        )
        raise ConfigError(
            f"{SOURCE}: {where}.task = {e.task!r} is unknown{hint}; allowed: "
            f"{', '.join(written) or '(no tasks defined)'}"
        )
    model = validate_section(paper.model_config, e.model, f"{where}.model", shared["model"])
    train = validate_section(TrainConfig, e.train, f"{where}.train", shared["train"])
    evaluate = validate_section(
        paper.evaluate_config, e.evaluate, f"{where}.evaluate", shared["evaluate"]
    )
    task = paper.tasks[e.task]
    try:
        seq_len = task.seq_len(checked[e.task], train.seq_len)
    except ValueError as err:
        raise fail(f"{where}.train.seq_len", train.seq_len, str(err)) from None
    seed = shared["seed"] if e.seed is None else e.seed
    exp = ExperimentConfig(name, e.task, written[e.task], model, train, seed, seq_len, evaluate)
    _check_experiment(paper, exp, shared["distributed"], task.min_train_items(checked[e.task]))
    return exp


def parse_params(
    data: Any, paper: str | Paper | None = None, *, root: str | os.PathLike | None = None
) -> Params:
    """Validate parsed ``params.yaml`` data and resolve every experiment.

    Args:
        data: the YAML document as plain Python data.
        paper: the paper (or its package name) instead of the file's ``paper:`` key.
        root: where to look for ``pyproject.toml`` when neither names the paper
            (default: the working directory).

    Returns:
        The validated :class:`Params`.

    Raises:
        ConfigError: one line naming the key, its value and what is allowed.

    Example:
        >>> parse_params({"train": {"steps": 0}})
        Traceback (most recent call last):
        ...
        repro.config.errors.ConfigError: params.yaml: train.steps = 0: must be an integer >= 1
    """
    if data is None:
        raise ConfigError(
            f"{SOURCE}: empty file; start from a profile: `python -m repro.config use default`"
        )
    if not isinstance(data, Mapping):
        shown = repr(data) if len(repr(data)) <= 60 else f"{repr(data)[:57]}..."
        raise ConfigError(
            f"{SOURCE}: (top level) = {shown}: must be a mapping of keys to values "
            "(sections such as tasks:, model:, train:, experiments:)"
        )
    top = validate_section(ParamsFile, data, "")
    train = validate_section(TrainConfig, top.train, "train")  # the kit's sections first
    distributed = validate_section(DistributedConfig, top.distributed, "distributed")
    if not isinstance(paper, Paper):
        paper = _resolve_paper(paper or top.paper, Path(root or "."))
    tracking = {"project": f"{paper.name}-reproduction", **top.tracking}  # the default name
    shared = {
        "seed": top.seed,
        "model": validate_section(paper.model_config, top.model, "model"),
        "train": train,
        "distributed": distributed,
        "evaluate": validate_section(paper.evaluate_config, top.evaluate, "evaluate"),
        "tracking": validate_section(TrackingConfig, tracking, "tracking"),
    }
    tasks = _task_params(paper, top.tasks)
    experiments = {
        str(name): _experiment(paper, str(name), entry, shared, tasks)
        for name, entry in top.experiments.items()
    }
    return Params(
        profile=top.profile,
        seed=top.seed,
        paper=paper.name,
        tasks=tasks[0],
        model=shared["model"],
        train=shared["train"],
        distributed=shared["distributed"],
        evaluate=shared["evaluate"],
        tracking=shared["tracking"],
        experiments=experiments,
        raw=json.loads(json.dumps(data, default=str)),
    )


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Read and validate a params file.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8, not YAML, empty, or holds
            a bad parameter; the line starts with the file's name.

    Example:
        >>> load_params("no/such/params.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        repro.config.errors.ConfigError: no/such/params.yaml: file not found; create it with ...
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found; create it with `python -m repro.config use default`"
        ) from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{blob[err.start]:02x} at offset {err.start})"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    try:
        return parse_params(data, root=path.parent)
    except ConfigError as err:
        if path.name != PARAMS_FILE:  # name the file the profile came from
            raise ConfigError(str(err).replace(f"{SOURCE}:", f"{path}:", 1)) from None
        raise

"""Typed, validated configuration of the pipeline, read from ``params.yaml``.

``params.yaml`` holds every parameter of the study; ``dvc.yaml`` generates its stages from
it. Its sections:

- ``paper``: the paper package that plugs in (:func:`repro.paper.load_paper`); when absent,
  ``[tool.repro] paper`` in ``pyproject.toml``;
- ``profile``: the name of the profile the file was written from (informational);
- ``seed``: the default seed of every experiment;
- ``tasks``: one entry per data set, holding that task's preparation parameters (checked by
  the paper's :attr:`repro.paper.Task.validate`); each gives a ``prepare@<task>`` stage;
- ``train``, ``distributed``, ``tracking``: the kit's :class:`TrainConfig`,
  :class:`DistributedConfig`, :class:`TrackingConfig`;
- ``model`` and ``evaluate``: the paper's sections (:attr:`repro.paper.Paper.model_config`,
  :attr:`~repro.paper.Paper.evaluate_config`);
- ``experiments``: name -> ``{task, model: {...}, train: {...}, evaluate: {...}, seed,
  description}``; each entry is a task x model variant whose ``model``/``train``/
  ``evaluate`` keys override the shared sections, and gives a ``train@<name>`` and an
  ``evaluate@<name>`` stage. Adding an experiment is a params edit.

Sections used by other stages (``report``, ``benchmark``, ``budget``) are passed through
unvalidated; any other unknown key is an error.

Every problem raises :class:`ConfigError` with one line naming the key, its value and
what is allowed, before anything is trained or written.

Profiles live in ``configs/<name>.yaml``; ``python -m repro.config use <name>`` copies
one to ``params.yaml`` and ``python -m repro.config check`` validates the current file.

Modules: :mod:`~repro.config.errors` (the one-line errors), :mod:`~repro.config.fields`
(field types, one section's validation), :mod:`~repro.config.schema` (the kit's sections),
:mod:`~repro.config.params` (the whole file), :mod:`~repro.config.pyproject` (the
default paper), :mod:`~repro.config.runtime` (this machine),
:mod:`~repro.config.cli` (profiles and the command line).

Example:
    >>> params = parse_params({"train": {"steps": 50, "lr": "1e-3"}})  # the project's paper
    >>> params.train.steps, params.train.lr, params.experiments
    (50, 0.001, {})
    >>> parse_params({"trian": {}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    repro.config.errors.ConfigError: params.yaml: unknown key 'trian' (did you mean 'train'?); ...
"""

from .cli import main, use_profile
from .errors import ConfigError
from .fields import (
    Bool,
    Float,
    Int,
    Section,
    Seed,
    Str,
    as_dict,
    bounded,
    limited,
    validate_section,
)
from .params import PARAMS_FILE, Params, load_params, parse_params
from .pyproject import default_paper
from .runtime import check_runtime, resolve_device
from .schema import DistributedConfig, ExperimentConfig, TrackingConfig, TrainConfig

__all__ = [
    "PARAMS_FILE",
    "Bool",
    "ConfigError",
    "DistributedConfig",
    "ExperimentConfig",
    "Float",
    "Int",
    "Params",
    "Section",
    "Seed",
    "Str",
    "TrackingConfig",
    "TrainConfig",
    "as_dict",
    "bounded",
    "check_runtime",
    "default_paper",
    "limited",
    "load_params",
    "main",
    "parse_params",
    "resolve_device",
    "use_profile",
    "validate_section",
]

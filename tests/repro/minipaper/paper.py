"""The smallest paper plug-in the config tests need: two tasks, two sections, one check.

``copy`` has a fixed length and a known number of training sequences; ``text`` takes its
length from ``train.seq_len``. Nothing here trains: the model functions refuse to run.

Example:
    >>> PAPER.task("copy").seq_len({"length": 16, "n_train": 8}, None)
    16
"""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

from repro.config import Bool, Float, Int, bounded
from repro.paper import Paper, Task

Positive = Annotated[Int, bounded(minimum=1)]
COPY_DEFAULTS = {"length": 16, "n_train": 64}


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ModelConfig:
    width: Positive = 32
    heads: Positive = 2
    kind: Literal["plain", "fancy"] = "plain"
    shared: Bool = True
    dropout: Annotated[Float, bounded(minimum=0.0, below=1.0)] = 0.0
    shape: tuple[Int, Int] | None = None


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class EvaluateConfig:
    rounds: Annotated[list[Int], bounded(minimum=1)] = field(default_factory=lambda: [1, 2])
    batch_size: Positive = 8
    full: Bool = True


def validate_copy(params: dict) -> dict:
    unknown = sorted(set(params) - set(COPY_DEFAULTS))
    if unknown:
        raise ValueError(f"copy param {unknown[0]!r} is unknown; allowed: length, n_train")
    p = {**COPY_DEFAULTS, **params}
    for name, value in p.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"copy param {name!r} = {value!r}: must be an integer > 0")
    return p


def copy_seq_len(params: dict, requested: int | None) -> int:
    if requested is not None and requested != params["length"]:
        raise ValueError(
            f"the copy task has length {params['length']}; allowed: null or {params['length']}"
        )
    return params["length"]


def text_seq_len(params: dict, requested: int | None) -> int:
    if requested is None:
        raise ValueError("task 'text' needs a sequence length; allowed: an integer >= 2")
    return requested


def check_experiment(exp: Any, distributed: Any) -> None:
    if exp.model.width % exp.model.heads:
        raise ValueError(
            f"model.heads = {exp.model.heads}: must divide model.width = {exp.model.width}"
        )


def _no_training(*args: Any) -> Any:
    raise NotImplementedError("minipaper only tests the config")


PAPER = Paper(
    name="minipaper",
    title="A paper for the config tests",
    tasks={
        "copy": Task(
            "copy",
            _no_training,
            _no_training,
            validate_copy,
            copy_seq_len,
            lambda p: p["n_train"],
        ),  # fmt: skip
        "text": Task("text", _no_training, _no_training, dict, text_seq_len),
    },
    model_config=ModelConfig,
    evaluate_config=EvaluateConfig,
    build_model=_no_training,
    load_model=_no_training,
    evaluate=_no_training,
    check_experiment=check_experiment,
)

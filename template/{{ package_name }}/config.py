"""The paper's sections of ``params.yaml``: ``model:`` and ``evaluate:``.

The kit owns ``train:``, ``distributed:`` and ``tracking:`` (:mod:`repro.config`); the
paper says what its ``model:`` and ``evaluate:`` sections hold. Each is a pydantic dataclass
built from the kit's field types (:mod:`repro.config.fields`), so a bad value gets the kit's
one-line error (``params.yaml: model.d_model = 0: must be an integer >= 1``); every
experiment may override any field.

Example:
    >>> ModelConfig(d_model=16).d_model, EvaluateConfig().max_batches is None
    (16, True)
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

from repro.config import Float, Int, bounded

__all__ = ["EvaluateConfig", "ModelConfig", "check_experiment"]

STRICT = ConfigDict(extra="forbid")  # an unknown key is refused, with a suggestion
Positive = Annotated[Int, bounded(minimum=1)]


@dataclass(frozen=True, config=STRICT)
class ModelConfig:
    """The ``model:`` section: the arguments of :class:`.model.TinyTransformer`."""

    d_model: Positive = 32
    n_heads: Positive = 2
    d_ff: Positive = 64
    n_layers: Positive = 1
    dropout: Annotated[Float, bounded(minimum=0.0, below=1.0)] = 0.0


@dataclass(frozen=True, config=STRICT)
class EvaluateConfig:
    """The ``evaluate:`` section: how the test split is measured.

    ``max_batches`` null: the whole test split.
    """

    batch_size: Positive = 64
    max_batches: Annotated[Int | None, bounded(minimum=1)] = None


def check_experiment(exp: Any, distributed: Any) -> None:
    """Cross-field checks of one experiment (``d_model`` splits evenly into heads).

    Raises:
        ValueError: ``"<key> = <value>: <allowed>"``, the key relative to the experiment.

    Example:
        >>> from types import SimpleNamespace
        >>> check_experiment(SimpleNamespace(model=ModelConfig(d_model=30, n_heads=4)), None)
        Traceback (most recent call last):
        ...
        ValueError: model.d_model = 30: must be a multiple of model.n_heads (4)
    """
    model = exp.model
    if model.d_model % model.n_heads:
        raise ValueError(
            f"model.d_model = {model.d_model}: must be a multiple of model.n_heads "
            f"({model.n_heads})"
        )

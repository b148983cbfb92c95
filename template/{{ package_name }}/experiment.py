"""Build, restore and evaluate the paper's model: what the kit's train and evaluate stages
call through ``PAPER``.

- :func:`build_model`: a fresh :class:`.model.TinyTransformer` for one experiment;
- :func:`load_model`: the model saved in ``models/<experiment>/model.pt``;
- :func:`evaluate`: accuracy and loss on the test split (the claim's metric).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repro.config import as_dict
from repro.paper import BuiltModel, Evaluation
from repro.training import evaluate_lm

from .config import EvaluateConfig
from .model import TinyTransformer
from .task import load_split

__all__ = ["DIGITS", "build_model", "evaluate", "load_model"]

DIGITS = 6  # metrics are rounded once: the file and the W&B summary hold the same numbers


def build_model(exp: Any, vocab_size: int) -> BuiltModel:
    """The model of experiment ``exp`` (its ``model:`` section) with fresh weights.

    Example:
        >>> from types import SimpleNamespace
        >>> from .config import ModelConfig
        >>> built = build_model(SimpleNamespace(model=ModelConfig(), seq_len=9), vocab_size=6)
        >>> type(built.core).__name__, built.config["max_seq_len"]
        ('TinyTransformer', 9)
    """
    kwargs = {"vocab_size": vocab_size, "max_seq_len": exp.seq_len, **as_dict(exp.model)}
    model = TinyTransformer(**kwargs)
    return BuiltModel(core=model, trainable=model, config=kwargs)


def load_model(saved: Mapping[str, Any]) -> nn.Module:
    """Rebuild the model of a saved ``model.pt`` (``model_class``, ``model_config``, weights).

    Raises:
        ValueError: the file holds another class of model (one line).
    """
    if saved.get("model_class") != TinyTransformer.__name__:
        raise ValueError(
            f"model_class = {saved.get('model_class')!r}: not a model of this package; "
            f"allowed: {TinyTransformer.__name__}"
        )
    model = TinyTransformer(**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    return model


def evaluate(exp: Any, model: nn.Module, data_dir: Path, device: torch.device) -> Evaluation:
    """Accuracy and loss of ``model`` on the reversed words of the test split.

    Raises:
        DataIntegrityError, ValueError: the test split is missing or corrupt (one line).
    """
    test_set = load_split(data_dir, "test", exp.seq_len)
    ev = exp.evaluate if exp.evaluate is not None else EvaluateConfig()
    start = time.perf_counter()
    m = evaluate_lm(
        model.to(device),
        test_set,
        ev.batch_size,
        device,
        ev.max_batches,
        precision=exp.train.precision,
    )
    accuracy, loss = round(m["accuracy"], DIGITS), round(m["loss"], DIGITS)
    return Evaluation(
        metrics={"accuracy": accuracy, "loss": loss},
        summary={"eval/accuracy": accuracy, "eval/loss": loss},
        line=(
            f"accuracy {100 * accuracy:.1f}%, loss {loss:.4f} on {int(m['count'])} "
            f"predicted tokens ({time.perf_counter() - start:.1f} s)"
        ),
    )

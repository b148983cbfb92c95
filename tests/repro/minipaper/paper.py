"""The fixture paper: a small but real plug-in for the kit's tests (``paper: minipaper``).

The kit's tests must hold in every project made from the template, whatever its paper, so
they never use the reproduced paper's package: they use this one. It has what a paper
needs and nothing more:

- two tasks (:mod:`.task`): ``copy`` (fixed length, a known number of training sequences)
  and ``text`` (its length from ``train.seq_len``);
- its ``model:`` and ``evaluate:`` sections and one cross-field check;
- a tiny causal language model (:class:`.model.TinyLM`), built, restored and evaluated;
- evaluation modes like a paper's table columns: ``full`` (the model as trained, dropout
  off) and ``r<n>`` for each ``n`` of ``evaluate.rounds`` (the probabilities of ``n``
  passes with dropout on, averaged), written as ``metrics["accuracy"][mode]`` and
  ``eval/accuracy_<mode>`` (the same for ``loss``);
- its own table of those modes in the report and the README (:mod:`.tables`).

``params.yaml`` beside this file is its smoke profile and ``claims.yaml`` its claims file;
tests put ``tests/repro`` on ``PYTHONPATH`` (or copy this folder into a project) to run the
pipeline's scripts with it.

Example:
    >>> PAPER.task("copy").seq_len({"length": 16, "n_train": 8}, None)
    16
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass
from torch import nn

from repro.config import Bool, Float, Int, as_dict, bounded
from repro.paper import BuiltModel, Evaluation, Paper
from repro.training import evaluate_lm

from .model import TinyLM
from .tables import readme_tables, report_tables
from .task import COPY, TEXT

Positive = Annotated[Int, bounded(minimum=1)]
DIGITS = 6  # metrics are rounded once: the file and the W&B summary hold the same numbers
EVAL_SEED = 0  # the same dropout masks at every evaluation


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class ModelConfig:
    """The ``model:`` section: the arguments of :class:`.model.TinyLM`."""

    width: Positive = 32
    heads: Positive = 2
    kind: Literal["plain", "fancy"] = "plain"
    shared: Bool = True
    dropout: Annotated[Float, bounded(minimum=0.0, below=1.0)] = 0.0
    shape: tuple[Int, Int] | None = None


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class EvaluateConfig:
    """The ``evaluate:`` section: the modes (``full``, ``r<n>`` for ``n`` in ``rounds``)."""

    rounds: Annotated[list[Int], bounded(minimum=1)] = field(default_factory=lambda: [1, 2])
    batch_size: Positive = 8
    full: Bool = True


def check_experiment(exp: Any, distributed: Any) -> None:
    """``model.heads`` divides ``model.width`` (the key relative to the experiment)."""
    if exp.model.width % exp.model.heads:
        raise ValueError(
            f"model.heads = {exp.model.heads}: must divide model.width = {exp.model.width}"
        )


def build_model(exp: Any, vocab_size: int) -> BuiltModel:
    """A fresh :class:`.model.TinyLM` for experiment ``exp``."""
    kwargs = {"vocab_size": vocab_size, "max_seq_len": exp.seq_len, **as_dict(exp.model)}
    model = TinyLM(**kwargs)
    return BuiltModel(core=model, trainable=model, config=kwargs)


def load_model(saved: Mapping[str, Any]) -> nn.Module:
    """The model of a saved ``model.pt``, or a one-line ``ValueError`` for another class."""
    if saved.get("model_class") != TinyLM.__name__:
        raise ValueError(
            f"model_class = {saved.get('model_class')!r}: not a model of minipaper; "
            f"allowed: {TinyLM.__name__}"
        )
    model = TinyLM(**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    return model


class Rounds(nn.Module):
    """``model`` with dropout on, its probabilities averaged over ``n`` passes.

    ``forward(tokens (b, l)) -> (b, l, V)``: the log of the mean probabilities.
    """

    def __init__(self, model: nn.Module, n: int) -> None:
        super().__init__()
        self.model, self.n = model, n

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.model.train()
        try:
            passes = [F.softmax(self.model(tokens).float(), dim=-1) for _ in range(self.n)]
        finally:
            self.model.eval()
        return torch.stack(passes).mean(dim=0).clamp_min(1e-30).log()


def eval_modes(ev: EvaluateConfig) -> list[tuple[str, int | None]]:
    """``(label, rounds)`` of every mode; ``rounds`` None: the model as trained.

    Example:
        >>> eval_modes(EvaluateConfig(rounds=[1, 4]))
        [('full', None), ('r1', 1), ('r4', 4)]
    """
    return ([("full", None)] if ev.full else []) + [(f"r{n}", n) for n in ev.rounds]


def evaluate(exp: Any, model: nn.Module, data_dir: Path, device: torch.device) -> Evaluation:
    """Accuracy and loss on the test split in every mode of ``exp.evaluate``."""
    test_set = PAPER.task(exp.task).load_split(data_dir, "test", exp.seq_len)
    ev = exp.evaluate if exp.evaluate is not None else EvaluateConfig()
    metrics: dict[str, dict[str, float]] = {"accuracy": {}, "loss": {}}
    model = model.to(device)
    for label, rounds in eval_modes(ev):
        torch.manual_seed(EVAL_SEED)
        measured = model if rounds is None else Rounds(model, rounds)
        m = evaluate_lm(measured, test_set, ev.batch_size, device, precision=exp.train.precision)
        for family, values in metrics.items():
            values[label] = round(m[family], DIGITS)
    summary = {f"eval/{f}_{mode}": v for f, values in metrics.items() for mode, v in values.items()}
    shown = ", ".join(f"{label} {value:.3f}" for label, value in metrics["accuracy"].items())
    return Evaluation(metrics=metrics, summary=summary, line=f"accuracy {shown}")


PAPER = Paper(
    name="minipaper",
    title="A paper for the kit's tests",
    tasks={"copy": COPY, "text": TEXT},
    model_config=ModelConfig,
    evaluate_config=EvaluateConfig,
    build_model=build_model,
    load_model=load_model,
    evaluate=evaluate,
    check_experiment=check_experiment,
    report_tables=report_tables,
    readme_tables=readme_tables,
)

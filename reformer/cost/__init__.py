"""The Reformer's cost model: parameters, FLOPs and activation memory of every experiment.

The kit's budget (:mod:`repro.budget`, run by ``python pipelines/budget.py``) takes
:data:`COST_MODEL` from ``PAPER.cost_model`` and adds GPU-hours, optimizer state, the table
and ``metrics/budget.json``. Here:

- **parameters**: the exact count, from the model built on the ``meta`` device (no memory)
  (:mod:`~reformer.cost.specs`);
- **FLOPs per optimizer step**, attention and feed-forward separately (plus the output
  head), counted from the matmul shapes of our implementation, next to the paper's Table 1
  terms (:mod:`~reformer.cost.flops`);
- **activation memory** per device: the paper's Table 3 formula and a concrete byte
  estimate of what our implementation keeps for the backward pass
  (:mod:`~reformer.cost.activations`).

FLOP conventions (each documented where it is used):

- a multiply-accumulate (MAC) is 2 FLOPs;
- only matrix products count: the attention projections, the attention scores ``Q K^T``
  and the weighted sum ``P V``, the LSH hash projection, the feed-forward layers and the
  output head. Layer norms, softmax, sorting and other elementwise work are ignored; they
  are a few per cent at these widths and do not run on the matmul units that the peak
  throughput describes;
- a training step is the forward pass (1x) plus the backward pass (2x: the gradient with
  respect to the input and with respect to the weights of every matmul), so **3x** the
  forward FLOPs. Reversible layers recompute their forward pass during the backward pass:
  **4x** for the layer stack. Checkpointed pieces (chunked feed-forward, chunked loss) add
  one more forward each;
- full attention counts the whole ``l x l`` score matrix, also for causal models (what
  ``torch.utils.flop_counter`` counts; a causal flash kernel skips about half of it);
- FLOPs are global per optimizer step: ``train.batch_size`` sequences over all ranks.

The paper's Table 1 writes one full-attention layer's time as ``b n_h l^2 d_k``: exactly the
MACs of ``Q K^T`` (and again of ``P V``), so our count is ``2 x 2 x`` that term per pass. For
LSH attention Table 1 gives ``b n_h n_r l (4l/n_c)^2``, an asymptotic term without ``d_k``;
with ``4 l / n_c = 2 m`` (twice the chunk length ``m``: a chunk and the one before it, the
window every query attends to) our count is ``2 b n_h n_r l (2m) d_k`` MACs per pass. Both
Table 1 terms are reported next to the counts (``details`` in the JSON).

Example:
    >>> spec = LMSpec("demo", "duplication", vocab_size=16, seq_len=64, batch_size=8,
    ...               micro_batch=4, steps=100, model={"d_model": 32, "n_heads": 2,
    ...               "d_ff": 64, "attention": "full", "reversible": False})
    >>> f = flops_per_step(spec)
    >>> f["feedforward"] == 2 * 3 * (2 * 32 * 64) * 8 * 64  # 2 FLOP/MAC, 3 passes
    True
    >>> count_parameters(spec) > 0
    True
"""

from __future__ import annotations

import os
from typing import Any

from repro import budget
from repro.budget import Column, CostModel

from .activations import activation_bytes, table3_activation
from .flops import flops_per_step, table1_terms
from .specs import (
    MODEL_DEFAULTS,
    LMSpec,
    Seq2SeqSpec,
    Spec,
    build_model,
    count_parameters,
    measure_activation_bytes,
    spec_from_experiment,
)

__all__ = [
    "COST_MODEL",
    "MODEL_DEFAULTS",
    "LMSpec",
    "Seq2SeqSpec",
    "Spec",
    "activation_bytes",
    "build_model",
    "count_parameters",
    "experiment_specs",
    "flops_per_step",
    "measure_activation_bytes",
    "spec_from_experiment",
    "table1_terms",
    "table3_activation",
    "terms",
]


def terms(spec: Spec) -> dict[str, Any]:
    """The paper's own formulas for this experiment: ``{"table1": ..., "table3": ...}``.

    Example:
        >>> spec = LMSpec("e", "enwik8", 256, 64, 2, 2, 1, {"d_model": 16, "n_heads": 2,
        ...               "d_ff": 32, "attention": "full", "reversible": False})
        >>> sorted(terms(spec)), terms(spec)["table3"]["row"]
        (['table1', 'table3'], 'Transformer')
    """
    return {"table1": table1_terms(spec), "table3": table3_activation(spec)}


#: What ``PAPER.cost_model`` holds: the kit's budget with the Reformer's formulas. The
#: report's table reads the columns ``attention_flops``, ``ff_flops`` and ``table3_bytes``.
COST_MODEL = CostModel(
    spec=spec_from_experiment,
    parameters=count_parameters,
    flops_per_step=flops_per_step,
    activation_bytes=activation_bytes,
    terms=terms,
    columns=(
        Column("attention_flops", "attn FLOP", ("flops", "attention")),
        Column("ff_flops", "FF FLOP", ("flops", "feedforward")),
        Column("table3_bytes", "act. (Table 3)", ("table3", "bytes"), unit="bytes"),
    ),
    # During a reversible stack's backward pass one layer's activations exist again.
    transient_key="reversible_backward",
    measure_activation_bytes=measure_activation_bytes,
    assumptions={
        "flops": "matmul FLOPs per optimizer step (global batch), 2 FLOPs per MAC; "
        "3x forward (4x for reversible layers)",
        "activation_bytes": "saved for backward per device (micro-batch), ours",
        "table3_bytes": "the paper's Table 3 formula, 4-byte elements, per device",
    },
)


def experiment_specs(
    params_path: str | os.PathLike = "params.yaml", experiment: str | None = None
) -> list[Spec]:
    """Resolved specs of every experiment of a params file (or of the one named).

    Example:
        >>> experiment_specs("no/such.yaml")
        Traceback (most recent call last):
        ...
        repro.budget.model.BudgetError: no/such.yaml: file not found
    """
    return budget.specs(params_path, COST_MODEL, experiment)

"""Activation memory of whole models vs depth (paper, section 3 and Table 3).

Measured deterministically: bytes of the tensors autograd saves for backward during one
forward pass and loss (parameters excluded), counted by reformer.memory.saved_tensor_bytes.
"""

from __future__ import annotations

import pytest
import torch

from reformer.memory import saved_tensor_bytes
from reformer.models import ReformerLM, TransformerLM

V, L, BATCH = 16, 64, 2
SIZES = dict(d_model=32, n_heads=2, d_ff=64, max_seq_len=L)


def saved_bytes(model: torch.nn.Module) -> int:
    x = torch.randint(0, V, (BATCH, L), generator=torch.Generator().manual_seed(0))
    return saved_tensor_bytes(model.loss, x, x.roll(-1, dims=1), ignore=model.parameters())


@pytest.mark.parametrize("attention", ["lsh", "full"])
def test_reversible_reformer_memory_does_not_grow_with_depth(attention: str) -> None:
    torch.manual_seed(0)
    shallow, deep = (
        saved_bytes(
            ReformerLM(V, n_layers=n, attention=attention, bucket_size=8, n_hashes=2, **SIZES)
        )
        for n in (2, 12)
    )
    assert deep < 1.10 * shallow, (shallow, deep)


def test_transformer_memory_grows_linearly_with_depth() -> None:
    torch.manual_seed(0)
    two, twelve = (saved_bytes(TransformerLM(V, n_layers=n, **SIZES)) for n in (2, 12))
    assert twelve / two > 4, (two, twelve)
    # and the reversible model at 12 layers keeps a fraction of the Transformer's activations
    reversible = saved_bytes(ReformerLM(V, n_layers=12, attention="full", **SIZES))
    assert reversible < twelve / 4

"""The LM section hashes as the attention section does: the paper's bucket count, in two
factors above ``factorise_above`` for ours and HF's, the full count for reformer-pytorch."""

from __future__ import annotations

import math

import pytest
import torch

from reformer import LSHSelfAttention
from reformer.benchmarks.speed import reversible_lsh_lm

LENGTH, BUCKET = 512, 8  # the paper's rule: 2 x 512 / 8 = 128 buckets


def _lsh_layers(model: torch.nn.Module) -> list[LSHSelfAttention]:
    return [m for m in model.modules() if isinstance(m, LSHSelfAttention)]


@pytest.mark.parametrize(("above", "expected"), [(64, (8, 16)), (128, 128), (None, 128)])
def test_our_lm_factorises_only_above_the_threshold(above, expected):
    torch.manual_seed(0)
    model = reversible_lsh_lm(64, LENGTH, 32, 2, 2, 64, BUCKET, 2, factorise_above=above)
    layers = _lsh_layers(model)
    assert len(layers) == 2
    for layer in layers:
        buckets = layer.buckets_for_length(LENGTH)
        assert buckets == expected
        assert math.prod(buckets if isinstance(buckets, tuple) else (buckets,)) == 128
    tokens = torch.randint(0, 64, (1, LENGTH))
    loss = model.loss(tokens, tokens.roll(-1, dims=1))
    loss.backward()
    assert torch.isfinite(loss)


def test_factorised_buckets_reach_every_bucket_id(monkeypatch):
    # The mixed-radix id h_0 + 8 h_1 covers all 128 buckets, not only those of one factor.
    from reformer.attention import lsh

    torch.manual_seed(0)
    model = reversible_lsh_lm(64, LENGTH, 32, 1, 2, 64, BUCKET, 1, factorise_above=64)
    seen = []
    hash_vectors = lsh.hash_vectors

    def spy(qk, rotations):
        seen.append((isinstance(rotations, (list, tuple)), hash_vectors(qk, rotations)))
        return seen[-1][1]

    monkeypatch.setattr(lsh, "hash_vectors", spy)
    model.loss(torch.randint(0, 64, (1, LENGTH)), torch.randint(0, 64, (1, LENGTH)))
    assert seen and all(factorised for factorised, _ in seen)
    ids = torch.cat([b.flatten() for _, b in seen])
    assert int(ids.min()) >= 0 and int(ids.max()) < 128
    assert len(ids.unique()) > 16  # more than either factor alone could give


def test_hf_lm_gets_the_same_factors():
    pytest.importorskip("transformers")
    from reformer.benchmarks import peers

    model, loss = peers.language_model(
        "hf_transformers", LENGTH, 64, 32, 1, 2, 64, BUCKET, 1, n_buckets=(8, 16)
    )
    assert list(model.config.num_buckets) == [8, 16]
    assert torch.isfinite(loss(torch.randint(0, 64, (1, LENGTH))))

"""Reformer values that ``config check`` accepted but the model could not take (issue 15,
item 5): each is now refused with one line naming the key and what is allowed, and the
limit is the model's own (checked by building and running it at the limit).

The kit's ranges (seeds, 64-bit integers, timeouts, W&B names): tests/repro/test_config_ranges.py.
"""

from __future__ import annotations

import signal
import time

import pytest
import torch
from test_model_config import BASE, error_of, with_change

from reformer.attention.chunked import lsh_attend
from reformer.config import model_kwargs
from reformer.decoding import length_penalty
from reformer.models import ReformerLM
from repro.config import parse_params


def test_an_axial_shape_of_negative_sides_is_refused():
    # (-4) * (-8) = 32 covered the length: every rank crashed building the model
    assert (
        error_of(
            with_change("model", {**BASE["model"], "positional": "axial", "axial_shape": [-4, -8]})
        )
        == "params.yaml: model.axial_shape = (-4, -8): must be an integer >= 1"
    )
    with pytest.raises(ValueError, match="two positive integers"):
        ReformerLM(16, max_seq_len=32, attention="full", positional="axial", axial_shape=(-4, -8))


def test_the_smallest_axial_sides_allowed_build_and_run():
    data = with_change("model", {**BASE["model"], "positional": "axial", "axial_shape": [1, 64]})
    exp = parse_params(data).experiment("dup-full")
    model = ReformerLM(**model_kwargs(exp, vocab_size=16))
    assert model(torch.zeros(1, 64, dtype=torch.long)).shape == (1, 64, 16)


@pytest.mark.parametrize("path", ["model.n_hashes", "experiments.dup-lsh4.model.n_hashes"])
def test_more_lsh_rounds_than_the_attention_counts_are_refused(path):
    # n_hashes 512 passed and every rank crashed in the first forward pass
    assert error_of(with_change(path, 256)) == (
        f"params.yaml: {path} = 256: must be an integer <= 255"
    )
    qk, v = torch.randn(1, 8, 1, 4), torch.randn(1, 8, 1, 4)
    with pytest.raises(ValueError, match="between 1 and 255"):
        lsh_attend(qk, v, torch.zeros(1, 1, 256, 8, dtype=torch.long), bucket_size=4, causal=True)


def test_the_most_lsh_rounds_allowed_run():
    exp = parse_params(with_change("experiments.dup-lsh4.model.n_hashes", 255)).experiment(
        "dup-lsh4"
    )
    assert exp.model.n_hashes == 255
    qk, v = torch.randn(1, 8, 1, 4), torch.randn(1, 8, 1, 4)
    buckets = torch.randint(0, 4, (1, 1, 255, 8))
    assert lsh_attend(qk, v, buckets, bucket_size=4, causal=True).shape == (1, 8, 1, 4)


@pytest.mark.parametrize(
    ("path", "value"), [("evaluate.n_hashes", [1, 256]), ("evaluate.bucket_rounds", [300])]
)
def test_evaluation_rounds_beyond_the_attention_are_refused(path, value):
    # evaluation ran the cheaper modes first, then stopped on this one
    assert error_of(with_change(path, value)) == (
        f"params.yaml: {path} = {value}: must be an integer <= 255"
    )


def test_an_evaluation_seed_beyond_32_bits_is_refused():
    # evaluate called torch.manual_seed(2**64): "Overflow when unpacking long long"
    assert error_of(with_change("evaluate.seed", 2**64 - 1 + 1)).endswith(
        "must be a 64-bit integer (between -2**63 and 2**63 - 1)"
    )
    assert error_of(with_change("evaluate.seed", 2**32)) == (
        "params.yaml: evaluate.seed = 4294967296: must be an integer <= 4294967295"
    )


def _alarm(signum, frame):
    raise TimeoutError("config check still busy after 60 s")


def test_a_bucket_size_that_does_not_cut_a_huge_length_is_refused_at_once():
    # the allowed sizes were searched among all 10**18 candidates: `config check` hung
    length = 10**18 + 2
    data = with_change("tasks.duplication.length", length)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(60)
    start = time.perf_counter()
    try:
        message = error_of(data)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - start < 60
    assert message.startswith(
        f"params.yaml: experiments.dup-full.model.bucket_size = 16: the sequence length "
        f"{length} is not divisible by it; allowed: one of "
    )
    for size in message.rsplit("one of ", 1)[1].split(", "):
        assert length % int(size) == 0


def test_a_length_penalty_that_overflows_the_beam_scores_is_refused():
    # alpha 1000 passed and beam search crashed: ((5 + length) / 6) ** alpha (OverflowError)
    with pytest.raises(OverflowError):
        length_penalty(256, 1000.0)
    assert error_of(with_change("evaluate.length_penalty", 1000)) == (
        "params.yaml: evaluate.length_penalty = 1000.0: must be a number <= 10.0"
    )
    alpha = parse_params(with_change("evaluate.length_penalty", 10)).evaluate.length_penalty
    assert length_penalty(10**6, alpha) > 0  # the longest sentences a model could take

"""The number of LSH buckets: the paper's rule ``2 l / m`` (default) and reformer-pytorch's
``l / m``, checked against the formula, in the layer, the model and the params checks."""

from __future__ import annotations

import pytest
import torch

from reformer.attention import BUCKET_RULES, LSHSelfAttention, hash_vectors, n_buckets_for
from reformer.models import ReformerLM, TransformerLM

SHAPES = [(64, 64), (128, 32), (128, 8), (96, 32), (1024, 64), (4096, 16)]


@pytest.mark.parametrize(("length", "bucket_size"), SHAPES)
def test_paper_rule_is_twice_the_length_over_the_bucket_size(length, bucket_size):
    # Section 2: chunks of length m = 2 l / n_buckets, so n_buckets = 2 l / m
    assert n_buckets_for(length, bucket_size) == 2 * length / bucket_size
    assert n_buckets_for(length, bucket_size, "paper") % 2 == 0
    assert LSHSelfAttention(8, 2, bucket_size=bucket_size).buckets_for_length(length) == (
        2 * length / bucket_size
    )


@pytest.mark.parametrize(("length", "bucket_size"), [s for s in SHAPES if s != (96, 32)])
def test_half_rule_is_the_length_over_the_bucket_size(length, bucket_size):
    assert n_buckets_for(length, bucket_size, "half") == length / bucket_size
    layer = LSHSelfAttention(8, 2, bucket_size=bucket_size, bucket_rule="half")
    assert layer.buckets_for_length(length) == length / bucket_size


def test_explicit_n_buckets_overrides_either_rule():
    for rule in BUCKET_RULES:
        layer = LSHSelfAttention(8, 2, bucket_size=4, n_buckets=6, bucket_rule=rule)
        assert layer.buckets_for_length(32) == 6


@pytest.mark.parametrize("rule", BUCKET_RULES)
def test_the_layer_hashes_into_the_rules_buckets(rule):
    """The rotations drawn in a forward pass have n_buckets / 2 columns, and the bucket ids
    fill [0, n_buckets): with the paper's rule twice as many as with the half rule."""
    length, m = 64, 8
    expected = 2 * length // m if rule == "paper" else length // m
    torch.manual_seed(0)
    layer = LSHSelfAttention(16, 2, bucket_size=m, n_hashes=2, bucket_rule=rule)
    drawn = []
    original = layer.random_rotations

    def spy(n_buckets, device):
        drawn.append(n_buckets)
        return original(n_buckets, device)

    layer.random_rotations = spy
    x = torch.randn(4, length, 16)
    layer(x)
    assert drawn == [expected]
    qk, _ = layer._project(x, 0, 2)
    ids = hash_vectors(qk, original(expected, x.device))
    assert int(ids.min()) >= 0 and int(ids.max()) < expected
    assert len(ids.unique()) > expected // 2  # more ids than the other rule would allow


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: LSHSelfAttention(8, 2, bucket_rule="double"), "bucket_rule='double'"),
        (lambda: n_buckets_for(30, 4), "30 must be divisible by bucket_size=4"),
        (lambda: n_buckets_for(96, 32, "half"), "= 3 must be 1 or even"),
        (
            lambda: ReformerLM(
                10, d_model=8, n_heads=2, max_seq_len=12, bucket_size=4, bucket_rule="half"
            ),
            "max_seq_len=12",
        ),
        (lambda: ReformerLM(10, d_model=8, n_heads=2, max_seq_len=14, bucket_size=4), "multiple"),
        (lambda: TransformerLM(10, d_model=8, n_heads=2, bucket_rule="x"), "bucket_rule='x'"),
    ],
)
def test_bad_shapes_and_rules_are_one_line_errors(call, words):
    with pytest.raises(ValueError, match=words) as info:
        call()
    assert "\n" not in str(info.value)


def test_models_pass_the_rule_to_every_lsh_layer_also_after_a_switch():
    model = ReformerLM(10, d_model=8, n_heads=2, max_seq_len=48, bucket_size=16)
    assert model.layers.blocks[0].f.fn.buckets_for_length(48) == 6  # 3 chunks, paper rule
    full = TransformerLM(
        10, d_model=8, n_heads=2, max_seq_len=32, bucket_size=4, shared_qk=True, bucket_rule="half"
    )
    layer = full.set_attention("lsh").layers.blocks[0].f.fn
    assert layer.bucket_rule == "half" and layer.buckets_for_length(32) == 8

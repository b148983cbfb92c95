"""Positional embeddings: shapes, values against explicit formulas, and errors."""

from __future__ import annotations

import math

import pytest
import torch

from reformer.positional import (
    AbsolutePositionalEmbedding,
    AxialPositionalEmbedding,
    FixedPositionalEmbedding,
)


def test_absolute_embedding_is_the_first_rows_of_a_table() -> None:
    pos = AbsolutePositionalEmbedding(max_seq_len=10, d_model=4)
    out = pos(torch.zeros(3, 7, 4))
    assert out.shape == (1, 7, 4)
    torch.testing.assert_close(out[0], pos.emb.weight[:7])
    out.sum().backward()
    assert pos.emb.weight.grad[:7].abs().sum() > 0
    assert pos.emb.weight.grad[7:].abs().sum() == 0


def test_fixed_embedding_matches_the_sinusoid_formula() -> None:
    d = 6
    pos = FixedPositionalEmbedding(max_seq_len=20, d_model=d)
    out = pos(torch.zeros(2, 12, d, dtype=torch.float64))
    assert out.shape == (1, 12, d) and out.dtype == torch.float64
    for p in (0, 1, 5, 11):
        for k in range(d // 2):
            angle = p / 10000 ** (2 * k / d)
            assert out[0, p, 2 * k].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert out[0, p, 2 * k + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert list(pos.parameters()) == [] and pos.state_dict() == {}


def test_fixed_embedding_odd_width() -> None:
    out = FixedPositionalEmbedding(8, 5)(torch.zeros(1, 8, 5))
    assert out.shape == (1, 8, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize("axial_dims", [None, (3, 5)])
def test_axial_embedding_equals_explicit_outer_sum_or_concat(axial_dims) -> None:
    a, b, d = 3, 4, 8
    torch.manual_seed(0)
    pos = AxialPositionalEmbedding(d, axial_shape=(a, b), axial_dims=axial_dims)
    length = 10
    out = pos(torch.zeros(2, length, d))
    assert out.shape == (1, length, d)
    for p in range(length):
        row, col = divmod(p, b)  # p = row * b + col
        first, second = pos.w1[row, 0], pos.w2[0, col]
        expected = first + second if axial_dims is None else torch.cat([first, second])
        torch.testing.assert_close(out[0, p], expected)


def test_axial_full_length_and_gradients_reach_both_tables() -> None:
    pos = AxialPositionalEmbedding(4, axial_shape=(2, 3))
    out = pos(torch.zeros(1, 6, 4))
    assert out.shape == (1, 6, 4)
    out.pow(2).sum().backward()
    assert pos.w1.grad.abs().sum() > 0 and pos.w2.grad.abs().sum() > 0
    assert pos.max_seq_len == 6
    # parameters: a + b rows, not a * b
    assert sum(p.numel() for p in pos.parameters()) == (2 + 3) * 4


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: AbsolutePositionalEmbedding(0, 4), "max_seq_len"),
        (lambda: FixedPositionalEmbedding(8, 0), "d_model"),
        (lambda: AxialPositionalEmbedding(4, axial_shape=(2,)), "axial_shape"),
        (lambda: AxialPositionalEmbedding(4, axial_shape=(2, 0)), "axial_shape"),
        (lambda: AxialPositionalEmbedding(4, axial_shape=(2, 2), axial_dims=(1, 2)), "axial_dims"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(make, name: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        make()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "pos",
    [
        AbsolutePositionalEmbedding(4, 2),
        FixedPositionalEmbedding(4, 2),
        AxialPositionalEmbedding(2, axial_shape=(2, 2)),
    ],
)
def test_too_long_sequence_raises(pos) -> None:
    with pytest.raises(ValueError, match="sequence length 5") as info:
        pos(torch.zeros(1, 5, 2))
    assert "\n" not in str(info.value)

"""Tests of the kit's roofline helpers (repro.benchmarking.roofline): FLOPs counted as
FlopCounterMode counts them plus the in-place products it misses, a matmul rate, and the
profile's top operators, each against hand-computed numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from repro.benchmarking.roofline import count_flops, matmul_peak, top_ops


def test_count_flops_counts_products_and_the_in_place_ones():
    a, b = torch.ones(3, 4, 5), torch.ones(3, 5, 6)
    assert count_flops(lambda: a @ b) == 2 * 3 * 4 * 5 * 6
    acc = torch.zeros(3, 4, 6)
    # FlopCounterMode alone counts baddbmm but not baddbmm_ (the window backward's).
    assert count_flops(lambda: acc.baddbmm_(a, b)) == 2 * 3 * 4 * 5 * 6
    assert count_flops(lambda: torch.zeros(4, 6).addmm_(a[0], b[0])) == 2 * 4 * 5 * 6
    assert count_flops(lambda: a.exp().sum()) == 0  # elementwise work is not counted


def test_count_flops_covers_sdpa_on_the_cpu_forward_and_backward():
    q = torch.randn(1, 2, 32, 8, requires_grad=True)
    forward = count_flops(lambda: F.scaled_dot_product_attention(q, q, q))
    assert forward == 2 * (2 * 2 * 32 * 32 * 8)  # q k^T and p v
    both = count_flops(lambda: F.scaled_dot_product_attention(q, q, q).sum().backward())
    assert both > forward


def test_matmul_peak_is_the_median_rate_of_the_timed_products():
    peak = matmul_peak(threads=1, size=128, repeats=5)
    assert peak["threads"] == 1 and len(peak["samples_s"]) == 5
    times = sorted(peak["samples_s"])
    assert peak["flops_per_s"] == pytest.approx(2 * 128**3 / times[2])
    assert peak["best_flops_per_s"] == pytest.approx(2 * 128**3 / times[0])


def test_top_ops_lists_operators_by_their_share_of_the_profile():
    a = torch.randn(256, 256)

    def step():
        for _ in range(3):
            a @ a
        a.exp()

    profile = top_ops(step, n=2)
    ops = profile["ops"]
    assert len(ops) == 2 and ops[0]["name"] == "aten::mm" and ops[0]["calls"] == 3
    assert ops[0]["self_s"] >= ops[1]["self_s"] and 0 < ops[0]["share"] <= 1
    assert ops[0]["share"] == pytest.approx(ops[0]["self_s"] / profile["total_s"])

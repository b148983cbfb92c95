"""The Reformer benchmark's roofline, flat-cost and peer-decision logic (reformer.benchmarks):
targets decided from hand-made measurements, the note that names where the time goes when a
target is missed, the cells not run because their outcome is settled, and the peers hashing
into the same number of buckets as ours."""

from __future__ import annotations

import pytest
import torch

from reformer.benchmarks.attention_targets import (
    flat_cost_cell,
    target_flat_cost,
    target_lsh_vs_peers,
    target_roofline,
    worst_roofline_cell,
)
from reformer.benchmarks.defaults import DEFAULTS
from reformer.benchmarks.roofline import pooled_peak
from reformer.benchmarks.sections import _skip_reason
from reformer.benchmarks.speed import attention_buckets, attention_step
from reformer.benchmarks.targets import compute_targets
from reformer.benchmarks.views import derived

T = dict(DEFAULTS["targets"])


def _lsh(r, length, seconds, fraction=None, tokens=8192, impl="lsh"):
    entry = {"implementation": impl, "n_hashes": r, "length": length, "status": "ok"}
    entry.update(tokens=tokens, batch=max(1, tokens // length))
    entry.update(time_s={"median": seconds, "min": seconds}, peak_rss_bytes={"median": 1.0})
    if fraction is not None:
        entry.update(flops=int(fraction * 1e9 * seconds), flops_per_s=fraction * 1e9)
        entry["peak_fraction"] = fraction
    return entry


def test_roofline_target_is_the_worst_fraction_from_its_length_on():
    attention = {
        "matmul_peak": {"flops_per_s": 1e9},
        "results": [
            _lsh(8, 2048, 1.0, 0.1),  # below roofline_min_length (4096): not judged
            _lsh(1, 4096, 1.0, 0.6),
            _lsh(8, 4096, 1.0, 0.35),
            _lsh(4, 8192, 1.0, 0.45),
        ],
    }
    out = target_roofline(attention, T)
    assert out["worst_fraction"] == pytest.approx(0.35) and out["passed"] is False
    assert [e["passed"] for e in out["entries"]] == [True, False, True]
    cell = worst_roofline_cell(attention, T)
    assert (cell["length"], cell["n_hashes"]) == (4096, 8)
    attention["results"][2]["peak_fraction"] = 0.5
    assert target_roofline(attention, T)["passed"] and worst_roofline_cell(attention, T) is None


def test_flat_cost_compares_time_per_token_at_the_longest_and_shortest_length():
    cells = [
        _lsh(1, 1024, 0.1, tokens=8192),
        _lsh(1, 8192, 0.2, tokens=8192),  # in between: not part of the ratio
        _lsh(1, 65536, 0.96, tokens=65536),  # 0.96 / 65536 over 0.1 / 8192 = 1.2
        _lsh(2, 65536, 9.0, tokens=65536),
    ]
    out = target_flat_cost({"results": cells}, T)
    assert out["lengths"] == [1024, 65536] and out["ratio"] == pytest.approx(1.2)
    assert out["passed"] is True and flat_cost_cell({"results": cells}, T) is None
    cells[2]["time_s"]["median"] = 1.2  # 1.5x the cost per token
    assert target_flat_cost({"results": cells}, T)["passed"] is False
    assert flat_cost_cell({"results": cells}, T)["length"] == 65536


def test_a_missed_target_names_the_top_operators_of_its_profile():
    results = [_lsh(8, 4096, 1.0, 0.2), _lsh(1, 1024, 0.1), _lsh(1, 4096, 0.1)]
    profile = {
        "length": 4096,
        "n_hashes": 8,
        "profile": {
            "total_s": 1.0,
            "ops": [
                {"name": "aten::bmm", "self_s": 0.4, "share": 0.4, "calls": 9},
                {"name": "aten::eq", "self_s": 0.2, "share": 0.2, "calls": 32},
            ],
        },
    }
    report = {
        "attention": {
            "settings": {"cap_s": 45.0},
            "matmul_peak": {"flops_per_s": 1e9},
            "results": results,
            "profiles": {"lsh_roofline": profile},
        }
    }
    rows = {r.name: r for r in compute_targets(report, T)}
    assert rows["lsh_roofline"].met is False
    assert rows["lsh_roofline"].note == "profile of LSH-8 at 4096: aten::bmm 40%, aten::eq 20%"
    assert rows["lsh1_flat_cost"].met is True and rows["lsh1_flat_cost"].note is None


def test_peers_over_their_cap_are_skipped_and_bounded_by_the_prediction():
    config = {"targets": T}
    prev = _lsh(4, 32768, 8.0, tokens=32768, impl="reformer_pytorch")
    entry = {"implementation": "reformer_pytorch", "n_hashes": 4, "length": 65536}
    entry.update(tokens=65536)
    reason = _skip_reason(entry, prev, {}, config, cap=45.0, peer_cap=12.0)
    assert reason == "> time cap (predicted 16 s > 12 s)" and entry["predicted_s"] == 16.0
    ours = dict(_lsh(4, 32768, 5.0, tokens=32768), length=65536)
    # ours is held to the longer cap: 10 s predicted is run
    assert _skip_reason(ours, _lsh(4, 32768, 5.0), {}, config, cap=45.0, peer_cap=12.0) is None
    skipped = dict(entry, status="skipped", reason=reason)
    attention = {
        "settings": {"cap_s": 45.0, "peer_cap_s": 12.0},
        "results": [dict(_lsh(4, 65536, 4.0, tokens=65536)), skipped],
    }
    row = target_lsh_vs_peers(attention, T)["entries"][0]
    assert row["speedup_lower_bound"] == pytest.approx(16.0 / 4.0) and row["passed"] is True
    # the next length is skipped too, its prediction grown with the tokens
    later = {"implementation": "reformer_pytorch", "n_hashes": 4, "length": 131072}
    later.update(tokens=131072)
    assert "at a shorter length" in _skip_reason(later, skipped, {}, config, 45.0, 12.0)
    assert later["predicted_s"] == pytest.approx(32.0)


def test_the_matmul_peak_pools_the_samples_of_both_measurements():
    peaks = [
        {"size": 10, "threads": 2, "samples_s": [1.0, 3.0]},
        {"size": 10, "threads": 2, "samples_s": [2.0]},
    ]
    pooled = pooled_peak(peaks)
    assert pooled["flops_per_s"] == pytest.approx(2000 / 2.0)
    assert pooled["best_flops_per_s"] == pytest.approx(2000 / 1.0)
    assert pooled["spread"] == pytest.approx((3.0 - 1.0) / 2.0)


def test_the_roofline_curve_takes_the_faster_peers_fraction():
    results = [
        _lsh(1, 4096, 1.0, 0.5),
        _lsh(1, 4096, 2.0, 0.2, impl="reformer_pytorch"),
        _lsh(1, 4096, 3.0, 0.3, impl="hf_transformers"),
    ]
    settings = {"lengths": [4096], "tokens_per_step": 8192, "n_hashes": [1]}
    curve = derived({"attention": {"settings": settings, "results": results}})
    assert curve["attention_roofline"]["series"] == {
        "full": [None],
        "lsh1": [0.5],
        "peer1": [0.3],
    }
    assert curve["peer_table"][0]["of peak"] == 0.5


def test_attention_step_counts_the_flops_of_one_step():
    torch.manual_seed(0)
    timing = {"warmup": 1, "repeats": 1, "memory": False}
    out = attention_step("lsh", 256, 1, 32, 2, 16, 2, threads=1, timing=timing)
    l, d, h, m, r = 256, 16, 2, 16, 2
    rows, chunks = l * h, l * h * r // m  # (batch 1) x length x heads; chunks of all rounds
    # projections: 3 linears, a forward and two backward products each
    projections = 3 * 3 * 2 * l * 32 * 32
    # attention, per round and row: 6 products over the 2m-key window (scores, p v; d scores,
    # d keys, d values, d queries), less the chunk-after halves of d keys and d values that
    # the very last chunk does not have
    attention = r * rows * 6 * 2 * (2 * m) * d - 2 * (2 * m * m * d)
    hashing = 2 * l * h * r * d * (attention_buckets(l, m) // 2)  # forward only
    # row dots that einsum computes as batched products, all in backward: the keys'
    # normalisation (k . dk, every slot) and the rounds' weights (g . o_r, every slot, and
    # g . y, every row); the rounds' weighted sum itself is elementwise
    row_dots = 2 * (rows * r) * d + 2 * (rows * r) * d + 2 * rows * d
    assert chunks == 64
    assert out["flops"] == projections + attention + hashing + row_dots
    assert out["n_buckets"] == 32


def test_a_profiled_step_lists_its_top_operators_instead_of_measuring():
    out = attention_step("lsh", 256, 1, 32, 2, 16, 2, threads=1, profile=3)
    assert set(out) == {"profile"}
    ops = out["profile"]["ops"]
    assert len(ops) == 3 and ops[0]["self_s"] >= ops[1]["self_s"] >= ops[2]["self_s"]
    assert 0 < sum(o["share"] for o in ops) <= 1 + 1e-9


def test_reformer_pytorch_hashes_into_our_number_of_buckets():
    pytest.importorskip("reformer_pytorch")
    from reformer.benchmarks import peers

    layer, fn = peers.attention("reformer_pytorch", 256, 32, 2, 16, 2)  # 2 x 256 / 16 = 32
    seen = []
    patched = layer.lsh_attn.hash_vectors

    def spy(n, vecs, **kw):
        buckets = patched(n, vecs, **kw)
        seen.append((n, int(buckets.max())))
        return buckets

    layer.lsh_attn.hash_vectors = spy
    assert fn(torch.randn(1, 256, 32)).shape == (1, 256, 32)
    # it asks for length / bucket_size = 16; two rounds of 32 buckets come back
    assert seen[0][0] == 16 and 32 <= seen[0][1] < 64
    with pytest.raises(ValueError, match="n_buckets=24 must be a multiple"):
        peers.same_buckets(layer, 256, 16, 24)

"""Tests of the kit's measurement helpers (repro.benchmarking): summaries, repeats,
contention, peak RSS, isolated runs and pooling, checked against hand-computed values."""

from __future__ import annotations

import pytest

from repro.benchmarking import (
    PeakRSS,
    is_out_of_memory,
    measure_steps,
    pool_measurements,
    run_isolated,
    summarize,
)

# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("samples", "median", "lo", "hi"),
    [
        ([5.0], 5.0, 5.0, 5.0),
        ([3.0, 1.0, 2.0], 2.0, 1.0, 3.0),
        ([4.0, 1.0, 3.0, 2.0], 2.5, 1.0, 4.0),  # even count: mean of the middle two
        ([0.2, 0.1, 0.4, 0.3, 10.0], 0.3, 0.1, 10.0),  # an outlier moves only the max
    ],
)
def test_summarize_matches_hand_computed(samples, median, lo, hi):
    s = summarize(samples)
    assert s["median"] == pytest.approx(median)
    assert (s["min"], s["max"], s["n"]) == (lo, hi, len(samples))
    assert s["samples"] == samples


def test_summarize_rejects_empty():
    with pytest.raises(ValueError, match="samples"):
        summarize([])


def test_measure_steps_uses_uncontended_samples_and_counts_steps():
    calls = []
    result = measure_steps(lambda: calls.append(1), warmup=2, repeats=3, memory=False)
    # two warm-up steps, one untimed steady-state step, then the samples
    assert len(calls) == 2 + 1 + result["n_samples"]
    assert result["warmup_s"] and len(result["warmup_s"]) == 2
    used = [s["wall"] for s in result["samples"] if not s["contended"]] or [
        s["wall"] for s in result["samples"]
    ]
    assert result["time_s"]["median"] == pytest.approx(summarize(used)["median"])
    assert result["time_s"]["min"] == min(used) and result["time_s"]["max"] == max(used)


def test_measure_steps_grows_the_heap_untimed_before_a_long_steps_samples():
    import time

    calls = []

    def step():
        calls.append(1)
        time.sleep(0.03)

    result = measure_steps(step, repeats=2, max_repeats=2, long_step_s=0.01, memory=True)
    # one warm-up step (its peak is the memory sample), one untimed steady-state step, then
    # the samples: the first sample does not pay for the heap's regrowth
    assert result["memory_first_step"]
    assert len(calls) == 1 + 1 + result["n_samples"]
    assert not any(s["first_step"] for s in result["samples"])


@pytest.mark.parametrize(
    ("bound", "decided"), [("decide_below_s", True), ("decide_above_s", False)]
)
def test_measure_steps_stops_once_the_comparison_is_decided(bound, decided):
    # every sample of an instant step lies below 10 s: decided below, never above
    result = measure_steps(lambda: None, repeats=6, memory=False, **{bound: 10.0})
    assert result["decided"] is decided
    if decided:
        assert result["n_samples"] == 1
    else:  # all 6 wanted uncontended samples: a sample another process disturbed is extra
        assert result["n_samples"] - result["n_contended"] == 6 and result["n_samples"] <= 12


def test_measure_steps_keeps_a_long_warmup_and_stops_at_the_cap():
    import time

    result = measure_steps(
        lambda: time.sleep(0.05), repeats=3, cap_s=0.01, long_step_s=0.02, memory=False
    )
    assert result["over_cap"] and result["n_samples"] == 1
    assert result["samples"][0]["first_step"]
    assert result["time_s"]["median"] >= 0.05


def test_peak_rss_sees_a_written_buffer():
    with PeakRSS() as mem:
        buffer = bytearray(b"\1" * (96 * 2**20))
    del buffer
    assert mem.delta >= 80 * 2**20
    assert mem.peak >= mem.baseline + mem.delta - 1


def test_run_isolated_reports_errors_and_memory_failures():
    out = run_isolated(summarize, {"samples": []}, timeout_s=60)
    assert out["status"] == "error" and "samples" in out["reason"]
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: 1 GB"))


# ----------------------------------------------------------------------------- pooling


def _process(walls, contended=(), peak=None, over_cap=False):
    samples = [{"wall": w, "cpu": 2 * w, "contended": i in contended} for i, w in enumerate(walls)]
    return {
        "status": "ok",
        "samples": samples,
        "n_contended": len(contended),
        "n_samples": len(walls),
        "warmup_s": [9.0],
        "quiet_waited_s": 0.25,
        "over_cap": over_cap,
        "peak_rss_bytes": None if peak is None else {"samples": peak},
        "saved_bytes": 123,
    }


def test_pool_measurements_pools_uncontended_samples_of_every_process():
    pooled = pool_measurements(
        [_process([0.3, 0.1, 5.0], contended={2}, peak=[10.0]), _process([0.2, 0.4], peak=[30.0])]
    )
    # Uncontended walls 0.3, 0.1, 0.2, 0.4: median (0.2 + 0.3) / 2.
    assert pooled["time_s"]["median"] == pytest.approx(0.25)
    assert (pooled["time_s"]["min"], pooled["time_s"]["max"]) == (0.1, 0.4)
    assert pooled["cpu_s"]["median"] == pytest.approx(0.5)
    assert pooled["peak_rss_bytes"]["median"] == 20.0 and pooled["peak_rss_bytes"]["max"] == 30.0
    assert (pooled["n_samples"], pooled["n_contended"], pooled["processes"]) == (5, 1, 2)
    assert pooled["warmup_s"] == [9.0, 9.0] and pooled["quiet_waited_s"] == 0.5
    assert pooled["saved_bytes"] == 123 and not pooled["over_cap"]
    # Every sample contended: all of them count.
    every = pool_measurements([_process([1.0, 3.0], contended={0, 1})])
    assert every["time_s"]["median"] == 2.0 and every["peak_rss_bytes"] is None
    with pytest.raises(ValueError, match="results"):
        pool_measurements([])


def _fake_walls(monkeypatch, walls):
    """Timed samples of the given durations, uncontended, without running anything."""
    from repro.benchmarking import measurement

    left = list(walls)
    monkeypatch.setattr(
        measurement,
        "_timed",
        lambda step: {"wall": left.pop(0), "cpu": 0.0, "foreign": 0.0, "contended": False},
    )
    return left


def test_measure_steps_stops_once_the_samples_lie_within_the_spread(monkeypatch):
    left = _fake_walls(monkeypatch, [1.0, 1.04, 0.98, 9.0, 9.0])
    result = measure_steps(lambda: None, repeats=7, memory=False, stop_spread=0.08)
    # (1.04 - 0.98) / 1.0 = 0.06 <= 0.08 after three samples: the fourth is never taken
    assert result["stopped"] == "spread" and result["n_samples"] == 3 and len(left) == 2
    assert result["time_s"]["median"] == 1.0 and result["decided"] is False


def test_measure_steps_keeps_sampling_while_the_spread_is_wide(monkeypatch):
    _fake_walls(monkeypatch, [1.0, 2.0, 1.0, 2.0, 1.0])
    result = measure_steps(lambda: None, repeats=5, memory=False, stop_spread=0.08, budget_s=99)
    assert result["stopped"] == "repeats" and result["n_samples"] == 5


def test_measure_steps_stops_once_every_sample_is_above_the_deciding_time(monkeypatch):
    _fake_walls(monkeypatch, [3.0, 9.0])
    decided = measure_steps(lambda: None, repeats=7, memory=False, decide_above_s=2.5)
    assert decided["stopped"] == "decided" and decided["decided"] and decided["n_samples"] == 1
    # one sample below the deciding time: nothing is decided, the repeats go on
    _fake_walls(monkeypatch, [2.0, 3.0, 3.0])
    open_ = measure_steps(lambda: None, repeats=3, memory=False, decide_above_s=2.5, budget_s=99)
    assert open_["stopped"] == "repeats" and not open_["decided"] and open_["n_samples"] == 3
    pooled = pool_measurements([dict(decided), dict(open_)])
    assert pooled["decided"] is False

"""Tests of the Reformer's benchmark targets, report views and settings
(reformer.benchmarks): each target follows from hand-made measurements, and the settings
reject unknown or bad keys with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reformer.benchmarks import WORKLOADS
from reformer.benchmarks.attention_targets import target_lsh_vs_peers
from reformer.benchmarks.defaults import DEFAULTS, GPU_DEFAULTS, GPU_QUICK, QUICK, SMALL
from reformer.benchmarks.longest import projected_length
from reformer.benchmarks.targets import compute_targets, target_depth, target_tokens
from reformer.benchmarks.views import derived
from repro.benchmarking import load_config
from repro.benchmarking.sweep import merge
from repro.benchmarking.workloads import load_workloads

REPO = Path(__file__).resolve().parents[3]


def _fit(length: int, peak: float) -> dict:
    return {"status": "ok", "fits": True, "length": length, "peak_rss_bytes": peak}


def test_projected_length_follows_the_power_law():
    # Peak x4 per doubling is k = 2; 16e9 / 4e9 = 4 more memory is sqrt(4) = 2x the length.
    tries = [_fit(1000, 1e9), _fit(2000, 4e9), {"status": "timeout", "length": 4000}]
    assert projected_length(tries, int(16e9)) == pytest.approx(4000, abs=1)
    # Linear growth: 4x the memory is 4x the length.
    assert projected_length([_fit(1000, 1e9), _fit(2000, 2e9)], int(8e9)) == pytest.approx(
        8000, abs=1
    )


@pytest.mark.parametrize(
    "tries",
    [
        [_fit(1000, 1e9)],  # one point
        [_fit(1000, 2e9), _fit(2000, 1e9)],  # peak fell
        [_fit(512, 0.2900e9), _fit(1024, 0.2901e9)],  # fixed cost only: once overflowed
        [_fit(1000, 1e9), _fit(2000, 17e9)],  # already past the limit
    ],
)
def test_projected_length_is_none_when_the_points_say_nothing(tries):
    assert projected_length(tries, int(16e9)) is None


def _att(impl, r, length, t, mem=100.0):
    return {
        "implementation": impl,
        "n_hashes": r,
        "length": length,
        "status": "ok",
        "time_s": {"median": t, "min": t},
        "peak_rss_bytes": {"median": mem},
    }


def test_peer_target_uses_the_faster_peer_and_memory():
    t = dict(DEFAULTS["targets"], memory_slack_mb=0.0, peer_speedup=1.5)
    attention = {
        "settings": {"cap_s": 10.0},
        "results": [
            _att("lsh", 1, 1024, 9.0),  # below peer_min_length: not judged
            _att("lsh", 1, 2048, 1.0, mem=50),
            _att("reformer_pytorch", 1, 2048, 3.0),
            _att("hf_transformers", 1, 2048, 2.0),  # the faster peer: speedup 2.0
            _att("lsh", 2, 2048, 1.0, mem=500),  # 2x faster but more memory
            _att("reformer_pytorch", 2, 2048, 2.0, mem=400),
            {
                "implementation": "hf_transformers",
                "n_hashes": 2,
                "length": 2048,
                "status": "skipped",
                "reason": "peers disabled",
            },
        ],
    }
    out = target_lsh_vs_peers(attention, t)
    rows = {(e["length"], e["n_hashes"]): e for e in out["entries"]}
    assert set(rows) == {(2048, 1), (2048, 2)}
    assert rows[2048, 1]["peer"] == "hf_transformers"
    assert rows[2048, 1]["speedup"] == pytest.approx(2.0) and rows[2048, 1]["passed"]
    assert rows[2048, 2]["memory_ok"] is False and rows[2048, 2]["passed"] is False
    assert out["passed"] is False and out["worst_speedup"] == pytest.approx(2.0)


def test_peer_target_passes_a_cell_where_every_peer_ran_out_of_memory():
    t = dict(DEFAULTS["targets"], memory_slack_mb=0.0)

    def oom(impl):
        return {
            "implementation": impl,
            "n_hashes": 8,
            "length": 65536,
            "status": "out of memory",
            "reason": "RuntimeError: can't allocate memory",
        }

    results = [
        _att("lsh", 8, 65536, 20.0, mem=3e9),
        oom("reformer_pytorch"),
        oom("hf_transformers"),
        _att("lsh", 4, 65536, 8.0),
        oom("reformer_pytorch") | {"n_hashes": 4},
        {"implementation": "hf_transformers", "n_hashes": 4, "length": 65536, "status": "error"},
    ]
    out = target_lsh_vs_peers({"settings": {"cap_s": 45.0}, "results": results}, t)
    rows = {e["n_hashes"]: e for e in out["entries"]}
    assert rows[8]["peer"] == "(out of memory)" and rows[8]["passed"] is True
    assert rows[8]["ours_peak_bytes"] == 3e9 and "speedup" not in rows[8]
    # One peer failed for another reason: nothing is shown for that cell.
    assert rows[4]["passed"] is None and rows[4]["reason"] == "no peer measured"
    assert out["passed"] is True
    views = derived(
        {
            "attention": {
                "settings": {"lengths": [65536], "tokens_per_step": 65536, "n_hashes": [8, 4]},
                "results": [dict(r, tokens=65536) for r in results],
            }
        }
    )
    assert views["peer_table"] == [
        {
            "length": 65536,
            "rounds": 8,
            "ours (s)": 20.0,
            "reformer-pytorch (s)": "out of memory",
            "HF transformers (s)": "out of memory",
            "speedup": "—",
            "of peak": None,
        }
    ]


def test_report_views_scale_to_fixed_tokens_and_pick_the_faster_peer():
    def att(impl, r, length, t, tokens):
        return dict(_att(impl, r, length, t), tokens=tokens)

    report = {
        "attention": {
            "settings": {"lengths": [1024, 4096], "tokens_per_step": 2048, "n_hashes": [1]},
            "results": [
                att("full", None, 1024, 0.5, 2048),
                {"implementation": "full", "length": 4096, "status": "skipped"},
                att("lsh", 1, 1024, 0.2, 2048),
                att("lsh", 1, 4096, 0.8, 4096),  # one sequence of 4096 > 2048 tokens
                att("reformer_pytorch", 1, 4096, 2.0, 4096),
                att("hf_transformers", 1, 4096, 1.2, 4096),
            ],
        },
        "depth": {
            "settings": {"layers": [2, 12]},
            "results": [
                {"model": m, "n_layers": k, "status": "ok", "peak_rss_bytes": {"median": b}}
                for m, k, b in [
                    ("reformer", 2, 100e6),
                    ("reformer", 12, 110e6),
                    ("transformer", 2, 100e6),
                    ("transformer", 12, 500e6),
                ]
            ],
        },
    }
    views = derived(report)
    series = views["attention_time"]["series"]
    assert series["full"] == [0.5, None]
    assert series["lsh1"] == pytest.approx([0.2, 0.4])  # 0.8 s for 4096 tokens -> 2048
    assert views["depth_memory"]["series"] == {"reversible": [100, 110], "transformer": [100, 500]}
    (row,) = views["peer_table"]  # 1024 has no peer measurement
    assert row["length"] == 4096 and row["speedup"] == pytest.approx(1.2 / 0.8, abs=0.01)


def test_depth_and_tokens_targets_follow_the_ratios():
    t = DEFAULTS["targets"]
    depth = {
        "settings": {"layers": [2, 6, 12]},
        "results": [
            {
                "model": "reformer",
                "n_layers": 2,
                "status": "ok",
                "saved_bytes": 10,
                "peak_rss_bytes": {"median": 100.0},
            },
            {
                "model": "reformer",
                "n_layers": 12,
                "status": "ok",
                "saved_bytes": 10,
                "peak_rss_bytes": {"median": 125.0},
            },
        ],
    }
    out = target_depth(depth, t)
    assert out["ratio"] == pytest.approx(1.25) and out["passed"] is False
    assert out["reformer"]["saved_bytes_ratio"] == pytest.approx(1.0)
    lm = {
        "results": [
            {
                "implementation": "ours",
                "length": 16384,
                "status": "ok",
                "tokens_per_s": {"median": 300.0},
            },
            {
                "implementation": "reformer_pytorch",
                "length": 16384,
                "status": "ok",
                "tokens_per_s": {"median": 100.0},
            },
            {
                "implementation": "hf_transformers",
                "length": 16384,
                "status": "ok",
                "tokens_per_s": {"median": 150.0},
            },
        ]
    }
    out = target_tokens(lm, t)
    assert out["peer"] == "hf_transformers" and out["ratio"] == pytest.approx(2.0)
    assert out["passed"] is True


@pytest.mark.parametrize(
    "path", ["params.yaml", "configs/smoke.yaml", "configs/default.yaml", "configs/paper.yaml"]
)
def test_every_profile_block_loads_over_the_one_set_of_defaults(path):
    # The defaults live in reformer/benchmarks/defaults.py only; a profile's block overrides
    # known keys, and quick mode replaces the shapes by QUICK.
    block = yaml.safe_load((REPO / path).read_text()).get("benchmark") or {}
    assert merge(DEFAULTS, DEFAULTS) == DEFAULTS and set(block) <= set(DEFAULTS)
    config = load_config(WORKLOADS, block)
    base = merge(DEFAULTS, block)
    if base["mode"] == "small":  # the mode's settings, then the block's own over them
        base = dict(merge(merge(base, SMALL), block), mode="small")
    expected = dict(merge(base, QUICK), quick=True) if base["quick"] else base
    assert config == expected and set(config) == set(DEFAULTS)
    assert load_workloads(REPO / path)[1] == (block or None)


def test_the_gpu_quick_shapes_are_the_cpu_sweeps():
    assert GPU_QUICK["longest"] == QUICK["longest"]
    cpu_only = ("processes", "peer_cap_s", "peak_size")  # the pooling, peers and roofline
    assert GPU_QUICK["attention"] == {
        k: v for k, v in QUICK["attention"].items() if k not in cpu_only
    }
    assert set(GPU_DEFAULTS) == {"seed", "repeats", "attention", "longest", "utilisation"}


def _config_from(params: Path) -> dict:
    """The settings as pipelines/benchmark.py loads them from a params file."""
    workloads, block = load_workloads(params)
    return load_config(workloads, block)


def test_unknown_params_key_is_a_one_line_error(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("benchmark:\n  atention: {}\n")
    with pytest.raises(ValueError, match="did you mean 'attention'"):
        _config_from(params)


@pytest.mark.parametrize(
    ("setting", "name"),
    [
        ("attention:\n    processes: 0", "benchmark.attention.processes=0"),
        ("attention:\n    pool_below_s: -1", "pool_below_s=-1"),
        ("lm:\n    factorise_above: 2", "benchmark.lm.factorise_above=2"),
        ("attention:\n    factorise_above: many", "benchmark.attention.factorise_above='many'"),
        ("longest:\n    allocator: jemalloc", "benchmark.longest.allocator='jemalloc'"),
    ],
)
def test_bad_pooling_setting_is_a_one_line_error(tmp_path, setting, name):
    params = tmp_path / "params.yaml"
    params.write_text(f"benchmark:\n  {setting}\n")
    with pytest.raises(ValueError, match=name) as error:
        _config_from(params)
    assert "\n" not in str(error.value)


def test_rows_carry_the_deciding_number_the_verdict_and_the_notes():
    t = dict(DEFAULTS["targets"], peer_min_length=4096, sdpa_from_length=4096)
    t.update(sdpa_speedup_length=4096)

    def oom(impl):
        return {"implementation": impl, "n_hashes": 8, "length": 4096, "status": "out of memory"}

    report = {
        "attention": {
            "settings": {"cap_s": 10.0},
            "results": [
                _att("lsh", 1, 4096, 1.0),
                {  # SDPA predicted at 40 s, over the 10 s cap: a bound of 40x only
                    "implementation": "full",
                    "n_hashes": None,
                    "length": 4096,
                    "status": "skipped",
                    "reason": "> time cap (predicted 40 s > 10 s)",
                    "predicted_s": 40.0,
                },
                _att("lsh", 8, 4096, 5.0),
                oom("reformer_pytorch"),
                oom("hf_transformers"),
            ],
        },
        "longest": {"settings": {"memory_limit_gb": 16.0}, "longest": 2048},
    }
    rows = {r.name: r for r in compute_targets(report, t)}
    assert list(rows) == [
        "lsh_roofline",
        "lsh_vs_peers",
        "lsh1_flat_cost",
        "lsh1_vs_sdpa",
        "longest_sequence",
    ]
    peers = rows["lsh_vs_peers"]
    assert (peers.required, peers.measured, peers.met) == (2.5, None, True)
    # No FLOPs or matmul peak in these results, and LSH-1 at one length only: undecided.
    assert (rows["lsh_roofline"].measured, rows["lsh_roofline"].met) == (None, None)
    assert (rows["lsh1_flat_cost"].measured, rows["lsh1_flat_cost"].met) == (None, None)
    assert peers.note == "1 cell(s) where every peer ran out of memory"
    assert peers.target == peers.details["description"] and peers.details["passed"] is True
    sdpa = rows["lsh1_vs_sdpa"]
    assert sdpa.details["entries"][0]["speedup_lower_bound"] == pytest.approx(40.0)
    assert (sdpa.required, sdpa.met) == (3.0, True)
    assert sdpa.note == "1 cell(s) unmeasured: baseline over the time cap"
    longest = rows["longest_sequence"]
    assert (longest.required, longest.measured, longest.met, longest.note) == (
        1000000,
        2048,
        False,
        None,
    )
    row = longest.row()
    assert set(row) == {"name", "target", "required", "measured", "met", "note", "details"}


@pytest.mark.parametrize(
    ("mode", "sections", "duration_s", "met"),
    [
        ("full", ("attention", "depth", "lm", "longest"), 1150.0, True),
        ("full", ("attention", "depth", "lm", "longest"), 1250.0, False),
        ("full", ("attention", "depth", "lm"), 600.0, None),  # longest not run: not judged
        ("small", ("attention", "depth", "lm", "longest"), 350.0, None),  # not a full sweep
    ],
)
def test_sweep_time_is_judged_for_a_full_sweep_only(mode, sections, duration_s, met):
    from reformer.benchmarks.targets import target_sweep_time

    report = {
        "mode": mode,
        "duration_s": duration_s,
        "machine": {"cpus_usable": 2},
        **{name: {"duration_s": duration_s / len(sections)} for name in sections},
    }
    check = target_sweep_time(report, {"sweep_minutes": 20.0})
    if met is None:
        assert check is None
        return
    assert check["value"] == pytest.approx(duration_s / 60)
    assert check["passed"] is met
    assert check["description"].endswith("<= 20 minutes on 2 cores")
    assert set(check["sections_s"]) == {"attention", "depth", "lm", "longest"}

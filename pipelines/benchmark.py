"""The `benchmark` stage: speed and memory of this library against the paper's claims and
the public implementations, all measured in one run so that the ratios are fair.

Sections (each configuration in a fresh process, see :mod:`repro.benchmarking`):

* ``attention``: one causal attention layer, forward + backward, against length at a fixed
  number of tokens per step (the paper's Figure 5): full attention (SDPA), this library's
  LSH attention with 1, 2, 4, 8 rounds, and the peers' LSH layers with the same rounds;
  time, peak RSS growth and saved-tensor bytes;
* ``depth``: one training step of the reversible ReformerLM and of the TransformerLM at
  several depths: saved-tensor bytes and peak RSS growth (the paper's Table 3);
* ``lm``: training tokens/s of a small reversible LSH-2 language model, this library's and
  the peers';
* ``longest``: the longest sequence whose training step (6 layers, d_model 256, LSH-1,
  reversible, chunked FF and loss, axial positions) fits in the memory budget, by doubling;
* ``targets``: the performance targets, each computed from the measurements above with a
  pass flag.

Usage::

    python pipelines/benchmark.py --params params.yaml            # the DVC stage
    python pipelines/benchmark.py --quick --out /tmp/bench.json   # tiny shapes, < 1 min
    python pipelines/benchmark.py --summary metrics/benchmark.json  # README table

Settings come from the ``benchmark:`` block of the params file where it has one, over the
defaults in :data:`DEFAULTS`; ``quick: true`` there (the smoke profile) or ``--quick``
replaces the shapes by :data:`QUICK`.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import difflib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` (workloads) and `reformer` from this checkout
    sys.path.insert(0, str(ROOT))

from repro.benchmarking import machine_info, pool_measurements, run_isolated  # noqa: E402

# ------------------------------------------------------------------------------ settings

DEFAULTS: dict[str, Any] = {
    "threads": 2,  # torch intra-op threads per configuration (the machine's cores)
    "seed": 0,
    "quick": False,  # tiny shapes (QUICK), one sample each: the smoke profile and the tests
    "peers": True,  # also measure reformer-pytorch and HF transformers where installed
    "sections": ["attention", "depth", "lm", "longest"],
    "memory_guard_gb": 12.0,  # a configuration may grow by at most this (protects the machine)
    "timing": {
        "warmup": 1,  # untimed steps first; the peak-RSS counter is reset after them
        # Medians of several samples: the peers' step times vary by up to 2x from sample to
        # sample on a shared 2-core machine, ours less.
        # Wanted uncontended timed samples: 7 keep a median steady at short steps, where a
        # slow first sample or two would move a median of 5.
        "repeats": 7,
        "min_repeats": 1,  # taken whatever the budget
        "max_repeats": 9,  # most samples, contended ones included
        "budget_s": 8.0,  # timed samples stop once this is spent (after min_repeats)
        "long_step_s": 1.5,  # a warm-up step longer than this is kept as the first sample
        # Before each sample, wait up to quiet_wait_s for other processes to leave the CPU
        # idle; all waits of the stage together stop at quiet_budget_s.
        "quiet_wait_s": 3.0,
        "quiet_budget_s": 120.0,
    },
    "attention": {
        "lengths": [1024, 2048, 4096, 8192, 16384, 32768, 65536],
        "tokens_per_step": 8192,  # batch = max(1, tokens_per_step // length)
        "d_model": 256,
        "n_heads": 4,
        "bucket_size": 64,
        "n_hashes": [1, 2, 4, 8],
        # A step measured or predicted over cap_s is not run at longer lengths (SDPA always
        # runs up to targets.sdpa_speedup_length, which a target needs).
        # 45 s lets the peers run wherever ours does (up to ~42 s: 65536 with 8 rounds), so
        # the speed target is measured in every cell rather than bounded.
        "cap_s": 45.0,
        # A configuration whose step takes under pool_below_s is measured in this many
        # processes and their samples pooled: on a shared machine one process can run 20%
        # fast or slow as a whole, which would decide a short step's median alone. Three
        # (not two) because the 1.5x peer target at 2048 tokens sat within that noise.
        "processes": 3,
        "pool_below_s": 2.0,
    },
    "depth": {
        "layers": [2, 6, 12],
        "length": 1024,
        "batch": 8,
        "vocab_size": 256,
        "d_model": 256,
        "n_heads": 4,
        "d_ff": 1024,
        "bucket_size": 64,
        "n_hashes": 2,
        "repeats": 1,  # timed samples
        "memory_repeats": 2,  # memory samples, after a separate warm-up step
        "budget_s": 4.0,
        "long_step_s": None,
    },
    "lm": {
        "lengths": [4096, 16384],
        "tokens_per_step": 16384,
        "vocab_size": 256,
        "d_model": 256,
        "n_layers": 2,
        "n_heads": 4,
        "d_ff": 512,
        "bucket_size": 64,
        "n_hashes": 2,
        "repeats": 2,  # the first step counts as a sample when it takes over long_step_s
        "memory_repeats": 1,
        "budget_s": 30.0,
        "long_step_s": 1.5,
    },
    "longest": {
        "start": 16384,
        "max_length": 2097152,
        "memory_limit_gb": 16.0,  # decimal GB: 16e9 bytes of process RSS, libraries included
        # A try that takes longer is stopped (it counts as not fitting), and one predicted
        # to (2.2x the last) is not started: on 2 cores time, not memory, may end the search.
        # 1,048,576 tokens took 611-771 s on 2 cores (12.8-13.2 GB peak); a try predicted
        # over the cap (2,097,152) is not started.
        "cap_s": 1200.0,
        "vocab_size": 256,
        "d_model": 256,
        "n_layers": 6,
        "n_heads": 4,
        "d_ff": 512,
        "bucket_size": 64,
        "n_hashes": 1,
        "chunk_tokens": 16384,
        # More buckets than this: two factors (reformer/benchmarks/longest.py), so hashing stays
        # linear in the length.
        "factorise_above": 1024,
        "head_chunks": 4,  # heads in groups, forward and backward: one group's buffers at a time
    },
    "targets": {
        "peer_speedup": 1.5,  # our LSH vs the faster peer, fwd+bwd, every length >= ...
        "peer_min_length": 2048,
        "memory_slack_mb": 1.0,  # "no higher" allows this much page-level noise
        "sdpa_from_length": 4096,  # LSH-1 faster than SDPA from this length on
        "sdpa_speedup_length": 16384,
        "sdpa_speedup": 3.0,
        "depth_ratio": 1.2,  # reversible: memory at the most layers / at the fewest
        "tokens_speedup": 1.5,  # training tokens/s vs the faster peer at ...
        "tokens_length": 16384,
        "longest_tokens": 1000000,
    },
}

# --quick: tiny shapes, one sample each; every section still runs, targets included.
QUICK: dict[str, Any] = {
    "timing": {
        "repeats": 1,
        "max_repeats": 1,
        "budget_s": 1.0,
        "long_step_s": None,
        "quiet_wait_s": 0.0,
    },
    "attention": {
        "lengths": [128, 256],
        "tokens_per_step": 512,
        "d_model": 32,
        "n_heads": 2,
        "bucket_size": 16,
        "n_hashes": [1, 2],
        "cap_s": 10.0,
        "processes": 2,
    },
    "depth": {
        "layers": [1, 2],
        "length": 256,
        "batch": 8,
        "d_model": 64,
        "n_heads": 2,
        "d_ff": 128,
        "bucket_size": 16,
        "repeats": 1,
        "budget_s": 1.0,
    },
    "lm": {
        "lengths": [256],
        "tokens_per_step": 256,
        "d_model": 32,
        "n_layers": 1,
        "n_heads": 2,
        "d_ff": 64,
        "bucket_size": 16,
        "repeats": 1,
        "budget_s": 1.0,
        "long_step_s": None,
    },
    "longest": {
        "start": 512,
        "max_length": 1024,
        "cap_s": 60.0,
        "d_model": 32,
        "n_layers": 2,
        "n_heads": 2,
        "d_ff": 64,
        "bucket_size": 16,
        "chunk_tokens": 256,
        "head_chunks": 2,
    },
    "targets": {
        "peer_min_length": 128,
        "sdpa_from_length": 128,
        "sdpa_speedup_length": 256,
        "tokens_length": 256,
        "longest_tokens": 1024,
    },
}

PEER_NAMES = ("reformer_pytorch", "hf_transformers")
SECTIONS = ("attention", "depth", "lm", "longest")
PRELOAD = ["torch", "reformer", "reformer.benchmarks.speed", "reformer.benchmarks.longest"]


def _merge(base: dict[str, Any], override: dict[str, Any], where: str = "benchmark") -> dict:
    """``base`` updated by ``override`` recursively; unknown keys are an error."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in base:
            close = difflib.get_close_matches(key, list(base), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{where}.{key}={value!r} is not allowed: unknown key{hint}; "
                f"known keys: {', '.join(sorted(base))}"
            )
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{key}={value!r} is not allowed: expected a mapping")
            out[key] = _merge(base[key], value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def load_config(params: str | None, quick: bool = False) -> dict[str, Any]:
    """The effective settings: defaults, then the params file's ``benchmark:`` block, then
    the quick shapes when ``quick``."""
    config = copy.deepcopy(DEFAULTS)
    if params and Path(params).exists():
        import yaml

        block = (yaml.safe_load(Path(params).read_text()) or {}).get("benchmark") or {}
        config = _merge(config, block)
    if quick or config["quick"]:
        config = _merge(config, QUICK)
        config["quick"] = True
    for section in config["sections"]:
        if section not in SECTIONS:
            raise ValueError(
                f"benchmark.sections entry {section!r} is not allowed: use {list(SECTIONS)}"
            )
    if int(config["threads"]) < 1:
        raise ValueError(f"benchmark.threads={config['threads']} is not allowed: must be >= 1")
    attention = config["attention"]
    if int(attention["processes"]) < 1:
        raise ValueError(
            f"benchmark.attention.processes={attention['processes']} is not allowed: must be >= 1"
        )
    if float(attention["pool_below_s"]) < 0:
        raise ValueError(
            f"benchmark.attention.pool_below_s={attention['pool_below_s']} is not allowed: "
            "must be >= 0"
        )
    return config


# ------------------------------------------------------------------------------ helpers


def _log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[benchmark {stamp}] {message}", file=sys.stderr, flush=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


# Seconds of quiet-waiting left to the stage (timing.quiet_budget_s, spent by the children).
_QUIET_LEFT = [0.0]


def _spend_quiet(result: dict[str, Any]) -> None:
    _QUIET_LEFT[0] -= float(result.get("quiet_waited_s") or 0.0)


def _timing(config: dict[str, Any], cap_s: float | None = None, **over: Any) -> dict:
    t = config["timing"]
    timing = {
        "quiet_wait_s": t["quiet_wait_s"] if _QUIET_LEFT[0] > 0 else 0.0,
        "warmup": t["warmup"],
        "repeats": t["repeats"],
        "min_repeats": t["min_repeats"],
        "max_repeats": max(t["max_repeats"], t["repeats"]),
        "budget_s": t["budget_s"],
        "long_step_s": t["long_step_s"],
        "memory_repeats": 1,
        "cap_s": cap_s,
        "memory": True,
    }
    timing.update(over)
    timing["max_repeats"] = max(timing["max_repeats"], timing["repeats"])
    return timing


def _section_timing(config: dict[str, Any], cfg: dict[str, Any]) -> dict:
    """Timing settings of the depth and lm sections (their own repeats and budget)."""
    return _timing(
        config,
        repeats=cfg["repeats"],
        max_repeats=cfg["repeats"],
        budget_s=cfg["budget_s"],
        long_step_s=cfg["long_step_s"],
        memory_repeats=cfg["memory_repeats"],
    )


def _slim(result: dict[str, Any]) -> dict[str, Any]:
    """A child's result without the bulky per-sample records (their summary stays)."""
    out = {k: v for k, v in result.items() if k not in ("samples", "traceback")}
    if result.get("traceback"):
        out["reason"] = result.get("reason", "") + " | " + result["traceback"].strip()[-400:]
    return out


def _guard(config: dict[str, Any]) -> int:
    return int(float(config["memory_guard_gb"]) * 1e9)


def _child_timeout(cap_s: float, budget_s: float) -> float:
    return 2 * cap_s + budget_s + 60


def _median(entry: dict[str, Any] | None, key: str = "time_s") -> float | None:
    if not entry or entry.get("status") != "ok" or not entry.get(key):
        return None
    return entry[key]["median"]


# ------------------------------------------------------------------------------ sections


def _peer_probe(peer: str) -> dict[str, Any]:
    from reformer.benchmarks import peers

    reason = peers.availability(peer)
    return {"status": "ok"} if reason is None else {"status": "error", "reason": reason}


def run_attention(config: dict[str, Any], peer_status: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Section a + b: attention forward + backward against length, ours and the peers'."""
    from reformer.benchmarks import speed

    cfg = config["attention"]
    cap = float(cfg["cap_s"])
    impls: list[tuple[str, int | None]] = [("full", None)]
    impls += [("lsh", r) for r in cfg["n_hashes"]]
    for peer in PEER_NAMES:
        impls += [(peer, r) for r in cfg["n_hashes"]]
    processes, pool_below_s = int(cfg["processes"]), float(cfg["pool_below_s"])

    def measure(impl: str, r: int | None, length: int, batch: int) -> dict[str, Any]:
        timing = _timing(config, cap_s=cap)
        result = run_isolated(
            speed.attention_step,
            {
                "impl": impl,
                "length": length,
                "batch": batch,
                "d_model": cfg["d_model"],
                "n_heads": cfg["n_heads"],
                "bucket_size": cfg["bucket_size"],
                "n_hashes": r or 1,
                "threads": config["threads"],
                "seed": config["seed"],
                "timing": timing,
            },
            timeout_s=_child_timeout(cap, timing["budget_s"]),
            memory_bytes=_guard(config),
            preload=PRELOAD,
        )
        _spend_quiet(result)
        return result

    def short(result: dict[str, Any]) -> bool:
        return (
            result["status"] == "ok"
            and not result.get("over_cap")
            and result["time_s"]["median"] < pool_below_s
        )

    results: list[dict[str, Any]] = []
    last: dict[tuple[str, int | None], dict[str, Any]] = {}
    for length in cfg["lengths"]:
        batch = max(1, cfg["tokens_per_step"] // length)
        entries: list[dict[str, Any]] = []
        runs: dict[int, list[dict[str, Any]]] = {}  # entry index -> its processes' results
        for impl, r in impls:
            key = (impl, r)
            entry: dict[str, Any] = {
                "implementation": impl,
                "n_hashes": r,
                "length": length,
                "batch": batch,
                "tokens": batch * length,
            }
            skip = None
            if impl in peer_status and not peer_status[impl]["available"]:
                skip = peer_status[impl]["reason"]
            elif impl == "full" and length <= config["targets"]["sdpa_speedup_length"]:
                pass  # the LSH-1 vs SDPA target needs this one measured
            elif key in last:
                prev = last[key]
                if prev["status"] != "ok" or prev.get("over_cap"):
                    skip = f"> time cap ({cap:.0f} s) at a shorter length"
                else:
                    # Full attention costs batch * length^2; the LSH layers batch * length.
                    growth = entry["tokens"] / prev["tokens"]
                    if impl == "full":
                        growth *= length / prev["length"]
                    predicted = prev["time_s"]["median"] * growth
                    if predicted > cap:
                        skip = f"> time cap (predicted {predicted:.0f} s > {cap:.0f} s)"
                        entry["predicted_s"] = predicted
            if skip is not None:
                entry.update(status="skipped", reason=skip)
            else:
                runs[len(entries)] = [measure(impl, r, length, batch)]
            entries.append(entry)
        # Short steps get more processes, every other pass in reverse order, so that a slow
        # spell of the machine does not fall on one implementation's processes only.
        for extra_pass in range(1, processes):
            order = list(runs)
            for i in reversed(order) if extra_pass % 2 else order:
                if all(short(run) for run in runs[i]):
                    impl, r = entries[i]["implementation"], entries[i]["n_hashes"]
                    extra = measure(impl, r, length, batch)
                    if extra["status"] == "ok":
                        runs[i].append(extra)
        for i, entry in enumerate(entries):
            if i in runs:
                first = runs[i][0]
                pooled = pool_measurements(runs[i]) if first["status"] == "ok" else first
                entry.update(_slim(pooled))
                if entry["status"] == "ok":
                    scale = cfg["tokens_per_step"] / entry["tokens"]
                    t = entry["time_s"]
                    entry["time_per_step_s"] = {k: t[k] * scale for k in ("median", "min", "max")}
            impl, r = entry["implementation"], entry["n_hashes"]
            last[(impl, r)] = entry
            results.append(entry)
            _log(f"attention {impl}{'' if r is None else f'-{r}'} L={length}: {_brief(entry)}")
    return {
        "settings": {**cfg, "causal": True, "timing": _timing(config, cap_s=cap)},
        "note": (
            "time_s: seconds per measured step (batch x length tokens); time_per_step_s: the "
            "same scaled to tokens_per_step tokens (differs only where batch 1 exceeds it); "
            "peak_rss_bytes: process peak RSS growth during a step; saved_bytes: tensors "
            "saved for backward by the forward pass (parameters excluded)."
        ),
        "results": results,
    }


def _brief(entry: dict[str, Any]) -> str:
    if entry.get("status") != "ok":
        return f"{entry.get('status')}: {entry.get('reason', '')}"[:160]
    t = entry["time_s"]
    mem = entry.get("peak_rss_bytes") or {}
    extra = f", peak +{mem['median'] / 2**20:.0f} MiB" if mem else ""
    tps = entry.get("tokens_per_s")
    if tps:
        extra += f", {tps['median']:.0f} tok/s"
    return (
        f"{t['median']:.3f} s [{t['min']:.3f}, {t['max']:.3f}] "
        f"n={entry.get('n_samples')} contended={entry.get('n_contended')}{extra}"
    )


def run_depth(config: dict[str, Any]) -> dict[str, Any]:
    """Section c: training-step memory against depth, reversible ReformerLM vs TransformerLM."""
    from reformer.benchmarks import speed

    cfg = config["depth"]
    timing = _section_timing(config, cfg)
    results = []
    for kind in ("reformer", "transformer"):
        for n_layers in cfg["layers"]:
            kwargs = {k: cfg[k] for k in ("length", "batch", "vocab_size", "d_model", "n_heads")}
            kwargs.update(
                d_ff=cfg["d_ff"], bucket_size=cfg["bucket_size"], n_hashes=cfg["n_hashes"]
            )
            result = run_isolated(
                speed.depth_step,
                {
                    "kind": kind,
                    "n_layers": n_layers,
                    **kwargs,
                    "threads": config["threads"],
                    "seed": config["seed"],
                    "timing": _section_timing(config, cfg),
                },
                timeout_s=1800,
                memory_bytes=_guard(config),
                preload=PRELOAD,
            )
            _spend_quiet(result)
            entry = {"model": kind, "n_layers": n_layers, **_slim(result)}
            results.append(entry)
            _log(f"depth {kind} x{n_layers}: {_brief(entry)}")
    return {
        "settings": {**cfg, "timing": timing},
        "note": (
            "One training step (loss + backward; gradients freed before it, so their memory "
            "counts). reformer: reversible ReformerLM, LSH attention; transformer: "
            "TransformerLM (full attention, ordinary residuals)."
        ),
        "results": results,
    }


def run_lm(config: dict[str, Any], peer_status: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Section d: training tokens/s of a small reversible LSH LM, ours vs the peers'."""
    from reformer.benchmarks import speed

    cfg = config["lm"]
    timing = _section_timing(config, cfg)
    results = []
    for length in cfg["lengths"]:
        batch = max(1, cfg["tokens_per_step"] // length)
        for impl in ("ours", *PEER_NAMES):
            entry: dict[str, Any] = {"implementation": impl, "length": length, "batch": batch}
            if impl in peer_status and not peer_status[impl]["available"]:
                entry.update(status="skipped", reason=peer_status[impl]["reason"])
            else:
                kwargs = {
                    k: cfg[k] for k in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff")
                }
                result = run_isolated(
                    speed.lm_step,
                    {
                        "impl": impl,
                        "length": length,
                        "batch": batch,
                        **kwargs,
                        "bucket_size": cfg["bucket_size"],
                        "n_hashes": cfg["n_hashes"],
                        "threads": config["threads"],
                        "seed": config["seed"],
                        "timing": _section_timing(config, cfg),
                    },
                    timeout_s=1800,
                    memory_bytes=_guard(config),
                    preload=PRELOAD,
                )
                _spend_quiet(result)
                entry.update(_slim(result))
            results.append(entry)
            _log(f"lm {impl} L={length}: {_brief(entry)}")
    return {
        "settings": {**cfg, "timing": timing},
        "note": (
            "Training step = loss + backward + AdamW step, reversible layers, no feed-forward "
            "chunking in any model (reformer-pytorch: ff_chunks=1 instead of its default 100, "
            "which costs it 11-40% of the time), axial positions; peers at their default "
            "masks (reformer-pytorch allows duplicate attention and attention across "
            "buckets; this library applies the paper's masks and duplicate correction)."
        ),
        "results": results,
    }


def run_longest(config: dict[str, Any]) -> dict[str, Any]:
    """Section e: the longest sequence whose training step fits in the memory budget."""
    from reformer.benchmarks import longest

    cfg = config["longest"]
    model = {
        k: cfg[k]
        for k in (
            "vocab_size",
            "d_model",
            "n_layers",
            "n_heads",
            "d_ff",
            "bucket_size",
            "n_hashes",
            "chunk_tokens",
            "factorise_above",
            "head_chunks",
        )
    }
    model.update(threads=config["threads"], seed=config["seed"])
    out = longest.search(
        int(cfg["start"]),
        int(cfg["max_length"]),
        int(float(cfg["memory_limit_gb"]) * 1e9),
        float(cfg["cap_s"]),
        model=model,
        preload=tuple(PRELOAD),
        log=_log,
    )
    out["tries"] = [_slim(t) for t in out["tries"]]
    if out["first_failure"] is not None:
        out["first_failure"] = _slim(out["first_failure"])
    return {"settings": cfg, **out}


# ------------------------------------------------------------------------------ targets


def _find(results: list[dict], **match: Any) -> dict | None:
    for entry in results:
        if all(entry.get(k) == v for k, v in match.items()):
            return entry
    return None


def _out_of_memory(entry: dict[str, Any] | None) -> bool:
    return entry is not None and entry.get("status") == "out of memory"


def _every_peer_out_of_memory(entries: list[dict[str, Any] | None]) -> bool:
    """Every peer ran and failed for memory (a missing or skipped peer is not a failure)."""
    return bool(entries) and all(_out_of_memory(e) for e in entries)


def _verdict(checks: list[bool | None]) -> bool | None:
    known = [c for c in checks if c is not None]
    if not known:
        return None
    return all(known)


def target_lsh_vs_peers(attention: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """Our LSH fwd+bwd at least ``peer_speedup`` x faster than the faster peer, memory no
    higher, at every length >= ``peer_min_length`` and every round count."""
    results = attention["results"]
    slack = float(t["memory_slack_mb"]) * 2**20
    entries = []
    for entry in results:
        if entry["implementation"] != "lsh" or entry["length"] < t["peer_min_length"]:
            continue
        length, r = entry["length"], entry["n_hashes"]
        peers = [
            p
            for p in (
                _find(results, implementation=name, length=length, n_hashes=r)
                for name in PEER_NAMES
            )
            if p is not None
        ]
        measured = [p for p in peers if _median(p) is not None]
        row: dict[str, Any] = {"length": length, "n_hashes": r, "ours_s": _median(entry)}
        if not measured:
            over = [p for p in peers if "time cap" in str(p.get("reason", ""))]
            if _every_peer_out_of_memory(peers) and row["ours_s"] is not None:
                # Ours ran within the memory guard where no peer could: better on both counts.
                row.update(
                    peer="(out of memory)",
                    ours_peak_bytes=_median(entry, "peak_rss_bytes"),
                    memory_ok=True,
                    passed=True,
                    reason="every peer ran out of memory under the stage's memory guard",
                )
            elif over and row["ours_s"] is not None:
                bound = float(attention["settings"]["cap_s"]) / row["ours_s"]
                row.update(
                    peer="(over time cap)",
                    speedup_lower_bound=bound,
                    memory_ok=None,
                    passed=bound >= t["peer_speedup"],
                )
            else:
                row.update(peer=None, passed=None, reason="no peer measured")
            entries.append(row)
            continue
        faster = min(measured, key=_median)
        row["peer"] = faster["implementation"]
        row["peer_s"] = _median(faster)
        if row["ours_s"] is None:
            row.update(speedup=None, memory_ok=None, passed=False, reason=entry.get("reason"))
        else:
            row["speedup"] = row["peer_s"] / row["ours_s"]
            # Diagnostic under noise: the ratio of the fastest samples (not judged).
            row["speedup_of_minima"] = faster["time_s"]["min"] / entry["time_s"]["min"]
            ours_mem = _median(entry, "peak_rss_bytes")
            peer_mem = _median(faster, "peak_rss_bytes")
            row["ours_peak_bytes"], row["peer_peak_bytes"] = ours_mem, peer_mem
            row["memory_ok"] = (
                None if ours_mem is None or peer_mem is None else ours_mem <= peer_mem + slack
            )
            row["passed"] = row["speedup"] >= t["peer_speedup"] and row["memory_ok"] is not False
        entries.append(row)
    speedups = [e["speedup"] for e in entries if e.get("speedup") is not None]
    return {
        "description": (
            f"our LSH attention fwd+bwd >= {t['peer_speedup']}x faster than the faster peer "
            f"at every length >= {t['peer_min_length']} and every round count, peak RSS "
            "growth no higher"
        ),
        "threshold": t["peer_speedup"],
        "worst_speedup": min(speedups) if speedups else None,
        "entries": entries,
        "passed": _verdict([e["passed"] for e in entries]),
    }


def target_lsh1_vs_sdpa(attention: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """LSH-1 faster than SDPA from ``sdpa_from_length`` on, ``sdpa_speedup`` x at
    ``sdpa_speedup_length``."""
    results = attention["results"]
    cap = float(attention["settings"]["cap_s"])
    entries = []
    for entry in results:
        if entry["implementation"] != "lsh" or entry["n_hashes"] != 1:
            continue
        length = entry["length"]
        if length < t["sdpa_from_length"]:
            continue
        required = t["sdpa_speedup"] if length == t["sdpa_speedup_length"] else 1.0
        full = _find(results, implementation="full", length=length)
        ours, theirs = _median(entry), _median(full)
        row: dict[str, Any] = {"length": length, "required": required, "lsh1_s": ours}
        if ours is None:
            row.update(passed=False if theirs is not None else None, reason=entry.get("reason"))
        elif theirs is None:
            if full is not None and "time cap" in str(full.get("reason", "")):
                bound = max(cap, full.get("predicted_s", cap)) / ours
                row.update(speedup_lower_bound=bound, passed=bound > required)
            else:
                row.update(passed=None, reason="SDPA not measured")
        else:
            row.update(sdpa_s=theirs, speedup=theirs / ours)
            row["passed"] = row["speedup"] >= required if required > 1 else row["speedup"] > 1
        entries.append(row)
    at = next((e for e in entries if e["length"] == t["sdpa_speedup_length"]), None)
    return {
        "description": (
            f"LSH-1 faster than SDPA full attention from {t['sdpa_from_length']} tokens on, "
            f">= {t['sdpa_speedup']}x at {t['sdpa_speedup_length']}"
        ),
        "threshold": t["sdpa_speedup"],
        "speedup_at_length": None if at is None else at.get("speedup"),
        "entries": entries,
        "passed": _verdict([e["passed"] for e in entries]) if at is not None else None,
    }


def target_depth(depth: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """Reversible training memory at the most layers <= ``depth_ratio`` x the fewest."""
    layers = depth["settings"]["layers"]
    lo, hi = min(layers), max(layers)
    out: dict[str, Any] = {
        "description": (
            f"reversible ReformerLM training-step peak RSS growth at {hi} layers <= "
            f"{t['depth_ratio']}x that at {lo} layers"
        ),
        "threshold": t["depth_ratio"],
        "layers": [lo, hi],
    }
    for model in ("reformer", "transformer"):
        a = _find(depth["results"], model=model, n_layers=lo)
        b = _find(depth["results"], model=model, n_layers=hi)
        rss = (_median(a, "peak_rss_bytes"), _median(b, "peak_rss_bytes"))
        saved = tuple(
            e.get("saved_bytes") if e and e.get("status") == "ok" else None for e in (a, b)
        )
        out[model] = {
            "peak_rss_ratio": rss[1] / rss[0] if None not in rss and rss[0] > 0 else None,
            "saved_bytes_ratio": (
                saved[1] / saved[0] if None not in saved and saved[0] > 0 else None
            ),
        }
    ratio = out["reformer"]["peak_rss_ratio"]
    out["ratio"] = ratio
    out["passed"] = None if ratio is None else ratio <= t["depth_ratio"]
    return out


def target_tokens(lm: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """Training tokens/s at ``tokens_length`` >= ``tokens_speedup`` x the faster peer's."""
    length = t["tokens_length"]
    results = lm["results"]
    ours = _find(results, implementation="ours", length=length)
    peers = [_find(results, implementation=p, length=length) for p in PEER_NAMES]
    measured = [p for p in peers if _median(p, "tokens_per_s") is not None]
    out: dict[str, Any] = {
        "description": (
            f"training tokens/s at length {length} >= {t['tokens_speedup']}x the faster peer's"
        ),
        "threshold": t["tokens_speedup"],
        "length": length,
        "ours_tokens_per_s": _median(ours, "tokens_per_s"),
    }
    if not measured or out["ours_tokens_per_s"] is None:
        out.update(ratio=None, passed=None, reason="not measured (peer or ours missing)")
        return out
    faster = max(measured, key=lambda p: _median(p, "tokens_per_s"))
    out["peer"] = faster["implementation"]
    out["peer_tokens_per_s"] = _median(faster, "tokens_per_s")
    out["ratio"] = out["ours_tokens_per_s"] / out["peer_tokens_per_s"]
    out["passed"] = out["ratio"] >= t["tokens_speedup"]
    return out


def target_longest(longest: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """The longest fitting training step reaches ``longest_tokens``."""
    value = longest.get("longest")
    return {
        "description": (
            f"one training step fits in {longest['settings']['memory_limit_gb']} GB of process "
            f"memory at >= {t['longest_tokens']:,} tokens"
        ),
        "threshold": t["longest_tokens"],
        "longest": value,
        "stopped": longest.get("stopped"),
        "limited_by": longest.get("limited_by"),
        "projected_longest": longest.get("projected_longest"),
        "passed": value is not None and value >= t["longest_tokens"],
    }


def compute_targets(report: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    """Every target from the measured sections of ``report`` (missing sections: None)."""
    out: dict[str, Any] = {}
    if "attention" in report:
        out["lsh_vs_peers"] = target_lsh_vs_peers(report["attention"], t)
        out["lsh1_vs_sdpa"] = target_lsh1_vs_sdpa(report["attention"], t)
    if "depth" in report:
        out["reversible_depth_memory"] = target_depth(report["depth"], t)
    if "lm" in report:
        out["tokens_per_s_vs_peers"] = target_tokens(report["lm"], t)
    if "longest" in report:
        out["longest_sequence"] = target_longest(report["longest"], t)
    return out


# ------------------------------------------------------------------------------ plots

_STYLE = {
    "full": ("SDPA (full)", "black", "-"),
    "lsh": ("ours LSH", None, "-"),
    "reformer_pytorch": ("reformer-pytorch", None, "--"),
    "hf_transformers": ("HF transformers", None, ":"),
}
_ROUND_COLORS = {1: "tab:blue", 2: "tab:orange", 4: "tab:green", 8: "tab:red"}


def _save(fig: Any, plots: Path, name: str) -> list[str]:
    # PNG only: `dvc plots show` renders images, not PDFs; the report draws its own vector
    # figures from metrics/benchmark.json.
    path = plots / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return [str(path)]


def make_plots(report: dict[str, Any], plots: Path) -> list[str]:
    """Matplotlib figures (PNG and PDF, TrueType fonts) of every measured section."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "font.size": 9})
    plots.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    if "attention" in report:
        att = report["attention"]
        tokens = att["settings"]["tokens_per_step"]
        for metric, ylabel, name in (
            ("time_per_step_s", f"seconds per step ({tokens} tokens)", "attention_time"),
            ("peak_rss_bytes", "peak RSS growth per step (MiB)", "attention_memory"),
        ):
            fig, ax = plt.subplots(figsize=(7.2, 4.2))
            series: dict[tuple, list] = {}
            for e in att["results"]:
                if e.get("status") == "ok" and e.get(metric):
                    series.setdefault((e["implementation"], e["n_hashes"]), []).append(e)
            for (impl, r), entries in series.items():
                label, color, ls = _STYLE[impl]
                color = color or _ROUND_COLORS.get(r)
                x = [e["length"] for e in entries]
                scale = 1 / 2**20 if metric == "peak_rss_bytes" else 1.0
                med = [e[metric]["median"] * scale for e in entries]
                lo = [m - e[metric]["min"] * scale for m, e in zip(med, entries, strict=True)]
                hi = [e[metric]["max"] * scale - m for m, e in zip(med, entries, strict=True)]
                ax.errorbar(
                    x,
                    med,
                    yerr=[lo, hi],
                    color=color,
                    ls=ls,
                    marker="o",
                    ms=3,
                    capsize=2,
                    label=label if r is None else f"{label}-{r}",
                )
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length")
            ax.set_ylabel(ylabel)
            ax.set_title("Attention forward + backward (median, min-max)")
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            ax.grid(alpha=0.3)
            written += _save(fig, plots, name)
            plt.close(fig)

    if "depth" in report:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
        for model, color in (("reformer", "tab:blue"), ("transformer", "tab:red")):
            entries = [
                e
                for e in report["depth"]["results"]
                if e["model"] == model and e.get("status") == "ok"
            ]
            x = [e["n_layers"] for e in entries]
            axes[0].plot(
                x, [e["saved_bytes"] / 2**20 for e in entries], "o-", color=color, label=model
            )
            med = [e["peak_rss_bytes"]["median"] / 2**20 for e in entries]
            err = [
                [m - e["peak_rss_bytes"]["min"] / 2**20 for m, e in zip(med, entries, strict=True)],
                [e["peak_rss_bytes"]["max"] / 2**20 - m for m, e in zip(med, entries, strict=True)],
            ]
            axes[1].errorbar(x, med, yerr=err, fmt="o-", color=color, capsize=2, label=model)
        axes[0].set_ylabel("saved for backward (MiB)")
        axes[1].set_ylabel("peak RSS growth (MiB)")
        for ax in axes:
            ax.set_xlabel("layers")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Training-step memory against depth")
        fig.tight_layout()
        written += _save(fig, plots, "depth_memory")
        plt.close(fig)

    if "lm" in report:
        fig, ax = plt.subplots(figsize=(6, 3.4))
        lengths = report["lm"]["settings"]["lengths"]
        impls = ("ours", *PEER_NAMES)
        width = 0.8 / len(impls)
        for i, impl in enumerate(impls):
            xs, ys, lo, hi = [], [], [], []
            for j, length in enumerate(lengths):
                e = _find(report["lm"]["results"], implementation=impl, length=length)
                if e and e.get("status") == "ok":
                    tps = e["tokens_per_s"]
                    xs.append(j + (i - (len(impls) - 1) / 2) * width)
                    ys.append(tps["median"])
                    lo.append(tps["median"] - tps["min"])
                    hi.append(tps["max"] - tps["median"])
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=impl)
        ax.set_xticks(range(len(lengths)), [str(v) for v in lengths])
        ax.set_xlabel("sequence length")
        ax.set_ylabel("training tokens / s")
        ax.set_title("Small reversible LSH-2 language model")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
        written += _save(fig, plots, "lm_tokens_per_s")
        plt.close(fig)

    tries = [tr for tr in report.get("longest", {}).get("tries", []) if tr.get("status") == "ok"]
    if tries:  # a log axis needs at least one measured length
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        ax.plot(
            [tr["length"] for tr in tries],
            [tr["peak_rss_bytes"] / 1e9 for tr in tries],
            "o-",
            label="peak RSS (whole process)",
        )
        ax.axhline(
            float(report["longest"]["settings"]["memory_limit_gb"]),
            color="red",
            ls="--",
            label="budget",
        )
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length (batch 1)")
        ax.set_ylabel("GB")
        ax.set_title("One training step: 6 layers, LSH-1, reversible")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        written += _save(fig, plots, "longest")
        plt.close(fig)
    return written


# ------------------------------------------------------------------------------ summary


def summary_markdown(report: dict[str, Any]) -> str:
    """The headline ratios of a ``metrics/benchmark.json`` as a Markdown table (the rows of
    :func:`repro.reporting.benchmark_targets`, which the README and the report show too)."""
    from repro.reporting import benchmark_targets

    rows = [
        (r["target"], r["threshold"], r["measured"], r["met"]) for r in benchmark_targets(report)
    ]
    info = report.get("machine", {})
    lines = [
        "| target | required | measured | result |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
        "",
        f"Measured by `pipelines/benchmark.py` ({report.get('mode', '?')} mode) on "
        f"{info.get('cpu_count', '?')} CPU cores ({info.get('cpu_model', '?')}), "
        f"{info.get('torch_threads', '?')} threads, torch "
        f"{info.get('versions', {}).get('torch', '?')}; medians of repeats.",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ report views


def _ok_median(entry: dict[str, Any] | None, key: str) -> float | None:
    return _median(entry, key) if entry is not None and entry.get("status") == "ok" else None


def report_views(report: dict[str, Any]) -> dict[str, Any]:
    """The sections the LaTeX report reads (:mod:`repro.reporting`), from the results.

    ``attention_time``: the paper's Figure 5 (seconds per fwd+bwd step of one attention
    layer against length, ``tokens_per_step`` tokens per step; longer sequences, one per
    step, are scaled to that many tokens), full attention and our LSH with each round
    count. ``depth_memory``: peak RSS growth of one training step against depth.
    ``peer_table``: per length and round count, our time and the peers', with the speedup
    over the faster peer. A configuration that was skipped is ``None``.
    """
    views: dict[str, Any] = {}
    attention = report.get("attention")
    if attention:
        results = attention["results"]
        settings = attention["settings"]
        lengths = list(settings["lengths"])
        per = int(settings["tokens_per_step"])

        def per_step(entry: dict[str, Any] | None) -> float | None:
            # Beyond tokens_per_step the batch is 1 and a step holds more tokens: scale the
            # time to tokens_per_step tokens, so every point is time per the same work.
            t = _ok_median(entry, "time_s")
            return None if t is None else t * per / max(per, int(entry["tokens"]))

        series: dict[str, list[float | None]] = {
            "full": [per_step(_find(results, implementation="full", length=n)) for n in lengths]
        }
        for r in settings["n_hashes"]:
            series[f"lsh{r}"] = [
                per_step(_find(results, implementation="lsh", length=n, n_hashes=r))
                for n in lengths
            ]
        views["attention_time"] = {
            "x_label": f"sequence length (time per {per} tokens)",
            "x": lengths,
            "unit": "s",
            "series": series,
        }
        rows = []
        for n in lengths:
            for r in settings["n_hashes"]:
                ours = _ok_median(
                    _find(results, implementation="lsh", length=n, n_hashes=r), "time_s"
                )
                peer_s = {
                    peer: _ok_median(
                        _find(results, implementation=peer, length=n, n_hashes=r), "time_s"
                    )
                    for peer in PEER_NAMES
                }
                known = [t for t in peer_s.values() if t is not None]
                entries = {
                    peer: _find(results, implementation=peer, length=n, n_hashes=r)
                    for peer in PEER_NAMES
                }
                out_of_memory = _every_peer_out_of_memory(list(entries.values()))
                if ours is None or not (known or out_of_memory):
                    continue
                cell = {
                    peer: "out of memory" if _out_of_memory(entries[peer]) else _round(t)
                    for peer, t in peer_s.items()
                }
                rows.append(
                    {
                        "length": n,
                        "rounds": r,
                        "ours (s)": round(ours, 4),
                        "reformer-pytorch (s)": cell["reformer_pytorch"],
                        "HF transformers (s)": cell["hf_transformers"],
                        "speedup": round(min(known) / ours, 2) if known else "—",
                    }
                )
        if rows:
            views["peer_table"] = rows
    depth = report.get("depth")
    if depth:
        results = depth["results"]
        layers = list(depth["settings"]["layers"])
        views["depth_memory"] = {
            "x_label": "layers",
            "x": layers,
            "unit": "MB",
            "series": {
                label: [
                    _round(
                        _ok_median(_find(results, model=model, n_layers=k), "peak_rss_bytes"),
                        scale=1e-6,
                    )
                    for k in layers
                ]
                for label, model in (("reversible", "reformer"), ("transformer", "transformer"))
            },
        }
    return views


def _round(value: float | None, scale: float = 1.0, digits: int = 4) -> float | None:
    return None if value is None else round(value * scale, digits)


# ------------------------------------------------------------------------------ main


def run(config: dict[str, Any], out: Path, plots: Path | None, mode: str) -> dict[str, Any]:
    """Run the configured sections, write ``out`` (after every section) and the plots."""
    import torch

    torch.set_num_threads(int(config["threads"]))
    _QUIET_LEFT[0] = float(config["timing"]["quiet_budget_s"])
    start = time.time()
    versions = ["torch", "numpy", "einops", "reformer-pytorch", "transformers", "matplotlib"]
    report: dict[str, Any] = {
        "mode": mode,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(versions),
        "config": config,
        "method": (
            "Every configuration runs in a fresh process forked from a server that only imported "
            "the libraries (an attention step shorter than pool_below_s in attention.processes "
            "of them, every other pass in reverse order, with their samples pooled). Times: wall "
            "clock of forward + backward (or a training step) after a warm-up step; median, min "
            "and max of the samples taken while no other process used the CPU (all samples "
            "when every one was contended: n_contended says how many were). Memory: the "
            "kernel's peak-RSS counter is reset after the warm-up step, and the peak during a "
            "step minus the RSS before it is reported (glibc returns large blocks to the system "
            "at once). Noise: timings on a shared 2-core machine vary by 10-30% between runs; "
            "compare ratios from one run."
        ),
    }
    if config["peers"]:  # the fork server imports them once (it skips failed imports)
        for module in ("reformer_pytorch", "transformers.models.reformer.modeling_reformer"):
            if module not in PRELOAD:
                PRELOAD.append(module)
    peer_status: dict[str, dict[str, Any]] = {}
    if {"attention", "lm"} & set(config["sections"]):
        for peer in PEER_NAMES:
            if not config["peers"]:
                peer_status[peer] = {
                    "available": False,
                    "reason": "peers disabled (--no-peers or benchmark.peers: false)",
                }
                continue
            probe = run_isolated(_peer_probe, {"peer": peer}, timeout_s=300, preload=PRELOAD)
            ok = probe.get("status") == "ok"
            peer_status[peer] = {
                "available": ok,
                "reason": None if ok else f"not importable ({probe.get('reason')})",
            }
        report["peers"] = peer_status
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "attention": lambda: run_attention(config, peer_status),
        "depth": lambda: run_depth(config),
        "lm": lambda: run_lm(config, peer_status),
        "longest": lambda: run_longest(config),
    }
    for name in SECTIONS:
        if name not in config["sections"]:
            continue
        t0 = time.time()
        _log(f"section {name} ...")
        report[name] = sections[name]()
        report[name]["duration_s"] = time.time() - t0
        report["targets"] = compute_targets(report, config["targets"])
        _write_json(out, report)
    report["targets"] = compute_targets(report, config["targets"])
    report.update(report_views(report))
    report["duration_s"] = time.time() - start
    report["quiet_wait_s_total"] = float(config["timing"]["quiet_budget_s"]) - _QUIET_LEFT[0]
    report["machine"]["load_average_end"] = list(os.getloadavg())
    if plots is not None:
        _write_json(out, report)  # the measurements are safe before any figure is drawn
        try:
            report["plots"] = make_plots(report, plots)
        except Exception as error:  # a figure must not cost the measurements
            _log(f"warning: plots not drawn: {type(error).__name__}: {error}")
            report["plots_error"] = f"{type(error).__name__}: {error}"
    _write_json(out, report)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Speed and memory benchmarks (metrics/benchmark.json and plots)."
    )
    parser.add_argument(
        "--params", default="params.yaml", help="params file with an optional `benchmark:` block"
    )
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one sample (tests)")
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="do not measure the peers (they are reported as skipped)",
    )
    parser.add_argument("--sections", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--out", default="metrics/benchmark.json", help="JSON output")
    parser.add_argument(
        "--plots",
        default="plots/benchmark",
        help="directory for the PNG and PDF figures ('' for none)",
    )
    parser.add_argument(
        "--summary", metavar="JSON", help="print the Markdown table of a benchmark JSON and exit"
    )
    parser.add_argument(
        "--rejudge",
        action="store_true",
        help="measure nothing: recompute the targets, tables and plots of --out from its "
        "measurements and the params' targets",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a cancelled DVC stage, `kill`) unwinds normally, so the running
    # configuration's process is killed too instead of being left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args(argv)
    if args.summary:
        print(summary_markdown(json.loads(Path(args.summary).read_text())))
        return 0
    try:
        config = load_config(args.params, quick=args.quick)
        if args.no_peers:
            config["peers"] = False
        if args.sections:
            config["sections"] = [s.strip() for s in args.sections.split(",") if s.strip()]
            config = load_config_checked(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.rejudge:
        try:
            report = rejudge(config, Path(args.out), Path(args.plots) if args.plots else None)
        except (OSError, ValueError, KeyError) as error:
            print(f"error: --rejudge of {args.out}: {error}", file=sys.stderr)
            return 2
        print(summary_markdown(report))
        return 0
    report = run(
        config,
        Path(args.out),
        Path(args.plots) if args.plots else None,
        "quick" if config["quick"] else "full",
    )
    _log(f"done in {report['duration_s']:.0f} s -> {args.out}")
    print(summary_markdown(report))
    return 0


def rejudge(config: dict[str, Any], out: Path, plots: Path | None) -> dict[str, Any]:
    """Recompute the targets, views and plots of the benchmark JSON ``out`` from its
    measurements and ``config["targets"]``, measuring nothing (after a change of a target or
    of how one is decided: the sweep takes most of an hour)."""
    report = json.loads(out.read_text())
    if not isinstance(report, dict) or "machine" not in report:
        raise ValueError("not a benchmark JSON (no 'machine' entry)")
    report["config"]["targets"] = config["targets"]
    report["targets"] = compute_targets(report, config["targets"])
    report.update(report_views(report))
    report["rejudged"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if plots is not None:
        report["plots"] = make_plots(report, plots)
    _write_json(out, report)
    return report


def load_config_checked(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a config changed after loading (``--sections``)."""
    for section in config["sections"]:
        if section not in SECTIONS:
            raise ValueError(f"--sections entry {section!r} is not allowed: use {list(SECTIONS)}")
    return config


if __name__ == "__main__":
    sys.exit(main())

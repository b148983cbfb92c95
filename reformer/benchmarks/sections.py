"""The CPU sweep's sections (``pipelines/benchmark.py``), each a function of the running
:class:`repro.benchmarking.sweep.Sweep`; every configuration runs in a fresh process.

* ``attention``: one causal attention layer, forward + backward, against length at a fixed
  number of tokens per step (the paper's Figure 5): full attention (SDPA), this library's
  LSH attention with 1, 2, 4, 8 rounds, and the peers' LSH layers with the same rounds and
  buckets; time, peak RSS growth, saved-tensor bytes, FLOPs and the fraction of the
  machine's matmul rate (measured at the start and the end, :mod:`reformer.benchmarks.roofline`).
  Ours run first at each length, then the peers, whose repeats stop once the cell's verdict
  is decided against our time; a peer predicted over ``peer_cap_s`` is not run;
* ``depth``: one training step of the reversible ReformerLM and of the TransformerLM at
  several depths: saved-tensor bytes and peak RSS growth (the paper's Table 3);
* ``lm``: training tokens/s of a small reversible LSH-2 language model, this library's and
  the peers';
* ``longest``: the longest sequence whose training step (6 layers, d_model 256, LSH-1,
  reversible, chunked FF and loss, axial positions) fits in the memory budget, by doubling.

The workloads themselves are in :mod:`reformer.benchmarks.speed` and
:mod:`reformer.benchmarks.longest`; the settings in :mod:`reformer.benchmarks.defaults`.
"""

from __future__ import annotations

from typing import Any

from reformer.benchmarks.attention_targets import judged
from reformer.benchmarks.defaults import PEER_NAMES
from reformer.benchmarks.roofline import measure_peak, pooled_peak, profile_missed
from repro.benchmarking import Sweep, pool_measurements, run_isolated, usable_allocator
from repro.benchmarking.sweep import brief, slim

__all__ = ["METHOD", "PRELOAD", "run_attention", "run_depth", "run_lm", "run_longest", "setup"]

# What the fork server imports once (the peers are added by `setup` when they are measured).
# torch._dynamo: FlopCounterMode's first use imports it (4 s), in every child otherwise.
PRELOAD = (
    "torch",
    "torch._dynamo",
    "reformer",
    "reformer.benchmarks.speed",
    "reformer.benchmarks.longest",
)
_PEER_MODULES = ("reformer_pytorch", "transformers.models.reformer.modeling_reformer")

METHOD = (
    "Every configuration runs in a fresh process forked from a server that only imported the "
    "libraries (an attention step shorter than pool_below_s in attention.processes of them, "
    "every other pass in reverse order, with their samples pooled). Times: wall clock of forward"
    " + backward (or a training step) after a warm-up step and an untimed step that regrows the "
    "heap; median, min and max of the samples taken while no other process used the CPU (all "
    "samples when every one was contended: n_contended says how many were). Memory: the kernel's"
    " peak-RSS counter is reset after the warm-up step, and the peak during a step minus the RSS"
    " before it is reported (glibc returns large blocks to the system at once). Noise: timings "
    "on a shared 2-core machine vary by 10-30% between runs; compare ratios from one run."
)


def setup(sweep: Sweep) -> dict[str, Any]:
    """Torch threads, and which peers can be measured (``{"peers": {...}}`` when a section
    that measures them runs): a peer that does not import is reported as skipped."""
    import torch

    config = sweep.config
    torch.set_num_threads(int(config["threads"]))
    if config["peers"]:  # the fork server imports them once (it skips failed imports)
        sweep.preload += [m for m in _PEER_MODULES if m not in sweep.preload]
    if not {"attention", "lm"} & set(config["sections"]):
        return {}
    peer_status: dict[str, dict[str, Any]] = {}
    for peer in PEER_NAMES:
        if not config["peers"]:
            peer_status[peer] = {
                "available": False,
                "reason": "peers disabled (--no-peers or benchmark.peers: false)",
            }
            continue
        probe = run_isolated(_peer_probe, {"peer": peer}, timeout_s=300, preload=sweep.preload)
        ok = probe.get("status") == "ok"
        peer_status[peer] = {
            "available": ok,
            "reason": None if ok else f"not importable ({probe.get('reason')})",
        }
    return {"peers": peer_status}


def _child_timeout(cap_s: float, budget_s: float) -> float:
    return 2 * cap_s + budget_s + 60


def _section_timing(sweep: Sweep, cfg: dict[str, Any]) -> dict:
    """Timing settings of the depth and lm sections (their own repeats and budget)."""
    return sweep.timing(
        repeats=cfg["repeats"],
        max_repeats=cfg["repeats"],
        budget_s=cfg["budget_s"],
        long_step_s=cfg["long_step_s"],
        memory_repeats=cfg["memory_repeats"],
    )


def _peer_probe(peer: str) -> dict[str, Any]:
    from reformer.benchmarks import peers

    reason = peers.availability(peer)
    return {"status": "ok"} if reason is None else {"status": "error", "reason": reason}


def run_attention(sweep: Sweep) -> dict[str, Any]:
    """Section a + b: attention forward + backward against length, ours and the peers', with
    the machine's matmul rate measured at the start and the end (the roofline)."""
    from reformer.benchmarks import speed

    config, peer_status = sweep.config, sweep.report.get("peers", {})
    cfg, t = config["attention"], config["targets"]
    cap, peer_cap = float(cfg["cap_s"]), float(cfg["peer_cap_s"])
    processes, pool_below_s = int(cfg["processes"]), float(cfg["pool_below_s"])
    peaks = [measure_peak(sweep)]
    sweep.log(f"attention: matmul peak {peaks[0]['flops_per_s'] / 1e9:.1f} GFLOP/s")

    def measure(impl: str, r: int | None, length: int, batch: int, **over: Any) -> dict:
        profile = over.pop("profile", 0)
        timing = sweep.timing(cap_s=cap, **over)
        kwargs = {k: cfg[k] for k in ("d_model", "n_heads", "bucket_size", "factorise_above")}
        kwargs.update(impl=impl, length=length, batch=batch, n_hashes=r or 1, profile=profile)
        kwargs.update(threads=config["threads"], seed=config["seed"], timing=timing)
        return sweep.run(
            speed.attention_step, kwargs, timeout_s=_child_timeout(cap, timing["budget_s"])
        )

    def short(entry: dict[str, Any], result: dict[str, Any]) -> bool:
        return (
            judged(entry["implementation"], entry["n_hashes"], entry["length"], t)
            and result["status"] == "ok"
            and not result.get("over_cap")
            and not result.get("decided")
            and result["time_s"]["median"] < pool_below_s
        )

    ours = [("full", None)] + [("lsh", r) for r in cfg["n_hashes"]]
    theirs = [(peer, r) for peer in PEER_NAMES for r in cfg["n_hashes"]]
    results: list[dict[str, Any]] = []
    last: dict[tuple[str, int | None], dict[str, Any]] = {}
    for length in cfg["lengths"]:
        batch = max(1, cfg["tokens_per_step"] // length)
        entries: list[dict[str, Any]] = []
        runs: dict[int, list[dict[str, Any]]] = {}  # entry index -> its processes' results
        # Ours first: a peer's measurement stops once decided (met or missed) against ours.
        for impl, r in ours + theirs:
            entry: dict[str, Any] = {"implementation": impl, "n_hashes": r, "length": length}
            entry.update(batch=batch, tokens=batch * length)
            over: dict[str, Any] = {}
            skip = _skip_reason(entry, last.get((impl, r)), peer_status, config, cap, peer_cap)
            if skip is None and impl in PEER_NAMES:
                lsh = next(
                    (
                        runs[i][0]
                        for i, e in enumerate(entries)
                        if i in runs and e["implementation"] == "lsh" and e["n_hashes"] == r
                    ),
                    None,
                )
                if lsh is not None and lsh["status"] == "ok" and length >= t["peer_min_length"]:
                    bound = float(t["peer_speedup"]) * lsh["time_s"]["median"]
                    over["decide_above_s"] = bound * float(cfg["decide_margin"])
                    over["decide_below_s"] = bound / float(cfg["decide_margin"])
            if skip is not None:
                entry.update(status="skipped", reason=skip)
            else:
                runs[len(entries)] = [measure(impl, r, length, batch, **over)]
                entry.update({k: over.get(k) for k in ("decide_above_s", "decide_below_s")})
            entries.append(entry)
        # Short steps get more processes, every other pass in reverse order, so that a slow
        # spell of the machine does not fall on one implementation's processes only.
        for extra_pass in range(1, processes):
            order = list(runs)
            for i in reversed(order) if extra_pass % 2 else order:
                e = entries[i]
                if all(short(e, run) for run in runs[i]):
                    extra = measure(e["implementation"], e["n_hashes"], length, batch)
                    if extra["status"] == "ok":
                        runs[i].append(extra)
        for i, entry in enumerate(entries):
            if i in runs:
                first = runs[i][0]
                pooled = pool_measurements(runs[i]) if first["status"] == "ok" else first
                entry.update(slim(pooled))
                if entry["status"] == "ok":
                    scale = cfg["tokens_per_step"] / entry["tokens"]
                    t_s = entry["time_s"]
                    entry["time_per_step_s"] = {k: t_s[k] * scale for k in ("median", "min", "max")}
            impl, r = entry["implementation"], entry["n_hashes"]
            last[(impl, r)] = entry
            results.append(entry)
            sweep.log(f"attention {impl}{'' if r is None else f'-{r}'} L={length}: {brief(entry)}")
    peaks.append(measure_peak(sweep))
    peak = pooled_peak(peaks)
    for entry in results:
        if entry.get("status") == "ok" and entry.get("flops"):
            entry["flops_per_s"] = entry["flops"] / entry["time_s"]["median"]
            entry["peak_fraction"] = entry["flops_per_s"] / peak["flops_per_s"]
    sweep.log(f"attention: matmul peak {peaks[1]['flops_per_s'] / 1e9:.1f} GFLOP/s at the end")
    section = {
        "settings": {**cfg, "causal": True, "timing": sweep.timing(cap_s=cap)},
        "note": (
            "time_s: seconds per measured step (batch x length tokens); time_per_step_s: the "
            "same scaled to tokens_per_step tokens (differs only where batch 1 exceeds it); "
            "peak_rss_bytes: process peak RSS growth during a step; saved_bytes: tensors "
            "saved for backward by the forward pass (parameters excluded); flops: one step "
            "as FlopCounterMode counts it (matrix products only); peak_fraction: flops per "
            "second over the matmul_peak measured in this run; decided: a peer's repeats "
            "stopped once every sample was slower than decide_above_s (decide_margin x the "
            "required speedup x our time) or faster than decide_below_s (the speedup / "
            "decide_margin x our time)."
        ),
        "matmul_peak": {**peak, "measurements": peaks},
        "results": results,
    }
    section["profiles"] = profile_missed(section, config, measure)
    for name, prof in section["profiles"].items():
        top = ", ".join(f"{o['name']} {o['share']:.0%}" for o in prof["profile"]["ops"][:4])
        sweep.log(f"attention profile ({name}): {top}")
    return section


def _skip_reason(
    entry: dict[str, Any],
    prev: dict[str, Any] | None,
    peer_status: dict[str, Any],
    config: dict[str, Any],
    cap: float,
    peer_cap: float,
) -> str | None:
    """Why a configuration is not measured (``None``: measure it); sets ``predicted_s``.

    A peer that cannot be imported is skipped; SDPA always runs up to the length its target
    needs; otherwise a configuration whose step, predicted from the previous length (the
    LSH layers cost ``batch x length``, full attention ``batch x length^2``), exceeds the
    time cap is not run (the peers' cap is shorter: their outcome is then bounded below).
    """
    impl = entry["implementation"]
    if impl in peer_status and not peer_status[impl]["available"]:
        return peer_status[impl]["reason"]
    below = config["targets"]["peer_min_length"]
    if impl in PEER_NAMES and entry["length"] < below:
        return f"not measured below {below} tokens, where no target compares the peers"
    if impl == "full" and entry["length"] <= config["targets"]["sdpa_speedup_length"]:
        return None  # the LSH-1 vs SDPA target needs this one measured
    if prev is None or (impl in PEER_NAMES and prev["length"] < below):
        return None
    limit = peer_cap if impl in PEER_NAMES else cap
    growth = entry["tokens"] / prev["tokens"]
    if impl == "full":
        growth *= entry["length"] / prev["length"]
    if prev["status"] != "ok" or prev.get("over_cap"):
        before = prev.get("predicted_s") or (prev.get("time_s") or {}).get("median")
        if before is not None:
            entry["predicted_s"] = before * growth
        return f"> time cap ({limit:.0f} s) at a shorter length"
    predicted = prev["time_s"]["median"] * growth
    if predicted > limit:
        entry["predicted_s"] = predicted
        return f"> time cap (predicted {predicted:.0f} s > {limit:.0f} s)"
    return None


def run_depth(sweep: Sweep) -> dict[str, Any]:
    """Section c: training-step memory against depth, reversible ReformerLM vs TransformerLM."""
    from reformer.benchmarks import speed

    config = sweep.config
    cfg = config["depth"]
    timing = _section_timing(sweep, cfg)
    results = []
    for kind in ("reformer", "transformer"):
        for n_layers in cfg["layers"]:
            kwargs = {k: cfg[k] for k in ("length", "batch", "vocab_size", "d_model", "n_heads")}
            kwargs.update(
                d_ff=cfg["d_ff"], bucket_size=cfg["bucket_size"], n_hashes=cfg["n_hashes"]
            )
            result = sweep.run(
                speed.depth_step,
                {
                    "kind": kind,
                    "n_layers": n_layers,
                    **kwargs,
                    "threads": config["threads"],
                    "seed": config["seed"],
                    "timing": _section_timing(sweep, cfg),
                },
                timeout_s=1800,
            )
            entry = {"model": kind, "n_layers": n_layers, **slim(result)}
            results.append(entry)
            sweep.log(f"depth {kind} x{n_layers}: {brief(entry)}")
    return {
        "settings": {**cfg, "timing": timing},
        "note": (
            "One training step (loss + backward), gradient buffers kept between steps "
            "(zeroed, not freed), so peak_rss_bytes is the step's own allocation: "
            "activations and temporaries; gradient_bytes (4 per parameter) comes on top "
            "where they are freed. reformer: reversible ReformerLM, LSH attention; "
            "transformer: TransformerLM (full attention, ordinary residuals)."
        ),
        "results": results,
    }


def run_lm(sweep: Sweep) -> dict[str, Any]:
    """Section d: training tokens/s of a small reversible LSH LM, ours vs the peers'."""
    from reformer.benchmarks import speed

    config, peer_status = sweep.config, sweep.report.get("peers", {})
    cfg = config["lm"]
    timing = _section_timing(sweep, cfg)
    results = []
    for length in cfg["lengths"]:
        batch = max(1, cfg["tokens_per_step"] // length)
        for impl in ("ours", *PEER_NAMES):
            entry: dict[str, Any] = {"implementation": impl, "length": length, "batch": batch}
            if impl in peer_status and not peer_status[impl]["available"]:
                entry.update(status="skipped", reason=peer_status[impl]["reason"])
            else:
                shape = ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "bucket_size")
                kwargs = {k: cfg[k] for k in (*shape, "n_hashes", "factorise_above")}
                result = sweep.run(
                    speed.lm_step,
                    {
                        "impl": impl,
                        "length": length,
                        "batch": batch,
                        **kwargs,
                        "threads": config["threads"],
                        "seed": config["seed"],
                        "timing": timing,
                    },
                    timeout_s=1800,
                )
                entry.update(slim(result))
            results.append(entry)
            sweep.log(f"lm {impl} L={length}: {brief(entry)}")
    return {
        "settings": {**cfg, "timing": timing},
        "note": (
            "Training step = loss + backward + AdamW step, reversible layers, no feed-forward "
            "chunking in any model (reformer-pytorch: ff_chunks=1 instead of its default 100, "
            "which costs it 11-40% of the time), axial positions, the same buckets as the "
            "attention section (ours and HF's in two factors above factorise_above; "
            "reformer-pytorch cannot factorise); peers at their default "
            "masks (reformer-pytorch allows duplicate attention and attention across "
            "buckets; this library applies the paper's masks and duplicate correction)."
        ),
        "results": results,
    }


def run_longest(sweep: Sweep) -> dict[str, Any]:
    """Section e: the longest sequence whose training step fits in the memory budget."""
    from reformer.benchmarks import longest

    config = sweep.config
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
    allocator, missing = usable_allocator(cfg["allocator"])
    if missing is not None:
        sweep.log(
            f"longest: {missing}: the tries run under the system allocator, about 1.8x as slow"
        )
    out = longest.search(
        int(cfg["start"]),
        int(cfg["max_length"]),
        int(float(cfg["memory_limit_gb"]) * 1e9),
        float(cfg["cap_s"]),
        model=model,
        preload=tuple(sweep.preload),
        log=sweep.log,
        allocator=allocator,
    )
    out["tries"] = [slim(t) for t in out["tries"]]
    if out["first_failure"] is not None:
        out["first_failure"] = slim(out["first_failure"])
    return {"settings": cfg, **out}

"""The settings of the Reformer's benchmarks, in one place: the CPU sweep's and the GPU's.

:data:`DEFAULTS` are the settings of the ``benchmark`` stage (``pipelines/benchmark.py``,
``make bench``); a profile's ``benchmark:`` block in ``params.yaml`` overrides any of them
(and an unknown key is an error), and ``quick: true`` there (the smoke profile) or
``--quick`` replaces the shapes by :data:`QUICK`; ``mode: small`` (the default profile) takes
:data:`SMALL` over the defaults: fewer lengths and depths, one process per configuration, a
one-step longest try, for a main job of minutes. The full sweep (``make bench``) took 19
minutes on 2 idle cores (the 1,048,576-token longest try 274 s under tcmalloc), the small
one 5.8, the quick one takes under a minute.
:data:`GPU_DEFAULTS` and :data:`GPU_QUICK` are those of ``pipelines/benchmark_gpu.py``
(``make bench-gpu``).

The sections (:mod:`reformer.benchmarks.sections`): ``attention`` is one layer forward and
backward at a fixed token count (the paper's Figure 5), ``depth`` training-step memory
against depth (Table 3), ``lm`` training tokens/s of a small reversible LSH-2 language model
against the peers, ``longest`` the longest 6-layer LSH-1 training step within the memory
budget; ``targets`` are the thresholds of :mod:`reformer.benchmarks.targets`.
"""

from __future__ import annotations

from typing import Any

from repro.benchmarking.allocator import ALLOCATORS

__all__ = ["DEFAULTS", "GPU_DEFAULTS", "GPU_QUICK", "PEER_NAMES", "QUICK", "SMALL", "check"]

# The public implementations measured beside ours (reformer/benchmarks/peers.py builds them).
PEER_NAMES = ("reformer_pytorch", "hf_transformers")

DEFAULTS: dict[str, Any] = {
    "threads": 2,  # torch intra-op threads per configuration (the machine's cores)
    "seed": 0,
    "quick": False,  # tiny shapes (QUICK), one sample each: the smoke profile and the tests
    "mode": "full",  # or "small" (SMALL over these: the default profile's few-minute sweep)
    "peers": True,  # also measure reformer-pytorch and HF transformers where installed
    "sections": ["attention", "depth", "lm", "longest"],
    "memory_guard_gb": 12.0,  # a configuration may grow by at most this (protects the machine)
    "timing": {
        "warmup": 1,  # untimed steps first; the peak-RSS counter is reset after them
        # Medians of several samples: the peers' step times vary by up to 2x from sample to
        # sample on a shared 2-core machine, ours less.
        # Wanted uncontended timed samples per process: a step under attention.pool_below_s
        # runs in attention.processes processes, so its median is of 8 samples from 2
        # processes (a whole process running fast or slow is the larger noise).
        "repeats": 4,
        "min_repeats": 1,  # taken whatever the budget
        "max_repeats": 6,  # most samples, contended ones included
        "budget_s": 6.0,  # timed samples stop once this is spent (after min_repeats)
        # ... or once stop_after uncontended samples lie within stop_spread of each other
        # ((max - min) / median): more would not move the median by more than that.
        "stop_spread": 0.08,
        "stop_after": 3,
        "long_step_s": 1.0,  # a warm-up step longer than this is kept as the first sample
        # Before each sample, wait up to quiet_wait_s for other processes to leave the CPU
        # idle; all waits of the stage together stop at quiet_budget_s.
        "quiet_wait_s": 3.0,
        "quiet_budget_s": 60.0,
    },
    "attention": {  # one layer fwd+bwd at a fixed token count (paper Fig. 5)
        "lengths": [1024, 2048, 4096, 8192, 16384, 32768, 65536],
        "tokens_per_step": 8192,  # batch = max(1, tokens_per_step // length)
        "d_model": 256,
        "n_heads": 4,
        "bucket_size": 64,
        "n_hashes": [1, 2, 4, 8],
        # More buckets than this (the paper's rule: 2 length / bucket_size, so from 16384
        # tokens on): ours and HF's hash into two factors, as trax can; one rotation would
        # cost more than the window's scores (reformer-pytorch cannot factorise).
        "factorise_above": 256,
        # A step measured or predicted over cap_s is not run at longer lengths (SDPA always
        # runs up to targets.sdpa_speedup_length, which a target needs). At 12 s SDPA stops
        # after 16,384 tokens (32,768: predicted 15 s, measured 13.6; 27 s of the sweep with its
        # warm-up, and no target needs it beyond its bound); every LSH cell runs.
        "cap_s": 12.0,
        # The peers' cap: a peer predicted (from the previous length, linear in tokens, which
        # their growing hash and sort costs only exceed) to take longer is not run; its cell
        # is decided by the other peer where that one ran, else by the bound
        # max(peer_cap_s, predicted) / ours. At 6 s (10 before, 144 s more of the sweep) the
        # peers' 8-round cells stop from 32,768 tokens and 2- and 4-round ones at 65,536,
        # reformer-pytorch's first (slower than HF there; its long steps cost 35-75 s each).
        "peer_cap_s": 6.0,
        # A peer's repeats stop once every sample is slower than decide_margin x the
        # required speedup x our time, or faster than the required speedup / decide_margin
        # x our time: the cell's verdict (met or missed) cannot change.
        "decide_margin": 1.25,
        # The roofline: a peak_size x peak_size float32 torch.mm with the sweep's threads,
        # at the start and the end of the section; each missed attention target gets one
        # profiled step of its deciding cell (its profile_ops top operators).
        "peak_size": 2048,
        "profile_ops": 6,
        # A configuration whose step takes under pool_below_s, and whose time a target reads
        # (attention_targets.judged), is measured in this many processes and their samples
        # pooled: on a shared machine one process can run 20% fast or slow as a whole, which
        # would decide a short step's median alone. Two: a third cost a third of the short
        # cells' time (230 s of peers' and 214 s of ours in a 35-minute sweep) while the
        # peer ratios at 2048 tokens (1.6-2.4) sit well clear of the 2.5x target.
        "processes": 2,
        "pool_below_s": 1.0,
    },
    "depth": {  # training-step memory against depth (paper Table 3)
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
        # memory samples, after a separate warm-up step: one, as in the small sweep (a second
        # cost 18 s of the full sweep)
        "memory_repeats": 1,
        "budget_s": 4.0,
        "long_step_s": None,
    },
    "lm": {  # training tokens/s of a small reversible LSH-2 LM against the peers
        "lengths": [4096, 16384],
        "tokens_per_step": 16384,
        "vocab_size": 256,
        "d_model": 256,
        "n_layers": 2,
        "n_heads": 4,
        "d_ff": 512,
        "bucket_size": 64,
        "n_hashes": 2,
        "factorise_above": 256,  # as the attention section's (so from 16384 tokens on)
        "repeats": 2,  # the first step counts as a sample when it takes over long_step_s
        "memory_repeats": 1,
        "budget_s": 30.0,
        "long_step_s": 1.5,
    },
    "longest": {  # the longest 6-layer LSH-1 training step within the memory budget
        # The search starts at the target (targets.longest_tokens rounded up to a power of
        # two): a doubling from 16384 spent 10 of its 21 minutes below it. The next try
        # (2,097,152) runs out of the budget after 44 s.
        "start": 1048576,
        "max_length": 2097152,
        "memory_limit_gb": 16.0,  # decimal GB: 16e9 bytes of process RSS, libraries included
        # A try that takes longer is stopped (it counts as not fitting), and one predicted
        # to (2.2x the last) is not started: on 2 cores time, not memory, may end the search.
        # 1,048,576 tokens took 274 s on 2 cores under tcmalloc (12.47 GB peak), so
        # 2,097,152 (predicted 603 s) is tried, and runs out of memory.
        "cap_s": 1200.0,
        "vocab_size": 256,
        "d_model": 256,
        "n_layers": 6,
        "n_heads": 4,
        "d_ff": 512,
        "bucket_size": 64,
        "n_hashes": 1,
        "chunk_tokens": 16384,  # positions per feed-forward / loss chunk
        # More buckets than this: two factors (reformer/benchmarks/longest.py), so hashing stays
        # linear in the length.
        "factorise_above": 256,
        "head_chunks": 4,  # heads in groups, forward and backward: one group's buffers at a time
        # The tries' memory allocator (repro/benchmarking/allocator.py): glibc maps every
        # large buffer afresh and faults its pages in again on every use. Under tcmalloc
        # 1,048,576 tokens took 274 s (12.47 GB peak), under glibc 488 s (12.79 GB), in two
        # full sweeps on the same machine.
        # Only here: the other sections' memory figures are a step's peak minus the RSS
        # before it, which a caching allocator's resident pages would hide. "system" where
        # tcmalloc is not installed (the sweep then says so and uses glibc's).
        "allocator": "tcmalloc",
    },
    "targets": {
        # Every LSH round count at lengths >= roofline_min_length reaches this fraction of
        # the matmul FLOP/s measured in the same run.
        "roofline_fraction": 0.4,
        "roofline_min_length": 4096,
        "peer_speedup": 2.5,  # our LSH vs the faster peer, fwd+bwd, every length >= ...
        "peer_min_length": 2048,  # ... and the peers are measured from here on only
        "flat_cost_ratio": 1.25,  # LSH-1 time per token, longest length / shortest
        "memory_slack_mb": 1.0,  # "no higher" allows this much page-level noise
        "sdpa_from_length": 4096,  # LSH-1 faster than SDPA from this length on
        "sdpa_speedup_length": 16384,
        "sdpa_speedup": 3.0,
        "depth_ratio": 1.1,  # reversible: activation memory at the most layers / the fewest
        "tokens_speedup": 1.5,  # training tokens/s vs the faster peer at ...
        "tokens_length": 16384,
        "longest_tokens": 1000000,
        "sweep_minutes": 20.0,  # the full sweep on the machine's cores (full mode only)
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
        "peer_cap_s": 10.0,
        "processes": 2,
        "peak_size": 256,
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
        "roofline_min_length": 128,
        "sdpa_from_length": 128,
        "sdpa_speedup_length": 256,
        "tokens_length": 256,
        "longest_tokens": 1024,
    },
}

# mode: small (the default profile): the full sweep's shapes at three lengths and two depths,
# one process per configuration, one short longest try; about 4 minutes on 2 cores.
SMALL: dict[str, Any] = {
    "timing": {"repeats": 5, "max_repeats": 7, "budget_s": 4.0, "quiet_budget_s": 30.0},
    "attention": {"lengths": [1024, 4096, 16384], "processes": 1},
    "depth": {"layers": [2, 12], "memory_repeats": 1},
    "lm": {"lengths": [4096], "tokens_per_step": 8192},
    "longest": {"start": 65536, "max_length": 65536},
    "targets": {"tokens_length": 4096, "longest_tokens": 65536},
}

# The GPU benchmark (pipelines/benchmark_gpu.py): bf16 on one CUDA card.
GPU_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "repeats": 5,
    "attention": {  # the CPU sweep's layer, 64 Ki tokens per step, lengths to 1 Mi
        "lengths": [2**k for k in range(10, 21)],
        "tokens_per_step": 65536,
        "d_model": 256,
        "n_heads": 4,
        "bucket_size": 64,
        "n_hashes": [1, 2, 4, 8],
        "cap_s": 30.0,
    },
    "longest": {  # the CPU `longest` section's model, doubled until it does not fit
        "start": 65536,
        "max_length": 2**25,
        "cap_s": 600.0,
        "d_model": 256,
        "n_layers": 6,
        "n_heads": 4,
        "d_ff": 512,
        "bucket_size": 64,
        "n_hashes": 1,
        "chunk_tokens": 65536,
        "head_chunks": 4,
    },
    "utilisation": {  # the paper's enwik8 width: d_model 1024, d_ff 4096, 8 heads
        "length": 16384,
        "batch": 4,
        "d_model": 1024,
        "n_heads": 8,
        "d_ff": 4096,
        "bucket_size": 64,
        "n_hashes": 1,
    },
}

# --quick: the CPU sweep's tiny attention and longest shapes.
GPU_QUICK: dict[str, Any] = {
    "repeats": 2,
    "attention": {
        k: v
        for k, v in QUICK["attention"].items()
        if k not in ("processes", "peer_cap_s", "peak_size")
    },
    "longest": QUICK["longest"],
    "utilisation": {
        "length": 256,
        "batch": 2,
        "d_model": 32,
        "n_heads": 2,
        "d_ff": 64,
        "bucket_size": 16,
        "n_hashes": 1,
    },
}


def check(config: dict[str, Any]) -> None:
    """Pooling, bucket factorisation and allocator settings (one-line ``ValueError`` naming
    the key)."""
    attention = config["attention"]
    allocator = config["longest"]["allocator"]
    if allocator not in ALLOCATORS:
        raise ValueError(
            f"benchmark.longest.allocator={allocator!r} is not allowed: use one of {ALLOCATORS}"
        )
    for section in ("attention", "lm", "longest"):
        above = config[section].get("factorise_above")
        if above is not None and (
            isinstance(above, bool) or not isinstance(above, int) or above < 4
        ):
            raise ValueError(
                f"benchmark.{section}.factorise_above={above!r} is not allowed: "
                "must be null or an integer >= 4"
            )
    if int(attention["processes"]) < 1:
        raise ValueError(
            f"benchmark.attention.processes={attention['processes']} is not allowed: must be >= 1"
        )
    if float(attention["pool_below_s"]) < 0:
        raise ValueError(
            f"benchmark.attention.pool_below_s={attention['pool_below_s']} is not allowed: "
            "must be >= 0"
        )

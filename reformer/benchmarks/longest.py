"""The longest sequence whose training step fits in a memory budget (the paper's promise of
long contexts on one accelerator, here on CPU).

One training step (loss + backward + AdamW step) of a 6-layer ReformerLM: LSH-1 attention,
reversible layers, chunked feed-forward and chunked loss (a chunk every ``chunk_tokens``
positions), axial positional embeddings, batch 1. :func:`try_length` runs one step in the
calling process with its address space capped at the budget, so an attempt that needs more
fails with an allocation error instead of exhausting the machine; :func:`search` doubles
the length, each try in a fresh process, until a try does not fit, fails, or runs out of
time. A try runs under the allocator the caller chooses (:mod:`repro.benchmarking.allocator`:
tcmalloc roughly halves a long step, whose buffers glibc maps and faults in afresh every
time). Run it by hand with::

    python reformer/benchmarks/longest.py --start 16384 --max-length 262144 --memory-gb 8
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reformer import LSHSelfAttention
from reformer.benchmarks.speed import reversible_lsh_lm
from repro.benchmarking import (
    ALLOCATORS,
    allocator_environment,
    current_rss,
    limit_memory,
    loaded_allocator,
    peak_rss,
    run_isolated,
)

# Below this growth exponent the peak is mostly fixed cost and not worth extrapolating.
_MIN_GROWTH_EXPONENT = 0.1
# exp(60) ~ 1e26 tokens: far past anything measurable, and safely inside a float.
_MAX_LOG_LENGTH = 60.0


def try_length(
    length: int,
    memory_limit_bytes: int,
    threads: int = 2,
    seed: int = 0,
    **model: Any,
) -> dict[str, Any]:
    """One training step at ``length`` tokens with process memory capped at the limit.

    Args:
        length: sequence length (a power of two, a multiple of ``2 * bucket_size``).
        memory_limit_bytes: the whole process's memory budget (its RSS, libraries included).
        threads, seed: torch intra-op threads and seed.
        model: keyword arguments of :func:`longest_model` (model shape, chunking, bucket
            factorisation, head groups).

    Returns:
        ``{"length", "fits", "peak_rss_bytes" (whole process), "step_s", "limit_bytes",
        "allocator"}``.
        An allocation beyond the limit raises, and :func:`repro.benchmarking.isolation.run_isolated`
        reports it as ``"status": "out of memory"``.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    limit_memory(memory_limit_bytes - current_rss())
    model = longest_model(length, **model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, model.vocab_size, (1, length))
    t0 = time.perf_counter()
    model.loss(tokens, tokens.roll(-1, dims=1)).backward()
    optimizer.step()
    step_s = time.perf_counter() - t0
    peak = max(peak_rss(), current_rss())
    return {
        "length": length,
        "n_buckets": list(model_buckets(model, length)),
        "fits": peak <= memory_limit_bytes,
        "peak_rss_bytes": peak,
        "step_s": step_s,
        "limit_bytes": memory_limit_bytes,
        "threads": torch.get_num_threads(),
        "allocator": loaded_allocator(),
    }


def longest_model(
    length: int,
    vocab_size: int = 256,
    d_model: int = 256,
    n_layers: int = 6,
    n_heads: int = 4,
    d_ff: int = 512,
    bucket_size: int = 64,
    n_hashes: int = 1,
    chunk_tokens: int = 16384,
    factorise_above: int | None = 1024,
    head_chunks: int = 1,
) -> torch.nn.Module:
    """The ReformerLM whose training step :func:`try_length` tries at ``length`` tokens:
    reversible, LSH attention, axial positions.

    Args:
        length: sequence length (a power of two, a multiple of ``2 * bucket_size``).
        chunk_tokens: positions per feed-forward and loss chunk.
        factorise_above: with more buckets than this (the layer's rule, ``2 length /
            bucket_size``), hash into two factors
            (:func:`~reformer.benchmarks.speed.bucket_factors`) instead of one rotation of
            ``n_buckets / 2`` columns, whose cost grows with the square of the length;
            ``None``: never.
        head_chunks: attention heads computed in this many groups, forward and backward
            (:class:`reformer.LSHSelfAttention`), so one group's buffers exist at a time.
        vocab_size, d_model, n_layers, n_heads, d_ff, bucket_size, n_hashes: model shape.

    Example:
        >>> model = longest_model(4096, d_model=32, n_layers=1, n_heads=2, d_ff=64)
        >>> model_buckets(model, 4096)
        (128,)
    """
    shape = (vocab_size, length, d_model, n_layers, n_heads, d_ff, bucket_size, n_hashes)
    chunks = max(1, length // chunk_tokens)
    model = reversible_lsh_lm(*shape, chunks=chunks, factorise_above=factorise_above)
    for layer in model.modules():
        if isinstance(layer, LSHSelfAttention):
            layer.head_chunks = head_chunks
    return model


def model_buckets(model: torch.nn.Module, length: int) -> tuple[int, ...]:
    """The bucket counts the model's first LSH layer uses at ``length`` (factors or one)."""
    layer = next(m for m in model.modules() if isinstance(m, LSHSelfAttention))
    n = layer.buckets_for_length(length)
    return n if isinstance(n, tuple) else (n,)


def search(
    start: int,
    max_length: int,
    memory_limit_bytes: int,
    cap_s: float,
    model: dict[str, Any] | None = None,
    preload: tuple[str, ...] = (),
    log: Any = None,
    growth: float = 2.2,
    allocator: str = "system",
) -> dict[str, Any]:
    """Double the length from ``start`` while a step fits; every try in a fresh process.

    A try whose predicted time (the last try's times ``growth``) exceeds ``cap_s`` is not
    started: the search then stops on time, not on memory, and says so.

    Args:
        start: first length tried.
        max_length: no try beyond it.
        memory_limit_bytes: memory budget of the whole process.
        cap_s: wall-clock limit of one try (a try over it counts as not found to fit).
        model: keyword arguments of :func:`try_length` (model shape, threads, seed).
        preload: modules the fork server imports once.
        log: optional ``print``-like callable for progress lines.
        growth: predicted step-time factor per doubling.
        allocator: the tries' memory allocator (:data:`repro.benchmarking.ALLOCATORS`); each
            try under another than the system's is a new interpreter started with it.

    Returns:
        ``{"longest": int | None, "first_failure": {...} | None, "tries": [...],
        "stopped": reason, "limited_by": "memory" | "time" | "max_length" | "error",
        "projected_longest": int | None}``; ``projected_longest`` extrapolates the peak RSS
        of the last two fitting tries as a power of the length to the budget (an estimate,
        not a measurement).
    """
    environment = allocator_environment(allocator)
    tries = []
    longest = None
    failure = None
    length = start
    stopped = f"reached max_length {max_length}"
    limited_by = "max_length"
    while length <= max_length:
        last = tries[-1] if tries else None
        if last is not None and last.get("step_s", 0) * growth > cap_s:
            stopped = (
                f"length {length}: predicted step {last['step_s'] * growth:.0f} s > time cap "
                f"{cap_s:.0f} s (not tried)"
            )
            limited_by = "time"
            break
        result = run_isolated(
            try_length,
            {"length": length, "memory_limit_bytes": memory_limit_bytes, **(model or {})},
            timeout_s=cap_s,
            preload=preload,
            environment=environment,
        )
        result.setdefault("length", length)
        result.pop("traceback", None)
        tries.append(result)
        if log is not None:
            log(f"longest: {length} -> {result.get('status')} {_short(result)}")
        if result["status"] == "ok" and result["fits"]:
            longest = length
            length *= 2
            continue
        failure = result
        stopped = (
            f"length {length}: {result['status']}"
            if result["status"] != "ok"
            else f"length {length}: peak RSS above the limit"
        )
        limited_by = {"ok": "memory", "out of memory": "memory", "timeout": "time"}.get(
            result["status"], "error"
        )
        break
    return {
        "longest": longest,
        "first_failure": failure,
        "tries": tries,
        "stopped": stopped,
        "limited_by": limited_by,
        "projected_longest": projected_length(tries, memory_limit_bytes),
    }


def projected_length(tries: list[dict[str, Any]], limit: int) -> int | None:
    """Length at which the peak RSS of the last two fitting tries, extrapolated as
    ``a * length ** k``, reaches ``limit``.

    ``None`` with fewer than two fitting tries, or when the peak grew so little between
    them (``k < 0.1``, as at short lengths where the interpreter's fixed memory dominates)
    that the power law says nothing about where the limit lies.
    """
    ok = [t for t in tries if t.get("status") == "ok" and t.get("fits")]
    if len(ok) < 2:
        return None
    (l1, m1), (l2, m2) = [(t["length"], t["peak_rss_bytes"]) for t in ok[-2:]]
    if m2 <= m1 or l2 <= l1 or limit <= m2:
        return None
    k = math.log(m2 / m1) / math.log(l2 / l1)
    if k < _MIN_GROWTH_EXPONENT:
        return None
    # In log space: a ratio such as (limit / m2) ** (1 / k) overflows a float for small k.
    log_length = math.log(l2) + math.log(limit / m2) / k
    return int(math.exp(log_length)) if log_length < _MAX_LOG_LENGTH else None


def _short(result: dict[str, Any]) -> str:
    if result.get("status") != "ok":
        return str(result.get("reason", ""))
    return f"peak {result['peak_rss_bytes'] / 1e9:.2f} GB, {result['step_s']:.1f} s"


def main(argv: list[str] | None = None) -> None:
    """Run the doubling search by hand and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=16384)
    parser.add_argument("--max-length", type=int, default=2**21)
    parser.add_argument("--memory-gb", type=float, default=16.0)
    parser.add_argument("--cap-s", type=float, default=300.0)
    parser.add_argument("--allocator", choices=ALLOCATORS, default="system")
    args = parser.parse_args(argv)
    limit = int(args.memory_gb * 1e9)
    out = search(
        args.start, args.max_length, limit, args.cap_s, log=print, allocator=args.allocator
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

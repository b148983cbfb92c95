"""Speed and memory workloads, one configuration per call, each meant to run in its own process.

* :func:`attention_step` -- one attention layer, forward + backward (the paper's Figure 5
  and Table 1): this library's full attention (SDPA) and LSH attention, and the peers'
  LSH layers (:mod:`reformer.benchmarks.peers`);
* :func:`depth_step` -- one training step (loss + backward) of a reversible ReformerLM or a
  TransformerLM of a given depth (the paper's Table 3): saved-tensor bytes and peak RSS;
* :func:`lm_step` -- training throughput (loss + backward + AdamW step) of a small
  reversible LSH language model, this library's or a peer's.

Each returns a JSON-serialisable dict from :func:`repro.benchmarking.measurement.measure_steps`
plus what it measured; ``pipelines/benchmark.py`` runs them through
:func:`repro.benchmarking.isolation.run_isolated`. Run one by hand with, for example::

    python reformer/benchmarks/speed.py attention --impl lsh --length 4096 --n-hashes 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: make `reformer` and `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reformer import FullSelfAttention, LSHSelfAttention, ReformerLM, TransformerLM
from reformer.attention import n_buckets_for
from reformer.benchmarks import peers
from reformer.benchmarks.peers import axial_shape
from reformer.memory import saved_tensor_bytes
from repro.benchmarking import MALLOC_STEADY, measure_steps, set_malloc_thresholds
from repro.benchmarking.roofline import count_flops, top_ops

# Our implementations; every other name is a peer of reformer.benchmarks.peers.
OURS = ("full", "lsh")


def _setup(threads: int, seed: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)


def _measure(step: Any, timing: dict[str, Any]) -> dict[str, Any]:
    """:func:`measure_steps` with the timing keyword arguments of the stage."""
    return measure_steps(step, **timing)


def attention_step(
    impl: str,
    length: int,
    batch: int,
    d_model: int = 256,
    n_heads: int = 4,
    bucket_size: int = 64,
    n_hashes: int = 1,
    threads: int = 2,
    seed: int = 0,
    timing: dict[str, Any] | None = None,
    factorise_above: int | None = None,
    profile: int = 0,
) -> dict[str, Any]:
    """Forward + backward of one causal self-attention layer on ``(batch, length, d_model)``.

    Args:
        impl: ``"full"`` (this library's SDPA attention), ``"lsh"`` (this library's LSH
            attention) or a peer name (:data:`reformer.benchmarks.peers.PEERS`).
        length, batch: input shape; ``d_model``, ``n_heads``: layer width and heads.
        bucket_size, n_hashes: LSH chunk length and rounds (ignored by ``"full"``); the
            number of buckets follows the paper's rule (``2 length / bucket_size``) for
            every implementation.
        threads, seed: torch intra-op threads and seed.
        timing: keyword arguments of :func:`repro.benchmarking.measurement.measure_steps`.
        factorise_above: with more buckets than this, ours and HF's hash into two factors
            (:func:`attention_buckets`); ``None``: never.
        profile: instead of the measurement, one warm-up step and one profiled step, whose
            ``profile`` top operators are returned (:func:`repro.benchmarking.roofline.top_ops`);
            0: measure.

    Returns:
        The measurement, plus ``flops`` (one step, forward and backward, as
        ``FlopCounterMode`` counts them: :func:`repro.benchmarking.roofline.flop_counter`),
        ``n_buckets``, ``saved_bytes`` (tensors saved for backward by the forward pass,
        parameters excluded), ``tokens`` and ``threads``; with ``profile``, ``{"profile"}``.
    """
    _setup(threads, seed)
    n_buckets = attention_buckets(length, bucket_size, factorise_above)
    if impl == "full":
        layer: torch.nn.Module = FullSelfAttention(d_model, n_heads, causal=True)
        fn = layer
    elif impl == "lsh":
        layer = LSHSelfAttention(
            d_model, n_heads, bucket_size, n_hashes, causal=True, n_buckets=n_buckets
        )
        fn = layer
    else:
        layer, fn = peers.attention(
            impl, length, d_model, n_heads, bucket_size, n_hashes, n_buckets
        )
    layer.train()
    x = torch.randn(batch, length, d_model, requires_grad=True)
    grad = torch.randn(batch, length, d_model)
    params = list(layer.parameters())
    saved: list[int] = []
    flops: list[int] = []

    def run() -> None:
        if not saved:  # the warm-up step also counts the saved tensors
            with saved_tensor_bytes(ignore=params) as counter:
                out = fn(x)
            saved.append(counter.total)
        else:
            out = fn(x)
        out.backward(grad)
        x.grad = None
        for p in params:
            p.grad = None

    def step() -> None:
        if not flops:  # ... and the FLOPs (a dispatch mode: negligible next to a step)
            flops.append(count_flops(run))
        else:
            run()

    if profile:  # the timing samples' heap settings; the warm-up grows the heap
        set_malloc_thresholds(*MALLOC_STEADY)
        run()
        return {"profile": top_ops(run, profile)}
    result = _measure(step, timing or {})
    n = list(n_buckets) if isinstance(n_buckets, tuple) else n_buckets
    result.update(flops=flops[0], n_buckets=n, saved_bytes=saved[0], tokens=batch * length)
    result["threads"] = torch.get_num_threads()
    return result


def attention_buckets(
    length: int, bucket_size: int, factorise_above: int | None = None
) -> int | tuple[int, int]:
    """The buckets of the benchmarks' LSH layers at ``length``: the paper's rule
    (``2 length / bucket_size``), as two factors above ``factorise_above``.

    A rotation of ``n_buckets / 2`` columns costs ``d_head n_buckets`` FLOPs per position, as
    much as the scores of a ``2 bucket_size`` window when ``n_buckets = 4 bucket_size``, and
    grows with the length; two factors cost ``d_head (n_1 + n_2)``.

    Example:
        >>> attention_buckets(4096, 64), attention_buckets(65536, 64, factorise_above=256)
        (128, (32, 64))
    """
    n_buckets = n_buckets_for(length, bucket_size)
    if factorise_above is not None and n_buckets > factorise_above:
        return bucket_factors(n_buckets)
    return n_buckets


def bucket_factors(n_buckets: int) -> tuple[int, int]:
    """Two even factors of a power-of-two ``n_buckets``, as close to each other as possible.

    Example:
        >>> bucket_factors(16384), bucket_factors(2048)
        ((128, 128), (32, 64))
    """
    if n_buckets < 4 or n_buckets & (n_buckets - 1):
        raise ValueError(f"n_buckets={n_buckets} must be a power of two >= 4 to factorise")
    first, _ = axial_shape(n_buckets)
    return first, n_buckets // first


def reversible_lsh_lm(
    vocab_size: int,
    length: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    d_ff: int,
    bucket_size: int,
    n_hashes: int,
    axial: bool = True,
    chunks: int = 1,
    factorise_above: int | None = None,
) -> ReformerLM:
    """The benchmarks' Reformer: reversible, LSH attention into :func:`attention_buckets`,
    ``chunks`` feed-forward and loss chunks, axial positions or the default ones."""
    positions: dict[str, Any] = (
        {"positional": "axial", "axial_shape": peers.axial_shape(length)} if axial else {}
    )
    model = ReformerLM(
        vocab_size,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        d_ff=d_ff,
        max_seq_len=length,
        attention="lsh",
        n_hashes=n_hashes,
        bucket_size=bucket_size,
        reversible=True,
        ff_chunks=chunks,
        loss_chunks=chunks,
        **positions,
    )
    n_buckets = attention_buckets(length, bucket_size, factorise_above)
    if isinstance(n_buckets, tuple):  # otherwise the layers' own rule gives the same count
        for layer in model.modules():
            if isinstance(layer, LSHSelfAttention):
                layer.n_buckets = n_buckets
    return model


def _tokens(batch: int, length: int, vocab_size: int) -> torch.Tensor:
    return torch.randint(0, vocab_size, (batch, length))


def depth_step(
    kind: str,
    n_layers: int,
    length: int,
    batch: int,
    vocab_size: int = 256,
    d_model: int = 256,
    n_heads: int = 4,
    d_ff: int = 1024,
    bucket_size: int = 64,
    n_hashes: int = 2,
    threads: int = 2,
    seed: int = 0,
    timing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One training step (loss + backward) against depth, its activation memory.

    The gradient buffers are kept between steps (zeroed, not freed, as a training loop
    that keeps them does), so a step's peak RSS growth is what the step itself allocates:
    activations and temporaries. ``gradient_bytes`` (4 bytes per float32 parameter, growing
    with depth by design) is reported beside it.

    Args:
        kind: ``"reformer"`` (reversible ReformerLM, LSH attention) or ``"transformer"``
            (TransformerLM: full attention, ordinary residuals).
        n_layers: depth. Other arguments: model shape and measurement settings.

    Returns:
        The measurement plus ``saved_bytes`` (activations saved for backward, parameters
        excluded), ``gradient_bytes``, ``parameters`` and ``tokens``.
    """
    _setup(threads, seed)
    common = dict(d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ff=d_ff)
    if kind == "reformer":
        model: torch.nn.Module = reversible_lsh_lm(
            vocab_size, length, bucket_size=bucket_size, n_hashes=n_hashes, axial=False, **common
        )
    elif kind == "transformer":
        model = TransformerLM(vocab_size, max_seq_len=length, **common)
    else:
        raise ValueError(f"kind={kind!r} is not allowed: use 'reformer' or 'transformer'")
    model.train()
    tokens = _tokens(batch, length, vocab_size)
    targets = tokens.roll(-1, dims=1)
    params = list(model.parameters())
    saved: list[int] = []

    def step() -> None:
        if not saved:
            with saved_tensor_bytes(ignore=params) as counter:
                loss = model.loss(tokens, targets)
            saved.append(counter.total)
        else:
            loss = model.loss(tokens, targets)
        loss.backward()
        model.zero_grad(set_to_none=False)

    result = _measure(step, timing or {})
    result.update(
        gradient_bytes=sum(p.numel() * p.element_size() for p in params),
        saved_bytes=saved[0],
        parameters=sum(p.numel() for p in params),
        tokens=batch * length,
        threads=torch.get_num_threads(),
    )
    return result


def lm_step(
    impl: str,
    length: int,
    batch: int,
    vocab_size: int = 256,
    d_model: int = 256,
    n_layers: int = 2,
    n_heads: int = 4,
    d_ff: int = 512,
    bucket_size: int = 64,
    n_hashes: int = 2,
    threads: int = 2,
    seed: int = 0,
    timing: dict[str, Any] | None = None,
    factorise_above: int | None = None,
) -> dict[str, Any]:
    """Training throughput: loss + backward + AdamW step of a reversible LSH language model.

    Args:
        impl: ``"ours"`` (ReformerLM: reversible, unchunked, axial positions) or a peer name.
        length, batch: input shape; vocab_size, ..., n_hashes: model shape.
        threads, seed, timing: torch threads, seed, ``measure_steps`` keyword arguments.
        factorise_above: with more buckets than this, ours and HF's hash into two factors
            (:func:`attention_buckets`), as in :func:`attention_step`; ``None``: never.

    Returns:
        The measurement plus ``tokens_per_s`` (``{"median", "min", "max"}``, from the step
        times) and ``parameters``.
    """
    _setup(threads, seed)
    shape = (d_model, n_layers, n_heads, d_ff, bucket_size, n_hashes)
    if impl == "ours":
        model: torch.nn.Module = reversible_lsh_lm(
            vocab_size, length, *shape, factorise_above=factorise_above
        )

        def loss_fn(tokens: torch.Tensor) -> torch.Tensor:
            return model.loss(tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous())

        # ReformerLM needs a multiple of the bucket size: feed length + 1 tokens.
        extra = 1
    else:
        n_buckets = attention_buckets(length, bucket_size, factorise_above)
        model, loss_fn = peers.language_model(impl, length, vocab_size, *shape, n_buckets)
        extra = 0
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = _tokens(batch, length + extra, vocab_size)

    def step() -> None:
        loss_fn(tokens).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    result = _measure(step, timing or {})
    n = batch * length
    t = result["time_s"]
    result.update(
        tokens=n,
        tokens_per_s={"median": n / t["median"], "min": n / t["max"], "max": n / t["min"]},
        parameters=sum(p.numel() for p in model.parameters()),
        threads=torch.get_num_threads(),
    )
    return result


def main(argv: list[str] | None = None) -> None:
    """Run one workload in this process and print its JSON (for profiling by hand)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["attention", "depth", "lm"])
    parser.add_argument("--impl", default="lsh", help="attention/lm: lsh|full|ours|<peer>")
    parser.add_argument("--kind", default="reformer", help="depth: reformer|transformer")
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--n-hashes", type=int, default=1)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    timing = {"repeats": args.repeats}
    if args.workload == "attention":
        out = attention_step(
            args.impl,
            args.length,
            args.batch,
            n_hashes=args.n_hashes,
            threads=args.threads,
            timing=timing,
        )
    elif args.workload == "depth":
        out = depth_step(
            args.kind,
            args.n_layers,
            args.length,
            args.batch,
            threads=args.threads,
            timing=timing,
        )
    else:
        out = lm_step(
            args.impl,
            args.length,
            args.batch,
            n_layers=args.n_layers,
            n_hashes=args.n_hashes,
            threads=args.threads,
            timing=timing,
        )
    out.pop("samples", None)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

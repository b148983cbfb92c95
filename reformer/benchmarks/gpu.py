"""Accelerator workloads: attention against SDPA's flash kernel, the longest trainable length
on the card, and the achieved fraction of the card's peak bf16 FLOP/s of the matmuls.

* :func:`attention_case` -- one causal attention layer, forward + backward, in ``dtype``:
  ``"flash"`` (this library's full attention with SDPA restricted to its flash kernel) or
  ``"lsh"`` (LSH attention with ``n_hashes`` rounds);
* :func:`train_step` -- one training step (loss + backward + AdamW step) of the 6-layer
  reversible LSH-1 language model of the CPU ``longest`` section, under bf16 autocast;
* :func:`matmul_utilisation` -- the matrix products of one LSH attention layer and of one
  feed-forward layer, forward + backward, under torch.profiler: their FLOPs, counted from the
  recorded shapes, over their time on the device.

Times are wall clock with the device synchronised after every step (a warm-up step first);
memory is the growth of ``torch.cuda.max_memory_allocated`` during the timed steps. Every
function also runs on the CPU (no memory figure there), which is how the test suite checks
them without a GPU; ``pipelines/benchmark_gpu.py`` runs them and writes the committed
``metrics/benchmark-gpu.json`` from a CUDA device only.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reformer import ChunkedFeedForward, FullSelfAttention, LSHSelfAttention
from reformer.benchmarks.longest import longest_model
from repro.benchmarking import is_out_of_memory, summarize

# Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets,
# matched in this order against torch.cuda.get_device_name(), so "H100 PCIe" comes before
# "H100" (the SXM card) and "A100", "L40S" before "A10", "L4".
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10", 125.0),
)

# Matmul ops whose FLOPs are counted: (name, index of the left operand in the recorded
# input shapes). addmm and baddbmm take the added tensor first.
_MATMULS = {
    "aten::mm": 0,
    "aten::bmm": 0,
    "aten::addmm": 1,
    "aten::baddbmm": 1,
    "aten::baddbmm_": 1,
}


def peak_bf16_tflops(device_name: str) -> float | None:
    """The data-sheet dense bf16 peak of a card, by its name, or ``None`` when unknown.

    Example:
        >>> peak_bf16_tflops("NVIDIA H100 PCIe"), peak_bf16_tflops("NVIDIA H100 80GB HBM3")
        (756.0, 989.4)
        >>> peak_bf16_tflops("NVIDIA A10"), peak_bf16_tflops("cpu") is None
        (125.0, True)
    """
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in device_name:
            return tflops
    return None


def device_name(device: torch.device) -> str:
    """``torch.cuda.get_device_name`` for a CUDA device, else the device type."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def time_steps(
    step: Callable[[], Any], device: torch.device, warmup: int = 1, repeats: int = 5
) -> dict[str, Any]:
    """Median, min and max seconds of ``step`` after ``warmup`` untimed calls, plus
    ``peak_bytes``: the growth of the device's peak allocation during the timed calls
    (``None`` on the CPU)."""
    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        _sync(device)
        samples.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else None
    return {"time_s": summarize(samples), "peak_bytes": peak}


@contextlib.contextmanager
def _guarded(result: dict[str, Any], device: torch.device) -> Iterator[None]:
    """Record an allocation failure in ``result`` instead of raising (the device is freed)."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        result.update(status="out of memory", error=str(error).splitlines()[0][:200])
    finally:
        _free(device)


def attention_case(
    impl: str,
    length: int,
    batch: int,
    device: torch.device,
    dtype: torch.dtype = torch.bfloat16,
    d_model: int = 256,
    n_heads: int = 4,
    bucket_size: int = 64,
    n_hashes: int = 1,
    warmup: int = 1,
    repeats: int = 5,
) -> dict[str, Any]:
    """Forward + backward of one causal self-attention layer on ``(batch, length, d_model)``.

    Args:
        impl: ``"flash"`` (full attention, SDPA restricted to its flash kernel) or ``"lsh"``.
        length, batch: input shape; the other arguments as in the CPU sweep.

    Returns:
        ``{"implementation", "n_hashes", "length", "batch", "tokens", "status", "time_s",
        "peak_bytes"}``; ``status`` is ``"ok"`` or ``"out of memory"``.
    """
    if impl not in ("flash", "lsh"):
        raise ValueError(f"impl={impl!r} is not allowed: use 'flash' or 'lsh'")
    result: dict[str, Any] = {
        "implementation": impl,
        "n_hashes": n_hashes if impl == "lsh" else None,
        "length": length,
        "batch": batch,
        "tokens": batch * length,
        "status": "ok",
    }
    with _guarded(result, device):
        kernel: Callable[[], Any] = contextlib.nullcontext
        if impl == "flash":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            layer: torch.nn.Module = FullSelfAttention(d_model, n_heads, causal=True)
            kernel = functools.partial(sdpa_kernel, SDPBackend.FLASH_ATTENTION)
        else:
            layer = LSHSelfAttention(
                d_model, n_heads, bucket_size=bucket_size, n_hashes=n_hashes, causal=True
            )
        layer = layer.to(device, dtype).train()
        x = torch.randn(batch, length, d_model, device=device, dtype=dtype, requires_grad=True)
        grad = torch.randn_like(x)

        def step() -> None:
            with kernel():
                layer(x).backward(grad)
            x.grad = None
            layer.zero_grad(set_to_none=True)

        result.update(time_steps(step, device, warmup, repeats))
    return result


def train_step(
    length: int,
    device: torch.device,
    dtype: torch.dtype = torch.bfloat16,
    **model: Any,
) -> dict[str, Any]:
    """One training step of :func:`reformer.benchmarks.longest.longest_model` at ``length`` tokens
    (batch 1), under ``dtype`` autocast with float32 weights and AdamW.

    Returns:
        ``{"length", "status", "step_s", "peak_bytes"}`` (``status`` ``"ok"`` or
        ``"out of memory"``; ``peak_bytes`` is ``None`` on the CPU).
    """
    result: dict[str, Any] = {"length": length, "status": "ok"}
    with _guarded(result, device):
        net = longest_model(length, **model).to(device).train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
        tokens = torch.randint(0, net.vocab_size, (1, length), device=device)
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype):
            loss = net.loss(tokens, tokens.roll(-1, dims=1))
        loss.backward()
        optimizer.step()
        _sync(device)
        result["step_s"] = time.perf_counter() - t0
        result["peak_bytes"] = (
            torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        )
        del net, optimizer, loss
    return result


def matmul_flops(name: str, shapes: list[list[int]]) -> int:
    """FLOPs of one matmul op from its recorded input shapes (2 per multiply-add).

    Example:
        >>> matmul_flops("aten::mm", [[8, 4], [4, 3]])
        192
        >>> matmul_flops("aten::baddbmm_", [[2, 8, 3], [2, 8, 4], [2, 4, 3]])
        384
    """
    left = shapes[_MATMULS[name]]
    right = shapes[_MATMULS[name] + 1]
    batch = left[0] if len(left) == 3 else 1
    m, k = left[-2], left[-1]
    return 2 * batch * m * k * right[-1]


def matmul_utilisation(
    module: torch.nn.Module,
    x: torch.Tensor,
    steps: int = 3,
    peak_tflops: float | None = None,
) -> dict[str, Any]:
    """FLOPs and device time of the matrix products in ``steps`` forward + backward passes of
    ``module`` on ``x`` (after one untimed pass), from torch.profiler.

    Returns:
        ``{"flops", "time_s", "tflops", "fraction_of_peak", "ops"}``: FLOPs counted from the
        recorded shapes of mm, addmm, bmm and baddbmm; ``time_s`` their own time on the device
        (the CPU's when ``x`` is on the CPU); ``fraction_of_peak`` is ``tflops / peak_tflops``
        (``None`` without a peak); ``ops`` the count of matmul calls.
    """
    from torch.profiler import ProfilerActivity, profile

    device = x.device
    grad = torch.randn_like(module(x))
    module(x).backward(grad)
    _sync(device)
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities, record_shapes=True) as prof:
        for _ in range(steps):
            module(x).backward(grad)
        _sync(device)
    flops, micros, ops = 0, 0.0, 0
    for event in prof.key_averages(group_by_input_shape=True):
        if event.key not in _MATMULS:
            continue
        flops += matmul_flops(event.key, event.input_shapes) * event.count
        on_cuda = device.type == "cuda"
        micros += event.self_device_time_total if on_cuda else event.self_cpu_time_total
        ops += event.count
    time_s = micros / 1e6
    tflops = flops / time_s / 1e12 if time_s > 0 else None
    fraction = tflops / peak_tflops if tflops is not None and peak_tflops else None
    return {
        "flops": flops // steps,
        "time_s": time_s / steps,
        "tflops": tflops,
        "fraction_of_peak": fraction,
        "ops": ops // steps,
    }


def utilisation_case(
    length: int,
    batch: int,
    device: torch.device,
    dtype: torch.dtype = torch.bfloat16,
    d_model: int = 256,
    n_heads: int = 4,
    d_ff: int = 1024,
    bucket_size: int = 64,
    n_hashes: int = 1,
    peak_tflops: float | None = None,
) -> dict[str, Any]:
    """:func:`matmul_utilisation` of one LSH attention layer and one feed-forward layer
    (``dtype`` weights and input) on ``(batch, length, d_model)``."""
    x = torch.randn(batch, length, d_model, device=device, dtype=dtype, requires_grad=True)
    attention = LSHSelfAttention(
        d_model, n_heads, bucket_size=bucket_size, n_hashes=n_hashes, causal=True
    )
    ff = ChunkedFeedForward(d_model, d_ff)
    return {
        "length": length,
        "batch": batch,
        "attention": matmul_utilisation(attention.to(device, dtype), x, peak_tflops=peak_tflops),
        "feed_forward": matmul_utilisation(ff.to(device, dtype), x, peak_tflops=peak_tflops),
    }

"""The machine's limit: its matmul FLOP/s, the FLOPs of a step, and where a step's time goes.

A step's time says little on its own; against the machine's own matrix-multiply rate it says
how far the code is from the limit. :func:`matmul_peak` measures that rate (a large square
``torch.mm`` with the threads the step uses, in the same run, so both see the same machine),
:func:`count_flops` counts a step's floating-point operations with
``torch.utils.flop_counter.FlopCounterMode`` (matrix products only: ``mm``, ``bmm``,
attention kernels; elementwise work counts zero), and :func:`top_ops` profiles one step with
``torch.profiler`` and lists the operators that take its time. ``flops / time / peak`` is the
fraction of the peak a step reaches.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["count_flops", "flop_counter", "matmul_peak", "top_ops"]


def _extra_formulas() -> dict[Any, Any]:
    """Formulas ``FlopCounterMode`` lacks: in-place ``baddbmm_``/``addmm_``/``addbmm_`` (the
    registry has only the out-of-place ops) and the CPU flash attention of SDPA."""
    import torch
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten

    def raw(formula: Callable[..., int]) -> Callable[..., int]:
        # The registry's formulas already take tensors (they map them to shapes themselves).
        def counted(*args: Any, **kwargs: Any) -> int:
            return formula(*args, **kwargs)

        counted._get_raw = True  # type: ignore[attr-defined]
        return counted

    extra: dict[Any, Any] = {aten.baddbmm_: raw(fc.baddbmm_flop), aten.addmm_: raw(fc.addmm_flop)}

    def sdpa_cpu(query, key, value, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return fc.sdpa_flop_count(query, key, value)

    def sdpa_cpu_backward(grad_out, query, key, value, *args: Any, **kwargs: Any) -> int:
        return fc.sdpa_backward_flop_count(grad_out, query, key, value)

    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", sdpa_cpu),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", sdpa_cpu_backward),
    ):
        op = getattr(aten, name, None)
        if op is not None:
            extra[op] = formula
    return extra


def flop_counter() -> Any:
    """A ``FlopCounterMode`` (no display) that also counts the in-place matrix products and
    SDPA's CPU kernel; use as a context manager, then ``.get_total_flops()``.

    Example:
        >>> import torch
        >>> a = torch.ones(2, 3, 4)
        >>> with flop_counter() as counter:
        ...     _ = torch.ones(2, 3, 5).baddbmm_(a, torch.ones(2, 4, 5))
        >>> counter.get_total_flops()  # 2 * (2 * 3 * 4 * 5)
        240
    """
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False, custom_mapping=_extra_formulas())


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of ``fn()`` (forward and, if ``fn`` runs it, backward) as ``FlopCounterMode``
    counts them, with :func:`flop_counter`'s additions.

    Example:
        >>> import torch
        >>> count_flops(lambda: torch.ones(4, 8) @ torch.ones(8, 2))  # 2 * 4 * 8 * 2
        128
    """
    with flop_counter() as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_peak(threads: int, size: int = 2048, repeats: int = 7) -> dict[str, Any]:
    """This process's float32 ``torch.mm`` rate on two ``size x size`` matrices.

    Run it in a fresh process with the threads the measured steps use. One untimed product
    first, then ``repeats`` timed ones; ``flops_per_s`` is ``2 size^3`` over their median time
    (the same statistic as the steps it is compared with), ``best_flops_per_s`` over the
    fastest.

    Returns:
        ``{"flops_per_s", "best_flops_per_s", "size", "threads", "samples_s"}``.

    Example:
        >>> peak = matmul_peak(1, size=64, repeats=3)
        >>> peak["flops_per_s"] > 0 and peak["best_flops_per_s"] >= peak["flops_per_s"]
        True
    """
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=g) for _ in range(2))
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    samples = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        samples.append(time.perf_counter() - t0)
    flops = 2 * size**3
    return {
        "flops_per_s": flops / statistics.median(samples),
        "best_flops_per_s": flops / min(samples),
        "size": size,
        "threads": torch.get_num_threads(),
        "samples_s": samples,
    }


def top_ops(step: Callable[[], Any], n: int = 6) -> dict[str, Any]:
    """Profile one call of ``step`` with ``torch.profiler`` (CPU) and list the ``n``
    operators with the most self CPU time, each with its share of the profiled total.

    Returns:
        ``{"total_s", "ops": [{"name", "self_s", "share", "calls"}]}``.

    Example:
        >>> import torch
        >>> a = torch.ones(64, 64)
        >>> profile = top_ops(lambda: a @ a, n=1)
        >>> profile["ops"][0]["name"]
        'aten::mm'
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return {
        "total_s": total / 1e6,
        "ops": [
            {
                "name": e.key,
                "self_s": e.self_cpu_time_total / 1e6,
                "share": e.self_cpu_time_total / total,
                "calls": e.count,
            }
            for e in events[:n]
        ],
    }

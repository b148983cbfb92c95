"""Timing and memory measurement for the speed and memory benchmarks.

Timing on a small shared CPU machine is noisy and process peak memory (RSS) includes a few
hundred megabytes of libraries, so the benchmarks follow a few rules, all implemented here:

* every configuration runs in a fresh process (:func:`run_isolated`), forked from a server
  that has only imported the libraries, so no configuration inherits another's heap;
* a figure is the median of repeats, reported with its minimum and maximum
  (:func:`summarize`), after an untimed warm-up step;
* peak memory is a delta: the kernel's peak-RSS counter is reset after the warm-up step
  (``/proc/self/clear_refs``), and the peak during a step minus the RSS before it is the
  step's memory (:class:`PeakRSS`). During that step large buffers go straight back to the
  operating system (glibc thresholds, :data:`MALLOC_MEASURE`), so a warm-up does not hide
  its allocations; timed steps run with glibc's usual steady state
  (:data:`MALLOC_STEADY`);
* a sample is "contended" when other processes used the CPU while it ran
  (:class:`CpuSample`); the medians use uncontended samples when there are any.

Every function here is independent of the model code; the workloads live in
``benchmarks/`` and the stage in ``pipelines/benchmark.py``.
"""

from __future__ import annotations

import importlib.metadata
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

# glibc keeps freed heap memory for reuse and raises its mmap threshold after freeing a
# large block (up to 32 MiB); either would hide a step's allocations behind earlier steps.
# While a memory sample runs, a fixed 128 KiB threshold makes every larger block its own
# mapping, returned to the system on free. Timing samples run with glibc's steady state
# (a 32 MiB threshold, as after its own dynamic adjustment): a new mapping per block costs
# page faults on every step and would double the time of memory-hungry layers.
MALLOC_MEASURE = (128 * 1024, 128 * 1024)  # (mmap threshold, trim threshold), bytes
MALLOC_STEADY = (32 * 2**20, 64 * 2**20)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h constants


def _libc() -> Any:
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def set_malloc_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    """Fix glibc's ``mmap`` and trim thresholds of the running process (``mallopt``).

    Args:
        mmap_threshold: blocks at least this large get their own mapping.
        trim_threshold: free memory at the top of the heap beyond this is returned.

    Returns:
        True where glibc accepted both (False elsewhere, for example on macOS).

    Example:
        >>> isinstance(set_malloc_thresholds(*MALLOC_STEADY), bool)
        True
    """
    try:
        libc = _libc()
        ok = libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
        libc.malloc_trim(0)  # give back what the heap holds free now
    except (OSError, AttributeError):
        return False
    return bool(ok)


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    """Median, minimum and maximum of ``samples`` (the median of an even count is the mean
    of the two middle values).

    Args:
        samples: one or more numbers.

    Returns:
        ``{"median", "min", "max", "n", "samples"}``.

    Raises:
        ValueError: when ``samples`` is empty.

    Example:
        >>> s = summarize([3.0, 1.0, 2.0, 10.0])
        >>> s["median"], s["min"], s["max"], s["n"]
        (2.5, 1.0, 10.0, 4)
    """
    values = [float(v) for v in samples]
    if not values:
        raise ValueError("samples=[] is not allowed: give at least one number")
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "samples": values,
    }


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes (``None`` where there is none)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def current_rss() -> int:
    """Resident set size of this process now, in bytes.

    Example:
        >>> current_rss() > 0
        True
    """
    rss = _status_bytes("VmRSS")
    if rss is not None:
        return rss
    # Without /proc: the peak is the best available upper bound.
    return peak_rss()


def peak_rss() -> int:
    """Peak resident set size of this process since start (or the last
    :func:`reset_peak_rss`), in bytes.

    Example:
        >>> peak_rss() >= current_rss()
        True
    """
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # macOS: bytes, Linux: KiB


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter to the current RSS (Linux ``clear_refs``).

    Returns:
        True when the counter was reset; False where the kernel does not allow it (then
        :func:`peak_rss` keeps the process-lifetime peak).

    Example:
        >>> isinstance(reset_peak_rss(), bool)
        True
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class PeakRSS:
    """Peak RSS growth of the process while the ``with`` block runs.

    Attributes (after the block): ``baseline`` (RSS before, bytes), ``peak`` (peak RSS
    during, bytes), ``delta = peak - baseline`` and ``method``: ``"clear_refs"`` when the
    peak counter could be reset first, else ``"ru_maxrss"`` (the lifetime peak, an upper
    bound).

    Example:
        >>> with PeakRSS() as mem:
        ...     block = b"x" * (64 * 2**20)  # 64 MiB, every page written
        >>> mem.delta >= 60 * 2**20
        True
    """

    def __init__(self) -> None:
        self.baseline = 0
        self.peak = 0
        self.delta = 0
        self.method = ""

    def __enter__(self) -> PeakRSS:
        self.method = "clear_refs" if reset_peak_rss() else "ru_maxrss"
        self.baseline = current_rss()
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(peak_rss(), current_rss())
        self.delta = self.peak - self.baseline


def _cpu_jiffies() -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of all CPUs from ``/proc/stat``."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class CpuSample:
    """Wall time, this process's CPU time and other processes' CPU time over a block.

    Attributes (after the block): ``wall`` (s), ``cpu`` (this process, all threads, s),
    ``foreign`` (CPU seconds used by every other process, from ``/proc/stat``; ``None``
    where unavailable), and ``contended``: ``foreign`` above ``threshold`` of the block's
    wall time (that is, another process took a noticeable share of a core).

    Args:
        threshold: share of one core's time that counts as contention.

    Example:
        >>> with CpuSample() as s:
        ...     _ = sum(range(10_000))
        >>> s.wall >= 0 and s.cpu >= 0
        True
    """

    def __init__(self, threshold: float = 0.1) -> None:
        self.threshold = threshold
        self.wall = 0.0
        self.cpu = 0.0
        self.foreign: float | None = None
        self.contended = False

    def __enter__(self) -> CpuSample:
        self._jiffies = _cpu_jiffies()
        self._times = os.times()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        times = os.times()
        self.cpu = (times.user - self._times.user) + (times.system - self._times.system)
        jiffies = _cpu_jiffies()
        if jiffies is not None and self._jiffies is not None:
            hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            busy = (jiffies[0] - self._jiffies[0]) / hz
            self.foreign = max(0.0, busy - self.cpu)
            self.contended = self.foreign > self.threshold * max(self.wall, 1e-9)


def wait_for_quiet(max_wait_s: float, threshold: float = 0.1, window_s: float = 0.25) -> float:
    """Sleep until other processes leave the CPUs idle, for at most ``max_wait_s``.

    "Idle": over a ``window_s`` window, every other process together used less than
    ``threshold`` of one core (``/proc/stat`` minus this process's own CPU time).

    Args:
        max_wait_s: longest wait; 0 returns at once.
        threshold: share of one core that still counts as idle.
        window_s: observation window.

    Returns:
        Seconds waited.

    Example:
        >>> wait_for_quiet(0.0)
        0.0
    """
    if max_wait_s <= 0:
        return 0.0
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    t0 = time.perf_counter()
    while True:
        before, own_before = _cpu_jiffies(), os.times()
        time.sleep(window_s)
        after, own_after = _cpu_jiffies(), os.times()
        waited = time.perf_counter() - t0
        if before is None or after is None:
            return waited
        own = (own_after.user - own_before.user) + (own_after.system - own_before.system)
        foreign = (after[0] - before[0]) / hz - own
        if foreign < threshold * window_s or waited >= max_wait_s:
            return waited


def _timed(step: Callable[[], Any]) -> dict[str, Any]:
    """Run ``step`` once under :class:`CpuSample`."""
    with CpuSample() as cpu:
        step()
    return {"wall": cpu.wall, "cpu": cpu.cpu, "foreign": cpu.foreign, "contended": cpu.contended}


def measure_steps(
    step: Callable[[], Any],
    *,
    warmup: int = 1,
    repeats: int = 3,
    min_repeats: int = 1,
    max_repeats: int | None = None,
    budget_s: float = 10.0,
    cap_s: float | None = None,
    long_step_s: float | None = None,
    quiet_wait_s: float = 0.0,
    memory: bool = True,
    memory_repeats: int = 1,
) -> dict[str, Any]:
    """Measure the peak RSS growth of ``step``, then time it over repeats.

    Memory first, with glibc set to return every block over 128 KiB at once
    (:data:`MALLOC_MEASURE`, set before the warm-up so that no earlier heap growth is
    reused): ``warmup`` steps, then ``memory_repeats`` steps, each with the peak-RSS counter
    reset (:class:`PeakRSS`). Then time, with glibc in its steady state
    (:data:`MALLOC_STEADY`): one more untimed step, then samples until ``repeats``
    uncontended ones exist, or ``max_repeats`` in all, or the time budget is spent with at
    least ``min_repeats``.

    An expensive step (the last warm-up step took longer than ``long_step_s``) saves steps:
    the warm-up step's own peak is the memory sample and the first steady-state step is the
    first timed sample (one-time costs are then a negligible part of either). When the
    warm-up step takes longer than ``cap_s``, nothing more runs, ``"over_cap"`` is True and
    the warm-up time is reported.

    Args:
        step: the work of one step (for example forward + backward).
        warmup: steps before the memory samples (at least 1 when ``memory``).
        repeats: wanted uncontended timed samples.
        min_repeats: timed samples taken whatever the budget.
        max_repeats: most timed samples (default ``2 * repeats``).
        budget_s: wall-clock budget of the timed samples (waits excluded).
        cap_s: longest acceptable warm-up step.
        long_step_s: above this a step counts as expensive (``None``: never).
        quiet_wait_s: before each timed step, wait up to this long for other processes to
            leave the CPU idle (:func:`wait_for_quiet`).
        memory: measure the peak RSS growth of a step.
        memory_repeats: memory samples (each one step).

    Returns:
        ``{"time_s": summarize(...), "cpu_s": summarize(...), "peak_rss_bytes":
        summarize(...) or None, "warmup_s": [...], "n_contended": int, "n_samples": int,
        "memory_method": str, "memory_first_step": bool, "over_cap": bool,
        "quiet_waited_s": float, "samples": [{"wall", "cpu", "foreign", "contended",
        "first_step"}]}``; ``time_s`` and ``cpu_s`` summarise the uncontended samples when
        there are any, else all of them.

    Example:
        >>> r = measure_steps(lambda: sum(range(1000)), repeats=3, memory=False)
        >>> r["n_samples"] >= 3 and r["time_s"]["min"] <= r["time_s"]["median"]
        True
    """
    if repeats < 1 or min_repeats < 1:
        raise ValueError(f"repeats={repeats}, min_repeats={min_repeats} must be >= 1")
    max_repeats = max(max_repeats or 2 * repeats, min_repeats)
    n_warmup = max(warmup, 1 if memory else 0)
    set_malloc_thresholds(*(MALLOC_MEASURE if memory else MALLOC_STEADY))
    warmup_s: list[float] = []
    first_delta, method = 0, ""
    for _ in range(n_warmup):
        mem = PeakRSS()
        with mem:
            t0 = time.perf_counter()
            step()
            warmup_s.append(time.perf_counter() - t0)
        first_delta, method = mem.delta, mem.method
    long = bool(warmup_s) and long_step_s is not None and warmup_s[-1] > long_step_s
    over_cap = bool(warmup_s) and cap_s is not None and warmup_s[-1] > cap_s
    peak, memory_first_step = None, False
    if memory:
        if long or over_cap:
            deltas, memory_first_step = [first_delta], True
        else:
            deltas = []
            for _ in range(max(1, memory_repeats)):
                with PeakRSS() as mem:
                    step()
                deltas.append(mem.delta)
        peak = summarize(deltas)
    set_malloc_thresholds(*MALLOC_STEADY)
    samples: list[dict[str, Any]] = []
    waited = 0.0
    if over_cap:
        samples.append(
            {
                "wall": warmup_s[-1],
                "cpu": float("nan"),
                "foreign": None,
                "contended": False,
                "first_step": True,
            }
        )
    elif not long:
        step()  # the heap's first growth in the steady state is not timed
    while not over_cap:
        clean = [s for s in samples if not s["contended"]]
        spent = sum(s["wall"] for s in samples)  # waits excluded
        previous = samples[-1]["wall"] if samples else 0.0
        if len(samples) >= max_repeats or len(clean) >= repeats:
            break
        if len(samples) >= min_repeats and spent + previous > budget_s:
            break
        waited += wait_for_quiet(quiet_wait_s)
        samples.append({**_timed(step), "first_step": not samples and long})
    clean = [s for s in samples if not s["contended"]]
    return {
        **_summarize_samples(samples),
        "peak_rss_bytes": peak,
        "warmup_s": warmup_s,
        "n_contended": len(samples) - len(clean),
        "n_samples": len(samples),
        "memory_method": method,
        "memory_first_step": memory_first_step,
        "over_cap": over_cap,
        "quiet_waited_s": waited,
        "samples": samples,
    }


def _summarize_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """``time_s`` and ``cpu_s`` of timed samples: the uncontended ones, or all if none is."""
    use = [s for s in samples if not s["contended"]] or samples
    return {
        "time_s": summarize([s["wall"] for s in use]),
        "cpu_s": summarize([s["cpu"] for s in use]),
    }


def pool_measurements(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One measurement from several processes' :func:`measure_steps` of the same step.

    On a shared machine a whole process can run 20% fast or slow (where its memory lands,
    what its neighbours do), so one process decides a short configuration's median. Pooling
    the samples of processes run at different times makes that median less a matter of luck.
    The samples are pooled (uncontended ones if any), the memory samples too, and the counts
    added; the other fields come from the first result.

    Args:
        results: one or more :func:`measure_steps` results, each with its ``samples``.

    Returns:
        A result of the same form, with ``processes`` set to ``len(results)``.

    Raises:
        ValueError: when ``results`` is empty.

    Example:
        >>> def run(*walls):
        ...     samples = [{"wall": w, "cpu": w, "contended": False} for w in walls]
        ...     return {"samples": samples, "n_contended": 0, "n_samples": len(walls),
        ...             "warmup_s": [1.0], "quiet_waited_s": 0.5, "peak_rss_bytes": None}
        >>> pool_measurements([run(1.0, 2.0), run(4.0)])["time_s"]["median"]
        2.0
    """
    if not results:
        raise ValueError("results=[] is not allowed: give at least one measurement")
    samples = [s for r in results for s in r["samples"]]
    memory = [r["peak_rss_bytes"] for r in results if r.get("peak_rss_bytes")]
    return {
        **results[0],
        **_summarize_samples(samples),
        "peak_rss_bytes": summarize([v for m in memory for v in m["samples"]]) if memory else None,
        "warmup_s": [w for r in results for w in r["warmup_s"]],
        "n_contended": sum(r["n_contended"] for r in results),
        "n_samples": sum(r["n_samples"] for r in results),
        "over_cap": any(r.get("over_cap") for r in results),
        "quiet_waited_s": sum(r["quiet_waited_s"] for r in results),
        "samples": samples,
        "processes": len(results),
    }


def limit_memory(extra_bytes: int | None) -> int | None:
    """Cap this process's address space at its current size plus ``extra_bytes``.

    Virtual size is never below resident size, so the resident memory can then grow by at
    most ``extra_bytes``; an allocation beyond that fails with an error instead of pulling
    the machine into the kernel's out-of-memory killer.

    Args:
        extra_bytes: allowed growth; ``None`` leaves the limit alone.

    Returns:
        The limit set (bytes), or ``None``.

    Example:
        >>> limit_memory(None) is None
        True
    """
    if extra_bytes is None:
        return None
    size = _status_bytes("VmSize")
    if size is None:
        return None
    limit = size + int(extra_bytes)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (Python's or torch's allocator).

    Example:
        >>> is_out_of_memory(MemoryError()), is_out_of_memory(ValueError("x"))
        (True, False)
    """
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return any(
        s in text for s in ("can't allocate memory", "out of memory", "cannot allocate memory")
    )


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or ``None`` when it is not installed.

    Example:
        >>> package_version("a-package-that-is-not-installed") is None
        True
    """
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`).

    Example:
        >>> isinstance(cpu_model(), str)
        True
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(packages: Sequence[str] = ("torch",)) -> dict[str, Any]:
    """What a benchmark figure depends on: machine, CPU, memory, threads and versions.

    Args:
        packages: distributions whose versions to record (``None`` when not installed).

    Returns:
        A JSON-serialisable dict.

    Example:
        >>> info = machine_info(["torch"])
        >>> info["cpu_count"] >= 1, info["versions"]["torch"] is not None
        (True, True)
    """
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    mem_total = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cpus_usable": affinity,
        "machine": platform.machine(),
        "memory_bytes": mem_total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cuda": torch.cuda.is_available(),
        "versions": {name: package_version(name) for name in packages},
    }


# ----------------------------------------------------------------------------- isolation

_CONTEXT: Any = None


def isolation_context(preload: Sequence[str] = ()) -> Any:
    """The multiprocessing context that :func:`run_isolated` uses.

    On Linux a ``forkserver``: one server process imports ``preload`` once (for example
    ``torch`` and the peers, whose imports take seconds) and forks a fresh child for every
    configuration, so no child inherits another's heap or threads. Elsewhere ``spawn``.
    The first call fixes the preload list.

    Example:
        >>> isolation_context().get_start_method() in ("forkserver", "spawn")
        True
    """
    global _CONTEXT
    if _CONTEXT is None:
        methods = multiprocessing.get_all_start_methods()
        if "forkserver" in methods:
            _CONTEXT = multiprocessing.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(list(preload))
        else:
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def _child(conn: Any, fn: Callable[..., dict], kwargs: dict, memory_bytes: int | None) -> None:
    try:
        limit_memory(memory_bytes)
        result = fn(**kwargs)
    except BaseException as error:  # every failure, with its reason, goes back to the parent
        oom = is_out_of_memory(error)
        result = {
            "status": "out of memory" if oom else "error",
            "reason": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            "traceback": None if oom else traceback.format_exc(limit=-4),
        }
    conn.send(result)
    conn.close()


def run_isolated(
    fn: Callable[..., dict],
    kwargs: dict[str, Any],
    *,
    timeout_s: float | None = None,
    memory_bytes: int | None = None,
    preload: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``fn(**kwargs)`` in a fresh process and return its dict.

    ``fn`` must be importable by name (a module-level function). The child's address space
    is capped at its size after start-up plus ``memory_bytes`` (:func:`limit_memory`).

    Args:
        fn: function returning a JSON-serialisable dict.
        kwargs: its keyword arguments.
        timeout_s: wall-clock limit; the child is killed after it.
        memory_bytes: allowed memory growth of the child.
        preload: modules the fork server imports once (see :func:`isolation_context`).

    Returns:
        ``fn``'s dict with ``"status": "ok"`` added when it has none; otherwise
        ``{"status": "timeout" | "out of memory" | "error" | "crashed", "reason": ...}``.

    Example:
        >>> run_isolated(summarize, {"samples": [1, 2, 3]})["median"]
        2.0
    """
    ctx = isolation_context(preload)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, kwargs, memory_bytes), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    child.close()
    result: dict[str, Any] | None = None
    try:
        if parent.poll(timeout_s):
            result = parent.recv()
    except EOFError:
        result = None
    finally:
        if result is None and proc.is_alive():
            proc.kill()
        proc.join(10)
        parent.close()
    elapsed = time.perf_counter() - t0
    if result is None:
        if proc.exitcode in (None, -9) and timeout_s is not None and elapsed >= timeout_s:
            return {"status": "timeout", "reason": f"no result within {timeout_s:.0f} s"}
        return {"status": "crashed", "reason": f"child exited with code {proc.exitcode}"}
    result.setdefault("status", "ok")
    return result

"""CPU contention: whether other processes shared the CPUs during a sample, and waiting
until they leave them idle.

On a small shared machine another process's work lands in our timings. :class:`CpuSample`
measures a block's wall time, this process's CPU time and every other process's (from
``/proc/stat``), and calls the block "contended" when the others took a noticeable share of
a core; :func:`wait_for_quiet` sleeps, up to a limit, until they leave the CPUs idle.
:func:`repro.benchmarking.measurement.measure_steps` uses both for every timed sample.
"""

from __future__ import annotations

import os
import time

__all__ = ["CpuSample", "wait_for_quiet"]


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

"""Process memory: resident set size (RSS), its peak, glibc's thresholds, limits, failures.

Process peak memory includes a few hundred megabytes of libraries, so a step's memory is a
delta: the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``) and the peak
during the step minus the RSS before it is the step's memory (:class:`PeakRSS`). glibc
keeps freed memory for reuse, which would hide a step's allocations behind earlier steps;
:func:`set_malloc_thresholds` makes large blocks go straight back to the system while a
memory sample runs (:data:`MALLOC_MEASURE`).
"""

from __future__ import annotations

import resource
import sys
from typing import Any

__all__ = [
    "MALLOC_MEASURE",
    "MALLOC_STEADY",
    "PeakRSS",
    "current_rss",
    "is_out_of_memory",
    "limit_memory",
    "peak_rss",
    "reset_peak_rss",
    "set_malloc_thresholds",
]

# glibc keeps freed heap memory for reuse and raises its mmap threshold after freeing a
# large block (up to 32 MiB); either would hide a step's allocations behind earlier steps.
# While a memory sample runs, a fixed 128 KiB threshold makes every larger block its own
# mapping, returned to the system on free. Timing samples run with every block up to 1 GiB
# taken from the heap and reused from one step to the next, as a caching allocator (torch's
# on a GPU) reuses them: with glibc's own steady state (at most a 32 MiB threshold) each
# larger block is a new mapping whose pages fault in again on every step, a cost that grows
# with the buffers rather than with the work (a third of LSH-1's time per token at 65,536
# tokens, none at 1,024; measured). Every implementation is timed so.
MALLOC_MEASURE = (128 * 1024, 128 * 1024)  # (mmap threshold, trim threshold), bytes
MALLOC_STEADY = (2**30, 2 * 2**30)

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


def status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes (``None`` where there is none).

    Example:
        >>> status_bytes("NoSuchField") is None
        True
    """
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
    rss = status_bytes("VmRSS")
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
    hwm = status_bytes("VmHWM")
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
    size = status_bytes("VmSize")
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
        >>> is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
        True
    """
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return any(
        s in text for s in ("can't allocate memory", "out of memory", "cannot allocate memory")
    )

"""The memory allocator a measured process runs under: the system's (glibc) or tcmalloc.

A long training step allocates and frees buffers of hundreds of megabytes, thousands of
times. glibc gives every block above its mmap threshold its own mapping and returns it on
free, so the next step faults the same pages in again: in a 131,072-token training step of
a 6-layer model, 47 GB of page faults and 34 of 52 s in the kernel (measured on 2 cores).
tcmalloc keeps freed pages for reuse; the same step took 30 s with 2 GB of faults, and its
peak RSS was lower (1.91 against 2.24 GB).

A caching allocator also hides a step's allocations from a memory figure taken as the
peak during the step minus the RSS before it (:class:`repro.benchmarking.memory.PeakRSS`),
because the pages of earlier steps are already resident. Use it only where the figure is the
whole process's peak from a fresh start, such as the longest step that fits in a budget.

An allocator is chosen for a fresh process (:func:`repro.benchmarking.isolation.run_isolated`
with ``environment=allocator_environment(name)``): ``LD_PRELOAD`` must be set before the
interpreter starts. tcmalloc comes from the system's package manager (Debian and Ubuntu:
``libtcmalloc-minimal4``, ``libtcmalloc-minimal4t64`` on newer releases), which
``scripts/setup.sh`` installs.
"""

from __future__ import annotations

import ctypes.util
from pathlib import Path

__all__ = [
    "ALLOCATORS",
    "allocator_environment",
    "find_tcmalloc",
    "loaded_allocator",
    "usable_allocator",
]

ALLOCATORS = ("system", "tcmalloc")

# The dynamic loader resolves a bare soname through its cache, as for any library.
_TCMALLOC_LIBRARIES = ("tcmalloc_minimal", "tcmalloc")
_TCMALLOC_MISSING = (
    "tcmalloc is not installed (Debian/Ubuntu: apt-get install libtcmalloc-minimal4, or "
    "libtcmalloc-minimal4t64)"
)


def find_tcmalloc() -> str | None:
    """tcmalloc's shared library as the dynamic loader finds it (a soname such as
    ``libtcmalloc_minimal.so.4``), or ``None`` where it is not installed.

    Example:
        >>> found = find_tcmalloc()
        >>> found is None or "tcmalloc" in found
        True
    """
    for name in _TCMALLOC_LIBRARIES:
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


def allocator_environment(name: str, where: str = "allocator") -> dict[str, str]:
    """The environment variables that make a fresh process use allocator ``name``.

    Args:
        name: one of :data:`ALLOCATORS`.
        where: the setting's name, for the error message.

    Returns:
        ``{}`` for ``"system"``; ``{"LD_PRELOAD": <tcmalloc>}`` for ``"tcmalloc"``.

    Raises:
        ValueError: (one line) an unknown name, or tcmalloc where it is not installed.

    Example:
        >>> allocator_environment("system")
        {}
        >>> allocator_environment("jemalloc", "longest.allocator")
        Traceback (most recent call last):
        ...
        ValueError: longest.allocator='jemalloc' is not allowed: use one of ('system', 'tcmalloc')
    """
    if name not in ALLOCATORS:
        raise ValueError(f"{where}={name!r} is not allowed: use one of {ALLOCATORS}")
    if name == "system":
        return {}
    library = find_tcmalloc()
    if library is None:
        raise ValueError(f"{where}='tcmalloc': {_TCMALLOC_MISSING}; or set it to 'system'")
    return {"LD_PRELOAD": library}


def usable_allocator(name: str) -> tuple[str, str | None]:
    """``name`` where this machine has it, else the system's and the one-line reason, for a
    run that should go on without it rather than stop.

    Example:
        >>> usable_allocator("system")
        ('system', None)
        >>> name, reason = usable_allocator("tcmalloc")
        >>> (name, reason is None) == ("tcmalloc", True) or reason.startswith("tcmalloc is not")
        True
    """
    if name == "tcmalloc" and find_tcmalloc() is None:
        return "system", _TCMALLOC_MISSING
    return name, None


def loaded_allocator(maps: str | Path = "/proc/self/maps") -> str:
    """The allocator the running process uses: ``"tcmalloc"`` when its library is mapped,
    else ``"system"``.

    Args:
        maps: the process's memory map (Linux); where it cannot be read, ``"system"``.

    Example:
        >>> loaded_allocator("/nonexistent/maps")
        'system'
    """
    try:
        text = Path(maps).read_text()
    except OSError:
        return "system"
    return "tcmalloc" if "libtcmalloc" in text else "system"

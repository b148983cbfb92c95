"""What a benchmark figure depends on: the machine, its CPU and memory, threads, versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Sequence
from typing import Any

__all__ = ["cpu_model", "machine_info", "package_version"]


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

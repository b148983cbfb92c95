"""Checks that depend on this machine: enough CPU cores or GPUs for the ranks, a GPU for nccl.

They run where training will run (``python -m repro.config check`` in the ``train@`` stage),
not when the params are parsed, so a params file can be validated on any machine.
"""

from __future__ import annotations

import os

from .errors import fail
from .params import Params
from .schema import DistributedConfig

__all__ = ["check_runtime", "resolve_device"]


def resolve_device(distributed: DistributedConfig) -> str:
    """``"cuda"`` or ``"cpu"``: the device training runs on (``auto``: CUDA when present).

    Example:
        >>> resolve_device(DistributedConfig(device="cpu"))
        'cpu'
    """
    if distributed.device != "auto":
        return distributed.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_runtime(
    params: Params, cpu_count: int | None = None, gpu_count: int | None = None
) -> None:
    """Refuse more ranks than this machine's cores (CPU) or GPUs (CUDA), nccl without a GPU,
    and more threads per rank than the cores.

    Args:
        params: validated params.
        cpu_count: CPU cores (default: those this process may use).
        gpu_count: CUDA devices (default: ``torch.cuda.device_count()`` when the device is CUDA).

    Raises:
        ConfigError: one line naming the key, its value and what this machine allows.

    Example:
        >>> from repro.config import parse_params
        >>> p = parse_params({"distributed": {"nproc_per_node": 4, "device": "cpu"}})
        >>> check_runtime(p, cpu_count=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        repro.config.errors.ConfigError: params.yaml: distributed.nproc_per_node = 4: more ranks ...
    """
    dist = params.distributed
    device = resolve_device(dist)
    n = dist.nproc_per_node
    threads = dist.threads_per_rank
    if threads is not None:
        cores = cpu_count if cpu_count is not None else usable_cpus()
        if threads > cores:  # only oversubscribes them (from 2**31 torch overflows)
            raise fail(
                "distributed.threads_per_rank",
                threads,
                f"more threads than the {cores} CPU cores of this machine; allowed: 1 to "
                f"{cores}, or null (the cores divided by the ranks)",
            )
    if device == "cpu":
        if dist.backend == "nccl":
            raise fail("distributed.backend", "nccl", "needs CUDA GPUs; allowed here: auto, gloo")
        cores = cpu_count if cpu_count is not None else usable_cpus()
        if n > cores:
            raise fail(
                "distributed.nproc_per_node",
                n,
                f"more ranks than the {cores} CPU cores of this machine; allowed: 1 to {cores}",
            )
        return
    if gpu_count is None:
        import torch

        gpu_count = torch.cuda.device_count()
    if gpu_count == 0:
        raise fail("distributed.device", "cuda", "no CUDA GPU found; allowed here: auto, cpu")
    if n > gpu_count:
        raise fail(
            "distributed.nproc_per_node",
            n,
            f"more ranks than the {gpu_count} GPUs of this machine; allowed: 1 to {gpu_count}",
        )


def usable_cpus() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1

"""torch.distributed set-up for training: one process per rank, started by ``torchrun``.

``torchrun`` exports ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup_distributed` reads them, picks the
backend (gloo on CPU, nccl on CUDA), and joins the process group with a timeout, so a rank
whose peer died gets an error instead of waiting for ever. Without those variables it
returns a single-process context and creates no process group.

Collectives here are no-ops in a single process, so the training loop has one code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistContext",
    "all_gather_object",
    "all_reduce_sum",
    "barrier",
    "cleanup_distributed",
    "is_peer_failure",
    "setup_distributed",
]

# What gloo and nccl say when a peer process died or a collective waited too long.
_PEER_FAILURE_TEXT = (
    "Connection closed by peer",
    "Connection reset by peer",
    "remote worker",
    "timed out",
    "Timed out",
    "Timeout",
    "communicator was aborted",
)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job.

    Attributes:
        rank: global rank, ``0 .. world_size - 1``.
        world_size: number of ranks.
        local_rank: rank on this machine (selects the GPU).
        local_world_size: ranks on this machine (divides the CPU cores between them).
        device: the device this rank computes on.
        backend: ``"gloo"``, ``"nccl"`` or ``None`` (single process, no process group).

    Example:
        >>> ctx = DistContext(0, 1, 0, 1, torch.device("cpu"), None)
        >>> ctx.is_main, ctx.distributed
        (True, False)
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """True on rank 0: the only rank that writes files and talks to W&B."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group with more than one rank exists."""
        return self.backend is not None and self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: must be an integer") from None


def setup_distributed(
    backend: str = "auto",
    device: str = "auto",
    timeout_s: float = 300.0,
    threads_per_rank: int | None = None,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    init_method: str | None = None,
) -> DistContext:
    """Join the process group (if there is more than one rank) and pick the device.

    Args:
        backend: ``"auto"`` (nccl on CUDA, else gloo), ``"gloo"`` or ``"nccl"``.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        timeout_s: process-group timeout: a collective waiting longer than this on a dead or
            stuck rank raises instead of hanging.
        threads_per_rank: intra-op CPU threads of this rank; ``None``: the usable cores
            divided by the ranks on this machine (at least 1).
        rank, world_size, init_method: explicit values (tests start ranks with
            ``torch.multiprocessing.spawn`` and ``file://`` init); by default they come from
            the ``torchrun`` environment (``env://``).

    Returns:
        The :class:`DistContext` of this process.

    Raises:
        ValueError: a bad backend/device name, or nccl without CUDA (one line).

    Example:
        >>> ctx = setup_distributed(device="cpu", threads_per_rank=torch.get_num_threads())
        >>> ctx.world_size, ctx.backend, ctx.device.type
        (1, None, 'cpu')
    """
    if backend not in ("auto", "gloo", "nccl"):
        raise ValueError(f"backend = {backend!r}: allowed: auto, gloo, nccl")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device = {device!r}: allowed: auto, cpu, cuda")
    rank = _env_int("RANK", 0) if rank is None else rank
    world_size = _env_int("WORLD_SIZE", 1) if world_size is None else world_size
    local_rank = _env_int("LOCAL_RANK", rank)
    local_world_size = _env_int("LOCAL_WORLD_SIZE", world_size)

    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device = 'cuda': no CUDA device is available; allowed: auto, cpu")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if backend == "nccl" and not use_cuda:
        raise ValueError("backend = 'nccl' needs CUDA devices; allowed on CPU: auto, gloo")

    # Divide the cores between the ranks of this machine; torchrun's default is 1 thread.
    if threads_per_rank is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        threads_per_rank = max(1, cores // max(1, local_world_size))
    torch.set_num_threads(threads_per_rank)

    if world_size > 1:
        if not dist.is_initialized():
            dist.init_process_group(
                backend=backend,
                init_method=init_method or "env://",
                rank=rank,
                world_size=world_size,
                timeout=timedelta(seconds=timeout_s),
            )
        return DistContext(rank, world_size, local_rank, local_world_size, dev, backend)
    return DistContext(0, 1, 0, 1, dev, None)


def cleanup_distributed(ctx: DistContext) -> None:
    """Leave the process group (safe to call in a single process or twice).

    Example:
        >>> cleanup_distributed(DistContext(0, 1, 0, 1, torch.device("cpu"), None))
    """
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place and return it (identity in one process).

    Example:
        >>> ctx = DistContext(0, 1, 0, 1, torch.device("cpu"), None)
        >>> all_reduce_sum(torch.tensor([1.0, 2.0]), ctx).tolist()
        [1.0, 2.0]
    """
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_object(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process).

    Example:
        >>> all_gather_object({"a": 1}, DistContext(0, 1, 0, 1, torch.device("cpu"), None))
        [{'a': 1}]
    """
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in one process).

    Example:
        >>> barrier(DistContext(0, 1, 0, 1, torch.device("cpu"), None))
    """
    if ctx.distributed:
        dist.barrier()


def is_peer_failure(err: BaseException) -> bool:
    """True when ``err`` is a collective failing because another rank died or hung.

    Such a rank reports one line and exits non-zero; the failing rank shows the real error.

    Example:
        >>> is_peer_failure(RuntimeError("[pair.cc:553] Connection closed by peer [::1]:1"))
        True
        >>> is_peer_failure(ValueError("bad shape"))
        False
    """
    backend_error = getattr(dist, "DistBackendError", None)
    if backend_error is not None and isinstance(err, backend_error):
        return True
    return isinstance(err, RuntimeError) and any(t in str(err) for t in _PEER_FAILURE_TEXT)

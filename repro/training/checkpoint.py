"""Atomic files and training checkpoints.

Every file a reader may open is written to a temporary file in the same directory, flushed
to disk and moved into place with ``os.replace``: a reader sees the old complete file or the
new complete file, never a partial one, even when the writer is killed.

A checkpoint holds everything needed to continue a run exactly: model, optimizer,
scheduler and grad-scaler states, the step, the metrics history and the pending metric
sums, and the RNG states of every rank (the sampler's epoch and position follow from the
step).

A checkpoint is only continued by the configuration that wrote it: its fingerprint combines
the resolved parameters with :func:`source_digest`, so a run whose code changed starts
afresh instead of resuming (or, when complete, silently reusing) weights of the old code.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from repro.io import atomic_save, atomic_write_json, atomic_write_text

__all__ = [
    "CheckpointError",
    "atomic_save",
    "atomic_write_json",
    "atomic_write_text",
    "capture_rng_state",
    "load_checkpoint",
    "restore_rng_state",
    "source_digest",
]


def source_digest(files: Iterable[str | os.PathLike] | None = None) -> str:
    """Short sha256 of source files, path and bytes, in sorted order: the code part of a
    checkpoint's fingerprint (a run whose code changed starts afresh instead of resuming).

    Args:
        files: the files to digest (default: every ``*.py`` file of the kit, ``repro``).
            Paths enter the digest relative to the folder above their package, so the same
            checkout in another place gives the same digest.

    Example:
        >>> len(source_digest()), source_digest() == source_digest()
        (16, True)
    """
    kit = Path(__file__).resolve().parents[1]
    paths = sorted(Path(f).resolve() for f in files) if files is not None else None
    if paths is None:
        paths = sorted(kit.rglob("*.py"))
    digest = hashlib.sha256()
    for path in paths:
        digest.update(_package_relative(path).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _package_relative(path: Path) -> str:
    """``path`` relative to the folder above its outermost package (one with __init__.py)."""
    top = path.parent
    while (top.parent / "__init__.py").exists():
        top = top.parent
    return path.relative_to(top.parent).as_posix()


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be read (one line naming the file).

    Example:
        >>> issubclass(CheckpointError, ValueError)
        True
    """


def capture_rng_state() -> dict[str, Any]:
    """This process's torch RNG states (CPU, and every CUDA device when present).

    Example:
        >>> state = capture_rng_state()
        >>> a = torch.rand(2)
        >>> restore_rng_state(state)
        >>> bool(torch.equal(a, torch.rand(2)))
        True
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore states returned by :func:`capture_rng_state`.

    Example:
        >>> restore_rng_state(capture_rng_state())
    """
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any] | None:
    """Load a checkpoint written by the training loop, or ``None`` when there is none.

    Only plain data and tensors are accepted (``weights_only``), so a checkpoint cannot run
    code when loaded.

    Raises:
        CheckpointError: the file exists but cannot be read as a checkpoint (one line).

    Example:
        >>> load_checkpoint("no/such/checkpoint.pt") is None
        True
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path}: cannot be read ({first}); delete it to start over"
        ) from None

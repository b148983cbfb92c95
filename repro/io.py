"""Atomic file writes, and JSON reads whose errors are one line naming the file.

Writes: a reader sees either the old complete file or the whole new one.

Every file the kit writes (checkpoints, metrics, manifests, the README's results section,
``params.yaml`` when a profile is switched) goes through :func:`atomic_write`: the bytes go
to a temporary file in the same directory (so the same filesystem), are flushed to disk,
and the temporary file is renamed over the target with ``os.replace``. An interrupted
writer leaves at most a hidden ``.<name>.*.tmp`` file, never a truncated target.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "read_json",
    "atomic_save",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(f)`` on a temporary binary file, then move it over ``path``.

    The parent directory is created when missing. On any exception (Ctrl-C included) the
    temporary file is removed and ``path`` is left as it was.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "f.bin"
        ...     atomic_write(p, lambda f: f.write(b"abc"))
        ...     p.read_bytes(), sorted(x.name for x in pathlib.Path(d).iterdir())
        (b'abc', ['f.bin'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     atomic_write_bytes(pathlib.Path(d) / "f.txt", b"hello")
        ...     (pathlib.Path(d) / "f.txt").read_bytes()
        b'hello'
    """
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     atomic_write_text(pathlib.Path(d) / "a.txt", "hi")
        ...     (pathlib.Path(d) / "a.txt").read_text()
        'hi'
    """
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON (with a final newline) to ``path`` atomically.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     atomic_write_json(pathlib.Path(d) / "a.json", {"x": 1})
        ...     json.loads((pathlib.Path(d) / "a.json").read_text())
        {'x': 1}
    """
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` atomically.

    Example:
        >>> import tempfile, pathlib, torch
        >>> with tempfile.TemporaryDirectory() as d:
        ...     atomic_save({"w": torch.ones(2)}, pathlib.Path(d) / "m.pt")
        ...     torch.load(pathlib.Path(d) / "m.pt")["w"].tolist()
        [1.0, 1.0]
    """
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """The parsed JSON of ``path``.

    Args:
        path: the file.
        what: what the file is, for the message (``"run reference"``).

    Raises:
        ValueError: one line naming the file: it cannot be read, or is not valid JSON.

    Example:
        >>> read_json("no/such.json", "saved metrics")
        Traceback (most recent call last):
        ...
        ValueError: no/such.json: cannot read the saved metrics (No such file or directory)
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None

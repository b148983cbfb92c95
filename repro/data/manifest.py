"""Split manifests: the sha256 of every prepared file, written last and checked before reading.

A prepared data directory looks like::

    data/<task>/
        train.npy | train.bin
        valid.npy | valid.bin
        test.npy  | test.bin
        manifest.json   {"task": ..., "params": {...},
                         "files": {"train.npy": {"sha256": ..., "bytes": ..., "shape": [...]}}}

The manifest is written after the split files (atomically, through a temporary file and
``os.replace``), so a directory with a manifest is a directory whose preparation finished.
Readers call :func:`verify_manifest` before they open a split, so a file changed on disk
after preparation is never trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from repro.io import atomic_write_bytes

MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20  # 1 MiB: large enough for hashing speed, small enough to stream 90 MB files


class DataIntegrityError(ValueError):
    """A data file does not match its pinned or recorded sha256, or is missing or truncated.

    The message is one line naming the file, the expected and the actual value.

    Example:
        >>> issubclass(DataIntegrityError, ValueError)
        True
    """


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (constant memory).

    Args:
        path: the file to hash.

    Returns:
        The 64-character lowercase hex digest.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "x"
        ...     _ = p.write_bytes(b"abc")
        ...     sha256_file(p)[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _file_shape(path: Path) -> list[int]:
    # .npy files carry their shape in the header; everything else is a flat byte stream.
    if path.suffix == ".npy":
        return list(np.load(path, mmap_mode="r").shape)
    return [path.stat().st_size]


def _jsonable(value: Any) -> Any:
    # Params may hold Paths or numpy scalars; the manifest must stay plain JSON.
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_manifest(
    data_dir: str | os.PathLike, task: str, params: dict, files: Iterable[str]
) -> Path:
    """Hash the given files of ``data_dir`` and write ``data_dir/manifest.json`` atomically.

    Args:
        data_dir: directory holding the prepared files.
        task: task name recorded in the manifest (``"duplication"``, ``"enwik8"``).
        params: the parameters the files were prepared with (must be JSON-serialisable
            after Paths and numpy scalars are converted).
        files: file names relative to ``data_dir``, e.g. ``["train.npy", "valid.npy"]``.

    Returns:
        The path of the manifest.

    Example:
        >>> import tempfile, pathlib, json
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (pathlib.Path(d) / "train.bin").write_bytes(b"abc")
        ...     m = write_manifest(d, "demo", {"n": 3}, ["train.bin"])
        ...     entry = json.loads(m.read_text())["files"]["train.bin"]
        ...     entry["bytes"], entry["shape"], entry["sha256"][:8]
        (3, [3], 'ba7816bf')
    """
    data_dir = Path(data_dir)
    entries = {}
    for name in files:
        path = data_dir / name
        entries[name] = {
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "shape": _file_shape(path),
        }
    manifest = {"task": task, "params": _jsonable(dict(params)), "files": entries}
    out = data_dir / MANIFEST_NAME
    atomic_write_bytes(out, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return out


def _redo_hint() -> str:
    return "run `dvc repro` to prepare it again"


def read_manifest(data_dir: str | os.PathLike) -> dict:
    """Read ``data_dir/manifest.json`` without checking the files it lists.

    Raises:
        DataIntegrityError: the manifest is missing or is not a valid manifest.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     try:
        ...         read_manifest(d)
        ...     except DataIntegrityError as e:
        ...         print("missing" in str(e))
        True
    """
    path = Path(data_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DataIntegrityError(f"{path}: manifest missing; {_redo_hint()}")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataIntegrityError(
            f"{path}: manifest is not valid JSON ({exc}); {_redo_hint()}"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise DataIntegrityError(f"{path}: manifest has no 'files' table; {_redo_hint()}")
    return manifest


def verify_manifest(data_dir: str | os.PathLike, files: Iterable[str] | None = None) -> dict:
    """Check files of ``data_dir`` against the sha256 recorded in its manifest.

    Args:
        data_dir: a prepared data directory.
        files: names to check; ``None`` checks every file the manifest lists.

    Returns:
        The manifest as a dict.

    Raises:
        DataIntegrityError: (one line) the manifest is missing, a file is not listed, is
            missing, has the wrong size, or its sha256 differs from the recorded one; the
            message names the file, the expected and the actual value.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "train.bin"
        ...     _ = p.write_bytes(b"abc")
        ...     _ = write_manifest(d, "demo", {}, ["train.bin"])
        ...     _ = verify_manifest(d)             # passes
        ...     _ = p.write_bytes(b"abd")          # tampered, same size
        ...     try:
        ...         verify_manifest(d, ["train.bin"])
        ...     except DataIntegrityError as e:
        ...         print("train.bin" in str(e), "dvc repro" in str(e))
        True True
    """
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    listed = manifest["files"]
    names = list(listed) if files is None else list(files)
    for name in names:
        path = data_dir / name
        if name not in listed:
            raise DataIntegrityError(
                f"{path}: not listed in {data_dir / MANIFEST_NAME} (listed: "
                f"{', '.join(sorted(listed)) or 'none'}); {_redo_hint()}"
            )
        entry = listed[name]
        if not path.is_file():
            raise DataIntegrityError(f"{path}: file missing; {_redo_hint()}")
        size = path.stat().st_size
        # A size check first: cheap, and it names truncation as such.
        if "bytes" in entry and size != entry["bytes"]:
            raise DataIntegrityError(
                f"{path}: size mismatch (expected {entry['bytes']} bytes, actual {size}); "
                f"{_redo_hint()}"
            )
        actual = sha256_file(path)
        if actual != entry.get("sha256"):
            raise DataIntegrityError(
                f"{path}: sha256 mismatch (expected {entry.get('sha256')}, actual {actual}); "
                f"{_redo_hint()}"
            )
    return manifest


def publish(staging: Path, out_dir: Path, task: str, params: dict, files: list[str]) -> Path:
    """Move fully written files from ``staging`` into ``out_dir``, then write the manifest.

    Order matters for readers: the old manifest goes first (so a directory caught half-way
    has no manifest and is rejected), each file is renamed into place (``os.replace``,
    atomic per file; ``staging`` must be on the same filesystem), and the new manifest
    comes last.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     s = pathlib.Path(d) / "stage"; s.mkdir()
        ...     _ = (s / "train.bin").write_bytes(b"abc")
        ...     out = publish(s, pathlib.Path(d) / "out", "demo", {}, ["train.bin"])
        ...     sorted(p.name for p in out.iterdir())
        ['manifest.json', 'train.bin']
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for name in files:
        os.replace(staging / name, out_dir / name)
    write_manifest(out_dir, task, params, files)
    return out_dir

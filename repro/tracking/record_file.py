"""The `.wandb` record file that wandb writes for every run, parsed without wandb's reader.

wandb 0.30 removed its own reader (``wandb.sdk.internal.datastore``), so nothing here depends
on it. The file is a LevelDB-style log: a 7-byte header (``:W&B``, uint16 ``0xBEE1``
little-endian, uint8 version 0), then 32 KiB blocks of records. Every record has a 7-byte
header (uint32 CRC, uint16 length, uint8 type: 1 full, 2 first, 3 middle, 4 last) and a block
tail shorter than a header is zero padding. The CRC is the standard, unmasked CRC-32
(``zlib.crc32``, the IEEE polynomial) of the type byte followed by the data, checked on every
record (:func:`iter_records`). Joined payloads are ``wandb.proto.wandb_internal_pb2.Record``
messages; ``_read_segment`` turns one file's records (run, config, summary, history, exit)
into what the run readers (:mod:`repro.tracking.reader`) merge.

Malformed or truncated data raise :class:`RunFileError`, a one-line :class:`ValueError`
naming the file and the byte offset; nothing is returned half-read. One case is not an
error: wandb writes the record file in whole 32 KiB blocks, so a writer that is killed
leaves a file that ends on a block boundary, possibly in the middle of a record split over
blocks (a "first" or "middle" fragment without its "last"). A file with no exit record that
ends that way is a crashed run; the incomplete record at its end (which never reached the
disk whole) is dropped with a :class:`RunFileWarning` naming the file and offset, and the
run reads as ``crashed``. The same ending in a file that has an exit record, or a file that
ends anywhere else inside a record, is an error.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.tracking.run_data import _assign

__all__ = ["RunFileError", "RunFileWarning", "iter_records"]

FILE_MAGIC = b":W&B"
FILE_IDENT = 0xBEE1
FILE_VERSION = 0
FILE_HEADER = struct.Struct("<4sHB")  # magic, ident, version: 7 bytes
RECORD_HEADER = struct.Struct("<IHB")  # crc32, length, type: 7 bytes
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_NAMES = {FULL: "full", FIRST: "first", MIDDLE: "middle", LAST: "last"}


class RunFileError(ValueError):
    """A `.wandb` record file that is malformed or truncated; the message names file and offset.

    Example:
        >>> str(RunFileError("run-x.wandb", 7, "CRC mismatch"))
        'run-x.wandb: CRC mismatch at byte 7'
    """

    def __init__(self, path: str | os.PathLike[str], offset: int, problem: str) -> None:
        self.path = str(path)
        self.offset = offset
        super().__init__(f"{self.path}: {problem} at byte {offset}")


class RunFileWarning(UserWarning):
    """A crashed run's record file whose last, incomplete record was dropped."""


def iter_records(
    path: str | os.PathLike[str], *, crashed_tail: bool = True, live: bool = False
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, payload)`` for every record of a `.wandb` file, checking every CRC.

    ``offset`` is the byte offset of the record's first fragment header. The whole file is
    validated as it is read; a problem raises :class:`RunFileError`.

    Args:
        path: the ``run-<id>.wandb`` file.
        crashed_tail: allow the file to end on a 32 KiB block boundary inside a record split
            over blocks, as a killed writer leaves it; the incomplete record is not yielded
            and a :class:`RunFileWarning` says so. The caller decides whether the run had an
            exit record (see :class:`OfflineRunReader`).
        live: the file is still being written (a running run): any incomplete record at
            the end is dropped with a :class:`RunFileWarning` instead of raising.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "run-x.wandb"
        >>> _ = p.write_bytes(b":W&B" + (0xBEE1).to_bytes(2, "little") + bytes([0]))
        >>> list(iter_records(p))
        []
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RunFileError(path, 0, f"cannot read the file ({exc.strerror})") from None
    if len(data) < FILE_HEADER.size:
        raise RunFileError(path, 0, f"file of {len(data)} bytes is too short for the header")
    magic, ident, version = FILE_HEADER.unpack_from(data, 0)
    if magic != FILE_MAGIC or ident != FILE_IDENT:
        raise RunFileError(path, 0, "not a W&B record file (expected ':W&B' and 0xBEE1)")
    if version != FILE_VERSION:
        raise RunFileError(path, 6, f"unsupported record file version {version} (expected 0)")

    def cut_short(offset: int, problem: str) -> None:
        if not live:
            raise RunFileError(path, offset, problem)
        warnings.warn(
            f"{path}: dropped the incomplete last record at byte {offset} (still being written)",
            RunFileWarning,
            stacklevel=3,
        )

    pos = FILE_HEADER.size
    pending: bytearray | None = None  # payload of a record split over blocks
    pending_at = 0
    end = len(data)
    while pos < end:
        block_left = BLOCK_SIZE - pos % BLOCK_SIZE
        if block_left < RECORD_HEADER.size:  # too little room for a header: zero padding
            tail = data[pos : pos + block_left]
            if tail.strip(b"\x00"):
                raise RunFileError(path, pos, "non-zero bytes in block padding")
            pos += block_left
            continue
        if pos + RECORD_HEADER.size > end:
            cut_short(pending_at if pending is not None else pos, "truncated record header")
            return
        crc, length, rtype = RECORD_HEADER.unpack_from(data, pos)
        start = pos + RECORD_HEADER.size
        if rtype not in _TYPE_NAMES:
            raise RunFileError(path, pos, f"bad record type {rtype} (allowed 1-4)")
        if length > block_left - RECORD_HEADER.size:
            raise RunFileError(path, pos, f"record length {length} overruns its 32 KiB block")
        if start + length > end:
            problem = f"truncated record: {length} bytes announced, {end - start} present"
            cut_short(pending_at if pending is not None else pos, problem)
            return
        payload = data[start : start + length]
        actual = zlib.crc32(payload, zlib.crc32(bytes([rtype])))
        if actual != crc:
            raise RunFileError(
                path, pos, f"CRC mismatch (stored {crc:#010x}, computed {actual:#010x})"
            )
        if rtype == FULL:
            if pending is not None:
                raise RunFileError(path, pos, "full record inside an unfinished split record")
            yield pos, payload
        elif rtype == FIRST:
            if pending is not None:
                raise RunFileError(path, pos, "first fragment inside an unfinished split record")
            pending, pending_at = bytearray(payload), pos
        else:
            if pending is None:
                raise RunFileError(path, pos, f"{_TYPE_NAMES[rtype]} fragment without a first one")
            pending += payload
            if rtype == LAST:
                yield pending_at, bytes(pending)
                pending = None
        pos = start + length

    if pending is not None:
        if live:
            cut_short(pending_at, "")
            return
        if not crashed_tail or end % BLOCK_SIZE != 0:
            raise RunFileError(path, pending_at, "truncated record: file ends inside it")
        warnings.warn(
            f"{path}: dropped the incomplete last record at byte {pending_at} "
            "(the writer stopped mid-record: a crashed run)",
            RunFileWarning,
            stacklevel=2,
        )


def _parse_json(path: Path, offset: int, key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise RunFileError(path, offset, f"bad value_json for key {key!r}") from None


def _item_key(item: Any) -> str:
    return ".".join(item.nested_key) if len(item.nested_key) else item.key


def _history_value(path: Path, offset: int, item: Any, key: str) -> Any:
    if item.value_json:
        return _parse_json(path, offset, key, item.value_json)
    kind = item.WhichOneof("value")  # newer writers send typed values instead of JSON
    if kind is None or kind == "none":
        return None
    if kind == "json":
        return _parse_json(path, offset, key, item.json)
    return getattr(item, kind)


@dataclass
class _Segment:
    """What one record file holds."""

    path: Path
    run_id: str | None = None
    name: str | None = None
    group: str | None = None
    project: str | None = None
    entity: str | None = None
    start_time: float = math.inf
    config: list[tuple[str, str, Any]] = field(default_factory=list)  # (op, key, value)
    summary: list[tuple[str, str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    live: bool = False  # a process still writes the file


def _read_segment(path: Path) -> _Segment:
    from wandb.proto import wandb_internal_pb2 as pb  # slow import: only when reading

    seg = _Segment(path, live=_file_held_open(path))
    exit_seen_at: int | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RunFileWarning)
        for offset, payload in iter_records(path, live=seg.live):
            record = pb.Record()
            try:
                record.ParseFromString(payload)
            except Exception:  # protobuf's DecodeError has no stable import path
                raise RunFileError(
                    path, offset, "undecodable record (not a wandb Record)"
                ) from None
            kind = record.WhichOneof("record_type")
            if kind == "run":
                _read_run_record(seg, record.run, path, offset)
            elif kind == "config":
                _read_updates(seg.config, record.config, path, offset)
            elif kind == "summary":
                _read_updates(seg.summary, record.summary, path, offset)
            elif kind == "history":
                row: dict[str, Any] = {}
                for item in record.history.item:
                    key = _item_key(item)
                    _assign(row, key, _history_value(path, offset, item, key))
                row.setdefault("_step", record.history.step.num)
                seg.history.append(row)
            elif kind == "exit":
                seg.exit_code = record.exit.exit_code
                exit_seen_at = offset
    for warning in caught:
        if issubclass(warning.category, RunFileWarning) and exit_seen_at is not None:
            # a run that exited cleanly has no reason to end mid-record: the file was cut
            raise RunFileError(path, path.stat().st_size, "truncated record after the exit record")
        warnings.warn(warning.message, warning.category, stacklevel=3)
    return seg


def _read_run_record(seg: _Segment, run: Any, path: Path, offset: int) -> None:
    seg.run_id = run.run_id or seg.run_id
    seg.name = run.display_name or seg.name
    seg.group = run.run_group or seg.group
    seg.project = run.project or seg.project
    seg.entity = run.entity or seg.entity
    if run.HasField("start_time"):
        seg.start_time = run.start_time.seconds + run.start_time.nanos * 1e-9
    _read_updates(seg.config, run.config, path, offset)
    _read_updates(seg.summary, run.summary, path, offset)


def _read_updates(ops: list[tuple[str, str, Any]], record: Any, path: Path, offset: int) -> None:
    for item in record.update:
        key = _item_key(item)
        ops.append(("set", key, _parse_json(path, offset, key, item.value_json)))
    for item in record.remove:
        ops.append(("remove", _item_key(item), None))


def _file_held_open(path: Path) -> bool:
    """Whether a live process has ``path`` open (Linux ``/proc``; ``False`` elsewhere)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return False
    target = os.path.realpath(path)
    for pid in proc.iterdir():
        if not pid.name.isdigit():
            continue
        try:
            for fd in (pid / "fd").iterdir():
                try:
                    if os.readlink(fd) == target:
                        return True
                except OSError:
                    continue
        except OSError:
            continue
    return False

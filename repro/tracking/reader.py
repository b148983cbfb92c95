"""Read W&B runs back as plain Python data: offline `.wandb` record files or the public API.

One record type, :class:`Run`, comes out of both back ends, so the report does not care
whether a run was tracked offline (the default: no account, no network) or synced to a team
project:

- :class:`OfflineRunReader` parses the run's ``run-<id>.wandb`` file itself. The file is a
  LevelDB-style log: a 7-byte header (``:W&B``, uint16 ``0xBEE1`` little-endian, uint8
  version 0), then 32 KiB blocks of records. Every record has a 7-byte header (uint32 CRC,
  uint16 length, uint8 type: 1 full, 2 first, 3 middle, 4 last) and a block tail shorter than
  a header is zero padding. The CRC is the standard, unmasked CRC-32 (``zlib.crc32``, the
  IEEE polynomial) of the type byte followed by the data, checked on every record. Joined
  payloads are ``wandb.proto.wandb_internal_pb2.Record`` messages. wandb 0.30 removed its
  own reader (``wandb.sdk.internal.datastore``), so nothing here depends on it.
- :class:`OnlineRunReader` asks ``wandb.Api()`` for runs synced to a W&B server.

Keys are flat strings: a metric logged as ``{"a": {"b": 1}}`` (wandb stores the path
``["a", "b"]``) comes back as ``"a.b"``, and a dict value is flattened the same way, in the
config, the summary and every history row alike. Keys with a slash (``"train/loss"``) are
left as they are. wandb's own bookkeeping (``_wandb``) is dropped; ``_step``,
``_runtime`` and ``_timestamp`` are kept, as the API keeps them.

Runs that were resumed (evaluation reopens the training run with the same id, and offline
that writes a second directory ``offline-run-<time>-<id>[-n]``) are read as one run: the
directory named in ``run.json`` and every later directory of the same id are merged in
start-time order. A later segment's first step ``s`` is where it takes over: earlier rows
after ``s`` are dropped (a training loop restarted from a checkpoint logs them again), and
the row at ``s`` itself is merged, the later values winning (evaluation logs next to the
last training step).

State: ``finished`` when the exit record has exit code 0, ``crashed`` when it has another
code or when there is no exit record, ``running`` when there is no exit record and a live
process still holds the file open (checked through ``/proc`` on Linux; elsewhere a live
run reads as ``crashed``). A running run is read as far as it reached the disk.

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
import re
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "OfflineRunReader",
    "OnlineRunReader",
    "Run",
    "RunFetchError",
    "RunFileError",
    "RunFileWarning",
    "find_run_segments",
    "flatten",
    "iter_records",
    "read_run",
]

RunState = Literal["finished", "crashed", "running"]

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


class RunFetchError(RuntimeError):
    """The W&B API could not give a run (no network, wrong entity/project/id, no key)."""


@dataclass
class Run:
    """One W&B run as plain data, the same for offline files and the public API.

    Attributes:
        id: the W&B run id.
        name: the display name, or ``None``.
        group: the run group (one per ``dvc repro``), or ``None``.
        config: flat ``{"a.b": value}`` dict of the run's config.
        summary: flat dict of the final summary (last logged values plus explicit updates).
        history: one flat dict per logged step, in order, each with ``"_step"``.
        state: ``"finished"``, ``"crashed"`` or ``"running"``.
        source: where it was read from: the record file(s) or the run's URL.

    Example:
        >>> run = Run("abc", "demo", None, {}, {"loss": 0.5},
        ...           [{"_step": 0, "loss": 1.0}, {"_step": 1}, {"_step": 2, "loss": 0.5}],
        ...           "finished", "memory")
        >>> run.series("loss")
        ([0, 2], [1.0, 0.5])
    """

    id: str
    name: str | None
    group: str | None
    config: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    state: RunState
    source: str
    extra: dict[str, Any] = field(default_factory=dict)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Steps and values of one history key, skipping rows that do not log it.

        Args:
            key: a flat history key such as ``"train/loss"``.

        Returns:
            ``(steps, values)``, two lists of equal length.
        """
        steps: list[int] = []
        values: list[float] = []
        for row in self.history:
            if key in row and row[key] is not None:
                steps.append(int(row.get("_step", len(steps))))
                values.append(row[key])
        return steps, values


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into dot-joined keys; wandb media dicts (with ``_type``) stay whole.

    Args:
        value: a possibly nested mapping.
        prefix: prepended to every key, followed by a dot.

    Returns:
        A flat dict.

    Example:
        >>> flatten({"model": {"d": 256, "attn": {"n_hashes": 4}}, "lr": 1e-3})
        {'model.d': 256, 'model.attn.n_hashes': 4, 'lr': 0.001}
    """
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, Mapping) and item and "_type" not in item:
            out.update(flatten(item, name))
        else:
            out[name] = item
    return out


def _assign(target: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` to ``value`` in a flat dict; a new value replaces the whole old subtree."""
    _remove(target, key)
    if isinstance(value, Mapping) and value and "_type" not in value:
        target.update(flatten(value, key))
    else:
        target[key] = value


def _remove(target: dict[str, Any], key: str) -> None:
    below = key + "."
    for old in [k for k in target if k == key or k.startswith(below)]:
        del target[old]


def _is_internal(key: str) -> bool:
    return key == "_wandb" or key.startswith("_wandb.")


# ----------------------------------------------------------------------------- record file


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


def _apply(ops: Iterable[tuple[str, str, Any]], target: dict[str, Any]) -> None:
    for op, key, value in ops:
        if op == "set":
            _assign(target, key, value)
        else:
            _remove(target, key)


def _merge_history(
    earlier: list[dict[str, Any]], later: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """History of a resumed run: ``later`` takes over from its first step (see module doc)."""
    start = later[0].get("_step", 0)
    kept = [row for row in earlier if row.get("_step", -1) <= start]
    if kept and kept[-1].get("_step") == start:
        later = [{**kept.pop(), **later[0]}, *later[1:]]
    return kept + later


_SEGMENT_DIR = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-(.+?)(?:-(\d+))?$")


def find_run_segments(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The record files of one run: ``run_dir``'s and those of later resumptions of its id.

    wandb writes a resumed offline run to a new directory ``offline-run-<time>-<id>`` (with
    ``-1``, ``-2``... when the second is the same). Those that start at or after
    ``run_dir`` belong to the same run; earlier ones are older runs that reused the id.

    Args:
        run_dir: a ``wandb/offline-run-<time>-<id>`` (or online ``run-...``) directory.

    Returns:
        The ``.wandb`` files in time order, ``run_dir``'s first.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for d in ["offline-run-20260101_000000-ab", "offline-run-20260101_000000-ab-1",
        ...           "offline-run-20250101_000000-ab", "offline-run-20260101_000000-cd"]:
        ...     (root / d).mkdir(); _ = (root / d / f"run-{d.split('-')[3]}.wandb").touch()
        >>> [p.parent.name for p in find_run_segments(root / "offline-run-20260101_000000-ab")]
        ['offline-run-20260101_000000-ab', 'offline-run-20260101_000000-ab-1']
    """
    run_dir = Path(run_dir)
    match = _SEGMENT_DIR.match(run_dir.name)
    own = sorted(run_dir.glob("run-*.wandb"))
    if not own:
        raise RunFileError(run_dir, 0, "no run-<id>.wandb record file in this directory")
    if match is None or not run_dir.parent.is_dir():
        return own[:1]
    stamp, run_id, n = match.group(1), match.group(2), int(match.group(3) or 0)
    found: list[tuple[str, int, Path]] = []
    for other in run_dir.parent.iterdir():
        m = _SEGMENT_DIR.match(other.name)
        if m is None or m.group(2) != run_id or not other.is_dir():
            continue
        key = (m.group(1), int(m.group(3) or 0))
        record_file = other / f"run-{run_id}.wandb"
        if key >= (stamp, n) and record_file.is_file():
            found.append((*key, record_file))
    if not any(p.parent == run_dir for *_, p in found):
        return own[:1]
    return [p for *_, p in sorted(found)]


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


class OfflineRunReader:
    """Reads an offline (or locally written online) run from its `.wandb` record file(s).

    Args:
        path: the run directory ``wandb/offline-run-<time>-<id>`` or its ``.wandb`` file.
        follow_resumes: also read later directories of the same run id (see
            :func:`find_run_segments`); a path to a file reads only that file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "run-x.wandb"
        >>> _ = p.write_bytes(b"garbage")
        >>> try:
        ...     OfflineRunReader(p).read()
        ... except RunFileError as exc:
        ...     print(exc.offset, str(exc).split(": ", 1)[1])
        0 not a W&B record file (expected ':W&B' and 0xBEE1) at byte 0
    """

    def __init__(self, path: str | os.PathLike[str], *, follow_resumes: bool = True) -> None:
        self.path = Path(path)
        self.follow_resumes = follow_resumes

    def files(self) -> list[Path]:
        """The record files that make up the run, in the order they are applied."""
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise RunFileError(self.path, 0, "no such run directory or record file")
        if self.follow_resumes:
            return find_run_segments(self.path)
        return find_run_segments(self.path)[:1]

    def read(self) -> Run:
        """Parse the record file(s) and return the run.

        Returns:
            The :class:`Run`; raises :class:`RunFileError` on malformed or truncated data.
        """
        files = self.files()
        segments = [_read_segment(p) for p in files]  # already in time order
        first = segments[0]
        run_id = next((s.run_id for s in segments if s.run_id), None)
        if run_id is None:  # nothing reached the disk but the header: a run killed at once
            run_id = re.sub(r"^run-|\.wandb$", "", first.path.name)
        config: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        history: list[dict[str, Any]] = []
        for seg in segments:
            _apply(seg.config, config)
            _apply(seg.summary, summary)
            if seg.history:
                history = _merge_history(history, seg.history)
        last = segments[-1]
        state: RunState
        if last.exit_code is not None:
            state = "finished" if last.exit_code == 0 else "crashed"
        else:
            state = "running" if last.live else "crashed"
        return Run(
            id=run_id,
            name=next((s.name for s in segments if s.name), None),
            group=next((s.group for s in segments if s.group), None),
            config={k: v for k, v in config.items() if not _is_internal(k)},
            summary={k: v for k, v in summary.items() if not _is_internal(k)},
            history=history,
            state=state,
            source=", ".join(str(p) for p in files),
            extra={
                "project": next((s.project for s in segments if s.project), None),
                "entity": next((s.entity for s in segments if s.entity), None),
                "exit_code": last.exit_code,
            },
        )


# ----------------------------------------------------------------------------- online API


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class OnlineRunReader:
    """Reads runs synced to a W&B server through ``wandb.Api()``.

    Args:
        api: an existing ``wandb.Api``; built on first use when ``None``.
        base_url: the server (``None``: wandb's default or ``WANDB_BASE_URL``).
        timeout: seconds for each API request.
        api_key: the key (``None``: ``WANDB_API_KEY`` or the netrc, as wandb finds it).

    Every failure (no network, no key, no such run) becomes a one-line
    :class:`RunFetchError` naming the run or project and the server.

    Example:
        >>> OnlineRunReader(base_url="http://127.0.0.1:9").base_url
        'http://127.0.0.1:9'
    """

    def __init__(
        self,
        api: Any = None,
        *,
        base_url: str | None = None,
        timeout: int = 30,
        api_key: str | None = None,
    ) -> None:
        self._api = api
        self.base_url = base_url
        self.timeout = timeout
        self.api_key = api_key

    def _where(self) -> str:
        return self.base_url or os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")

    def api(self) -> Any:
        """The ``wandb.Api`` object (built on first use)."""
        if self._api is None:
            import wandb

            overrides = {"base_url": self.base_url} if self.base_url else {}
            try:
                self._api = wandb.Api(
                    overrides=overrides, timeout=self.timeout, api_key=self.api_key
                )
            except Exception as exc:
                raise RunFetchError(
                    f"cannot use the W&B API at {self._where()}: {_one_line(exc)}"
                ) from None
        return self._api

    def read(self, entity: str | None, project: str, run_id: str) -> Run:
        """Fetch one run by entity/project/id.

        Args:
            entity: the W&B entity (team or user); ``None`` uses the API's default entity.
            project: the project name.
            run_id: the run id.
        """
        name = "/".join(p for p in (entity, project, run_id) if p)
        api = self.api()
        try:
            return run_from_api(api.run(name))
        except Exception as exc:
            raise RunFetchError(
                f"cannot read W&B run {name} from {self._where()}: {_one_line(exc)}"
            ) from None

    def find_runs(
        self,
        entity: str | None,
        project: str,
        group: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Run]:
        """All runs of a project, optionally of one group and matching W&B (MongoDB-style) filters.

        Args:
            entity: the W&B entity; ``None`` uses the API's default entity.
            project: the project name.
            group: keep only runs of this group (``dvc repro`` puts its runs in one group).
            filters: extra filters, e.g. ``{"config.task": "duplication"}``.
        """
        query = dict(filters or {})
        if group is not None:
            query["group"] = group
        path = "/".join(p for p in (entity, project) if p)
        api = self.api()
        try:
            return [run_from_api(r) for r in api.runs(path, filters=query)]
        except Exception as exc:
            raise RunFetchError(
                f"cannot list W&B runs of {path} from {self._where()}: {_one_line(exc)}"
            ) from None


_API_STATES: dict[str, RunState] = {
    "finished": "finished",
    "running": "running",
    "pending": "running",
}


def run_from_api(api_run: Any) -> Run:
    """Convert a ``wandb.apis.public.Run`` into a :class:`Run` (flat keys, full history).

    Args:
        api_run: the public-API run object.
    """
    summary = getattr(api_run.summary, "_json_dict", None)
    summary = dict(summary) if summary is not None else dict(api_run.summary)
    history = []
    for row in api_run.scan_history():
        flat = flatten(dict(row))
        history.append(flat)
    return Run(
        id=api_run.id,
        name=api_run.name,
        group=api_run.group,
        config={k: v for k, v in flatten(dict(api_run.config)).items() if not _is_internal(k)},
        summary={k: v for k, v in flatten(summary).items() if not _is_internal(k)},
        history=history,
        state=_API_STATES.get(api_run.state, "crashed"),
        source=api_run.url,
        extra={"project": api_run.project, "entity": api_run.entity},
    )


# ----------------------------------------------------------------------------- entry point


def read_run(
    ref: str | os.PathLike[str] | Mapping[str, Any],
    *,
    root: str | os.PathLike[str] | None = None,
    online: OnlineRunReader | None = None,
) -> Run:
    """Read the run a reference names: a ``run.json`` (path or dict), a run directory or file.

    ``run.json`` holds ``{"experiment", "mode", "run_dir", "entity", "project", "id",
    "group", "url"}``. ``mode: "offline"`` reads ``run_dir`` (relative to ``root``) with
    :class:`OfflineRunReader`; ``mode: "online"`` asks the API for ``entity/project/id``.

    Args:
        ref: a ``run.json`` path, its parsed dict, a ``wandb/offline-run-*`` directory or a
            ``.wandb`` file.
        root: the directory ``run_dir`` is relative to (default: the current directory).
        online: the online reader to use for ``mode: "online"`` (default: a fresh one).

    Returns:
        The :class:`Run`.

    Example:
        >>> read_run({"mode": "pigeon", "id": "x"})
        Traceback (most recent call last):
        ...
        ValueError: run reference: mode='pigeon' is not allowed (allowed: 'offline', 'online')
    """
    where = "run reference"
    if not isinstance(ref, Mapping):
        path = Path(ref)
        if path.is_dir() or path.suffix == ".wandb":
            return OfflineRunReader(path).read()
        where = str(path)
        try:
            ref = json.loads(path.read_text())
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the run reference ({exc.strerror})") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(ref, Mapping):
            raise ValueError(f"{path}: a run reference must be a JSON object")
    mode = ref.get("mode", "offline")
    if mode == "offline":
        run_dir = ref.get("run_dir")
        if not run_dir:
            raise ValueError(f"{where}: run_dir={run_dir!r} must name the offline run directory")
        base = Path(root) if root is not None else Path.cwd()
        return OfflineRunReader(base / run_dir).read()
    if mode == "online":
        for key in ("project", "id"):
            if not ref.get(key):
                raise ValueError(f"{where}: {key}={ref.get(key)!r} is required for an online run")
        return (online or OnlineRunReader()).read(ref.get("entity"), ref["project"], ref["id"])
    raise ValueError(f"{where}: mode={mode!r} is not allowed (allowed: 'offline', 'online')")

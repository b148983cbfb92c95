"""Read W&B runs back as plain Python data: offline `.wandb` record files or the public API.

One record type, :class:`~repro.tracking.run_data.Run`, comes out of both back ends, so the
report does not care whether a run was tracked offline (the default: no account, no
network) or synced to a team project:

- :class:`OfflineRunReader` parses the run's ``run-<id>.wandb`` file itself
  (:mod:`repro.tracking.record_file`: the file format, and what counts as malformed);
- :class:`OnlineRunReader` asks ``wandb.Api()`` for runs synced to a W&B server;
- :func:`read_run` reads the run a ``run.json`` names, with either.

Keys are flat strings (``"a.b"``; see :mod:`repro.tracking.run_data`).

Runs that were resumed (evaluation reopens the training run with the same id, and offline
that writes a second directory ``offline-run-<time>-<id>[-n]``, in the evaluate stage's own
folder ``runs/<exp>/wandb``: :mod:`repro.tracking.layout`) are read as one run: the
directory named in ``run.json`` and every later directory of the same id, beside it or in
the evaluate stage's folder, are merged in start-time order. A later segment's first step
``s`` is where it takes over: earlier rows after ``s`` are dropped (a training loop
restarted from a checkpoint logs them again), and the row at ``s`` itself is merged, the
later values winning (evaluation logs next to the last training step).

State: ``finished`` when the exit record has exit code 0, ``crashed`` when it has another
code or when there is no exit record, ``running`` when there is no exit record and a live
process still holds the file open (checked through ``/proc`` on Linux; elsewhere a live
run reads as ``crashed``). A running run is read as far as it reached the disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from repro.io import read_json
from repro.tracking.layout import (
    RunMissingError,
    check_run_present,
    evaluation_home,
    find_run_segments,
)
from repro.tracking.record_file import RunFileError, RunFileWarning, _read_segment, iter_records
from repro.tracking.run_data import Run, RunState, _assign, _is_internal, _remove, flatten
from repro.tracking.run_ref import RUN_JSON_KEYS, RunRef

__all__ = [
    "OfflineRunReader",
    "OnlineRunReader",
    "Run",
    "RunFetchError",
    "RunFileError",
    "RunFileWarning",
    "RunMissingError",
    "find_run_segments",
    "flatten",
    "iter_records",
    "read_run",
    "run_from_api",
]


class RunFetchError(RuntimeError):
    """The W&B API could not give a run (no network, wrong entity/project/id, no key)."""


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


class OfflineRunReader:
    """Reads an offline (or locally written online) run from its `.wandb` record file(s).

    Args:
        path: the run directory ``wandb/offline-run-<time>-<id>`` or its ``.wandb`` file.
        follow_resumes: also read later directories of the same run id (see
            :func:`find_run_segments`); a path to a file reads only that file.
        also: more ``wandb/`` folders to look for later directories of the same id in
            (the evaluate stage's ``runs/<exp>/wandb``).

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

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        follow_resumes: bool = True,
        also: Iterable[str | os.PathLike[str]] = (),
    ) -> None:
        self.path = Path(path)
        self.follow_resumes = follow_resumes
        self.also = [Path(p) for p in also]

    def files(self) -> list[Path]:
        """The record files that make up the run, in the order they are applied."""
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise RunFileError(self.path, 0, "no such run directory or record file")
        if self.follow_resumes:
            return find_run_segments(self.path, self.also)
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


def read_run(
    ref: str | os.PathLike[str] | Mapping[str, Any],
    *,
    root: str | os.PathLike[str] | None = None,
    online: OnlineRunReader | None = None,
) -> Run:
    """Read the run a reference names: a ``run.json`` (path or dict), a run directory or file.

    ``run.json`` holds ``{"experiment", "mode", "run_dir", "entity", "project", "id",
    "group", "url"}``. ``mode: "offline"`` reads ``run_dir`` (relative to ``root``) with
    :class:`OfflineRunReader`, merged with the evaluate stage's segments of the same id in
    ``runs/<experiment>/wandb`` (:mod:`repro.tracking.layout`); ``mode: "online"`` asks the
    API for ``entity/project/id``.

    Args:
        ref: a ``run.json`` path, its parsed dict, a ``wandb/offline-run-*`` directory or a
            ``.wandb`` file.
        root: the directory ``run_dir`` is relative to (default: the current directory).
        online: the online reader to use for ``mode: "online"`` (default: a fresh one).

    Returns:
        The :class:`Run`.

    Raises:
        RunMissingError: ``run.json`` names an offline run that is not here (one line that
            says to ``dvc pull`` or ``dvc repro -f train@<experiment>``), or none.
        RunFileError: a record file is malformed; RunFetchError: the API failed.

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
        ref = read_json(path, "run reference")
        if not isinstance(ref, Mapping):
            raise ValueError(f"{path}: a run reference must be a JSON object")
    mode = ref.get("mode", "offline")
    if mode == "offline":
        run_dir = ref.get("run_dir")
        base = Path(root) if root is not None else Path.cwd()
        experiment = ref.get("experiment")
        if experiment:  # a run.json: its run may be in two folders, or not here at all
            check_run_present(RunRef(**{k: ref.get(k) for k in RUN_JSON_KEYS}), base, where)
            also = [evaluation_home(base, experiment) / "wandb"]
        elif not run_dir:
            raise ValueError(f"{where}: run_dir={run_dir!r} must name the offline run directory")
        else:
            also = []
        return OfflineRunReader(base / run_dir, also=also).read()
    if mode == "online":
        for key in ("project", "id"):
            if not ref.get(key):
                raise ValueError(f"{where}: {key}={ref.get(key)!r} is required for an online run")
        return (online or OnlineRunReader()).read(ref.get("entity"), ref["project"], ref["id"])
    raise ValueError(f"{where}: mode={mode!r} is not allowed (allowed: 'offline', 'online')")

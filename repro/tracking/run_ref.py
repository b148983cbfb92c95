"""The ``run.json`` reference each trained model keeps: where its W&B run is.

``run.json`` (:class:`RunRef`) is
``{"experiment", "mode", "run_dir", "entity", "project", "id", "group", "url"}`` with
``run_dir`` the offline run directory relative to the repository root (or null). It travels
with the model as a DVC output, and so does the run directory it names
(``models/<exp>/wandb/offline-run-<time>-<id>``, inside the same output; see
:mod:`repro.tracking.layout`), so the report reads exactly the runs that produced the
models (:func:`repro.tracking.reader.read_run`), on any clone after ``dvc pull``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from repro.io import atomic_write_json

__all__ = ["RUN_JSON_KEYS", "RunRef", "read_run_json", "write_run_json"]

RUN_JSON_KEYS = ("experiment", "mode", "run_dir", "entity", "project", "id", "group", "url")


@dataclass
class RunRef:
    """Where a W&B run is: the contents of ``models/<experiment>/run.json``.

    Attributes:
        experiment: the experiment name.
        mode: ``"offline"`` or ``"online"``.
        run_dir: the training's run directory relative to the repository root
            (``models/<exp>/wandb/offline-run-<time>-<id>``), or None (online, or nothing
            was recorded).
        entity, project: where the run lives online (entity may be None: the default).
        id: the W&B run id.
        group: the run group shared by one ``dvc repro``.
        url: the run's web page (online only).

    Example:
        >>> ref = RunRef("dup-full", "offline", None, None, "p", "abc123", "g", None)
        >>> list(ref.to_json())[:3]
        ['experiment', 'mode', 'run_dir']
    """

    experiment: str
    mode: str
    run_dir: str | None
    entity: str | None
    project: str
    id: str
    group: str
    url: str | None

    def to_json(self) -> dict[str, Any]:
        """The ``run.json`` mapping, keys in the documented order.

        Example:
            >>> RunRef("e", "offline", None, None, "p", "i", "g", None).to_json()["id"]
            'i'
        """
        data = asdict(self)
        return {key: data[key] for key in RUN_JSON_KEYS}


def write_run_json(path: str | os.PathLike, ref: RunRef) -> None:
    """Write ``ref`` to ``path`` atomically.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     write_run_json(pathlib.Path(d) / "run.json",
        ...                    RunRef("e", "offline", None, None, "p", "i", "g", None))
        ...     read_run_json(pathlib.Path(d) / "run.json").id
        'i'
    """
    atomic_write_json(path, ref.to_json())


def read_run_json(path: str | os.PathLike) -> RunRef:
    """Read a ``run.json``.

    Raises:
        ValueError: missing file, not JSON, or keys other than the documented ones (one line).

    Example:
        >>> read_run_json("no/run.json")
        Traceback (most recent call last):
        ...
        ValueError: no/run.json: run reference not found; run `dvc repro` to train the model
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"{path}: run reference not found; run `dvc repro` to train the model"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, dict) or sorted(data) != sorted(RUN_JSON_KEYS):
        raise ValueError(f"{path}: expected the keys {', '.join(RUN_JSON_KEYS)}")
    return RunRef(**data)

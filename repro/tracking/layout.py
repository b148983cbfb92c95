"""Where a run's record files live, so that they travel with the models as DVC outputs.

One W&B run per experiment, written in two places, each inside the DVC output of the stage
that writes it (so ``dvc push`` / ``dvc pull`` carry the run to every clone):

- the ``train@<exp>`` stage writes its segment inside the model's folder,
  ``models/<exp>/wandb/offline-run-<time>-<id>/`` (the folder ``run.json`` names);
- the ``evaluate@<exp>`` stage reopens the same run id (offline that starts a new
  directory) in its own output, ``runs/<exp>/wandb/offline-run-<time>-<id>/``: not inside
  ``models/<exp>``, which is the train stage's output and the evaluate stage's dependency.

The reader (:func:`repro.tracking.reader.read_run`) merges the segments of one id from both
folders. ``wandb sync models/<exp>/wandb/offline-run-*`` then ``wandb sync
runs/<exp>/wandb/offline-run-*`` uploads them later.

A run folder that ``run.json`` names but that is not on disk (never pulled, or deleted)
is :class:`RunMissingError`, one line that says what to do.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from repro.tracking.record_file import RunFileError
from repro.tracking.run_ref import RunRef

__all__ = [
    "EVALUATION_DIR",
    "RunMissingError",
    "check_run_present",
    "evaluation_home",
    "find_run_segments",
    "first_segment",
    "segment_name",
    "tidy_wandb_dir",
]

#: The evaluate stage's own DVC output: ``runs/<experiment>/wandb/`` (git-ignored, cached).
EVALUATION_DIR = "runs"

# offline-run-<YYYYmmdd_HHMMSS>-<id>[-<n>] (online: run-...); wandb adds -n to a name taken
_SEGMENT_DIR = re.compile(r"^(?:offline-)?run-(\d{8}_\d{6})-(.+?)(?:-(\d+))?$")


class RunMissingError(ValueError):
    """``run.json`` names an offline run whose folder is not here, or names none (one line)."""


def evaluation_home(root: str | os.PathLike[str], experiment: str) -> Path:
    """The folder the evaluate stage writes its segment of ``experiment``'s run under.

    Example:
        >>> evaluation_home("/repo", "dup-full").as_posix()
        '/repo/runs/dup-full'
    """
    return Path(root) / EVALUATION_DIR / experiment


def segment_name(name: str) -> tuple[str, str, int] | None:
    """``(time, id, n)`` of a run directory name, or None when it is not one.

    Example:
        >>> segment_name("offline-run-20260101_120000-abc123-1")
        ('20260101_120000', 'abc123', 1)
        >>> segment_name("latest-run") is None
        True
    """
    match = _SEGMENT_DIR.match(name)
    if match is None:
        return None
    return match.group(1), match.group(2), int(match.group(3) or 0)


def first_segment(wandb_dir: str | os.PathLike[str], run_id: str) -> Path | None:
    """The earliest directory of run ``run_id`` in ``wandb_dir`` that holds its record file.

    A training job that resumes from a checkpoint continues its run in a new directory;
    ``run.json`` keeps naming the first, where the run's history starts.

    Example:
        >>> first_segment("/nonexistent/wandb", "abc") is None
        True
    """
    wandb_dir = Path(wandb_dir)
    if not wandb_dir.is_dir():
        return None
    found = []
    for child in wandb_dir.iterdir():
        parsed = segment_name(child.name)
        if parsed and parsed[1] == run_id and (child / f"run-{run_id}.wandb").is_file():
            found.append((parsed[0], parsed[2], child))
    return min(found)[2] if found else None


def tidy_wandb_dir(wandb_dir: str | os.PathLike[str], keep_id: str | None = None) -> None:
    """Make a ``wandb/`` folder fit to be a DVC output: only plain run directories.

    Removes every symbolic link wandb makes (``latest-run``, ``debug.log``,
    ``debug-internal.log``, and inside each run ``logs/debug-core.log``, which points outside
    the repository at a log the W&B service keeps writing) and, when ``keep_id`` is given,
    the directories of other run ids (earlier runs of an experiment trained afresh). A
    missing folder is fine.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("offline-run-20260101_000000-a", "offline-run-20250101_000000-b"):
        ...     (d / name).mkdir()
        >>> (d / "latest-run").symlink_to("offline-run-20260101_000000-a")
        >>> tidy_wandb_dir(d, keep_id="a")
        >>> sorted(p.name for p in d.iterdir())
        ['offline-run-20260101_000000-a']
    """
    wandb_dir = Path(wandb_dir)
    if not wandb_dir.is_dir():
        return
    for child in wandb_dir.iterdir():
        if child.is_symlink():
            child.unlink()
            continue
        parsed = segment_name(child.name)
        if parsed is None or not child.is_dir():
            continue
        if keep_id is not None and parsed[1] != keep_id:
            shutil.rmtree(child, ignore_errors=True)
            continue
        for folder, dirs, files in os.walk(child):  # does not follow links
            for name in dirs + files:
                if os.path.islink(os.path.join(folder, name)):
                    os.unlink(os.path.join(folder, name))


def find_run_segments(
    run_dir: str | os.PathLike[str], also: Iterable[str | os.PathLike[str]] = ()
) -> list[Path]:
    """The record files of one run: ``run_dir``'s and those of later resumptions of its id.

    wandb writes a resumed offline run to a new directory ``offline-run-<time>-<id>`` (with
    ``-1``, ``-2``... when the second is the same). Those that start at or after
    ``run_dir`` belong to the same run; earlier ones are older runs that reused the id.
    They are looked for beside ``run_dir`` and in the ``wandb/`` folders ``also`` names
    (the evaluate stage's ``runs/<exp>/wandb``, see :mod:`repro.tracking.layout`); a
    missing folder there is skipped.

    Args:
        run_dir: a ``wandb/offline-run-<time>-<id>`` (or online ``run-...``) directory.
        also: more ``wandb/`` folders that may hold later segments of the same id.

    Returns:
        The ``.wandb`` files in time order, ``run_dir``'s first; within one second, the
        segments beside ``run_dir`` come before those of ``also`` (training before
        evaluation).

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
    parsed = segment_name(run_dir.name)
    own = sorted(run_dir.glob("run-*.wandb"))
    if not own:
        raise RunFileError(run_dir, 0, "no run-<id>.wandb record file in this directory")
    if parsed is None or not run_dir.parent.is_dir():
        return own[:1]
    stamp, run_id, n = parsed
    found: list[tuple[str, int, int, Path]] = []
    for place, folder in enumerate([run_dir.parent, *map(Path, also)]):
        if not folder.is_dir() or (place > 0 and folder.resolve() == run_dir.parent.resolve()):
            continue
        for other in folder.iterdir():
            key = segment_name(other.name)
            if key is None or key[1] != run_id or not other.is_dir():
                continue
            record_file = other / f"run-{run_id}.wandb"
            later = (key[0], key[2]) >= (stamp, n) if place == 0 else key[0] >= stamp
            if later and record_file.is_file():
                found.append((key[0], place, key[2], record_file))
    if not any(p.parent == run_dir for *_, p in found):
        return own[:1]
    return [p for *_, p in sorted(found)]


def check_run_present(ref: RunRef, root: str | os.PathLike[str], where: str) -> None:
    """Refuse a ``run.json`` whose offline run is not on disk, saying how to get it back.

    Online runs live on the W&B server and are not checked here.

    Args:
        ref: the run reference.
        root: the repository root (``run_dir`` is relative to it).
        where: what to name in the message (the ``run.json`` path).

    Raises:
        RunMissingError: ``run_dir`` is null (nothing was recorded) or names a folder that
            is not there; the message names the experiment's ``dvc pull`` / ``dvc repro -f``.

    Example:
        >>> ref = RunRef("dup-full", "offline", "models/dup-full/wandb/offline-run-x-i",
        ...              None, "p", "i", "g", None)
        >>> check_run_present(ref, "/nonexistent", "models/dup-full/run.json")
        Traceback (most recent call last):
        ...
        repro.tracking.layout.RunMissingError: models/dup-full/run.json: its W&B run models/dup-full/wandb/offline-run-x-i is not here (not pulled, or deleted); run `dvc pull` to fetch it if the remote has it, otherwise `dvc repro -f train@dup-full` to record it again
    """  # noqa: E501
    if ref.mode != "offline":
        return
    redo = f"`dvc repro -f train@{ref.experiment}`"
    if not ref.run_dir:
        raise RunMissingError(
            f"{where}: records no W&B run (run_dir: null: trained with WANDB_MODE=disabled, "
            f"or W&B could not write); run {redo} to record it again (offline is the default)"
        )
    if not (Path(root) / ref.run_dir).is_dir():
        raise RunMissingError(
            f"{where}: its W&B run {ref.run_dir} is not here (not pulled, or deleted); run "
            f"`dvc pull` to fetch it if the remote has it, otherwise {redo} to record it again"
        )

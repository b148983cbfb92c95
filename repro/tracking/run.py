"""Weights & Biases runs for the pipeline: set-up on rank 0, logging that never stops training.

Only rank 0 of a training job calls :func:`start_run`; evaluation calls :func:`resume_run`
to add its numbers to the same run's summary.

Where: each stage writes its part of the run inside its own DVC output (``home``), so the
run travels with the model: training under ``models/<exp>/wandb/``, evaluation under
``runs/<exp>/wandb/`` (:mod:`repro.tracking.layout`). Without ``home``, under
``<root>/wandb/``.

Mode: ``WANDB_MODE`` decides, offline by default (no account needed; the run is written to
``<home>/wandb/offline-run-<time>-<id>/``). ``WANDB_MODE=online`` with an API key
(``WANDB_API_KEY`` or a ``wandb login``) sends the run to ``tracking.entity/project``;
online without a key falls back to offline with a warning. ``WANDB_MODE=disabled`` records
nothing, so the pipeline's stages refuse it (:func:`require_recording`): the report reads
every number from the runs. Evaluation adds to a run in the mode it was recorded in.

Group: every run of one ``dvc repro`` shares a group: ``WANDB_RUN_GROUP`` when set, else
the DVC experiment name (``DVC_EXP_NAME``, set by ``dvc exp run``), else ``repro-`` and a
hash of ``params.yaml`` and the git commit.

W&B trouble never stops training: a failing ``init`` (unreachable server, unwritable
directory) falls back to offline, then to no tracking, and a failing ``log`` disables the
run; each prints one warning naming where W&B failed. The metrics still reach the DVC
files.

The run's reference, ``run.json``, is :class:`~repro.tracking.run_ref.RunRef`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from repro.tracking.layout import first_segment, tidy_wandb_dir
from repro.tracking.mode import RecordingDisabledError, require_recording, wandb_mode
from repro.tracking.run_ref import RunRef

__all__ = [
    "RecordingDisabledError",
    "TrackedRun",
    "git_commit",
    "require_recording",
    "resume_run",
    "run_group",
    "start_run",
    "wandb_mode",
]


def git_commit(root: str | os.PathLike = ".") -> str | None:
    """The commit checked out in ``root`` (with ``-dirty`` when tracked files changed), or None.

    Example:
        >>> git_commit("/") is None or isinstance(git_commit("/"), str)
        True
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def run_group(root: str | os.PathLike = ".", commit: str | None = None) -> str:
    """The W&B group shared by the runs of one ``dvc repro`` (see the module docstring).

    Example:
        >>> os.environ["WANDB_RUN_GROUP"] = "my-sweep"
        >>> run_group()
        'my-sweep'
        >>> del os.environ["WANDB_RUN_GROUP"]
    """
    for var in ("WANDB_RUN_GROUP", "DVC_EXP_NAME"):
        if os.environ.get(var):
            return os.environ[var]
    params = Path(root) / "params.yaml"
    blob = (params.read_bytes() if params.exists() else b"") + (commit or "").encode()
    return "repro-" + hashlib.sha256(blob).hexdigest()[:10]


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


class TrackedRun:
    """A W&B run (or nothing) behind calls that never raise.

    Args:
        run: the ``wandb`` run, or None (not tracked: every call is a no-op).
        ref: the run's reference (``run.json``).
        wandb_dir: the ``wandb/`` folder it writes to; :meth:`finish` tidies it
            (:func:`~repro.tracking.layout.tidy_wandb_dir`) for DVC.

    Example:
        >>> r = TrackedRun(None, RunRef("e", "offline", None, None, "p", "i", "g", None))
        >>> r.log({"train/loss": 1.0}, step=1); r.summary({"eval/x": 1.0}); r.finish()
        >>> r.active
        False
    """

    def __init__(self, run: Any, ref: RunRef, wandb_dir: Path | None = None) -> None:
        self.run = run
        self.ref = ref
        self.wandb_dir = wandb_dir

    @property
    def active(self) -> bool:
        """True while a W&B run is recording."""
        return self.run is not None

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        if self.run is None:
            return
        try:
            fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - tracking must never stop training
            _warn(
                f"W&B {what} failed ({_one_line(err)}); continuing without W&B for "
                f"{self.ref.experiment}"
            )
            self.run = None

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Log ``metrics`` at optimizer step ``step`` (the W&B history step)."""
        self._guard("log", lambda: self.run.log(metrics, step=step))

    def summary(self, values: dict[str, Any]) -> None:
        """Set summary values (e.g. ``eval/accuracy_full``)."""
        self._guard("summary update", lambda: self.run.summary.update(values))

    def alert(self, title: str, text: str, level: str = "INFO") -> None:
        """``wandb.alert`` online; offline runs cannot alert, so it is a no-op there."""
        if self.ref.mode != "online" or self.run is None:
            return

        def send() -> None:
            import wandb

            self.run.alert(title=title, text=text, level=getattr(wandb.AlertLevel, level))

        self._guard("alert", send)

    def finish(self, exit_code: int = 0) -> None:
        """Close the run (flushes the offline record file) and tidy its folder for DVC."""
        self._guard("finish", lambda: self.run.finish(exit_code=exit_code))
        self.run = None
        if self.wandb_dir is not None:
            try:
                tidy_wandb_dir(self.wandb_dir)
            except OSError as err:
                _warn(f"W&B: cannot tidy {self.wandb_dir} ({_one_line(err)})")


def _init(mode: str, home: Path, init_timeout_s: int, **kwargs: Any) -> Any:
    import wandb

    settings = wandb.Settings(init_timeout=init_timeout_s, silent=True)
    return wandb.init(mode=mode, dir=str(home), settings=settings, **kwargs)


def _reset_wandb() -> None:
    try:
        import wandb

        wandb.teardown()
    except Exception:  # noqa: BLE001, S110 - best effort
        pass


def _ref_from_run(run: Any, experiment: str, mode: str, root: Path, fallback: RunRef) -> RunRef:
    run_dir = None
    if mode == "offline":
        # run.dir is <home>/wandb/offline-run-<time>-<id>/files
        path = Path(run.dir).resolve().parent
        try:
            run_dir = path.relative_to(root.resolve()).as_posix()
        except ValueError:
            run_dir = path.as_posix()
    url = run.url if mode == "online" else None
    entity = run.entity if mode == "online" else fallback.entity
    return RunRef(
        experiment, mode, run_dir, entity or None, fallback.project, run.id, fallback.group, url
    )


def _open(
    experiment: str,
    root: Path,
    home: Path,
    project: str,
    entity: str | None,
    group: str,
    run_id: str,
    init_timeout_s: int,
    what: str,
    mode: str | None = None,
    **kwargs: Any,
) -> TrackedRun:
    mode = mode or wandb_mode()
    ref = RunRef(
        experiment,
        "online" if mode == "online" else "offline",
        None,
        entity,
        project,
        run_id,
        group,
        None,
    )
    if mode == "disabled":
        return TrackedRun(None, ref)
    try:
        import wandb  # noqa: F401
    except ImportError as err:
        _warn(f"W&B is not installed ({_one_line(err)}); {experiment} is not tracked")
        return TrackedRun(None, ref)
    common = dict(project=project, entity=entity, group=group, id=run_id, resume="allow", **kwargs)
    tries = ["online", "offline"] if mode == "online" else ["offline"]
    wandb_dir = home / "wandb"
    for attempt in tries:
        try:
            run = _init(attempt, home, init_timeout_s, **common)
        except Exception as err:  # noqa: BLE001 - network, permissions, anything
            nxt = "recording it offline" if attempt == "online" else "continuing without W&B"
            _warn(f"W&B {what} ({attempt}, dir {wandb_dir}) failed ({_one_line(err)}); {nxt}")
            _reset_wandb()  # the failed run still holds its id in the W&B service
            continue
        return TrackedRun(run, _ref_from_run(run, experiment, attempt, root, ref), wandb_dir)
    ref.mode = "offline"
    return TrackedRun(None, ref)


def start_run(
    experiment: str,
    config: dict[str, Any],
    project: str,
    entity: str | None = None,
    root: str | os.PathLike = ".",
    group: str | None = None,
    run_id: str | None = None,
    tags: list[str] | None = None,
    init_timeout_s: int = 30,
    home: str | os.PathLike | None = None,
) -> TrackedRun:
    """Start (or continue, when ``run_id`` is given) the W&B run of a training job.

    Args:
        experiment: the experiment name (also the run name).
        config: the resolved parameters; the git commit and DVC experiment name are added.
        project, entity: where the run goes online.
        root: the repository root: ``run.json``'s ``run_dir`` is relative to it.
        group: the run group (default: :func:`run_group`).
        run_id: continue this run (a resumed training job; ``run_dir`` then names its first
            directory in ``home/wandb``); default: a new id.
        tags: W&B tags.
        init_timeout_s: how long ``wandb.init`` may wait for the server.
        home: the run is written under ``home/wandb`` (the training stage passes
            ``models/<exp>``, its DVC output); default ``root``.

    Returns:
        A :class:`TrackedRun`; its ``ref`` is what ``run.json`` holds.

    Example:
        >>> os.environ["WANDB_MODE"] = "disabled"
        >>> run = start_run("dup-full", {"a": 1}, project="p", group="g", run_id="abc")
        >>> run.active, run.ref.id
        (False, 'abc')
        >>> del os.environ["WANDB_MODE"]
    """
    root = Path(root).resolve()
    commit = git_commit(root)
    group = group or run_group(root, commit)
    continued = run_id is not None
    if run_id is None:
        import secrets
        import string

        alphabet = string.ascii_lowercase + string.digits
        run_id = "".join(secrets.choice(alphabet) for _ in range(8))
    full_config = {
        **config,
        "git_commit": commit,
        "dvc_experiment": os.environ.get("DVC_EXP_NAME"),
    }
    tracked = _open(
        experiment,
        root,
        Path(home).resolve() if home is not None else root,
        project,
        entity,
        group,
        run_id,
        init_timeout_s,
        "init",
        name=experiment,
        config=full_config,
        tags=list(tags or []),
        job_type="train",
    )
    if continued and tracked.ref.run_dir:  # run.json names where the run's history starts
        here = root / tracked.ref.run_dir
        first = first_segment(here.parent, run_id) or here
        tracked.ref.run_dir = Path(tracked.ref.run_dir).parent.joinpath(first.name).as_posix()
    return tracked


def resume_run(
    ref: RunRef,
    root: str | os.PathLike = ".",
    init_timeout_s: int = 30,
    home: str | os.PathLike | None = None,
) -> TrackedRun:
    """Reopen the run ``ref`` names (offline: a new directory with the same id).

    A run recorded offline is reopened offline whatever ``WANDB_MODE`` says now (its
    numbers must land where the reader looks); an online one as :func:`wandb_mode` allows.

    Args:
        ref: the run (``run.json``).
        root: the repository root.
        init_timeout_s: how long ``wandb.init`` may wait for the server.
        home: the new segment goes under ``home/wandb`` (the evaluate stage passes
            ``runs/<exp>``, its own DVC output); default ``root``.

    Example:
        >>> os.environ["WANDB_MODE"] = "disabled"
        >>> resume_run(RunRef("e", "online", None, None, "p", "i", "g", None)).active
        False
        >>> del os.environ["WANDB_MODE"]
    """
    root = Path(root).resolve()
    mode = wandb_mode()
    if ref.mode == "offline" and mode != "disabled":
        mode = "offline"
    return _open(
        ref.experiment,
        root,
        Path(home).resolve() if home is not None else root,
        ref.project,
        ref.entity,
        ref.group,
        ref.id,
        init_timeout_s,
        "resume",
        mode=mode,
        name=ref.experiment,
    )

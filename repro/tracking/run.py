"""Weights & Biases runs for the pipeline: set-up on rank 0, logging that never stops training.

Only rank 0 of a training job calls :func:`start_run`; evaluation calls :func:`resume_run`
to add its numbers to the same run's summary.

Mode: ``WANDB_MODE`` decides, offline by default (no account needed; the run is written to
``<root>/wandb/offline-run-<time>-<id>/``). ``WANDB_MODE=online`` with an API key
(``WANDB_API_KEY`` or a ``wandb login``) sends the run to ``tracking.entity/project``;
online without a key falls back to offline with a warning. ``WANDB_MODE=disabled`` records
nothing.

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
import netrc
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

from repro.tracking.run_ref import RunRef

__all__ = [
    "TrackedRun",
    "git_commit",
    "resume_run",
    "run_group",
    "start_run",
    "wandb_mode",
]


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """The mode runs use: ``"offline"`` (default), ``"online"`` or ``"disabled"``.

    ``online`` needs ``WANDB_MODE=online`` and an API key; otherwise it warns and returns
    ``offline``.

    Example:
        >>> wandb_mode() in ("offline", "online", "disabled")
        True
    """
    mode = os.environ.get("WANDB_MODE", "offline").strip().lower() or "offline"
    if mode in ("disabled", "dryrun-disabled"):
        return "disabled"
    if mode == "online":
        if _has_api_key():
            return "online"
        warnings.warn(
            "W&B: WANDB_MODE=online but no API key (WANDB_API_KEY or `wandb login`); "
            "recording the run offline",
            stacklevel=2,
        )
        return "offline"
    return "offline"  # "offline", "dryrun" and anything else: never touch the network


def git_commit(root: str | os.PathLike = ".") -> str | None:
    """The commit checked out in ``root`` (with ``-dirty`` when tracked files changed), or None.

    Example:
        >>> git_commit("/") is None or isinstance(git_commit("/"), str)
        True
    """
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
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

    Example:
        >>> r = TrackedRun(None, RunRef("e", "offline", None, None, "p", "i", "g", None))
        >>> r.log({"train/loss": 1.0}, step=1); r.summary({"eval/x": 1.0}); r.finish()
        >>> r.active
        False
    """

    def __init__(self, run: Any, ref: RunRef) -> None:
        self.run = run
        self.ref = ref

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
        """Close the run (flushes the offline record file)."""
        self._guard("finish", lambda: self.run.finish(exit_code=exit_code))
        self.run = None


def _init(mode: str, root: Path, init_timeout_s: int, **kwargs: Any) -> Any:
    import wandb

    settings = wandb.Settings(init_timeout=init_timeout_s, silent=True)
    return wandb.init(mode=mode, dir=str(root), settings=settings, **kwargs)


def _reset_wandb() -> None:
    try:
        import wandb

        wandb.teardown()
    except Exception:  # noqa: BLE001, S110 - best effort
        pass


def _ref_from_run(run: Any, experiment: str, mode: str, root: Path, fallback: RunRef) -> RunRef:
    run_dir = None
    if mode == "offline":
        # run.dir is <root>/wandb/offline-run-<time>-<id>/files
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
    project: str,
    entity: str | None,
    group: str,
    run_id: str,
    init_timeout_s: int,
    what: str,
    **kwargs: Any,
) -> TrackedRun:
    mode = wandb_mode()
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
    for attempt in tries:
        try:
            run = _init(attempt, root, init_timeout_s, **common)
        except Exception as err:  # noqa: BLE001 - network, permissions, anything
            nxt = "recording it offline" if attempt == "online" else "continuing without W&B"
            _warn(f"W&B {what} ({attempt}, dir {root / 'wandb'}) failed ({_one_line(err)}); {nxt}")
            _reset_wandb()  # the failed run still holds its id in the W&B service
            continue
        return TrackedRun(run, _ref_from_run(run, experiment, attempt, root, ref))
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
) -> TrackedRun:
    """Start (or continue, when ``run_id`` is given) the W&B run of a training job.

    Args:
        experiment: the experiment name (also the run name).
        config: the resolved parameters; the git commit and DVC experiment name are added.
        project, entity: where the run goes online.
        root: the repository root: runs are written under ``root/wandb``.
        group: the run group (default: :func:`run_group`).
        run_id: continue this run (a resumed training job); default: a new id.
        tags: W&B tags.
        init_timeout_s: how long ``wandb.init`` may wait for the server.

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
    return _open(
        experiment,
        root,
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


def resume_run(ref: RunRef, root: str | os.PathLike = ".", init_timeout_s: int = 30) -> TrackedRun:
    """Reopen the run ``ref`` names (offline: a new directory with the same id).

    Example:
        >>> os.environ["WANDB_MODE"] = "disabled"
        >>> resume_run(RunRef("e", "offline", None, None, "p", "i", "g", None)).active
        False
        >>> del os.environ["WANDB_MODE"]
    """
    return _open(
        ref.experiment,
        Path(root).resolve(),
        ref.project,
        ref.entity,
        ref.group,
        ref.id,
        init_timeout_s,
        "resume",
        name=ref.experiment,
    )

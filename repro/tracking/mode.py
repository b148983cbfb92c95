"""Which W&B mode runs use, and the stages' refusal of ``WANDB_MODE=disabled``.

``WANDB_MODE`` decides: unset or ``offline`` (the default: no account, no network),
``online`` (needs an API key: ``WANDB_API_KEY`` or a ``wandb login``; without one it falls
back to offline with a warning), or ``disabled``, which records nothing. The pipeline's
training and evaluation stages refuse ``disabled`` (:func:`require_recording`): the report
reads every number from the runs, so a study run without them could not be reported.
"""

from __future__ import annotations

import netrc
import os
import warnings

__all__ = ["RecordingDisabledError", "require_recording", "wandb_mode"]


class RecordingDisabledError(RuntimeError):
    """``WANDB_MODE=disabled`` where a stage must record its run (one line)."""


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


def require_recording(what: str) -> None:
    """Refuse ``WANDB_MODE=disabled``: the report reads every number from the runs.

    Args:
        what: the stage and experiment, e.g. ``"train dup-full"``.

    Raises:
        RecordingDisabledError: one line naming the setting and what to do instead.

    Example:
        >>> os.environ["WANDB_MODE"] = "disabled"
        >>> require_recording("train dup-full")
        Traceback (most recent call last):
        ...
        repro.tracking.mode.RecordingDisabledError: train dup-full: WANDB_MODE=disabled records no run, and the report reads every number from the runs; unset it (offline is the default) or set WANDB_MODE=online
        >>> del os.environ["WANDB_MODE"]
    """  # noqa: E501
    if wandb_mode() == "disabled":
        raise RecordingDisabledError(
            f"{what}: WANDB_MODE=disabled records no run, and the report reads every number "
            "from the runs; unset it (offline is the default) or set WANDB_MODE=online"
        )

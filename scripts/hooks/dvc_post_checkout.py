"""post-checkout git hook: the workspace's DVC outputs follow the branch (``dvc checkout``).

pre-commit runs it in its DVC environment (``.pre-commit-config.yaml``, stage
post-checkout). Like ``dvc git-hook post-checkout`` it acts on branch checkouts only
(``PRE_COMMIT_CHECKOUT_TYPE=1``; 0 is a checkout of files) and never in the middle of a rebase.
Unlike it, outputs that were simply never here are one line of information instead of
``ERROR: Checkout failed``: those not in the local cache yet (a fresh clone, a branch whose
outputs were never pulled; ``dvc pull`` fetches them) and those no run has produced (stages
without an entry in dvc.lock; ``dvc repro`` makes them). Any other failure (a broken
dvc.yaml, an output that could not be written, unsaved changes in the way) is printed and the
hook exits 1; git has switched branches by then, so the message is what remains to do.

    python scripts/hooks/dvc_post_checkout.py [PREV_HEAD NEW_HEAD CHECKOUT_TYPE]
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence


def checkout_type(argv: Sequence[str]) -> str | None:
    """``1`` for a branch checkout, ``0`` for files: pre-commit's variable or git's 3rd arg."""
    flag = os.environ.get("PRE_COMMIT_CHECKOUT_TYPE")
    if flag is None and len(argv) >= 3:
        flag = argv[2]
    return flag


def rebasing() -> bool:
    """Whether a rebase is in progress (a checkout then would fight it)."""
    for name in ("rebase-merge", "rebase-apply"):
        path = subprocess.run(
            ["git", "rev-parse", "--git-path", name], capture_output=True, text=True, check=False
        ).stdout.strip()
        if path and os.path.isdir(path):
            return True
    return False


class _NotProduced(logging.Filter):
    """Drops dvc-data's "No file hash info found" warning per output: the summary counts them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No file hash info found")


def quiet_not_produced() -> None:
    """Filter those warnings out of the handlers that ``import dvc`` set up; keep the rest."""
    logger = logging.getLogger("dvc_data")
    if not logger.handlers:  # dvc did not set its logging up: a plain one, like its own
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    for handler in logger.handlers:
        handler.addFilter(_NotProduced())


def summary(missing: int, not_produced: int) -> str:
    """The one line about the outputs that were never here.

    Example:
        >>> summary(12, 0)
        'dvc: 12 outputs not in the local cache (`dvc pull` fetches them)'
        >>> for part in summary(1, 2).split(", "):
        ...     print(part)
        dvc: 1 output not in the local cache (`dvc pull` fetches it)
        2 outputs never produced (`dvc repro` makes them)
    """
    parts = []
    for count, what, how in (
        (missing, "not in the local cache", "`dvc pull` fetches"),
        (not_produced, "never produced", "`dvc repro` makes"),
    ):
        if count:
            noun, pronoun = ("output", "it") if count == 1 else ("outputs", "them")
            parts.append(f"{count} {noun} {what} ({how} {pronoun})")
    return "dvc: " + ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if checkout_type(argv) != "1" or rebasing():
        return 0
    from dvc.exceptions import CheckoutError, DvcException, NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo()
    except NotDvcRepoError:
        return 0
    quiet_not_produced()
    with repo:
        try:
            result, failed = repo.checkout(), []
        except CheckoutError as err:
            result, failed = err.result, list(err.result.get("failed", []))
        except DvcException as err:
            print(f"dvc checkout failed: {err}")
            return 1
        for kind in ("added", "modified", "deleted"):
            for path in result.get(kind, []):
                print(f"{kind[0].upper()}\t{path}")
        outs = {os.path.relpath(out.fs_path): out for out in repo.index.outs}
        # never produced: no hash in dvc.lock; missing: a hash whose cache entry is not here;
        # anything else that failed is a real failure
        not_produced = [p for p in failed if p in outs and not outs[p].hash_info]
        missing = [p for p in failed if p in outs and outs[p].hash_info and outs[p].changed_cache()]
        broken = sorted(set(failed) - set(not_produced) - set(missing))
    if missing or not_produced:
        print(summary(len(missing), len(not_produced)))
    if broken:
        print(f"dvc checkout failed for: {', '.join(broken)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

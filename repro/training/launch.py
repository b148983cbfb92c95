"""torchrun for the pipeline: the same launcher, without its traceback when a rank has
already said why it stopped.

``python -m repro.training.launch`` takes torchrun's arguments (``--standalone
--nproc_per_node 2 pipelines/train.py dup-lsh4``) and runs torchrun's own launcher. Only
what it prints on a failure differs. When a rank ends with a non-zero exit status, that
rank has printed its one-line error (rank 0 does; the others stay quiet), and torchrun would
then add its own report: a traceback of the launcher, a table of failures and a warning per
rank it stops. Here the launcher exits with the failing rank's status and prints one line
only where no rank could speak: a rank killed by a signal (SIGKILL from the kernel's
out-of-memory killer, say). Ctrl-C reaches every rank, which report it themselves.
"""

from __future__ import annotations

import logging
import signal
import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run

__all__ = ["main"]


def _quiet_launcher() -> None:
    """The elastic agent's log lines (rendezvous, "closing signal SIGTERM", "failed
    (exitcode: 1)") repeat what the ranks print, or say nothing a user can act on."""
    for name in ("torch.distributed.elastic", "torch.distributed.run"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _failure_line(err: ChildFailedError, script: str) -> tuple[int, str | None]:
    """The exit status of the first failed rank, and a line when that rank could not speak."""
    # The launcher stops the other ranks with SIGTERM: those are consequences, not the cause.
    rank, failure = min(
        err.failures.items(),
        key=lambda item: (item[1].exitcode == -signal.SIGTERM, item[1].timestamp, item[0]),
    )
    if failure.exitcode >= 0:
        return failure.exitcode, None  # the rank printed its own error
    name = failure.signal_name()
    hint = " (the kernel's out-of-memory killer?)" if failure.exitcode == -signal.SIGKILL else ""
    return 1, f"error: {script}: rank {rank} was killed by {name}{hint}"


def main(argv: list[str] | None = None) -> int:
    """Launch the ranks as torchrun does; returns the exit status (the first failed rank's)."""
    args = parse_args(argv)
    _quiet_launcher()
    script = " ".join([args.training_script, *args.training_script_args])
    try:
        run(args)
    except ChildFailedError as err:
        status, line = _failure_line(err, script)
        if line is not None:
            print(line, file=sys.stderr)
        return status
    except SignalException as err:  # Ctrl-C or SIGTERM to the launcher: the ranks got it too
        return 128 + int(err.sigval)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stage ``prepare@<task>``: write a task's splits and sha256 manifest to ``data/<task>/``.

Usage (from the repository root, as ``dvc.yaml`` runs it)::

    python pipelines/prepare.py duplication

The task's parameters are ``tasks.<task>`` in ``params.yaml``; the paper's
:attr:`repro.paper.Task.prepare` does the work (generation or download, checks, atomic
publication with a sha256 manifest).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own packages, installed or not

from repro.config import ConfigError, load_params  # noqa: E402
from repro.paper import PaperError, load_paper  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Prepare one task; returns the exit status (2: bad params, 1: data error)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", help="a key of `tasks` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default=None, help="output directory (default data/<task>)")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if args.task not in params.tasks:
            raise ConfigError(
                f"params.yaml: task {args.task!r} is not under tasks:; allowed: "
                f"{', '.join(params.tasks) or '(none)'}"
            )
        task = load_paper(params.paper).task(args.task)
    except (ConfigError, PaperError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from repro.data.manifest import DataIntegrityError, read_manifest

    out = Path(args.out) if args.out else Path("data") / args.task
    start = time.perf_counter()
    try:
        task.prepare(out, params.tasks[args.task])
    except (DataIntegrityError, ValueError, OSError) as err:
        print(f"error: prepare {args.task}: {err}", file=sys.stderr)
        return 1
    files = read_manifest(out)["files"]
    size = sum(f["bytes"] for f in files.values())
    print(
        f"prepare {args.task}: {len(files)} files, {size / 1e6:.1f} MB in {out} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

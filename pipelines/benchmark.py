"""The `benchmark` stage: speed and memory of the paper's code against its claims and the
public implementations, all measured in one run so that the ratios are fair.

The paper named by ``params.yaml``'s ``paper:`` gives its workloads (``PAPER.benchmark``, a
:class:`repro.benchmarking.workloads.Workloads`: for example speed against length, memory
against depth, training tokens/s against public implementations; a paper without one gets
a file that says so). The kit (:func:`repro.benchmarking.sweep.run_sweep`) runs each
configuration in a fresh process, writes ``metrics/benchmark.json`` after every section
(measurements, the targets as generic rows, the report's views) and draws the figures.

Usage::

    python pipelines/benchmark.py --params params.yaml            # the DVC stage
    python pipelines/benchmark.py --mode full                     # make bench: ~20 min
    python pipelines/benchmark.py --quick --out /tmp/bench.json   # tiny shapes, < 1 min
    python pipelines/benchmark.py --summary metrics/benchmark.json  # README table
    python pipelines/benchmark.py --rejudge   # targets and views again, measuring nothing

Settings come from the ``benchmark:`` block of the params file where it has one, over the
paper's defaults (``PAPER.benchmark``); ``mode: small`` there (the default
profile: a sweep of minutes) or ``--mode`` picks a named set of settings (``--mode full``:
the whole sweep, whatever the profile says); ``quick: true`` there (the smoke profile) or
``--quick`` replaces the shapes by the quick ones. Exit status: 0 done, 2 bad params or
input.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout's own packages, installed or not
    sys.path.insert(0, str(ROOT))

from repro.benchmarking import load_workloads, missing_workloads  # noqa: E402
from repro.benchmarking import sweep as kit  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Speed and memory benchmarks (metrics/benchmark.json and plots)."
    )
    parser.add_argument(
        "--params", default="params.yaml", help="params file with an optional `benchmark:` block"
    )
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one sample (tests)")
    parser.add_argument(
        "--mode",
        help="the sweep's settings by name over the params' block (full, small): "
        "`--mode full` is the whole sweep whatever the profile says",
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="do not measure the peers (they are reported as skipped)",
    )
    parser.add_argument("--sections", help="comma-separated subset of the paper's sections")
    parser.add_argument("--out", default="metrics/benchmark.json", help="JSON output")
    parser.add_argument(
        "--plots",
        default="plots/benchmark",
        help="directory for the PNG figures ('' for none)",
    )
    parser.add_argument(
        "--summary", metavar="JSON", help="print the Markdown table of a benchmark JSON and exit"
    )
    parser.add_argument(
        "--rejudge",
        action="store_true",
        help="measure nothing: recompute the targets, views and plots of --out from its "
        "measurements and the params' targets (also upgrades an older file's format)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a cancelled DVC stage, `kill`) unwinds normally, so the running
    # configuration's process is killed too instead of being left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args(argv)
    plots = Path(args.plots) if args.plots else None
    try:
        reason = missing_workloads(args.params)
        if reason is not None and not args.summary:  # optional plug-in: say so, fail nothing
            kit.write_unavailable(args.out, plots, reason)
            print(f"benchmark: {reason}; nothing to measure, wrote {args.out}")
            return 0
        workloads, block = load_workloads(args.params)
        if args.summary:
            print(kit.summary_markdown(workloads, json.loads(Path(args.summary).read_text())))
            return 0
        if args.mode is not None:
            block = kit.select_mode(block, args.mode)
        config = kit.load_config(workloads, block, quick=args.quick)
        if args.no_peers:
            config = kit.merge(config, {"peers": False})
        if args.sections:
            kit.select_sections(workloads, config, args.sections)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.rejudge:
        try:
            report = kit.rejudge(workloads, config, args.out, plots)
        except (OSError, ValueError, KeyError) as error:
            print(f"error: --rejudge of {args.out}: {error}", file=sys.stderr)
            return 2
    else:
        report = kit.run_sweep(workloads, config, args.out, plots)
    print(kit.summary_markdown(workloads, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak run: memory of a long training job (issue "under load": growth under 10% after warm-up).

Runs the real training stage, ``torchrun ... pipelines/train.py``, on the smoke model for
several thousand steps in a temporary workspace (prepared data, W&B offline, checkpoints
every few hundred steps, the training split small so that thousands of steps make well over
a hundred epochs, i.e. as many new data loaders). While it runs, the resident set size
(``VmRSS``) of every rank is read from ``/proc`` each time rank 0 logs a step. Growth is
measured from the first sample after the warm-up to the median of the last three samples.

Usage::

    python reformer/benchmarks/soak.py                          # 4000 steps, 2 ranks
    python reformer/benchmarks/soak.py --steps 6000 --ranks 1 --num-workers 2 --json soak.json

Linux only (``/proc``). The figure is a benchmark number, not a test: it depends on the
allocator and on what else the machine runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from reformer.tasks import prepare_task  # noqa: E402

EXP = "dup-lsh2"
STEP_LINE = re.compile(rf"^{EXP} step (\d+):")


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB, or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rank_pids(script: Path) -> dict[int, int]:
    """``{rank: pid}`` of the ranks running ``script`` (not their data-loader workers).

    Loader workers run the same command line with the same environment; they are the
    children of a rank, so a matching process whose parent also matches is skipped.
    """
    matching: dict[int, tuple[int, int]] = {}  # pid -> (parent pid, rank)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(script).encode() not in (proc / "cmdline").read_bytes():
                continue
            env = (proc / "environ").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        ranks = [int(item[5:]) for item in env if item.startswith(b"RANK=")]
        if ranks:
            matching[int(proc.name)] = (ppid, ranks[0])
    return {rank: pid for pid, (ppid, rank) in matching.items() if ppid not in matching}


def workspace(root: Path, steps: int, ranks: int, num_workers: int) -> None:
    """Smoke params for one LSH experiment, long, with a small training split."""
    params = yaml.safe_load((ROOT / "configs" / "smoke.yaml").read_text())
    params["tasks"]["duplication"].update(n_train=256, n_valid=32, n_test=64)
    params["experiments"] = {EXP: params["experiments"][EXP]}
    params["train"].update(
        steps=steps,
        log_every=100,
        checkpoint_every=500,
        valid_batches=1,
        num_workers=num_workers,
        warmup_steps=20,
    )
    params["distributed"].update(nproc_per_node=ranks, device="cpu")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    prepare_task("duplication", root / "data" / "duplication", params["tasks"]["duplication"])


def growth_report(samples: list[tuple[int, dict[int, int]]], warmup: int) -> dict:
    """Per rank: RSS at the end of the warm-up, at the end, the peak, and the growth in %."""
    report = {}
    ranks = sorted({r for _, by_rank in samples for r in by_rank})
    for rank in ranks:
        series = [(step, by_rank[rank]) for step, by_rank in samples if rank in by_rank]
        after = [(s, v) for s, v in series if s >= warmup]
        if len(after) < 4:
            continue
        base = after[0][1]
        end = statistics.median(v for _, v in after[-3:])
        report[rank] = {
            "warmup_step": after[0][0],
            "rss_after_warmup_mib": round(base / 1024, 1),
            "rss_end_mib": round(end / 1024, 1),
            "rss_peak_mib": round(max(v for _, v in after) / 1024, 1),
            "growth_percent": round(100 * (end - base) / base, 2),
            "peak_growth_percent": round(100 * (max(v for _, v in after) - base) / base, 2),
        }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers per rank")
    parser.add_argument("--warmup", type=int, default=None, help="steps (default: 10%%)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("error: the soak run reads /proc; Linux only", file=sys.stderr)
        return 2
    warmup = args.warmup if args.warmup is not None else max(100, args.steps // 10)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        root = Path(tmp)
        workspace(root, args.steps, args.ranks, args.num_workers)
        script = ROOT / "pipelines" / "train.py"
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        env["OMP_NUM_THREADS"] = "1"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += ["--nproc_per_node", str(args.ranks), str(script), EXP]
        start = time.perf_counter()
        job = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        samples: list[tuple[int, dict[int, int]]] = []
        pids: dict[int, int] = {}
        tail: list[str] = []
        buffer = b""
        assert job.stdout is not None
        try:
            while chunk := job.stdout.read1(65536):
                buffer += chunk
                *lines, buffer = re.split(rb"[\r\n]", buffer)
                for raw in lines:
                    line = raw.decode(errors="replace")
                    if line.strip():
                        tail = [*tail[-20:], line]
                    match = STEP_LINE.match(line)
                    if not match:
                        continue
                    if len(pids) < args.ranks or None in map(rss_kib, pids.values()):
                        pids = rank_pids(script)
                    rss = {rank: rss_kib(pid) for rank, pid in pids.items()}
                    samples.append((int(match.group(1)), {r: v for r, v in rss.items() if v}))
                    step = int(match.group(1))
                    shown = ", ".join(
                        f"rank {r} {v / 1024:.1f} MiB" for r, v in sorted(rss.items()) if v
                    )
                    print(f"step {step:>6}: {shown}", flush=True)
            code = job.wait()
        finally:
            if job.poll() is None:  # interrupted: stop the job (its ranks die with it)
                job.terminate()
                job.wait(timeout=60)
        elapsed = time.perf_counter() - start
    if code != 0:
        print("\n".join(tail), file=sys.stderr)
        print(f"error: the training job exited with {code}", file=sys.stderr)
        return 1

    report = growth_report(samples, warmup)
    print(
        f"\n{args.steps} steps, {args.ranks} rank(s), {args.num_workers} loader workers, "
        f"{elapsed:.0f} s; growth measured from step >= {warmup}"
    )
    for rank, r in report.items():
        print(
            f"rank {rank}: {r['rss_after_warmup_mib']} MiB at step {r['warmup_step']} -> "
            f"{r['rss_end_mib']} MiB at the end (peak {r['rss_peak_mib']} MiB): "
            f"growth {r['growth_percent']:+.2f}% (peak {r['peak_growth_percent']:+.2f}%)"
        )
    worst = max((r["growth_percent"] for r in report.values()), default=float("nan"))
    print(f"largest growth after warm-up: {worst:+.2f}% (limit 10%)")
    if args.json is not None:
        payload = {
            "steps": args.steps,
            "ranks": args.ranks,
            "num_workers": args.num_workers,
            "warmup_steps": warmup,
            "elapsed_s": round(elapsed, 1),
            "ranks_report": report,
            "samples": samples,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

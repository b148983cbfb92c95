"""The GPU benchmark (``make bench-gpu``): this library on a CUDA card in bf16.

Sections (workloads in :mod:`reformer.benchmarks.gpu`):

* ``attention``: one causal attention layer, forward + backward, against length up to
  1,048,576 tokens at a fixed number of tokens per step: SDPA's flash kernel and this
  library's LSH attention with 1, 2, 4, 8 rounds; time and peak allocation growth. A series
  stops where a step runs out of memory or its predicted time passes ``cap_s``;
* ``longest``: the longest sequence whose training step (the CPU sweep's 6-layer LSH-1
  reversible model, bf16 autocast) fits on the card, by doubling;
* ``utilisation``: the matmuls of one LSH attention layer and one feed-forward layer at the
  paper's enwik8 width: achieved TFLOP/s and its fraction of the card's data-sheet bf16 peak
  (:data:`reformer.benchmarks.gpu.PEAK_BF16_TFLOPS`, or ``--peak-tflops``).

The result, ``metrics/benchmark-gpu.json``, names the device and is committed only from a
run on a CUDA device: without one the script stops with an error, and ``--device cpu``
(which the tests use, with ``--quick``) may not write that file. It is not a DVC stage,
since the pipeline's default machine has no GPU. Usage::

    python pipelines/benchmark_gpu.py                       # CUDA: metrics/benchmark-gpu.json
    python pipelines/benchmark_gpu.py --device cpu --quick --out /tmp/gpu.json  # tests
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pipelines.benchmark import QUICK as CPU_QUICK  # noqa: E402
from reformer.benchmarks import gpu  # noqa: E402
from repro.benchmarking import machine_info  # noqa: E402

DEFAULT_OUT = Path("metrics/benchmark-gpu.json")

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "repeats": 5,
    "attention": {  # the CPU sweep's layer, 64 Ki tokens per step, lengths to 1 Mi
        "lengths": [2**k for k in range(10, 21)],
        "tokens_per_step": 65536,
        "d_model": 256,
        "n_heads": 4,
        "bucket_size": 64,
        "n_hashes": [1, 2, 4, 8],
        "cap_s": 30.0,
    },
    "longest": {  # the CPU `longest` section's model, doubled until it does not fit
        "start": 65536,
        "max_length": 2**25,
        "cap_s": 600.0,
        "d_model": 256,
        "n_layers": 6,
        "n_heads": 4,
        "d_ff": 512,
        "bucket_size": 64,
        "n_hashes": 1,
        "chunk_tokens": 65536,
        "head_chunks": 4,
    },
    "utilisation": {  # the paper's enwik8 width: d_model 1024, d_ff 4096, 8 heads
        "length": 16384,
        "batch": 4,
        "d_model": 1024,
        "n_heads": 8,
        "d_ff": 4096,
        "bucket_size": 64,
        "n_hashes": 1,
    },
}

# --quick: the CPU sweep's tiny attention and longest shapes.
QUICK: dict[str, Any] = {
    "repeats": 2,
    "attention": {k: v for k, v in CPU_QUICK["attention"].items() if k != "processes"},
    "longest": CPU_QUICK["longest"],
    "utilisation": {
        "length": 256,
        "batch": 2,
        "d_model": 32,
        "n_heads": 2,
        "d_ff": 64,
        "bucket_size": 16,
        "n_hashes": 1,
    },
}


def _log(message: str) -> None:
    print(f"[benchmark-gpu {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_attention(
    cfg: dict[str, Any], device: torch.device, dtype: torch.dtype, repeats: int
) -> dict[str, Any]:
    """Flash and LSH rounds against length; a series stops on memory or predicted time."""
    series = [("flash", None)] + [("lsh", r) for r in cfg["n_hashes"]]
    stopped: dict[tuple[str, int | None], str] = {}
    last: dict[tuple[str, int | None], dict[str, Any]] = {}
    results = []
    for length in cfg["lengths"]:
        batch = max(1, cfg["tokens_per_step"] // length)
        for impl, r in series:
            key = (impl, r)
            entry: dict[str, Any]
            prev = last.get(key)
            predicted = None
            if prev is not None and prev["status"] == "ok":
                # Flash costs batch * length^2, LSH batch * length.
                growth = batch * length / prev["tokens"]
                if impl == "flash":
                    growth *= length / prev["length"]
                predicted = prev["time_s"]["median"] * growth
            if key in stopped:
                entry = {"implementation": impl, "n_hashes": r, "length": length}
                entry.update(status="skipped", reason=stopped[key])
            elif predicted is not None and predicted > cfg["cap_s"]:
                entry = {"implementation": impl, "n_hashes": r, "length": length}
                reason = f"> time cap (predicted {predicted:.1f} s > {cfg['cap_s']:.0f} s)"
                entry.update(status="skipped", reason=reason)
                stopped[key] = reason
            else:
                entry = gpu.attention_case(
                    impl,
                    length,
                    batch,
                    device,
                    dtype,
                    d_model=cfg["d_model"],
                    n_heads=cfg["n_heads"],
                    bucket_size=cfg["bucket_size"],
                    n_hashes=r or 1,
                    repeats=repeats,
                )
                if entry["status"] != "ok":
                    stopped[key] = f"{entry['status']} at length {length}"
                last[key] = entry
            results.append(entry)
            name = impl if r is None else f"{impl}-{r}"
            _log(f"attention {name} L={length}: {_brief(entry)}")
    return {"settings": cfg, "results": results}


def _brief(entry: dict[str, Any]) -> str:
    if entry["status"] != "ok":
        return f"{entry['status']} {entry.get('reason', '')}".strip()
    t = entry["time_s"]
    peak = entry.get("peak_bytes")
    memory = "" if peak is None else f", peak +{peak / 2**20:.0f} MiB"
    return f"{t['median']:.4f} s [{t['min']:.4f}, {t['max']:.4f}]{memory}"


def run_longest(cfg: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Double the length from ``start`` while one training step fits on the device."""
    model = {k: v for k, v in cfg.items() if k not in ("start", "max_length", "cap_s")}
    tries: list[dict[str, Any]] = []
    longest = None
    length = cfg["start"]
    stopped = f"reached max_length {cfg['max_length']}"
    while length <= cfg["max_length"]:
        if tries and tries[-1]["step_s"] * 2.2 > cfg["cap_s"]:
            stopped = f"length {length}: predicted step over the time cap {cfg['cap_s']:.0f} s"
            break
        result = gpu.train_step(length, device, dtype, **model)
        tries.append(result)
        peak = result.get("peak_bytes")
        memory = "" if peak is None else f", peak {peak / 1e9:.2f} GB"
        _log(f"longest: {length} -> {result['status']}{memory}")
        if result["status"] != "ok":
            stopped = f"length {length}: {result['status']}"
            break
        longest = length
        length *= 2
    return {"settings": cfg, "longest": longest, "stopped": stopped, "tries": tries}


def run_utilisation(
    cfg: dict[str, Any], device: torch.device, dtype: torch.dtype, peak: float | None
) -> dict[str, Any]:
    """Achieved TFLOP/s of the attention and feed-forward matmuls, and the share of peak."""
    result = gpu.utilisation_case(
        cfg["length"],
        cfg["batch"],
        device,
        dtype,
        d_model=cfg["d_model"],
        n_heads=cfg["n_heads"],
        d_ff=cfg["d_ff"],
        bucket_size=cfg["bucket_size"],
        n_hashes=cfg["n_hashes"],
        peak_tflops=peak,
    )
    for part in ("attention", "feed_forward"):
        u = result[part]
        share = "" if u["fraction_of_peak"] is None else f" ({u['fraction_of_peak']:.1%} of peak)"
        _log(f"utilisation {part}: {u['tflops']:.3g} TFLOP/s{share}")
    return {"settings": cfg, **result}


def summary_markdown(report: dict[str, Any]) -> str:
    """Markdown: the attention table (seconds per step, flash over LSH-1), the longest
    trainable length and the matmul utilisation, for the sections the report has."""
    lines = [f"Device: {report['device']} ({report['dtype']})."]
    if "attention" in report:
        att = report["attention"]["results"]
        rounds = report["config"]["attention"]["n_hashes"]
        names = [("flash", None)] + [("lsh", r) for r in rounds]
        by_key = {(e["implementation"], e["n_hashes"], e["length"]): e for e in att}
        head = ["length", "flash"] + [f"LSH-{r}" for r in rounds] + ["flash / LSH-1"]
        lines += ["", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for length in sorted({e["length"] for e in att}):
            row, times = [f"{length:,}"], {}
            for impl, r in names:
                e = by_key.get((impl, r, length))
                if e is not None and e["status"] == "ok":
                    times[impl, r] = e["time_s"]["median"]
                    row.append(f"{times[impl, r]:.4f}")
                else:
                    row.append("-" if e is None else e["status"])
            both = ("flash", None) in times and ("lsh", 1) in times
            row.append(f"{times['flash', None] / times['lsh', 1]:.2f}" if both else "-")
            lines.append("| " + " | ".join(row) + " |")
    if "longest" in report:
        longest = report["longest"]["longest"]
        lines += ["", f"Longest trainable length: {longest:,} tokens." if longest else "None fit."]
    if "utilisation" in report:
        peak = report.get("peak_bf16_tflops")
        for part in ("attention", "feed_forward"):
            u = report["utilisation"][part]
            share = "" if u["fraction_of_peak"] is None else f" = {u['fraction_of_peak']:.1%}"
            lines.append(f"{part} matmuls: {u['tflops']:.3g} TFLOP/s{share} of peak {peak}.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GPU benchmark (metrics/benchmark-gpu.json).")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (tests only)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes (tests)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON output")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        help="the device's peak bf16 TFLOP/s (default: its data-sheet value, where known)",
    )
    parser.add_argument(
        "--sections", default="attention,longest,utilisation", help="comma-separated subset"
    )
    return parser.parse_args(argv)


def check_device(name: str, out: Path) -> torch.device:
    """The device to measure on; raises ValueError with a one-line reason when it cannot
    be used or would write a CPU result to the committed GPU file."""
    if name not in ("cuda", "cpu") and not name.startswith("cuda:"):
        raise ValueError(f"--device {name}: not allowed, use cuda, cuda:N or cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"--device {name}: no CUDA device is available; this benchmark measures a GPU "
            "(run it where one is; --device cpu --quick is for the tests)"
        )
    if name == "cpu" and out.resolve() == (ROOT / DEFAULT_OUT).resolve():
        raise ValueError(f"--device cpu may not write {DEFAULT_OUT}: it holds GPU results only")
    return torch.device(name)


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    device = check_device(args.device, out)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - {"attention", "longest", "utilisation"})
    if unknown:
        raise ValueError(f"--sections {','.join(unknown)}: use attention, longest, utilisation")
    if args.peak_tflops is not None and args.peak_tflops <= 0:
        raise ValueError(f"--peak-tflops {args.peak_tflops}: must be > 0")
    config = copy.deepcopy(DEFAULTS)
    if args.quick:
        config.update(copy.deepcopy(QUICK))
    torch.manual_seed(config["seed"])
    dtype = torch.bfloat16
    name = gpu.device_name(device)
    peak = args.peak_tflops or gpu.peak_bf16_tflops(name)
    report: dict[str, Any] = {
        "device": name,
        "dtype": "bfloat16",
        "mode": "quick" if args.quick else "full",
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(["torch"]),
        "cuda": torch.version.cuda,
        "config": config,
        "peak_bf16_tflops": peak,
        "method": (
            "Wall clock of forward + backward (or a training step) with the device "
            "synchronised after each, after a warm-up step; median, min and max of the "
            "repeats. Memory: growth of torch.cuda.max_memory_allocated during the timed "
            "steps (the whole step for `longest`). Utilisation: FLOPs of mm, addmm, bmm and "
            "baddbmm counted from torch.profiler's recorded shapes over those ops' own device "
            "time, against the card's data-sheet dense bf16 peak."
        ),
    }
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    sections_run = {
        "attention": lambda: run_attention(config["attention"], device, dtype, config["repeats"]),
        "longest": lambda: run_longest(config["longest"], device, dtype),
        "utilisation": lambda: run_utilisation(config["utilisation"], device, dtype, peak),
    }
    for section in sections:
        _log(f"section {section} ...")
        report[section] = sections_run[section]()
        report["duration_s"] = time.perf_counter() - t0
        # Written after every section: a later failure keeps what was measured.
        out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _log(f"done in {report.get('duration_s', 0):.0f} s -> {args.out}")
    print(summary_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The GPU benchmark's sections (``pipelines/benchmark_gpu.py``): bf16 on one CUDA card.

* ``attention``: one causal attention layer, forward + backward, against length up to
  1,048,576 tokens at a fixed number of tokens per step: SDPA's flash kernel and this
  library's LSH attention with 1, 2, 4, 8 rounds; time and peak allocation growth. A series
  stops where a step runs out of memory or its predicted time passes ``cap_s``;
* ``longest``: the longest sequence whose training step (the CPU sweep's 6-layer LSH-1
  reversible model, bf16 autocast) fits on the card, by doubling;
* ``utilisation``: the matmuls of one LSH attention layer and one feed-forward layer at the
  paper's enwik8 width: achieved TFLOP/s and its fraction of the card's data-sheet bf16 peak
  (:data:`reformer.benchmarks.gpu.PEAK_BF16_TFLOPS`, or ``--peak-tflops``).

The workloads are in :mod:`reformer.benchmarks.gpu`, the settings in
:mod:`reformer.benchmarks.defaults`. Every section also runs on the CPU (the tests).
The sweep's context holds ``device`` (a ``torch.device``) and ``peak_tflops`` (or ``None``).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch

from reformer.benchmarks import gpu
from repro.benchmarking import Sweep

__all__ = [
    "METHOD",
    "SECTIONS",
    "run_attention",
    "run_longest",
    "run_utilisation",
    "setup",
    "summary_markdown",
]

METHOD = (
    "Wall clock of forward + backward (or a training step) with the device "
    "synchronised after each, after a warm-up step; median, min and max of the "
    "repeats. Memory: growth of torch.cuda.max_memory_allocated during the timed "
    "steps (the whole step for `longest`). Utilisation: FLOPs of mm, addmm, bmm and "
    "baddbmm counted from torch.profiler's recorded shapes over those ops' own device "
    "time, against the card's data-sheet dense bf16 peak."
)

DTYPE = torch.bfloat16


def log(message: str) -> None:
    print(f"[benchmark-gpu {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def setup(sweep: Sweep) -> dict[str, Any]:
    """Seed, the device's name, dtype, CUDA version and peak rate (report entries)."""
    torch.manual_seed(sweep.config["seed"])
    device = sweep.context["device"]
    name = gpu.device_name(device)
    peak = sweep.context.get("peak_tflops") or gpu.peak_bf16_tflops(name)
    sweep.context["peak_tflops"] = peak
    return {
        "device": name,
        "dtype": "bfloat16",
        "cuda": torch.version.cuda,
        "peak_bf16_tflops": peak,
    }


def _attention(sweep: Sweep) -> dict[str, Any]:
    config = sweep.config
    return run_attention(config["attention"], sweep.context["device"], DTYPE, config["repeats"])


def _longest(sweep: Sweep) -> dict[str, Any]:
    return run_longest(sweep.config["longest"], sweep.context["device"], DTYPE)


def _utilisation(sweep: Sweep) -> dict[str, Any]:
    device, peak = sweep.context["device"], sweep.context["peak_tflops"]
    return run_utilisation(sweep.config["utilisation"], device, DTYPE, peak)


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
            log(f"attention {name} L={length}: {_brief(entry)}")
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
        log(f"longest: {length} -> {result['status']}{memory}")
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
        log(f"utilisation {part}: {u['tflops']:.3g} TFLOP/s{share}")
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


# Section name -> ``run(sweep)``, in the order they run.
SECTIONS = {"attention": _attention, "longest": _longest, "utilisation": _utilisation}

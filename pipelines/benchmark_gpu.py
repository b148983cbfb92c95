"""The GPU benchmark (``make bench-gpu``): the paper's code on a CUDA card in bf16.

The paper named by ``params.yaml``'s ``paper:`` gives the workloads
(``PAPER.benchmark.accelerator``: for example attention against a fused kernel, the longest
trainable length on the card, and the matmuls' share of the card's bf16 peak,
``--peak-tflops`` where the card is not in its table), and the kit
(:func:`repro.benchmarking.sweep.run_sweep`) runs them.

The result, ``metrics/benchmark-gpu.json``, names the device and is committed only from a
run on a CUDA device: without one the script stops with an error, and ``--device cpu``
(which the tests use, with ``--quick``) may not write that file. It is not a DVC stage,
since the pipeline's default machine has no GPU. Usage::

    python pipelines/benchmark_gpu.py                       # CUDA: metrics/benchmark-gpu.json
    python pipelines/benchmark_gpu.py --device cpu --quick --out /tmp/gpu.json  # tests
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from repro.benchmarking import load_workloads  # noqa: E402
from repro.benchmarking import sweep as kit  # noqa: E402

DEFAULT_OUT = Path("metrics/benchmark-gpu.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GPU benchmark (metrics/benchmark-gpu.json).")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (tests only)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes (tests)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON output")
    parser.add_argument("--params", default="params.yaml", help="params file naming the paper")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        device = check_device(args.device, out)
        workloads, _ = load_workloads(args.params, accelerator=True)
        config = kit.load_config(workloads, quick=args.quick)
        kit.select_sections(workloads, config, args.sections)
        if args.peak_tflops is not None and args.peak_tflops <= 0:
            raise ValueError(f"--peak-tflops {args.peak_tflops}: must be > 0")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    context = {"device": device, "peak_tflops": args.peak_tflops}
    report = kit.run_sweep(workloads, config, out, context=context)
    print(kit.summary_markdown(workloads, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

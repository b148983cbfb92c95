"""The Reformer's benchmark as a plug-in of the kit: ``PAPER.benchmark`` is :data:`WORKLOADS`.

:data:`WORKLOADS` is the CPU sweep of the ``benchmark`` stage (``pipelines/benchmark.py``):
settings from :mod:`reformer.benchmarks.defaults`, sections from
:mod:`reformer.benchmarks.sections`, targets from :mod:`reformer.benchmarks.targets`, the
report's curves, tables and figures from :mod:`reformer.benchmarks.views` and the PNG
figures from :mod:`reformer.benchmarks.plots`. Its ``accelerator`` is the GPU benchmark
(``pipelines/benchmark_gpu.py``, :mod:`reformer.benchmarks.gpu_sections`).
"""

from __future__ import annotations

from reformer.benchmarks import gpu_sections, sections
from reformer.benchmarks.defaults import DEFAULTS, GPU_DEFAULTS, GPU_QUICK, QUICK, SMALL, check
from reformer.benchmarks.plots import make_plots
from reformer.benchmarks.targets import compute_targets
from reformer.benchmarks.views import derived, views
from repro.benchmarking import Workloads

__all__ = ["GPU_WORKLOADS", "WORKLOADS"]

GPU_WORKLOADS = Workloads(
    name="benchmark-gpu",
    defaults=GPU_DEFAULTS,
    quick=GPU_QUICK,
    sections=gpu_sections.SECTIONS,
    setup=gpu_sections.setup,
    summary=gpu_sections.summary_markdown,
    method=gpu_sections.METHOD,
    versions=("torch",),
)

WORKLOADS = Workloads(
    name="benchmark",
    defaults=DEFAULTS,
    quick=QUICK,
    sections={
        "attention": sections.run_attention,
        "depth": sections.run_depth,
        "lm": sections.run_lm,
        "longest": sections.run_longest,
    },
    targets=compute_targets,
    views=views,
    derived=derived,
    plots=make_plots,
    setup=sections.setup,
    check=check,
    method=sections.METHOD,
    versions=("torch", "numpy", "einops", "reformer-pytorch", "transformers", "matplotlib"),
    preload=sections.PRELOAD,
    accelerator=GPU_WORKLOADS,
    modes={"small": SMALL},
)

"""The Reformer's speed and memory benchmarks: workloads, sections, targets, report views.

The kit (:mod:`repro.benchmarking`) measures and runs sweeps; this package says what to
measure. :data:`WORKLOADS` (``PAPER.benchmark``) plugs it in: the CPU sweep of the
``benchmark`` stage and, as its ``accelerator``, the GPU benchmark. The scripts beside it
(``attention_memory.py``, ``model_memory.py``, ``lsh_causal_leak.py``, ``soak.py``) are run
by hand.
"""

from reformer.benchmarks.workloads import GPU_WORKLOADS, WORKLOADS

__all__ = ["GPU_WORKLOADS", "WORKLOADS"]

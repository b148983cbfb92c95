"""Speed and memory benchmarks: measurement, isolation, sweeps and targets, for any paper.

Timing on a small shared CPU machine is noisy and process peak memory (RSS) includes a few
hundred megabytes of libraries, so the benchmarks follow a few rules, all implemented here:

* every configuration runs in a fresh process (:func:`run_isolated`,
  :mod:`~repro.benchmarking.isolation`), forked from a server that has only imported the
  libraries, so no configuration inherits another's heap;
* a figure is the median of repeats, reported with its minimum and maximum
  (:func:`summarize`), after an untimed warm-up step; a sample is "contended" when other
  processes used the CPU while it ran, and the medians use uncontended samples when there
  are any (:mod:`~repro.benchmarking.measurement`, :mod:`~repro.benchmarking.contention`);
* peak memory is a delta: the kernel's peak-RSS counter is reset after the warm-up step, and
  the peak during a step minus the RSS before it is the step's memory (:class:`PeakRSS`,
  :mod:`~repro.benchmarking.memory`);
* the figures depend on the machine, which every report records
  (:mod:`~repro.benchmarking.machine`), and on the memory allocator: a configuration whose
  figure is a whole process's peak may run under tcmalloc instead of glibc's
  (:mod:`~repro.benchmarking.allocator`).

A paper plugs in its workloads as a :class:`Workloads` (``Paper.benchmark``):
:func:`~repro.benchmarking.sweep.run_sweep` runs its sections, writes
``metrics/benchmark.json`` after every section, and turns the measurements into generic
target rows (:class:`~repro.benchmarking.targets.Target`) and report views. Nothing here
imports a paper package; the stage is ``pipelines/benchmark.py``.
"""

from repro.benchmarking.allocator import (
    ALLOCATORS,
    allocator_environment,
    find_tcmalloc,
    loaded_allocator,
    usable_allocator,
)
from repro.benchmarking.contention import CpuSample, wait_for_quiet
from repro.benchmarking.isolation import isolation_context, run_isolated
from repro.benchmarking.machine import cpu_model, machine_info, package_version
from repro.benchmarking.measurement import (
    find_entry,
    measure_steps,
    median_of,
    pool_measurements,
    summarize,
)
from repro.benchmarking.memory import (
    MALLOC_MEASURE,
    MALLOC_STEADY,
    PeakRSS,
    current_rss,
    is_out_of_memory,
    limit_memory,
    peak_rss,
    reset_peak_rss,
    set_malloc_thresholds,
)
from repro.benchmarking.sweep import Sweep, load_config, rejudge, run_sweep, summary_markdown
from repro.benchmarking.targets import Target, all_met
from repro.benchmarking.workloads import Workloads, load_workloads, missing_workloads

__all__ = [
    "ALLOCATORS",
    "MALLOC_MEASURE",
    "MALLOC_STEADY",
    "CpuSample",
    "PeakRSS",
    "Sweep",
    "Target",
    "Workloads",
    "all_met",
    "allocator_environment",
    "cpu_model",
    "current_rss",
    "find_entry",
    "find_tcmalloc",
    "is_out_of_memory",
    "isolation_context",
    "limit_memory",
    "load_config",
    "load_workloads",
    "loaded_allocator",
    "machine_info",
    "measure_steps",
    "median_of",
    "missing_workloads",
    "package_version",
    "peak_rss",
    "pool_measurements",
    "rejudge",
    "reset_peak_rss",
    "run_isolated",
    "run_sweep",
    "set_malloc_thresholds",
    "summarize",
    "summary_markdown",
    "usable_allocator",
    "wait_for_quiet",
]

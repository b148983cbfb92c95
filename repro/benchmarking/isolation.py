"""Run a function in a fresh process: no configuration inherits another's heap or threads.

On Linux the processes are forked from a server that has only imported the libraries
(:func:`isolation_context`), so a child starts in milliseconds with ``torch`` already
imported; a child that needs its own environment from the start (another memory allocator:
:mod:`repro.benchmarking.allocator`) is a fresh interpreter instead. A child's memory growth
can be capped (:func:`repro.benchmarking.memory.limit_memory`), and its failures (an error,
an allocation failure, a crash, a timeout) come back as a ``status`` and a one-line
``reason`` instead of an exception.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from repro.benchmarking.memory import is_out_of_memory, limit_memory

__all__ = ["isolation_context", "run_isolated"]

_CONTEXT: Any = None


def isolation_context(preload: Sequence[str] = ()) -> Any:
    """The multiprocessing context that :func:`run_isolated` uses.

    On Linux a ``forkserver``: one server process imports ``preload`` once (for example
    ``torch`` and the peers, whose imports take seconds) and forks a fresh child for every
    configuration, so no child inherits another's heap or threads. Elsewhere ``spawn``.
    The first call fixes the preload list.

    Example:
        >>> isolation_context().get_start_method() in ("forkserver", "spawn")
        True
    """
    global _CONTEXT
    if _CONTEXT is None:
        methods = multiprocessing.get_all_start_methods()
        if "forkserver" in methods:
            _CONTEXT = multiprocessing.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(list(preload))
        else:
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def _child(conn: Any, fn: Callable[..., dict], kwargs: dict, memory_bytes: int | None) -> None:
    try:
        limit_memory(memory_bytes)
        result = fn(**kwargs)
    except BaseException as error:  # every failure, with its reason, goes back to the parent
        oom = is_out_of_memory(error)
        result = {
            "status": "out of memory" if oom else "error",
            "reason": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            "traceback": None if oom else traceback.format_exc(limit=-4),
        }
    conn.send(result)
    conn.close()


def run_isolated(
    fn: Callable[..., dict],
    kwargs: dict[str, Any],
    *,
    timeout_s: float | None = None,
    memory_bytes: int | None = None,
    preload: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``fn(**kwargs)`` in a fresh process and return its dict.

    ``fn`` must be importable by name (a module-level function). The child's address space
    is capped at its size after start-up plus ``memory_bytes`` (:func:`limit_memory`).

    Args:
        fn: function returning a JSON-serialisable dict.
        kwargs: its keyword arguments.
        timeout_s: wall-clock limit; the child is killed after it.
        memory_bytes: allowed memory growth of the child.
        preload: modules the fork server imports once (see :func:`isolation_context`).
        environment: variables the child starts with, over the caller's (for example
            ``LD_PRELOAD``: :func:`repro.benchmarking.allocator.allocator_environment`). The
            fork server's children inherit its environment, so such a child is a new
            interpreter (``spawn``), which imports its modules itself; the caller's own
            environment is left as it was.

    Returns:
        ``fn``'s dict with ``"status": "ok"`` added when it has none; otherwise
        ``{"status": "timeout" | "out of memory" | "error" | "crashed", "reason": ...}``.

    Example:
        >>> from repro.benchmarking.measurement import summarize
        >>> run_isolated(summarize, {"samples": [1, 2, 3]})["median"]
        2.0
    """
    ctx = isolation_context(preload) if not environment else multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, kwargs, memory_bytes), daemon=True)
    t0 = time.perf_counter()
    with _environment(environment or {}):
        proc.start()
    child.close()
    result: dict[str, Any] | None = None
    try:
        if parent.poll(timeout_s):
            result = parent.recv()
    except EOFError:
        result = None
    finally:
        if result is None and proc.is_alive():
            proc.kill()
        proc.join(10)
        parent.close()
    elapsed = time.perf_counter() - t0
    if result is None:
        if proc.exitcode in (None, -9) and timeout_s is not None and elapsed >= timeout_s:
            return {"status": "timeout", "reason": f"no result within {timeout_s:.0f} s"}
        return {"status": "crashed", "reason": f"child exited with code {proc.exitcode}"}
    result.setdefault("status", "ok")
    return result


@contextlib.contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` set in this process's environment while a child starts, then restored."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

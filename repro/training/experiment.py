"""One experiment's training run, on every rank: what the ``train@<experiment>`` stage runs.

The paper's plug-in (:class:`repro.paper.Paper`) provides the data and the model; this
module provides the rest: seeding, the W&B run (rank 0), safe resume (the checkpoint's
fingerprint covers the resolved params, the world size and the source code), the training
loop, the final weights, the curves and a one-line summary.

The W&B run is written inside the stage's DVC output, ``models/<exp>/wandb/`` (see
:mod:`repro.tracking.layout`), so it travels with the model. A rerun that resumes from the
checkpoint continues the same run; when that run's files are gone (deleted, or a run W&B
could not write), it starts a new run and first replays into it what the checkpoint
recorded of the old one (every row logged up to the checkpoint's step).

Stops that are not bugs end with one line on rank 0 naming the cause and the file, and
keep the last checkpoint for the rerun to resume from: Ctrl-C (exit status 130), a write
that fails (a full disk: ``torch.save`` reports it as a RuntimeError whose context is the
``OSError``), running out of memory, a non-finite loss, an unreadable checkpoint, a rank
that died. A training split too small for one micro-batch per rank is refused before any
model is built.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from repro.benchmarking.memory import is_out_of_memory
from repro.config import ExperimentConfig, Params
from repro.data.manifest import DataIntegrityError
from repro.io import atomic_save, atomic_write_text
from repro.paper import load_paper, source_files
from repro.tracking import TrackedRun, read_run_json, start_run, wandb_mode, write_run_json
from repro.tracking.layout import first_segment, tidy_wandb_dir

from .checkpoint import CheckpointError, load_checkpoint, source_digest
from .distributed import DistContext, is_peer_failure
from .loop import NonFiniteLossError, fit

__all__ = ["curves_csv", "train_experiment"]


def curves_csv(history: list[dict]) -> str:
    """The training history as CSV text (``step`` first; empty cells for missing values).

    Example:
        >>> print(curves_csv([{"step": 1, "train_loss": 2.5, "valid_loss": None}]), end="")
        step,train_loss,valid_loss
        1,2.5,
    """
    out = io.StringIO()
    fields = list(history[0]) if history else ["step"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


class _RunLog(dict):
    """``fit``'s ``extra_state``: the W&B run id and every row logged to it (in each checkpoint).

    A resume restores the checkpoint's rows, never its run id: the id is the run this
    process writes to, a new one when the old run's files are gone.
    """

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        restored = dict(other, **kwargs)
        restored.pop("wandb_id", None)
        super().update(restored)


def _continued_run(
    exp: ExperimentConfig, ckpt_path: Path, fingerprint: str, out_dir: Path
) -> tuple[str | None, list]:
    """The W&B run id a resumed job continues, or None and the rows to replay into a new run."""
    if not exp.train.resume:
        return None, []
    try:
        state = load_checkpoint(ckpt_path)
    except CheckpointError:
        return None, []  # fit reports it
    if state is None or state.get("fingerprint") != fingerprint:
        return None, []
    saved = state.get("extra", {})
    run_id = saved.get("wandb_id")
    if run_id and (first_segment(out_dir / "wandb", run_id) or _online(out_dir, run_id)):
        return run_id, []
    return None, [list(row) for row in saved.get("wandb_log", [])]


def _online(out_dir: Path, run_id: str) -> bool:
    """True when ``run.json`` names run ``run_id`` on a W&B server that this job reaches too."""
    try:
        ref = read_run_json(out_dir / "run.json")
    except ValueError:
        return False
    return ref.id == run_id and ref.mode == "online" and wandb_mode() == "online"


def _in_chain(err: BaseException | None, kind: type) -> Any:
    """The first ``kind`` exception in ``err``'s chain (torch.save wraps a Ctrl-C or a full
    disk in a RuntimeError whose context is the real cause), or None."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, kind) and not (isinstance(err, OSError) and err.errno is None):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _stop_line(
    err: BaseException, name: str, ctx: DistContext, ckpt_path: Path, writing: Path, root: Path
) -> tuple[int, str | None] | None:
    """Exit status and one line (None: this rank says nothing) for a stop that is not a bug:
    Ctrl-C, another rank's failure, out of memory, a failed write; None for anything else
    (re-raised)."""
    if _in_chain(err, KeyboardInterrupt) is not None:
        return 130, _kept("interrupted (Ctrl-C)", "", ckpt_path, root) if ctx.is_main else None
    if ctx.distributed and is_peer_failure(err):
        # Another rank failed and printed its error; say why this one stops, once.
        first = str(err).strip().splitlines()[0][:300]
        return 1, f"rank {ctx.rank} stopped because another rank failed ({first})"
    if is_out_of_memory(err):
        if not ctx.is_main:
            return 1, None
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else "MemoryError"
        fix = "a smaller train.batch_size (or a larger grad_accum), then "
        return 1, _kept(f"out of memory ({first})", fix, ckpt_path, root)
    failed = _in_chain(err, OSError)
    if failed is None or isinstance(failed, ConnectionError | TimeoutError):
        return None
    if not ctx.is_main:
        return 1, None
    reason = failed.strerror or os.strerror(failed.errno)
    cause = f"cannot write {_rel(failed.filename or writing, root)} ({reason})"
    fix = "free some space, then " if failed.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return 1, _kept(cause, fix, ckpt_path, root)


def _kept(cause: str, fix: str, ckpt_path: Path, root: Path) -> str:
    """``cause`` and what the rerun starts from: the last checkpoint (its step), or nothing."""
    try:  # mmap: only the step is read, whatever the size of the weights
        step = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)["step"]
    except Exception:  # noqa: BLE001 - none, or unreadable: nothing to resume from
        return f"{cause}; no checkpoint was written yet: {fix}`dvc repro` starts it again"
    kept = f"the last checkpoint {_rel(ckpt_path, root)} (step {int(step)}) is kept"
    return f"{cause}; {kept}; {fix}`dvc repro` resumes from it"


def _rel(path: Path | str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _stop(tracker: TrackedRun | None, exit_code: int) -> None:
    """Close the run after a failure; a second Ctrl-C while it closes is not a traceback."""
    if tracker is not None:
        with contextlib.suppress(KeyboardInterrupt):
            tracker.finish(exit_code=exit_code)


def train_experiment(params: Params, exp: ExperimentConfig, ctx: DistContext, root: Path) -> int:
    """Train one experiment on this rank (call on every rank); returns the exit status.

    Rank 0 writes ``models/<exp>/checkpoint.pt`` (every ``train.checkpoint_every`` steps,
    atomically; a rerun resumes from it), ``models/<exp>/model.pt`` (the final weights with
    ``model_class``, ``model_config``, ``experiment``, ``task``, ``step``,
    ``final_train_loss``), ``models/<exp>/run.json`` (the W&B run reference),
    ``models/<exp>/wandb/`` (the run's record files) and ``metrics/curves/<exp>.csv`` (the
    training curves). Exit status 0 done, 1 failed (data error, non-finite loss, a failed
    write, a rank died), 130 interrupted (Ctrl-C).
    """
    paper = load_paper(params.paper)
    task = paper.task(exp.task)
    name = exp.name
    out_dir = root / "models" / name
    ckpt_path = out_dir / "checkpoint.pt"
    curves_path = root / "metrics" / "curves" / f"{name}.csv"
    data_dir = root / "data" / exp.task

    try:
        train_set = task.load_split(data_dir, "train", exp.seq_len)
        valid_set = task.load_split(data_dir, "valid", exp.seq_len)
    except (DataIntegrityError, ValueError, OSError) as err:
        if ctx.is_main:
            print(f"error: train {name}: {err}", file=sys.stderr)
        return 1
    problem = _too_small(train_set, exp, ctx, data_dir, root)
    if problem is not None:
        if ctx.is_main:
            print(f"error: train {name}: {problem}", file=sys.stderr)
        return 1

    torch.manual_seed(exp.seed)  # the same initial weights on every rank and every rerun
    try:
        built = paper.build_model(exp, train_set.vocab_size)
    except (MemoryError, RuntimeError) as err:
        if not is_out_of_memory(err):
            raise
        if ctx.is_main:
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else "MemoryError"
            print(
                f"error: train {name}: building the model ran out of memory ({first}); "
                "allowed: a smaller model: section, or a machine with more memory",
                file=sys.stderr,
            )
        return 1
    core, model, model_config = built.core, built.trainable, built.config
    # The code is part of the fingerprint: after a change to it the run starts afresh.
    fingerprint = f"{exp.fingerprint(ctx.world_size)}-{source_digest(source_files(paper))}"

    tracker: TrackedRun | None = None  # rank 0 only
    log = _RunLog()
    alerts = params.tracking.alerts
    writing = out_dir  # the file being written, named when a write fails
    try:
        if ctx.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            for stale in out_dir.glob(".*.tmp"):  # left by a writer killed mid-write
                stale.unlink()
            run_id, replay = _continued_run(exp, ckpt_path, fingerprint, out_dir)
            config = params.wandb_config(name)
            config["world_size"] = ctx.world_size
            config["n_parameters"] = sum(p.numel() for p in model.parameters())
            tracker = start_run(
                name,
                config,
                params.tracking.project,
                params.tracking.entity,
                root=root,
                run_id=run_id,
                tags=params.tracking.tags,
                init_timeout_s=params.tracking.init_timeout_s,
                home=out_dir,
            )
            writing = out_dir / "wandb"
            tidy_wandb_dir(writing, keep_id=tracker.ref.id)  # earlier runs of this experiment
            for metrics, step in replay:  # the lost run's rows, from the checkpoint
                tracker.log(metrics, step)
            log.update(wandb_log=replay)
            log["wandb_id"] = tracker.ref.id
            writing = out_dir / "run.json"
            write_run_json(writing, tracker.ref)

        def on_log(metrics: dict[str, float], step: int) -> None:
            log["wandb_log"].append([dict(metrics), step])
            if tracker is not None:
                tracker.log(metrics, step)

        writing = ckpt_path
        result = fit(
            model,
            train_set,
            valid_set,
            exp.train,
            ctx,
            seed=exp.seed,
            checkpoint_path=ckpt_path,
            fingerprint=fingerprint,
            on_log=on_log if tracker is not None else None,
            desc=name,
            extra_state=log,
        )
        if tracker is not None:
            writing = out_dir / "model.pt"
            atomic_save(
                {
                    "model_class": type(core).__name__,
                    "model_config": model_config,
                    "state_dict": core.state_dict(),
                    "experiment": name,
                    "task": exp.task,
                    "step": result.step,
                    "final_train_loss": result.final_loss,
                },
                writing,
            )
            writing = curves_path
            atomic_write_text(writing, curves_csv(result.history))
    except NonFiniteLossError as err:
        if tracker is not None:
            print(f"error: {err}", file=sys.stderr)
            if alerts:
                tracker.alert(f"{name} failed", str(err), "ERROR")
        _stop(tracker, 1)
        return 1
    except CheckpointError as err:
        if tracker is not None:
            print(f"error: train {name}: {err}", file=sys.stderr)
        _stop(tracker, 1)
        return 1
    except BaseException as err:
        stop = _stop_line(err, name, ctx, ckpt_path, writing, root)
        if tracker is not None and alerts and (stop is None or stop[0] != 130):
            tracker.alert(f"{name} failed", f"{type(err).__name__}: {err}", "ERROR")
        _stop(tracker, 1 if stop is None else stop[0])
        if stop is None:
            raise
        if stop[1] is not None:
            print(f"error: train {name}: {stop[1]}", file=sys.stderr)
        return stop[0]

    if tracker is not None:
        last = result.history[-1] if result.history else {}
        tracker.summary(
            {
                "train/steps": result.step,
                "train/final_loss": result.final_loss,
                "train/elapsed_s": result.elapsed_s,
            }
        )
        summary = (
            f"train {name}: {result.step} steps"
            + (f" (resumed at {result.resumed_from})" if result.resumed_from else "")
            + f" in {result.elapsed_s:.1f} s on {ctx.world_size} {ctx.device.type} rank(s), "
            f"{result.tokens_per_s:,.0f} tokens/s; final loss {_num(result.final_loss)}, "
            f"valid accuracy {_num(last.get('valid_accuracy'))}; wrote models/{name}/model.pt"
        )
        if alerts:
            tracker.alert(f"{name} finished", summary)
        tracker.finish()
        print(summary, flush=True)
    return 0


def _too_small(
    train_set: Any, exp: ExperimentConfig, ctx: DistContext, data_dir: Path, root: Path
) -> str | None:
    """Why the training split cannot give every rank one micro-batch, or None when it can.

    ``config check`` knows the split's size only for tasks that state it in params; this
    checks the split as loaded, before any rank builds a model.
    """
    t = exp.train
    micro = t.batch_size // (ctx.world_size * t.grad_accum)
    shard = len(train_set) // ctx.world_size
    if micro < 1 or shard >= micro:
        return None
    return (
        f"train.batch_size = {t.batch_size}: {_rel(data_dir, root)} holds {len(train_set)} "
        f"training sequences of {exp.seq_len} tokens, {shard} per rank on {ctx.world_size} "
        f"rank(s), fewer than one micro-batch ({micro}); allowed: a batch_size of at most "
        f"{len(train_set) // ctx.world_size * ctx.world_size * t.grad_accum}, or more data"
    )


def _num(value: float | None) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.4f}"
    )

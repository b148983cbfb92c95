"""One experiment's training run, on every rank: what the ``train@<experiment>`` stage runs.

The paper's plug-in (:class:`repro.paper.Paper`) provides the data and the model; this
module provides the rest: seeding, the W&B run (rank 0), safe resume (the checkpoint's
fingerprint covers the resolved params, the world size and the source code), the training
loop, the final weights, the curves and a one-line summary.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path

import torch

from repro.config import ExperimentConfig, Params
from repro.data.manifest import DataIntegrityError
from repro.io import atomic_save, atomic_write_text
from repro.paper import load_paper, source_files
from repro.tracking import TrackedRun, start_run, write_run_json

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


def train_experiment(params: Params, exp: ExperimentConfig, ctx: DistContext, root: Path) -> int:
    """Train one experiment on this rank (call on every rank); returns the exit status.

    Rank 0 writes ``models/<exp>/checkpoint.pt`` (every ``train.checkpoint_every`` steps,
    atomically; a rerun resumes from it), ``models/<exp>/model.pt`` (the final weights with
    ``model_class``, ``model_config``, ``experiment``, ``task``, ``step``,
    ``final_train_loss``), ``models/<exp>/run.json`` (the W&B run reference) and
    ``metrics/curves/<exp>.csv`` (the training curves). Exit status 0 done, 1 failed (data
    error, non-finite loss, a rank died).
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

    torch.manual_seed(exp.seed)  # the same initial weights on every rank and every rerun
    built = paper.build_model(exp, train_set.vocab_size)
    core, model, model_config = built.core, built.trainable, built.config
    # The code is part of the fingerprint: after a change to it the run starts afresh.
    fingerprint = f"{exp.fingerprint(ctx.world_size)}-{source_digest(source_files(paper))}"

    tracker: TrackedRun | None = None  # rank 0 only
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(".*.tmp"):  # left by a writer killed mid-write
            stale.unlink()
        run_id = None
        if exp.train.resume:
            try:
                state = load_checkpoint(ckpt_path)
            except CheckpointError:
                state = None  # fit reports it
            if state is not None and state.get("fingerprint") == fingerprint:
                run_id = state.get("extra", {}).get("wandb_id")  # continue the same W&B run
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
        )
        write_run_json(out_dir / "run.json", tracker.ref)
    extra = {"wandb_id": tracker.ref.id} if tracker is not None else {}
    alerts = params.tracking.alerts

    try:
        result = fit(
            model,
            train_set,
            valid_set,
            exp.train,
            ctx,
            seed=exp.seed,
            checkpoint_path=ckpt_path,
            fingerprint=fingerprint,
            on_log=tracker.log if tracker is not None else None,
            desc=name,
            extra_state=extra,
        )
    except NonFiniteLossError as err:
        if tracker is not None:
            print(f"error: {err}", file=sys.stderr)
            if alerts:
                tracker.alert(f"{name} failed", str(err), "ERROR")
            tracker.finish(exit_code=1)
        return 1
    except CheckpointError as err:
        if tracker is not None:
            print(f"error: train {name}: {err}", file=sys.stderr)
            tracker.finish(exit_code=1)
        return 1
    except BaseException as err:
        if tracker is not None:
            if alerts:
                tracker.alert(f"{name} failed", f"{type(err).__name__}: {err}", "ERROR")
            tracker.finish(exit_code=1)
        if ctx.distributed and is_peer_failure(err):
            # Another rank failed and printed its error; say why this one stops, once.
            first = str(err).strip().splitlines()[0][:300]
            print(
                f"error: train {name}: rank {ctx.rank} stopped because another rank failed "
                f"({first})",
                file=sys.stderr,
            )
            return 1
        raise

    if tracker is not None:
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
            out_dir / "model.pt",
        )
        atomic_write_text(curves_path, curves_csv(result.history))
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


def _num(value: float | None) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.4f}"
    )

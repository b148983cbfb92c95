"""Stage ``train@<experiment>``: distributed training of one experiment.

``dvc.yaml`` launches it on every rank with torchrun::

    torchrun --standalone --nproc_per_node 2 pipelines/train.py dup-lsh4

(``python pipelines/train.py dup-lsh4`` trains in a single process.) Rank 0 writes:

- ``models/<experiment>/checkpoint.pt``: every ``train.checkpoint_every`` steps, atomically;
  an interrupted run started again continues from it;
- ``models/<experiment>/model.pt``: the final weights, ``{"model_class", "model_config",
  "state_dict", "experiment", "task", "step", "final_train_loss"}`` (``model_class``:
  ``ReformerLM``, or ``ReformerEncoderDecoder`` for translation tasks, which train on packed
  source + target sequences through :class:`reformer.tasks.wmt14.PackedTranslationModel`);
- ``models/<experiment>/run.json``: the W&B run reference (see :mod:`repro.tracking.run`);
- ``metrics/curves/<experiment>.csv``: the training curves (``dvc plots``).

Exit status: 0 done, 1 failed (data error, non-finite loss, a rank died), 2 bad params.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import io
import math
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own package, installed or not

from reformer.config import (  # noqa: E402
    ConfigError,
    ExperimentConfig,
    Params,
    check_runtime,
    load_params,
)
from repro.training.distributed import DistContext  # noqa: E402


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


def _die_with_launcher() -> None:
    """Under torchrun on Linux: end this rank when its launcher dies, even by SIGKILL.

    torchrun starts every rank in its own session, so a killed launcher would otherwise
    leave orphan ranks training (and writing) on their own.
    """
    if sys.platform.startswith("linux") and "TORCHELASTIC_RUN_ID" in os.environ:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() == 1:  # the launcher died before prctl took effect
                os._exit(1)
        except (OSError, AttributeError):
            pass


def main(argv: list[str] | None = None) -> int:
    """Train one experiment on this rank; returns the exit status."""
    _die_with_launcher()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="a key of `experiments` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        exp = params.experiment(args.experiment)
        check_runtime(params)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from repro.training import cleanup_distributed, setup_distributed

    dist_cfg = params.distributed
    ctx = setup_distributed(
        dist_cfg.backend, dist_cfg.device, dist_cfg.timeout_s, dist_cfg.threads_per_rank
    )
    try:
        return _train(params, exp, ctx, Path.cwd())
    finally:
        cleanup_distributed(ctx)


def _train(params: Params, exp: ExperimentConfig, ctx: DistContext, root: Path) -> int:
    import torch

    from reformer.config import TRANSLATION_TASKS
    from reformer.models import ReformerEncoderDecoder, ReformerLM
    from reformer.tasks import DataIntegrityError, load_split
    from repro.tracking import TrackedRun, start_run, write_run_json
    from repro.training import (
        CheckpointError,
        NonFiniteLossError,
        atomic_save,
        atomic_write_text,
        fit,
        is_peer_failure,
        load_checkpoint,
        source_digest,
    )

    name = exp.name
    out_dir = root / "models" / name
    ckpt_path = out_dir / "checkpoint.pt"
    curves_path = root / "metrics" / "curves" / f"{name}.csv"
    data_dir = root / "data" / exp.task

    try:
        train_set = load_split(data_dir, "train", exp.seq_len)
        valid_set = load_split(data_dir, "valid", exp.seq_len)
    except (DataIntegrityError, ValueError, OSError) as err:
        if ctx.is_main:
            print(f"error: train {name}: {err}", file=sys.stderr)
        return 1

    model_config = exp.model_kwargs(train_set.vocab_size)
    torch.manual_seed(exp.seed)  # the same initial weights on every rank and every rerun
    core: torch.nn.Module
    if exp.task in TRANSLATION_TASKS:
        from reformer.tasks.wmt14 import PackedTranslationModel

        core = ReformerEncoderDecoder(**model_config)
        # The generic loop trains a language model: the wrapper unpacks source and target.
        model = PackedTranslationModel(core, exp.seq_len // 2)
    else:
        core = model = ReformerLM(**model_config)
    # The code is part of the fingerprint: after a change to it the run starts afresh.
    fingerprint = f"{exp.fingerprint(ctx.world_size)}-{source_digest()}"

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


if __name__ == "__main__":
    sys.exit(main())

"""The training loop: DDP, resumable sampling, accumulation, clipping, checkpoints, metrics.

:func:`fit` trains a language model for ``cfg.steps`` optimizer steps on every rank of a
:class:`~repro.training.distributed.DistContext`:

- each rank reads a disjoint shard of every epoch (``DistributedSampler``, reshuffled per
  epoch with ``set_epoch``) in micro-batches of ``batch_size / (world_size * grad_accum)``
  (:func:`~repro.training.sampling.micro_batches`);
  gradients are accumulated over ``grad_accum`` micro-batches (DDP synchronises only on the
  last) and clipped to ``clip_grad_norm``;
- once per step the loss and accuracy sums are all-reduced, so every rank sees the same
  global numbers: they feed the progress bar (rank 0), the history logged every
  ``log_every`` steps, and the non-finite check that stops every rank at the same step;
- a checkpoint is written atomically (rank 0) every ``checkpoint_every`` steps and at the
  end; with ``resume`` a run whose checkpoint matches its configuration continues from it,
  and ends with the same weights as an uninterrupted run on CPU.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler
from tqdm.auto import tqdm

from repro.config import TrainConfig

from .checkpoint import atomic_save, capture_rng_state, load_checkpoint, restore_rng_state
from .distributed import DistContext, all_gather_object, all_reduce_sum
from .metrics import LanguageModelObjective, autocast_context, evaluate_lm
from .optim import build_optimizer
from .sampling import micro_batches
from .schedules import build_scheduler

__all__ = ["NonFiniteLossError", "TrainResult", "fit", "HISTORY_FIELDS"]

#: Columns of a history row (and of the training-curve CSV).
HISTORY_FIELDS = ("step", "train_loss", "train_accuracy", "lr", "valid_loss", "valid_accuracy")


class NonFiniteLossError(RuntimeError):
    """The loss (or the gradient norm) became NaN or infinite; training stopped.

    The message names the step and the last good checkpoint, which is left as it was.

    Example:
        >>> str(NonFiniteLossError("non-finite loss nan at step 3"))
        'non-finite loss nan at step 3'
    """


@dataclass
class TrainResult:
    """What :func:`fit` returns (identical on every rank).

    Attributes:
        step: optimizer steps done in total.
        history: one row per logged step, keys :data:`HISTORY_FIELDS` (None where a
            value was not computed).
        final_loss: the training loss of the last logged interval.
        elapsed_s: wall time of this process's part of the run.
        tokens: tokens processed (all ranks) in this process's part of the run.
        resumed_from: the checkpoint step the run continued from, or None.
    """

    step: int
    history: list[dict[str, Any]] = field(default_factory=list)
    final_loss: float | None = None
    elapsed_s: float = 0.0
    tokens: int = 0
    resumed_from: int | None = None

    @property
    def tokens_per_s(self) -> float:
        """Throughput of this process's part of the run."""
        return self.tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _rank_seed(seed: int, rank: int) -> int:
    # Distinct streams per rank (LSH rotations, dropout), reproducible from the seed.
    return seed * 1_000_003 + rank + 1


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def fit(
    model: nn.Module,
    train_set: Dataset,
    valid_set: Dataset | None,
    cfg: TrainConfig,
    ctx: DistContext,
    *,
    seed: int = 0,
    checkpoint_path: str | Path | None = None,
    fingerprint: str = "",
    on_log: Callable[[dict[str, float], int], None] | None = None,
    desc: str = "train",
    extra_state: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` optimizer steps (call on every rank).

    Args:
        model: a language model, tokens ``(b, l)`` -> logits ``(b, l, V)``, on the CPU; it
            is moved to ``ctx.device`` and trained in place (the same weights on every rank,
            DDP broadcasts rank 0's at the start).
        train_set: items ``{"tokens": (l,), "loss_mask": (l,)}``.
        valid_set: evaluated on ``cfg.valid_batches`` global batches at every logged step
            (None or ``valid_batches = 0``: not evaluated).
        cfg: the optimisation settings.
        ctx: this rank's distributed context.
        seed: seeds the sampler's shuffling and each rank's RNG.
        checkpoint_path: where rank 0 writes the checkpoint (None: never).
        fingerprint: identifies the configuration; a checkpoint with another fingerprint is
            not resumed from (its run was a different experiment).
        on_log: called on rank 0 as ``on_log(metrics, step)`` at every logged step with the
            W&B keys ``train/loss``, ``train/accuracy``, ``train/lr``, ``train/tokens_per_s``,
            ``valid/loss``, ``valid/accuracy`` (metrics averaged over all ranks).
        desc: progress-bar label.
        extra_state: small plain data saved in the checkpoint (e.g. the W&B run id); on
            resume the saved value is put back into this dict.

    Returns:
        A :class:`TrainResult`.

    Raises:
        NonFiniteLossError: on every rank, at the first step whose loss or gradient norm
            is not finite; nothing is saved for that step.

    Example:
        >>> from repro.config import TrainConfig
        >>> from repro.training.distributed import DistContext
        >>> data = [{"tokens": torch.tensor([1, 2, 1, 2]), "loss_mask": torch.ones(4).bool()}] * 8
        >>> model = nn.Sequential(nn.Embedding(3, 8), nn.Linear(8, 3))
        >>> ctx = DistContext(0, 1, 0, 1, torch.device("cpu"), None)
        >>> cfg = TrainConfig(steps=30, batch_size=4, lr=0.1, log_every=10, valid_batches=0)
        >>> result = fit(model, data, None, cfg, ctx, desc="doctest")
        >>> result.step, result.history[-1]["train_accuracy"]
        (30, 1.0)
    """
    device = ctx.device
    micro = cfg.batch_size // (ctx.world_size * cfg.grad_accum)
    if micro < 1 or micro * ctx.world_size * cfg.grad_accum != cfg.batch_size:
        raise ValueError(
            f"batch_size = {cfg.batch_size}: must be a multiple of world_size x grad_accum = "
            f"{ctx.world_size * cfg.grad_accum}"
        )
    if device.type == "cpu" and cfg.precision != "fp32" and ctx.is_main:
        warnings.warn(
            f"precision = {cfg.precision!r} applies on CUDA only; training in fp32 on CPU",
            stacklevel=2,
        )
    model.to(device)
    model.train()
    objective = LanguageModelObjective(model)
    wrapped: nn.Module = objective
    if ctx.distributed:
        wrapped = DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = build_optimizer(
        model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay, tuple(cfg.betas)
    )
    scheduler = build_scheduler(
        optimizer, cfg.schedule, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio
    )
    use_scaler = device.type == "cuda" and cfg.precision == "fp16"
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    step = 0
    history: list[dict[str, Any]] = []
    pending = torch.zeros(4, dtype=torch.float64)  # loss sum, correct, count, tokens
    resumed_from = None
    ckpt_path = Path(checkpoint_path) if checkpoint_path is not None else None
    state = load_checkpoint(ckpt_path) if (ckpt_path is not None and cfg.resume) else None
    if state is not None and state.get("fingerprint") != fingerprint:
        if ctx.is_main:
            print(
                f"{desc}: {ckpt_path} belongs to another configuration; starting afresh",
                file=sys.stderr,
            )
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
        history = list(state["history"])
        pending = state["pending"].clone()
        restore_rng_state(state["rng"][ctx.rank])
        if extra_state is not None:
            extra_state.update(state.get("extra", {}))
        resumed_from = step
        if ctx.is_main:
            print(f"{desc}: resuming from {ckpt_path} at step {step}", file=sys.stderr)
    else:
        torch.manual_seed(_rank_seed(seed, ctx.rank))

    sampler = DistributedSampler(
        train_set,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=seed,
        drop_last=True,
    )
    batches = micro_batches(train_set, sampler, micro, step * cfg.grad_accum, cfg.num_workers)
    params = [p for p in model.parameters() if p.requires_grad]
    max_norm = cfg.clip_grad_norm if cfg.clip_grad_norm else math.inf
    last_good = step if (state is not None) else None

    def save(at_step: int) -> None:
        nonlocal last_good
        rng = all_gather_object(capture_rng_state(), ctx)  # collective: every rank
        if ctx.is_main and ckpt_path is not None:
            atomic_save(
                {
                    "step": at_step,
                    "fingerprint": fingerprint,
                    "world_size": ctx.world_size,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "history": history,
                    "pending": pending,
                    "rng": rng,
                    "extra": dict(extra_state or {}),
                },
                ckpt_path,
            )
        last_good = at_step

    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=desc,
        disable=not ctx.is_main,
        dynamic_ncols=True,
        mininterval=1.0 if sys.stderr.isatty() else 15.0,
        file=sys.stderr,
    )
    t_start = time.perf_counter()
    t_log = t_start
    tokens_done = 0
    tokens_since_log = 0
    final_loss = None
    try:
        while step < cfg.steps:
            lr = optimizer.param_groups[0]["lr"]
            local = torch.zeros(5, dtype=torch.float64)  # loss sum, correct, count, tokens, bad
            for k in range(cfg.grad_accum):
                batch = next(batches)
                tokens = batch["tokens"].to(device, non_blocking=True)
                loss_mask = batch["loss_mask"].to(device, non_blocking=True)
                sync = k == cfg.grad_accum - 1 or not ctx.distributed
                with contextlib.nullcontext() if sync else wrapped.no_sync():
                    with autocast_context(device, cfg.precision):
                        loss, correct, count = wrapped(tokens, loss_mask)
                    scaler.scale(loss / cfg.grad_accum).backward()
                local[0] += loss.detach().double().cpu() * count.item()
                local[1] += correct.double().cpu()
                local[2] += count.item()
                local[3] += tokens.numel()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            finite = math.isfinite(local[0].item()) and (
                use_scaler or math.isfinite(float(grad_norm))
            )
            local[4] = 0.0 if finite else 1.0
            all_reduce_sum(local, ctx)  # one small collective per step: global metrics
            if local[4] > 0:
                where = (
                    f"the last good checkpoint {ckpt_path} (step {last_good}) is kept"
                    if last_good is not None and ckpt_path is not None
                    else "no checkpoint was written"
                )
                value = local[0].item() / max(local[2].item(), 1)
                raise NonFiniteLossError(
                    f"{desc}: non-finite loss ({value}) at step {step + 1}; training stopped, "
                    f"{where}"
                )
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            pending[:4] += local[:4]
            tokens_done += int(local[3].item())
            tokens_since_log += int(local[3].item())

            step_loss = local[0].item() / max(local[2].item(), 1)
            elapsed = time.perf_counter() - t_start
            bar.set_postfix(
                loss=f"{step_loss:.4f}", tok_s=f"{tokens_done / elapsed:,.0f}", refresh=False
            )
            bar.update(1)

            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                tok_s = tokens_since_log / max(now - t_log, 1e-9)
                t_log, tokens_since_log = now, 0
                loss_sum, correct, count, _ = pending.tolist()
                row: dict[str, Any] = {
                    "step": step,
                    "train_loss": loss_sum / count if count else None,
                    "train_accuracy": correct / count if count and math.isfinite(correct) else None,
                    "lr": lr,
                    "valid_loss": None,
                    "valid_accuracy": None,
                }
                if valid_set is not None and cfg.valid_batches > 0:
                    valid = evaluate_lm(
                        model,
                        valid_set,
                        micro * ctx.world_size,
                        device,
                        cfg.valid_batches,
                        ctx,
                        cfg.precision,
                    )
                    row["valid_loss"], row["valid_accuracy"] = valid["loss"], valid["accuracy"]
                history.append(row)
                final_loss = row["train_loss"]
                pending.zero_()
                if ctx.is_main:
                    bar.write(
                        f"{desc} step {step}: loss {_fmt(row['train_loss'])} "
                        f"acc {_fmt(row['train_accuracy'])} valid_acc "
                        f"{_fmt(row['valid_accuracy'])} lr {lr:.2e} tok/s {tok_s:,.0f}",
                        file=sys.stderr,
                    )
                if on_log is not None and ctx.is_main:
                    metrics = {"train/lr": lr, "train/tokens_per_s": tok_s}
                    for key, name in (
                        ("train_loss", "train/loss"),
                        ("train_accuracy", "train/accuracy"),
                        ("valid_loss", "valid/loss"),
                        ("valid_accuracy", "valid/accuracy"),
                    ):
                        if row[key] is not None:
                            metrics[name] = row[key]
                    on_log(metrics, step)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save(step)
    finally:
        bar.close()
    if final_loss is None and history:
        final_loss = history[-1]["train_loss"]
    return TrainResult(
        step=step,
        history=history,
        final_loss=final_loss,
        elapsed_s=time.perf_counter() - t_start,
        tokens=tokens_done,
        resumed_from=resumed_from,
    )

"""Real 2-rank jobs (torch.multiprocessing.spawn, gloo, file:// rendezvous): disjoint sampling,
identical weights, metrics reduced over ranks, and a failing rank that stops the job.

The data and model are the kit's fixture paper's (``tests/repro/minipaper``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from minipaper.model import TinyLM
from minipaper.task import COPY
from torch.utils.data import DistributedSampler

from repro.config import TrainConfig
from repro.training import (
    all_gather_object,
    cleanup_distributed,
    evaluate_lm,
    fit,
    micro_batches,
    setup_distributed,
)

pytestmark = [pytest.mark.distributed]

WORLD = 2
LENGTH, VOCAB = 16, 8
load_split = COPY.load_split


def _join(tmp: Path, rank: int, timeout_s: float = 60):
    return setup_distributed(
        "gloo",
        "cpu",
        timeout_s,
        threads_per_rank=1,
        rank=rank,
        world_size=WORLD,
        init_method=f"file://{tmp / 'rendezvous'}",
    )


def _model() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM(VOCAB, max_seq_len=LENGTH, width=16, heads=2, kind="fancy", shape=(1, 16))


def _worker(rank: int, tmp: Path, data_dir: Path) -> None:
    ctx = _join(tmp, rank)
    try:
        train = load_split(data_dir, "train")
        # 1. disjoint shards: the micro-batches of one epoch, per rank
        sampler = DistributedSampler(
            train, num_replicas=WORLD, rank=rank, shuffle=True, seed=7, drop_last=True
        )
        batches = micro_batches(list(range(len(train))), sampler, micro_batch=4)
        first_epoch = [i for _ in range(len(sampler) // 4) for i in next(batches).tolist()]
        # 2. training: every rank ends with the same weights
        model = _model()
        cfg = TrainConfig(steps=4, batch_size=8, lr=1e-2, log_every=1, valid_batches=0)
        result = fit(model, train, None, cfg, ctx, seed=7, desc=f"rank{rank}")
        # 3. evaluation split between the ranks, reduced
        valid = evaluate_lm(
            model, load_split(data_dir, "valid"), batch_size=3, device=ctx.device, ctx=ctx
        )
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        torch.save(
            {
                "indices": first_epoch,
                "history": result.history,
                "weights": weights,
                "valid": valid,
                "gathered": all_gather_object(rank * 10, ctx),
            },
            tmp / f"rank{rank}.pt",
        )
    finally:
        cleanup_distributed(ctx)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "copy"
    params = dict(length=LENGTH, vocab_size=VOCAB, n_train=64, n_valid=10, n_test=4, seed=0)
    return COPY.prepare(out, params)


def test_two_ranks_disjoint_data_identical_weights_reduced_metrics(tmp_path, data_dir):
    mp.spawn(_worker, args=(tmp_path, data_dir), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD))

    # disjoint shards that together cover the epoch
    assert not set(r0["indices"]) & set(r1["indices"])
    assert sorted(r0["indices"] + r1["indices"]) == list(range(64))

    # DDP kept the replicas identical
    assert torch.equal(r0["weights"], r1["weights"])
    assert r0["gathered"] == [0, 10]

    # the logged metrics are global (the same on every rank) ...
    assert r0["history"] == r1["history"]
    # ... and the first step's loss is the mean over the global batch: recompute it here
    # with the initial weights on the union of both ranks' first micro-batches
    train = load_split(data_dir, "train")
    order = list(DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=7))
    batch = torch.stack([train[i]["tokens"] for i in order[:8]])
    targets = batch.roll(-1, dims=1)
    mask = torch.stack([train[i]["loss_mask"] for i in order[:8]])
    mask[:, -1] = False
    logp = torch.log_softmax(_model()(batch), dim=-1)
    expected = -logp.gather(-1, targets[..., None])[..., 0][mask].mean().item()
    assert r0["history"][0]["train_loss"] == pytest.approx(expected, rel=1e-5)

    # evaluation split over ranks equals a single-process evaluation of the whole split
    model = _model()
    model.load_state_dict(
        dict(zip(dict(model.named_parameters()), _unflatten(r0["weights"], model), strict=True))
    )
    single = evaluate_lm(
        model, load_split(data_dir, "valid"), batch_size=3, device=torch.device("cpu")
    )
    assert r0["valid"]["count"] == single["count"] == 10 * (LENGTH // 2 - 1)
    assert r0["valid"]["accuracy"] == pytest.approx(single["accuracy"])
    assert r0["valid"]["loss"] == pytest.approx(single["loss"], rel=1e-6)


def _unflatten(flat: torch.Tensor, model: torch.nn.Module) -> list[torch.Tensor]:
    out, offset = [], 0
    for p in model.parameters():
        out.append(flat[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


def _failing_worker(rank: int, tmp: Path) -> None:
    _join(tmp, rank, timeout_s=30)
    if rank == 1:
        raise RuntimeError("rank 1 fails on purpose")
    # rank 0 waits in a collective for the rank that died: it must error, not hang
    torch.distributed.all_reduce(torch.ones(1))
    torch.distributed.barrier()


def test_a_failing_rank_makes_every_rank_exit_nonzero_quickly(tmp_path):
    start = time.monotonic()
    context = mp.spawn(_failing_worker, args=(tmp_path,), nprocs=WORLD, join=False)
    for process in context.processes:
        process.join(timeout=60)
    elapsed = time.monotonic() - start
    codes = [p.exitcode for p in context.processes]
    for p in context.processes:  # nothing may be left behind if the assertion fails
        if p.exitcode is None:
            os.kill(p.pid, 9)
    assert all(code not in (0, None) for code in codes), codes
    assert elapsed < 60

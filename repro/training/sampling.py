"""Resumable sharded sampling: the micro-batches each rank reads, epoch after epoch.

:func:`micro_batches` turns a rank's ``DistributedSampler`` into an endless stream of
micro-batches in which micro-batch ``k`` is the same wherever the stream starts.
:func:`repro.training.loop.fit` starts it at the number of micro-batches already consumed,
which is what makes a resumed run see the same data as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["micro_batches"]


def micro_batches(
    dataset: Dataset,
    sampler: DistributedSampler,
    micro_batch: int,
    start: int = 0,
    num_workers: int = 0,
) -> Iterator[dict[str, torch.Tensor]]:
    """Endless micro-batches of this rank's shard, starting at micro-batch ``start``.

    Epoch ``e`` uses ``sampler.set_epoch(e)``; a partial last batch of an epoch is dropped.
    Micro-batch ``k`` is the same whether the iterator starts at 0 or at ``k``, which is what
    makes resume exact.

    Args:
        dataset: items ``{"tokens": (l,), "loss_mask": (l,)}``.
        sampler: this rank's ``DistributedSampler`` (``drop_last=True``).
        micro_batch: sequences per batch.
        start: micro-batches to skip (already consumed before a resume).
        num_workers: DataLoader worker processes.

    Yields:
        ``{"tokens": (micro_batch, l), "loss_mask": (micro_batch, l)}``.

    Raises:
        ValueError: the shard holds fewer than ``micro_batch`` items.

    Example:
        >>> ds = [{"tokens": torch.tensor([i])} for i in range(8)]
        >>> s = DistributedSampler(ds, num_replicas=2, rank=0, shuffle=False, drop_last=True)
        >>> it = micro_batches(ds, s, micro_batch=2)
        >>> [next(it)["tokens"].flatten().tolist() for _ in range(3)]
        [[0, 2], [4, 6], [0, 2]]
        >>> next(micro_batches(ds, s, micro_batch=2, start=1))["tokens"].flatten().tolist()
        [4, 6]
    """
    per_epoch = len(sampler) // micro_batch
    if per_epoch == 0:
        raise ValueError(
            f"micro_batch = {micro_batch}: each rank's shard has only {len(sampler)} items; "
            "allowed: a batch_size at most the training split size"
        )
    epoch, skip = divmod(start, per_epoch)
    while True:
        sampler.set_epoch(epoch)
        order = list(iter(sampler))
        batches = [order[i * micro_batch : (i + 1) * micro_batch] for i in range(skip, per_epoch)]
        # A private generator: creating a loader must not draw from the global RNG, whose
        # stream (LSH rotations, dropout) has to be the same after a resume.
        loader_rng = torch.Generator().manual_seed(epoch)
        yield from DataLoader(
            dataset, batch_sampler=batches, num_workers=num_workers, generator=loader_rng
        )
        epoch, skip = epoch + 1, 0

"""Deterministic activation-memory measurement: bytes of tensors saved for backward.

Timing and peak-RSS numbers depend on the allocator and the machine; the tensors that
autograd keeps for the backward pass do not. :func:`saved_tensor_bytes` counts them with
:func:`torch.autograd.graph.saved_tensors_hooks`, each underlying storage once (a tensor and
its views, or one tensor saved by several operations, share a storage). This is the
quantity of the paper's Tables 1 and 3: what a layer keeps alive between forward and
backward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


class SavedTensorCounter:
    """Counts the distinct storages saved for backward while it is active.

    Use it through :func:`saved_tensor_bytes`. Attributes, read after (or during) the
    ``with`` block:

    * ``total``: bytes of all distinct storages saved, excluding ``ignore``;
    * ``count``: number of distinct storages counted.

    While active it keeps a reference to each counted tensor, so that a freed storage's
    address cannot be reused by a later tensor and skipped by mistake; the references are
    dropped when the block exits.

    Example:
        >>> with saved_tensor_bytes() as saved:
        ...     y = torch.ones(4, requires_grad=True).exp()
        >>> saved.total, saved.count  # exp saves its float32 output
        (16, 1)
    """

    def __init__(self, ignore: Iterable[torch.Tensor] = ()) -> None:
        self.total = 0
        self.count = 0
        self._ignore = {t.untyped_storage().data_ptr() for t in ignore}
        self._held: dict[tuple[str, int], torch.Tensor] = {}
        self._hooks: Any = None

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        key = (str(t.device), ptr)
        if ptr not in self._ignore and key not in self._held:
            self._held[key] = t
            self.total += storage.nbytes()
            self.count += 1
        return t

    @staticmethod
    def _unpack(t: torch.Tensor) -> torch.Tensor:
        return t

    def __enter__(self) -> SavedTensorCounter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.remove(self)
        self._hooks.__exit__(*exc)
        self._held.clear()


_ACTIVE: list[SavedTensorCounter] = []


def count_held(*tensors: torch.Tensor) -> None:
    """Count tensors that an autograd function keeps for its backward outside
    ``save_for_backward`` (so that it can free them early) in every active counter.

    Example:
        >>> with saved_tensor_bytes() as saved:
        ...     count_held(torch.zeros(4))
        >>> saved.total
        16
    """
    for counter in _ACTIVE:
        for t in tensors:
            counter._pack(t)


def saved_tensor_bytes(
    fn: Callable[..., Any] | None = None,
    /,
    *args: Any,
    ignore: Iterable[torch.Tensor] = (),
    **kwargs: Any,
) -> Any:
    """Count the bytes of tensors saved for backward.

    Two forms:

    * ``saved_tensor_bytes(ignore=...)`` returns a context manager yielding a
      :class:`SavedTensorCounter`;
    * ``saved_tensor_bytes(fn, *args, ignore=..., **kwargs)`` calls ``fn(*args, **kwargs)``
      inside it and returns the byte count (an ``int``).

    Args:
        fn: optional function to run while counting.
        *args: positional arguments for ``fn``.
        ignore: tensors whose storages are not counted, typically ``model.parameters()``
            (weights are saved by linear layers, but they are not activations).
        **kwargs: keyword arguments for ``fn``.

    Returns:
        A :class:`SavedTensorCounter` context manager, or the bytes counted while ``fn`` ran.

    Example:
        >>> lin = torch.nn.Linear(8, 8, bias=False)
        >>> x = torch.randn(2, 8, requires_grad=True)
        >>> saved_tensor_bytes(lin, x, ignore=lin.parameters())  # only the input counts
        64
        >>> with saved_tensor_bytes() as saved:  # now the weight (8 x 8 float32) counts too
        ...     y = lin(x)
        >>> saved.total
        320
    """
    counter = SavedTensorCounter(ignore)
    if fn is None:
        return counter
    with counter:
        fn(*args, **kwargs)
    return counter.total

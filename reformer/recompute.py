"""State that a forward pass recomputed during backward must replay: random streams and autocast.

Reversible blocks (:mod:`reformer.reversible`) and LSH head groups
(:mod:`reformer.attention.lsh`) both run part of their forward pass a second time in
backward instead of storing its activations. The second run matches the first only if
dropout draws the same numbers and autocast picks the same precision, so both capture that
state in forward with :func:`capture_rng` and :meth:`AutocastState.capture`, and replay it in
backward inside :func:`replaying`, which forks the random streams so that backward leaves
them as it found them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class RngState:
    """The global CPU generator's state, the listed CUDA devices' and explicit generators'."""

    cpu: Tensor
    cuda: list[tuple[torch.device, Tensor]] = field(default_factory=list)
    generators: list[tuple[torch.Generator, Tensor]] = field(default_factory=list)


def module_generators(modules: Iterable[nn.Module]) -> list[torch.Generator]:
    """The distinct ``torch.Generator`` objects held as ``.generator`` by any sub-module."""
    found: dict[int, torch.Generator] = {}
    for module in modules:
        for sub in module.modules():
            gen = getattr(sub, "generator", None)
            if isinstance(gen, torch.Generator):
                found[id(gen)] = gen
    return list(found.values())


def capture_rng(
    devices: Sequence[torch.device], generators: Sequence[torch.Generator] = ()
) -> RngState:
    """The current state of the CPU stream, of ``devices``' CUDA streams and of ``generators``."""
    return RngState(
        cpu=torch.get_rng_state(),
        cuda=[(d, torch.cuda.get_rng_state(d)) for d in devices],
        generators=[(g, g.get_state()) for g in generators],
    )


def restore_rng(state: RngState) -> None:
    """Set every stream captured in ``state`` back to what it was."""
    torch.set_rng_state(state.cpu)
    for device, cuda_state in state.cuda:
        torch.cuda.set_rng_state(cuda_state, device)
    for gen, gen_state in state.generators:
        gen.set_state(gen_state)


def cuda_devices(*tensors: Tensor) -> list[torch.device]:
    """The distinct CUDA devices of ``tensors`` (empty on CPU), for :func:`capture_rng`."""
    return list(dict.fromkeys(t.device for t in tensors if t.is_cuda))


@dataclass(frozen=True)
class AutocastState:
    """Whether autocast is on for ``device_type``, and at which dtype."""

    device_type: str
    enabled: bool
    dtype: torch.dtype

    @classmethod
    def capture(cls, device_type: str) -> AutocastState:
        """The autocast setting now in force for ``device_type`` (``"cpu"``, ``"cuda"``)."""
        return cls(
            device_type,
            torch.is_autocast_enabled(device_type),
            torch.get_autocast_dtype(device_type),
        )


@contextmanager
def replaying(devices: Sequence[torch.device], autocast: AutocastState) -> Iterator[None]:
    """Run a recomputation under the forward pass's autocast, on forked random streams."""
    with (
        torch.random.fork_rng(devices=list(devices)),
        torch.autocast(autocast.device_type, dtype=autocast.dtype, enabled=autocast.enabled),
    ):
        yield

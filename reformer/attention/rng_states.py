"""The rotation generators' states of every LSH layer in a module.

Together with torch's global RNG state (CPU and CUDA) they are all a recomputed forward pass
needs to draw the same rotations and dropout masks again (reversible blocks, head groups).
"""

from __future__ import annotations

import torch
from torch import nn

from reformer.attention.lsh import LSHSelfAttention

__all__ = ["get_rng_states", "set_rng_states"]


def get_rng_states(module: nn.Module) -> list[torch.Tensor | None]:
    """States of the rotation generators of every LSH layer in ``module`` (in module order).

    Together with torch's global RNG state (CPU and CUDA) this is all a recompute needs to
    reproduce the rotations and dropout masks of a forward pass.

    Example:
        >>> layer = LSHSelfAttention(8, 2, generator=torch.Generator().manual_seed(0))
        >>> states = get_rng_states(nn.Sequential(layer))
        >>> len(states), states[0].dtype
        (1, torch.uint8)
    """
    return [m.rng_state() for m in module.modules() if isinstance(m, LSHSelfAttention)]


def set_rng_states(module: nn.Module, states: list[torch.Tensor | None]) -> None:
    """Restore states returned by :func:`get_rng_states` for the same ``module``.

    Example:
        >>> net = nn.Sequential(LSHSelfAttention(8, 2, bucket_size=4,
        ...                                      generator=torch.Generator().manual_seed(0)))
        >>> x = torch.randn(1, 16, 8)
        >>> states = get_rng_states(net)
        >>> y1 = net(x)
        >>> set_rng_states(net, states)
        >>> torch.equal(y1, net(x))
        True
    """
    layers = [m for m in module.modules() if isinstance(m, LSHSelfAttention)]
    if len(layers) != len(states):
        raise ValueError(f"got {len(states)} states for {len(layers)} LSH layers")
    for layer, state in zip(layers, states, strict=True):
        layer.set_rng_state(state)

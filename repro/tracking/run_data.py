"""A W&B run as plain Python data: :class:`Run`, with flat keys.

Keys are flat strings: a metric logged as ``{"a": {"b": 1}}`` (wandb stores the path
``["a", "b"]``) comes back as ``"a.b"``, and a dict value is flattened the same way, in the
config, the summary and every history row alike (:func:`flatten`). Keys with a slash
(``"train/loss"``) are left as they are. wandb's own bookkeeping (``_wandb``) is dropped;
``_step``, ``_runtime`` and ``_timestamp`` are kept, as the API keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Run", "RunState", "flatten"]

RunState = Literal["finished", "crashed", "running"]


@dataclass
class Run:
    """One W&B run as plain data, the same for offline files and the public API.

    Attributes:
        id: the W&B run id.
        name: the display name, or ``None``.
        group: the run group (one per ``dvc repro``), or ``None``.
        config: flat ``{"a.b": value}`` dict of the run's config.
        summary: flat dict of the final summary (last logged values plus explicit updates).
        history: one flat dict per logged step, in order, each with ``"_step"``.
        state: ``"finished"``, ``"crashed"`` or ``"running"``.
        source: where it was read from: the record file(s) or the run's URL.

    Example:
        >>> run = Run("abc", "demo", None, {}, {"loss": 0.5},
        ...           [{"_step": 0, "loss": 1.0}, {"_step": 1}, {"_step": 2, "loss": 0.5}],
        ...           "finished", "memory")
        >>> run.series("loss")
        ([0, 2], [1.0, 0.5])
    """

    id: str
    name: str | None
    group: str | None
    config: dict[str, Any]
    summary: dict[str, Any]
    history: list[dict[str, Any]]
    state: RunState
    source: str
    extra: dict[str, Any] = field(default_factory=dict)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Steps and values of one history key, skipping rows that do not log it.

        Args:
            key: a flat history key such as ``"train/loss"``.

        Returns:
            ``(steps, values)``, two lists of equal length.
        """
        steps: list[int] = []
        values: list[float] = []
        for row in self.history:
            if key in row and row[key] is not None:
                steps.append(int(row.get("_step", len(steps))))
                values.append(row[key])
        return steps, values


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into dot-joined keys; wandb media dicts (with ``_type``) stay whole.

    Args:
        value: a possibly nested mapping.
        prefix: prepended to every key, followed by a dot.

    Returns:
        A flat dict.

    Example:
        >>> flatten({"model": {"d": 256, "attn": {"n_hashes": 4}}, "lr": 1e-3})
        {'model.d': 256, 'model.attn.n_hashes': 4, 'lr': 0.001}
    """
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, Mapping) and item and "_type" not in item:
            out.update(flatten(item, name))
        else:
            out[name] = item
    return out


def _assign(target: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` to ``value`` in a flat dict; a new value replaces the whole old subtree."""
    _remove(target, key)
    if isinstance(value, Mapping) and value and "_type" not in value:
        target.update(flatten(value, key))
    else:
        target[key] = value


def _remove(target: dict[str, Any], key: str) -> None:
    below = key + "."
    for old in [k for k in target if k == key or k.startswith(below)]:
        del target[old]


def _is_internal(key: str) -> bool:
    return key == "_wandb" or key.startswith("_wandb.")

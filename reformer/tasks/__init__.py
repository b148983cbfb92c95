"""The paper's tasks, as the kit's :class:`repro.paper.Task` plug-ins.

One module per task (:mod:`~reformer.tasks.duplication`, :mod:`~reformer.tasks.enwik8`,
:mod:`~reformer.tasks.wmt14`), and :mod:`repro.data.manifest` for the sha256 manifest
every prepared directory carries. :data:`TASKS` names them for :mod:`reformer.paper`;
importing this package stays light (no torch): each task's module is imported when one
of its functions is first called.

- :func:`prepare_task` writes a task's splits and manifest into a directory
  (``dvc.yaml``'s prepare stage calls it).
- :func:`load_split` checks a split against the manifest and returns a Dataset whose
  items are ``{"tokens": LongTensor (length,), "loss_mask": BoolTensor (length,)}``;
  ``loss_mask[t]`` says whether predicting ``tokens[t + 1]`` from ``tokens[: t + 1]``
  counts in loss and accuracy. The default collate stacks items into
  ``(batch, length)`` tensors.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.data.manifest import (
    DataIntegrityError,
    read_manifest,
    sha256_file,
    verify_manifest,
    write_manifest,
)
from repro.paper import Task

if TYPE_CHECKING:
    from torch.utils.data import Dataset

__all__ = [
    "TASKS",
    "SPLITS",
    "DataIntegrityError",
    "DuplicationDataset",
    "Enwik8Dataset",
    "WMT14Dataset",
    "duplication_loss_mask",
    "load_split",
    "prepare_task",
    "read_manifest",
    "sha256_file",
    "verify_manifest",
    "write_manifest",
]

SPLITS = ("train", "valid", "test")
#: Names re-exported from the task modules, imported on first use (PEP 562).
_LAZY = {
    "DuplicationDataset": "duplication",
    "duplication_loss_mask": "duplication",
    "prepare_duplication": "duplication",
    "Enwik8Dataset": "enwik8",
    "prepare_enwik8": "enwik8",
    "WMT14Dataset": "wmt14",
    "load_wmt14_split": "wmt14",
    "prepare_wmt14": "wmt14",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _late(module: str, name: str) -> Callable[..., Any]:
    """``reformer.tasks.<module>.<name>``, imported when first called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Calls :func:`reformer.tasks.{module}.{name}`."
    return call


def _verified(data_dir: Path, split: str, suffix: str) -> tuple[Path, dict]:
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; allowed: {', '.join(SPLITS)}")
    name = f"{split}{suffix}"
    return data_dir / name, verify_manifest(data_dir, [name])


def _load_duplication(data_dir: str | os.PathLike, split: str, seq_len: int | None) -> Dataset:
    from .duplication import DuplicationDataset

    path, manifest = _verified(Path(data_dir), split, ".npy")
    dataset = DuplicationDataset(path, vocab_size=manifest["params"].get("vocab_size"))
    if seq_len is not None and seq_len != dataset.length:
        raise ValueError(
            f"seq_len = {seq_len!r}: the duplication data in {data_dir} has sequences of "
            f"length {dataset.length}; pass None or {dataset.length}"
        )
    return dataset


def _load_enwik8(data_dir: str | os.PathLike, split: str, seq_len: int | None) -> Dataset:
    from .enwik8 import Enwik8Dataset

    path, _ = _verified(Path(data_dir), split, ".bin")
    if seq_len is None:
        raise ValueError("seq_len = None: enwik8 needs an integer seq_len >= 2")
    return Enwik8Dataset(path, seq_len)


TASKS: dict[str, Task] = {
    "duplication": Task(
        name="duplication",
        prepare=_late("duplication", "prepare_duplication"),
        load_split=_load_duplication,
        validate=_late("duplication", "validate_params"),
        seq_len=_late("duplication", "resolve_seq_len"),
        min_train_items=lambda params: int(params["n_train"]),
    ),
    "enwik8": Task(
        name="enwik8",
        prepare=_late("enwik8", "prepare_enwik8"),
        load_split=_load_enwik8,
        validate=_late("enwik8", "validate_params"),
        seq_len=_late("enwik8", "resolve_seq_len"),
    ),
    "wmt14": Task(  # packed (source, target) pairs, several files per split
        name="wmt14",
        prepare=_late("wmt14", "prepare_wmt14"),
        load_split=_late("wmt14", "load_wmt14_split"),
        validate=_late("wmt14", "validate_params"),
        seq_len=_late("wmt14", "resolve_seq_len"),
    ),
}


def prepare_task(task: str, out_dir: str | os.PathLike, params: dict) -> Path:
    """Prepare the splits of ``task`` and their manifest in ``out_dir``.

    Args:
        task: a key of :data:`TASKS` (``"duplication"``, ``"enwik8"``, ``"wmt14"``).
        out_dir: destination directory (created if needed; its split files and manifest
            are replaced only once the new ones are complete).
        params: the task's parameters, see
            :func:`reformer.tasks.duplication.validate_params`,
            :func:`reformer.tasks.enwik8.validate_params` and
            :func:`reformer.tasks.wmt14.validate_params`.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ValueError: unknown task or bad parameter (one line).
        DataIntegrityError: a download or archive failed its checks (one line).

    Example:
        >>> import tempfile, pathlib
        >>> p = dict(length=8, vocab_size=5, n_train=4, n_valid=2, n_test=2, seed=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = prepare_task("duplication", pathlib.Path(d) / "dup", p)
        ...     len(load_split(out, "train"))
        4
        >>> prepare_task("copy", pathlib.Path("unused"), {})
        Traceback (most recent call last):
        ...
        ValueError: task 'copy' is unknown; allowed: duplication, enwik8, wmt14
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is unknown; allowed: {', '.join(TASKS)}")
    return TASKS[task].prepare(Path(out_dir), dict(params))


def load_split(data_dir: str | os.PathLike, split: str, seq_len: int | None = None) -> Dataset:
    """Verify one prepared split against its manifest, then open it as a Dataset.

    The split file's sha256 is checked before any of it is read, so a file changed or
    truncated after preparation is never trained on. The manifest names the task.

    Args:
        data_dir: a directory written by :func:`prepare_task`.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        seq_len: enwik8: tokens per item (required). duplication: optional; if given it
            must equal the prepared sequence length. wmt14: the packed length (optional).

    Returns:
        A :class:`~reformer.tasks.duplication.DuplicationDataset`,
        :class:`~reformer.tasks.enwik8.Enwik8Dataset` or
        :class:`~reformer.tasks.wmt14.WMT14Dataset`; items are
        ``{"tokens": LongTensor (length,), "loss_mask": BoolTensor (length,)}``. The
        dataset has a ``vocab_size`` attribute.

    Raises:
        DataIntegrityError: the manifest is missing, or the split file is missing or its
            sha256 differs from the manifest (one line naming the file, the expected and
            the actual sha256, and "run `dvc repro` to prepare it again").
        ValueError: unknown split, or a ``seq_len`` the task cannot provide.

    Example:
        >>> import tempfile, pathlib
        >>> p = dict(length=8, vocab_size=5, n_train=4, n_valid=2, n_test=2, seed=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = prepare_task("duplication", pathlib.Path(d) / "dup", p)
        ...     ds = load_split(out, "valid")
        ...     len(ds), ds.vocab_size, tuple(ds[0]["tokens"].shape)
        (2, 5, (8,))
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; allowed: {', '.join(SPLITS)}")
    data_dir = Path(data_dir)
    task = read_manifest(data_dir).get("task")
    if task not in TASKS:
        raise DataIntegrityError(
            f"{data_dir / 'manifest.json'}: task {task!r} is unknown (allowed: "
            f"{', '.join(TASKS)}); run `dvc repro` to prepare it again"
        )
    return TASKS[task].load_split(data_dir, split, seq_len)

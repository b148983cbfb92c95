"""Data preparation and loading for the paper's tasks.

One module per task (:mod:`~reformer.tasks.duplication`, :mod:`~reformer.tasks.enwik8`,
:mod:`~reformer.tasks.wmt14`), and
:mod:`~repro.data.manifest` for the sha256 manifest every prepared directory carries.

- :func:`prepare_task` writes a task's splits and manifest into a directory
  (``dvc.yaml``'s prepare stage calls it).
- :func:`load_split` checks a split against the manifest and returns a Dataset whose
  items are ``{"tokens": LongTensor (length,), "loss_mask": BoolTensor (length,)}``;
  ``loss_mask[t]`` says whether predicting ``tokens[t + 1]`` from ``tokens[: t + 1]``
  counts in loss and accuracy. The default collate stacks items into
  ``(batch, length)`` tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset

from repro.data.manifest import (
    DataIntegrityError,
    read_manifest,
    sha256_file,
    verify_manifest,
    write_manifest,
)

from .duplication import DuplicationDataset, duplication_loss_mask, prepare_duplication
from .enwik8 import Enwik8Dataset, prepare_enwik8
from .wmt14 import WMT14Dataset, load_wmt14_split, prepare_wmt14

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

TASKS = {"duplication": prepare_duplication, "enwik8": prepare_enwik8, "wmt14": prepare_wmt14}
SPLITS = ("train", "valid", "test")
_SPLIT_SUFFIX = {"duplication": ".npy", "enwik8": ".bin"}


def prepare_task(task: str, out_dir: str | os.PathLike, params: dict) -> Path:
    """Prepare the splits of ``task`` and their manifest in ``out_dir``.

    Args:
        task: ``"duplication"`` or ``"enwik8"``.
        out_dir: destination directory (created if needed; its split files and manifest
            are replaced only once the new ones are complete).
        params: the task's parameters, see
            :func:`reformer.tasks.duplication.validate_params` and
            :func:`reformer.tasks.enwik8.validate_params`.

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
    return TASKS[task](Path(out_dir), dict(params))


def load_split(data_dir: str | os.PathLike, split: str, seq_len: int | None = None) -> Dataset:
    """Verify one prepared split against its manifest, then open it as a Dataset.

    The split file's sha256 is checked before any of it is read, so a file changed or
    truncated after preparation is never trained on.

    Args:
        data_dir: a directory written by :func:`prepare_task`.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        seq_len: enwik8: tokens per item (required). duplication: optional; if given it
            must equal the prepared sequence length.

    Returns:
        A :class:`DuplicationDataset` or :class:`Enwik8Dataset`; items are
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
    if task == "wmt14":  # packed (source, target) pairs, several files per split
        return load_wmt14_split(data_dir, split, seq_len)
    if task not in _SPLIT_SUFFIX:
        raise DataIntegrityError(
            f"{data_dir / 'manifest.json'}: task {task!r} is unknown (allowed: "
            f"{', '.join(_SPLIT_SUFFIX)}); run `dvc repro` to prepare it again"
        )
    name = f"{split}{_SPLIT_SUFFIX[task]}"
    manifest = verify_manifest(data_dir, [name])
    path = data_dir / name
    if task == "duplication":
        dataset = DuplicationDataset(path, vocab_size=manifest["params"].get("vocab_size"))
        if seq_len is not None and seq_len != dataset.length:
            raise ValueError(
                f"seq_len = {seq_len!r}: the duplication data in {data_dir} has sequences of "
                f"length {dataset.length}; pass None or {dataset.length}"
            )
        return dataset
    if seq_len is None:
        raise ValueError("seq_len = None: enwik8 needs an integer seq_len >= 2")
    return Enwik8Dataset(path, seq_len)

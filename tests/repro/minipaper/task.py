"""The fixture paper's two tasks, small enough to prepare in milliseconds.

``copy``: each sequence is ``0 w 0 w`` (``length`` tokens), ``w`` a word of
``length // 2 - 1`` symbols drawn from ``1 .. vocab_size - 1``. Only the second copy of ``w``
counts: a causal model predicts it by looking back half a sequence, and a model that always
predicts ``0`` gets none of it right. Positions (``L = length``, ``h = L // 2``)::

    position   0   1 .. h-1   h   h+1 .. L-1
    token      0   w          0   w
    loss_mask  F   F .. F     T   T .. T (L-2), F (L-1)

``text``: a byte stream (``n_<split>`` random lowercase letters and spaces per split), read
in windows of ``train.seq_len`` tokens that overlap by one, every next byte counting. Its
length comes from ``train.seq_len``, like a character-level language-modelling corpus.

Both write their splits beside ``out_dir`` first and publish them with a sha256 manifest
(:func:`repro.data.manifest.publish`); ``load_split`` checks a split against the manifest
before reading it.
"""

from __future__ import annotations

import numbers
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from repro.data.manifest import publish, verify_manifest
from repro.paper import Task

__all__ = ["COPY", "SPLITS", "TEXT", "copy_loss_mask", "generate_copy"]

SPLITS = ("train", "valid", "test")
COPY_DEFAULTS = {"length": 16, "n_train": 64, "vocab_size": 8, "n_valid": 16, "n_test": 16}
TEXT_DEFAULTS = {"n_train": 4096, "n_valid": 512, "n_test": 512}
LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ", dtype=np.uint8)


def _integers(task: str, params: Mapping[str, Any], defaults: dict[str, int]) -> dict[str, int]:
    """``defaults`` updated with ``params`` (plus ``seed``, default 0), all plain ints."""
    allowed = [*defaults, "seed"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"{task} param {unknown[0]!r} is unknown; allowed: {', '.join(allowed)}")
    out = {**defaults, "seed": 0, **params}
    for name, value in out.items():
        minimum = 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{task} param {name!r} = {value!r}: must be an integer >= {minimum}")
    return {name: int(value) for name, value in out.items()}


def _publish(out_dir: Path, task: str, params: dict, arrays: dict[str, np.ndarray]) -> Path:
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging-"))
    try:
        for name, array in arrays.items():
            if name.endswith(".npy"):
                np.save(staging / name, array)
            else:
                (staging / name).write_bytes(array.tobytes())
        return publish(staging, out_dir, task, params, list(arrays))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; allowed: {', '.join(SPLITS)}")


# --- copy ------------------------------------------------------------------------------------


def validate_copy(params: Mapping[str, Any]) -> dict[str, int]:
    """The copy task's params with defaults; ``length`` must be even.

    Example:
        >>> validate_copy({"length": 8})["vocab_size"]
        8
        >>> validate_copy({"length": 7})
        Traceback (most recent call last):
        ...
        ValueError: copy param 'length' = 7: must be an even integer >= 4
    """
    p = _integers("copy", params, COPY_DEFAULTS)
    if p["length"] < 4 or p["length"] % 2:
        raise ValueError(f"copy param 'length' = {p['length']}: must be an even integer >= 4")
    if p["vocab_size"] < 2:
        raise ValueError(f"copy param 'vocab_size' = {p['vocab_size']}: must be >= 2")
    return p


def generate_copy(n: int, length: int, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sequences ``0 w 0 w``, int64 ``(n, length)``.

    Example:
        >>> generate_copy(1, 8, 5, np.random.default_rng(0)).tolist()
        [[0, 4, 3, 3, 0, 4, 3, 3]]
    """
    half = length // 2
    words = rng.integers(1, vocab_size, size=(n, half - 1), dtype=np.int64)
    zeros = np.zeros((n, 1), dtype=np.int64)
    return np.concatenate([zeros, words, zeros, words], axis=1)


def copy_loss_mask(length: int) -> torch.Tensor:
    """BoolTensor ``(length,)``: True at ``length // 2 .. length - 2``.

    Example:
        >>> copy_loss_mask(8).int().tolist()
        [0, 0, 0, 0, 1, 1, 1, 0]
    """
    mask = torch.zeros(length, dtype=torch.bool)
    mask[length // 2 : length - 1] = True
    return mask


def prepare_copy(out_dir: Path, params: Mapping[str, Any]) -> Path:
    """``train.npy``, ``valid.npy``, ``test.npy`` and the manifest in ``out_dir``."""
    p = validate_copy(params)
    seeds = np.random.SeedSequence(p["seed"]).spawn(len(SPLITS))  # one stream per split
    arrays = {
        f"{split}.npy": generate_copy(
            p[f"n_{split}"], p["length"], p["vocab_size"], np.random.default_rng(seed)
        )
        for split, seed in zip(SPLITS, seeds, strict=True)
    }
    return _publish(out_dir, "copy", p, arrays)


class CopyDataset(Dataset):
    """A prepared copy split: items ``{"tokens": (l,) int64, "loss_mask": (l,) bool}``."""

    def __init__(self, array: np.ndarray, vocab_size: int) -> None:
        self.tokens = torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
        self.vocab_size = vocab_size
        self.mask = copy_loss_mask(array.shape[1])

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"tokens": self.tokens[index], "loss_mask": self.mask}


def load_copy(data_dir: Path, split: str, seq_len: int | None = None) -> CopyDataset:
    """Check ``split`` against the manifest of ``data_dir``, then load it."""
    _check_split(split)
    manifest = verify_manifest(data_dir, [f"{split}.npy"])
    array = np.load(Path(data_dir) / f"{split}.npy")
    if seq_len is not None and seq_len != array.shape[1]:
        raise ValueError(f"seq_len = {seq_len}: the copy data has length {array.shape[1]}")
    return CopyDataset(array, manifest["params"]["vocab_size"])


def copy_seq_len(params: Mapping[str, Any], requested: int | None) -> int:
    length = int(params["length"])
    if requested is not None and requested != length:
        raise ValueError(f"the copy task has length {length}; allowed: null or {length}")
    return length


# --- text ------------------------------------------------------------------------------------


def prepare_text(out_dir: Path, params: Mapping[str, Any]) -> Path:
    """``train.bin``, ``valid.bin``, ``test.bin`` (random letters) and the manifest."""
    p = _integers("text", params, TEXT_DEFAULTS)
    rng = np.random.default_rng(p["seed"])
    arrays = {f"{s}.bin": rng.choice(LETTERS, size=p[f"n_{s}"]) for s in SPLITS}
    return _publish(out_dir, "text", p, arrays)


class TextDataset(Dataset):
    """Windows of ``seq_len`` bytes, each starting where the previous one's last byte is."""

    def __init__(self, data: np.ndarray, seq_len: int) -> None:
        if seq_len < 2 or seq_len > len(data):
            raise ValueError(f"seq_len = {seq_len}: must be in 2 .. {len(data)} (the split)")
        self.data, self.seq_len, self.vocab_size = data, seq_len, 256
        self.mask = torch.ones(seq_len, dtype=torch.bool)
        self.mask[-1] = False

    def __len__(self) -> int:
        return (len(self.data) - 1) // (self.seq_len - 1)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        start = index * (self.seq_len - 1)
        window = self.data[start : start + self.seq_len].astype(np.int64)
        return {"tokens": torch.from_numpy(window), "loss_mask": self.mask}


def load_text(data_dir: Path, split: str, seq_len: int | None = None) -> TextDataset:
    """Check ``split`` against the manifest, then read it in windows of ``seq_len``."""
    _check_split(split)
    if seq_len is None:
        raise ValueError("the text task needs seq_len (train.seq_len)")
    verify_manifest(data_dir, [f"{split}.bin"])
    return TextDataset(np.fromfile(Path(data_dir) / f"{split}.bin", dtype=np.uint8), seq_len)


def text_seq_len(params: Mapping[str, Any], requested: int | None) -> int:
    if requested is None:
        raise ValueError("task 'text' needs a sequence length; allowed: an integer >= 2")
    return requested


COPY = Task(
    "copy",
    prepare_copy,
    load_copy,
    validate_copy,
    copy_seq_len,
    lambda params: params["n_train"],
)  # fmt: skip
TEXT = Task(
    "text",
    prepare_text,
    load_text,
    lambda params: _integers("text", params, TEXT_DEFAULTS),
    text_seq_len,
)  # fmt: skip

"""The toy paper's task: reverse a random word.

Each sequence is ``w 0 reverse(w)``: a word ``w`` of ``length`` symbols drawn uniformly
from ``{1, ..., vocab_size - 1}``, the separator ``0``, and ``w`` backwards, ``2 * length + 1``
tokens in all. A causal language model can only predict the reversed word by looking back
at the first half; loss and accuracy count those predictions only.

Positions (``n = length``)::

    position   0 .. n-1   n   n+1 .. 2n
    token      w          0   reverse(w)
    loss_mask  F .. F     T   T .. T (2n-1), F (2n)

``loss_mask[t]`` says whether predicting ``tokens[t + 1]`` from ``tokens[: t + 1]`` counts.
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

__all__ = [
    "PARAMS",
    "TASK",
    "ReversalDataset",
    "generate",
    "load_split",
    "loss_mask",
    "prepare",
    "seq_len",
    "validate",
]

NAME = "reversal"
SPLITS = ("train", "valid", "test")
#: The task's parameters (``tasks.reversal`` in ``params.yaml``), each with its minimum.
PARAMS = {"length": 1, "vocab_size": 2, "n_train": 1, "n_valid": 1, "n_test": 1, "seed": 0}


def validate(params: Mapping[str, Any]) -> dict[str, int]:
    """The task's parameters as plain ints: ``length`` (symbols in the word), ``vocab_size``
    (0 is the separator), ``n_train``, ``n_valid``, ``n_test`` and ``seed``, all required.

    Raises:
        ValueError: one line naming the key (the kit adds ``params.yaml: tasks.reversal:``).

    Example:
        >>> p = dict(length=4, vocab_size=6, n_train=8, n_valid=2, n_test=2, seed=0)
        >>> validate(p)["length"]
        4
        >>> validate({**p, "length": 0})
        Traceback (most recent call last):
        ...
        ValueError: length = 0: must be an integer >= 1
    """
    for key in params:
        if key not in PARAMS:
            raise ValueError(f"unknown key {key!r}; allowed: {', '.join(PARAMS)}")
    out = {}
    for key, minimum in PARAMS.items():
        if key not in params:
            raise ValueError(f"{key} is missing; required: {', '.join(PARAMS)}")
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{key} = {value!r}: must be an integer >= {minimum}")
        out[key] = int(value)
    return out


def generate(n: int, length: int, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sequences ``w 0 reverse(w)`` as an int64 array ``(n, 2 * length + 1)``.

    Example:
        >>> generate(1, 3, 5, np.random.default_rng(1)).tolist()
        [[2, 3, 4, 0, 4, 3, 2]]
    """
    words = rng.integers(1, vocab_size, size=(n, length), dtype=np.int64)
    separator = np.zeros((n, 1), dtype=np.int64)
    return np.concatenate([words, separator, words[:, ::-1]], axis=1)


def loss_mask(length: int) -> torch.Tensor:
    """BoolTensor ``(2 * length + 1,)``: True where the next token is part of ``reverse(w)``.

    Example:
        >>> loss_mask(2).int().tolist()
        [0, 0, 1, 1, 0]
    """
    mask = torch.zeros(2 * length + 1, dtype=torch.bool)
    mask[length : 2 * length] = True
    return mask


def prepare(out_dir: Path, params: Mapping[str, Any]) -> Path:
    """Write ``train.npy``, ``valid.npy``, ``test.npy`` and their manifest into ``out_dir``.

    The splits are written beside ``out_dir`` first and moved in only when all are
    complete; the manifest (sha256 of each file) comes last.

    Example:
        >>> import tempfile
        >>> p = dict(length=3, vocab_size=5, n_train=4, n_valid=2, n_test=2, seed=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = prepare(Path(d) / "reversal", p)
        ...     sorted(f.name for f in out.iterdir())
        ['manifest.json', 'test.npy', 'train.npy', 'valid.npy']
    """
    p = validate(params)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(p["seed"]).spawn(len(SPLITS))  # one stream per split
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging-"))
    try:
        for split, seed in zip(SPLITS, seeds, strict=True):
            rng = np.random.default_rng(seed)
            data = generate(p[f"n_{split}"], p["length"], p["vocab_size"], rng)
            np.save(staging / f"{split}.npy", data)
        return publish(staging, out_dir, NAME, p, [f"{s}.npy" for s in SPLITS])
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class ReversalDataset(Dataset):
    """One prepared split: items ``{"tokens": (l,) int64, "loss_mask": (l,) bool}``.

    Args:
        array: the split, int64 ``(n, 2 * length + 1)``.
        vocab_size: kept as the ``vocab_size`` attribute (the model's output size).
    """

    def __init__(self, array: np.ndarray, vocab_size: int) -> None:
        self.tokens = torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
        self.vocab_size = vocab_size
        self.mask = loss_mask(array.shape[1] // 2)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"tokens": self.tokens[index], "loss_mask": self.mask}


def load_split(data_dir: Path, split: str, seq_len: int | None = None) -> ReversalDataset:
    """Check ``split`` against the manifest of ``data_dir``, then load it.

    Raises:
        DataIntegrityError: the manifest or the file is missing, or its sha256 differs.
        ValueError: ``seq_len`` is not the prepared sequence length (one line).

    Example:
        >>> import tempfile
        >>> p = dict(length=3, vocab_size=5, n_train=4, n_valid=2, n_test=2, seed=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     ds = load_split(prepare(Path(d) / "r", p), "valid")
        ...     len(ds), ds.vocab_size, tuple(ds[0]["tokens"].shape)
        (2, 5, (7,))
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; allowed: {', '.join(SPLITS)}")
    manifest = verify_manifest(data_dir, [f"{split}.npy"])
    array = np.load(Path(data_dir) / f"{split}.npy")
    if seq_len is not None and seq_len != array.shape[1]:
        raise ValueError(
            f"seq_len = {seq_len}: the {NAME} data in {data_dir} has sequences of "
            f"{array.shape[1]} tokens; pass None or {array.shape[1]}"
        )
    return ReversalDataset(array, manifest["params"]["vocab_size"])


def seq_len(params: Mapping[str, Any], requested: int | None) -> int:
    """``2 * length + 1``; ``train.seq_len`` must be unset (null) or equal to it (the kit
    names the key in front of the ``ValueError``).

    Example:
        >>> seq_len({"length": 4}, None)
        9
    """
    length = 2 * int(params["length"]) + 1
    if requested is not None and requested != length:
        raise ValueError(
            f"the {NAME} task's sequences have 2 * length + 1 = {length} tokens; leave it null"
        )
    return length


TASK = Task(
    name=NAME,
    prepare=prepare,
    load_split=load_split,
    validate=validate,
    seq_len=seq_len,
    min_train_items=lambda params: int(params["n_train"]),
)

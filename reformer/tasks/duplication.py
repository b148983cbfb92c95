"""The paper's synthetic duplication task (section 2.1).

Each sequence is ``0 w 0 w``: a zero, a word ``w`` of ``length/2 - 1`` symbols drawn
uniformly from ``{1, ..., vocab_size - 1}``, a zero, and ``w`` again. The paper uses
``length = 1024`` and ``vocab_size = 128``. A causal language model can only predict the
second copy of ``w``, by looking it up in the first; loss and accuracy count those
predictions only.

Positions (``L = length``, ``h = L // 2``)::

    position   0   1 .. h-1   h   h+1 .. L-1
    token      0   w          0   w
    loss_mask  F   F ..  F    T   T  ..  T (L-2), F (L-1)

``loss_mask[t]`` is True when predicting ``tokens[t + 1]`` from ``tokens[: t + 1]`` counts,
i.e. for ``t`` in ``h .. L-2``: the targets are exactly the second copy of ``w``.
"""

from __future__ import annotations

import numbers
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from repro.data.manifest import publish

TASK = "duplication"
SPLITS = ("train", "valid", "test")
PARAM_NAMES = ("length", "vocab_size", "n_train", "n_valid", "n_test", "seed")


def validate_params(params: dict) -> dict:
    """Check duplication parameters and return them as plain ints.

    Args:
        params: ``length`` (even, >= 4), ``vocab_size`` (>= 2), ``n_train``, ``n_valid``,
            ``n_test`` (> 0) and ``seed`` (>= 0); all required, no others allowed.

    Returns:
        A new dict with the six parameters as Python ints.

    Raises:
        ValueError: one line naming the parameter, its value and what is allowed.

    Example:
        >>> p = dict(length=8, vocab_size=5, n_train=2, n_valid=1, n_test=1, seed=0)
        >>> validate_params(p)["length"]
        8
        >>> validate_params({**p, "length": 7})
        Traceback (most recent call last):
        ...
        ValueError: duplication param 'length' = 7: must be an even integer >= 4
    """
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise ValueError(
            f"duplication param {unknown[0]!r} is unknown; allowed: {', '.join(PARAM_NAMES)}"
        )
    out = {}
    for name in PARAM_NAMES:
        if name not in params:
            raise ValueError(
                f"duplication param {name!r} is missing; required: {', '.join(PARAM_NAMES)}"
            )
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(
                f"duplication param {name!r} = {value!r}: must be an integer, "
                f"got {type(value).__name__}"
            )
        out[name] = int(value)
    if out["length"] < 4 or out["length"] % 2:
        raise ValueError(
            f"duplication param 'length' = {out['length']}: must be an even integer >= 4"
        )
    if out["vocab_size"] < 2:
        raise ValueError(
            f"duplication param 'vocab_size' = {out['vocab_size']}: must be >= 2 "
            "(0 is the separator, words use 1..vocab_size-1)"
        )
    for name in ("n_train", "n_valid", "n_test"):
        if out[name] <= 0:
            raise ValueError(f"duplication param {name!r} = {out[name]}: must be > 0")
    if out["seed"] < 0:
        raise ValueError(f"duplication param 'seed' = {out['seed']}: must be >= 0")
    return out


def resolve_seq_len(params: dict, requested: int | None) -> int:
    """The training sequence length: the task's ``length`` (``requested`` null or equal).

    Example:
        >>> resolve_seq_len({"length": 8}, None)
        8
        >>> resolve_seq_len({"length": 8}, 16)
        Traceback (most recent call last):
        ...
        ValueError: the duplication task has length 8; allowed: null or 8
    """
    length = int(params["length"])
    if requested is not None and requested != length:
        raise ValueError(f"the duplication task has length {length}; allowed: null or {length}")
    return length


def generate_duplication(
    n: int, length: int, vocab_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``n`` sequences ``0 w 0 w``.

    Args:
        n: number of sequences.
        length: total length (even, >= 4); ``w`` has ``length // 2 - 1`` symbols.
        vocab_size: symbols of ``w`` are uniform over ``1 .. vocab_size - 1``.
        rng: the numpy generator to draw from.

    Returns:
        int64 array of shape ``(n, length)``.

    Example:
        >>> x = generate_duplication(2, 8, 5, np.random.default_rng(0))
        >>> x.shape, x.dtype.name
        ((2, 8), 'int64')
        >>> bool((x[:, :4] == x[:, 4:]).all()), int(x[0, 0]), int(x[0, 4])
        (True, 0, 0)
    """
    half = length // 2
    words = rng.integers(1, vocab_size, size=(n, half - 1), dtype=np.int64)
    seq = np.zeros((n, length), dtype=np.int64)
    seq[:, 1:half] = words
    seq[:, half + 1 :] = words
    return seq


def duplication_loss_mask(length: int) -> torch.Tensor:
    """Which next-token predictions count: those of the second copy of ``w``.

    Args:
        length: sequence length (even, >= 4).

    Returns:
        BoolTensor of shape ``(length,)``, True at positions ``length//2 .. length-2``
        (predicting tokens ``length//2 + 1 .. length - 1``).

    Example:
        >>> duplication_loss_mask(8).int().tolist()
        [0, 0, 0, 0, 1, 1, 1, 0]
    """
    mask = torch.zeros(length, dtype=torch.bool)
    mask[length // 2 : length - 1] = True
    return mask


def split_seeds(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent seed sequences for the three splits, spawned from ``seed``.

    Each split has its own stream, so changing ``n_train`` leaves valid and test unchanged.

    Example:
        >>> s = split_seeds(0)
        >>> sorted(s)
        ['test', 'train', 'valid']
        >>> int(np.random.default_rng(s["train"]).integers(100)) == int(
        ...     np.random.default_rng(split_seeds(0)["train"]).integers(100))
        True
    """
    children = np.random.SeedSequence(seed).spawn(len(SPLITS))
    return dict(zip(SPLITS, children, strict=True))


def prepare_duplication(out_dir: str | os.PathLike, params: dict) -> Path:
    """Generate the train/valid/test splits and their manifest in ``out_dir``.

    Writes ``train.npy``, ``valid.npy``, ``test.npy`` (int64, shape ``(n_<split>, length)``)
    and ``manifest.json``. The files are first written to a staging directory beside
    ``out_dir`` and moved in only when all are complete; the manifest is written last.

    Args:
        out_dir: destination directory (created if needed).
        params: see :func:`validate_params`.

    Returns:
        ``out_dir`` as a Path.

    Example:
        >>> import tempfile, pathlib
        >>> p = dict(length=8, vocab_size=5, n_train=3, n_valid=2, n_test=2, seed=0)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     out = prepare_duplication(pathlib.Path(d) / "dup", p)
        ...     sorted(f.name for f in out.iterdir()), np.load(out / "train.npy").shape
        (['manifest.json', 'test.npy', 'train.npy', 'valid.npy'], (3, 8))
    """
    p = validate_params(params)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    seeds = split_seeds(p["seed"])
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging-"))
    try:
        files = []
        for split in SPLITS:
            rng = np.random.default_rng(seeds[split])
            data = generate_duplication(p[f"n_{split}"], p["length"], p["vocab_size"], rng)
            name = f"{split}.npy"
            np.save(staging / name, data)
            files.append(name)
        return publish(staging, out_dir, TASK, p, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class DuplicationDataset(Dataset):
    """Sequences of one prepared duplication split, memory-mapped.

    Args:
        path: an int64 ``.npy`` file of shape ``(n, length)`` written by
            :func:`prepare_duplication`. Integrity is checked by
            :func:`reformer.tasks.load_split`, not here.
        vocab_size: recorded as the ``vocab_size`` attribute (``load_split`` fills it in
            from the manifest); None if unknown.

    Items are dicts (the default collate stacks them into a batch):
        - ``"tokens"``: LongTensor ``(length,)``
        - ``"loss_mask"``: BoolTensor ``(length,)``, see :func:`duplication_loss_mask`.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     f = pathlib.Path(d) / "train.npy"
        ...     np.save(f, generate_duplication(3, 8, 5, np.random.default_rng(0)))
        ...     ds = DuplicationDataset(f)
        ...     item = ds[0]
        ...     len(ds), item["tokens"].shape, item["tokens"].dtype, item["loss_mask"].dtype
        (3, torch.Size([8]), torch.int64, torch.bool)
    """

    def __init__(self, path: str | os.PathLike, vocab_size: int | None = None):
        self.path = Path(path)
        self.vocab_size = vocab_size
        array = np.load(self.path, mmap_mode="r")
        if array.ndim != 2 or array.dtype != np.int64:
            raise ValueError(
                f"{self.path}: expected an int64 array of shape (n, length), "
                f"got {array.dtype} {array.shape}"
            )
        self.n, self.length = array.shape
        self._mask = duplication_loss_mask(self.length)
        self._array: np.ndarray | None = None  # opened lazily, once per worker process

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} sequences")
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        tokens = torch.from_numpy(np.array(self._array[index], dtype=np.int64))
        return {"tokens": tokens, "loss_mask": self._mask.clone()}

    def __getstate__(self) -> dict:
        # Workers started by spawn get the path, not a pickled copy of the mapped data.
        state = self.__dict__.copy()
        state["_array"] = None
        return state

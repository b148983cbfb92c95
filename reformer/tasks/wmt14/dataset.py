"""Prepared WMT14 splits as packed pairs for the language-model training loop.

A split is stored as ragged arrays (all sentences' ids concatenated, plus int64 offsets);
:class:`WMT14Dataset` reads one pair at a time and packs it into one sequence of length
``2 max_len`` (:func:`pack_pair`), with a loss mask over the real target tokens
(:func:`packed_loss_mask`). :func:`load_wmt14_split` checks the files against the manifest
first.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from reformer.tasks.wmt14.params import BOS_ID, EOS_ID, PAD_ID, SPLITS
from repro.data.manifest import DataIntegrityError, verify_manifest

__all__ = ["WMT14Dataset", "load_tokenizer", "load_wmt14_split", "pack_pair", "packed_loss_mask"]


def _save_ragged(seqs: Sequence[Sequence[int]], path: Path, dtype: np.dtype) -> None:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((t for s in seqs for t in s), dtype=dtype, count=int(offsets[-1]))
    np.save(path.with_name(path.name + ".npy"), flat)
    np.save(path.with_name(path.name + ".idx.npy"), offsets)


def _split_files(split: str) -> list[str]:
    return [f"{split}.{side}{kind}.npy" for side in ("src", "tgt") for kind in ("", ".idx")]


def pack_pair(
    src: Sequence[int] | np.ndarray, tgt: Sequence[int] | np.ndarray, max_len: int
) -> Tensor:
    """One training sequence ``(2 max_len,)``: ``[src, eos, pad | bos, tgt, eos, pad]``.

    Longer sentences are cut so that the end tokens always fit.

    Example:
        >>> pack_pair([5, 6], [7], max_len=4).tolist()
        [5, 6, 3, 0, 2, 7, 3, 0]
    """
    out = torch.full((2 * max_len,), PAD_ID, dtype=torch.long)
    s = torch.as_tensor(np.asarray(src, dtype=np.int64)[: max_len - 1])
    t = torch.as_tensor(np.asarray(tgt, dtype=np.int64)[: max_len - 2])
    out[: len(s)] = s
    out[len(s)] = EOS_ID
    out[max_len] = BOS_ID
    out[max_len + 1 : max_len + 1 + len(t)] = t
    out[max_len + 1 + len(t)] = EOS_ID
    return out


def packed_loss_mask(tokens: Tensor, src_len: int, pad_id: int = PAD_ID) -> Tensor:
    """``(..., 2 max_len)`` bool: position ``t`` counts when ``tokens[t + 1]`` is a real target.

    Target positions ``src_len + j`` predict target token ``j + 1``; they count when that
    token is not padding. Source positions and the last position never count.

    Example:
        >>> packed_loss_mask(pack_pair([5, 6], [7], max_len=4), 4).int().tolist()
        [0, 0, 0, 0, 1, 1, 0, 0]
    """
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[..., src_len:-1] = tokens[..., src_len + 1 :] != pad_id
    return mask


class WMT14Dataset(Dataset):
    """One prepared split as packed pairs for the language-model training loop.

    Items are ``{"tokens": LongTensor (2 max_len,), "loss_mask": BoolTensor (2 max_len,)}``
    (see :func:`pack_pair` and :func:`packed_loss_mask`); :meth:`pair` gives the raw ids.

    Args:
        data_dir: a directory written by :func:`prepare_wmt14`.
        split: ``train``, ``valid`` or ``test``.
        max_len: tokens per side (the model's ``max_seq_len``); the packed length is twice it.

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     d = pathlib.Path(d)
        ...     _save_ragged([[5, 6], [7]], d / "test.src", np.dtype(np.uint16))
        ...     _save_ragged([[8], [9, 9]], d / "test.tgt", np.dtype(np.uint16))
        ...     ds = WMT14Dataset(d, "test", max_len=4, vocab_size=10)
        ...     len(ds), ds[1]["tokens"].tolist(), ds.pair(0)
        (2, [7, 3, 0, 0, 2, 9, 9, 3], ([5, 6], [8]))
    """

    def __init__(
        self, data_dir: str | os.PathLike, split: str, max_len: int, vocab_size: int
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split {split!r} is unknown; allowed: {', '.join(SPLITS)}")
        if isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) or max_len < 4:
            raise ValueError(f"max_len = {max_len!r}: must be an integer >= 4")
        self.data_dir, self.split, self.max_len = Path(data_dir), split, int(max_len)
        self.vocab_size = int(vocab_size)
        self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID
        self._src_idx = np.load(self.data_dir / f"{split}.src.idx.npy")
        self._tgt_idx = np.load(self.data_dir / f"{split}.tgt.idx.npy")
        if len(self._src_idx) != len(self._tgt_idx):
            raise DataIntegrityError(
                f"{self.data_dir}: {split}.src and {split}.tgt hold different numbers of "
                "sentences; run `dvc repro` to prepare it again"
            )
        self._src: np.ndarray | None = None  # memory-mapped lazily, once per worker
        self._tgt: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._src_idx) - 1

    def pair(self, index: int) -> tuple[list[int], list[int]]:
        """The raw source and target ids of sentence ``index`` (no special tokens)."""
        if self._src is None:
            self._src = np.load(self.data_dir / f"{self.split}.src.npy", mmap_mode="r")
            self._tgt = np.load(self.data_dir / f"{self.split}.tgt.npy", mmap_mode="r")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} sentence pairs")
        src = self._src[self._src_idx[index] : self._src_idx[index + 1]]
        tgt = self._tgt[self._tgt_idx[index] : self._tgt_idx[index + 1]]
        return src.astype(np.int64).tolist(), tgt.astype(np.int64).tolist()

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        src, tgt = self.pair(index)
        tokens = pack_pair(src, tgt, self.max_len)
        return {"tokens": tokens, "loss_mask": packed_loss_mask(tokens, self.max_len)}


def load_wmt14_split(
    data_dir: str | os.PathLike, split: str, seq_len: int | None = None
) -> WMT14Dataset:
    """Verify one split's files against the manifest, then open it as a :class:`WMT14Dataset`.

    Args:
        data_dir: a directory written by :func:`prepare_wmt14`.
        split: ``train``, ``valid`` or ``test``.
        seq_len: the packed length ``2 max_len`` (default: twice the prepared ``max_len``).

    Raises:
        DataIntegrityError: the manifest or a file is missing or changed (one line).
        ValueError: unknown split, or an odd ``seq_len``.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is unknown; allowed: {', '.join(SPLITS)}")
    manifest = verify_manifest(data_dir, [*_split_files(split), "spm.model"])
    max_len = int(manifest["params"].get("max_len", 256))
    if seq_len is not None:
        if seq_len % 2:
            raise ValueError(
                f"seq_len = {seq_len!r}: wmt14 packs source and target into 2 x max_len; "
                "must be even"
            )
        max_len = seq_len // 2
    vocab = load_tokenizer(data_dir).get_piece_size()
    return WMT14Dataset(data_dir, split, max_len, vocab)


def load_tokenizer(data_dir: str | os.PathLike) -> Any:
    """The prepared SentencePiece model (``sentencepiece.SentencePieceProcessor``)."""
    import sentencepiece as spm

    path = Path(data_dir) / "spm.model"
    if not path.is_file():
        raise DataIntegrityError(f"{path}: file missing; run `dvc repro` to prepare it again")
    return spm.SentencePieceProcessor(model_file=os.fspath(path))

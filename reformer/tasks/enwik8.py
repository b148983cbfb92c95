"""enwik8: the first 10^8 bytes of an English Wikipedia dump, as a byte-level LM task.

Preparation downloads ``enwik8.zip`` from its canonical URL, checks the zip against a
pinned sha256, unpacks the single member ``enwik8`` (exactly 10^8 bytes, also checked
against a pinned sha256) and cuts it into the standard contiguous split: the first
90,000,000 bytes for training, the next 5,000,000 for validation and the last 5,000,000
for test, written as raw bytes to ``train.bin``, ``valid.bin`` and ``test.bin``.

Nothing is written into the output directory until every check has passed: the download
and the split files live in a staging directory beside it and are moved in at the end,
followed by the manifest.

Pinned values (the same digests are published by many independent projects that pin
this file; the zip is 36,445,475 bytes):

- ``enwik8.zip``: sha256 ``547994d9...32534bc`` (:data:`ENWIK8_SHA256`)
- unpacked ``enwik8``: sha256 ``2b49720e...8c024a8`` (:data:`ENWIK8_RAW_SHA256`)
"""

from __future__ import annotations

import hashlib
import numbers
import os
import re
import shutil
import tempfile
import urllib.parse
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch.utils.data import Dataset

from repro.data.download import as_url, download
from repro.data.manifest import DataIntegrityError, publish, sha256_file

TASK = "enwik8"
SPLITS = ("train", "valid", "test")
VOCAB_SIZE = 256  # byte-level: every byte value is a token

ENWIK8_URL = "http://mattmahoney.net/dc/enwik8.zip"
ENWIK8_SHA256 = "547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc"
ENWIK8_RAW_SHA256 = "2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8"

DEFAULT_PARAMS: dict = {
    "url": ENWIK8_URL,
    "sha256": ENWIK8_SHA256,
    # sha256 of the unpacked member; None skips the check (e.g. for a test archive).
    "raw_sha256": ENWIK8_RAW_SHA256,
    "member": "enwik8",
    "n_train": 90_000_000,
    "n_valid": 5_000_000,
    "n_test": 5_000_000,
    # Where the verified zip is kept between preparations; None: not kept.
    "cache_dir": None,
}

_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def validate_params(params: dict) -> dict:
    """Merge ``params`` over :data:`DEFAULT_PARAMS` and check every value.

    Args:
        params: any of ``url`` (URL or local path), ``sha256`` (of the zip),
            ``raw_sha256`` (of the unpacked member, or None), ``member`` (name inside the
            zip), ``n_train``, ``n_valid``, ``n_test`` (split sizes in bytes, > 0; the
            member must hold exactly their sum) and ``cache_dir`` (a directory or None).

    Returns:
        The complete parameter dict.

    Raises:
        ValueError: one line naming the parameter, its value and what is allowed.

    Example:
        >>> validate_params({})["n_train"]
        90000000
        >>> validate_params({"n_valid": 0})
        Traceback (most recent call last):
        ...
        ValueError: enwik8 param 'n_valid' = 0: must be an integer > 0
    """
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValueError(
            f"enwik8 param {unknown[0]!r} is unknown; allowed: {', '.join(DEFAULT_PARAMS)}"
        )
    p = {**DEFAULT_PARAMS, **params}
    if not isinstance(p["url"], (str, os.PathLike)) or not os.fspath(p["url"]):
        raise ValueError(f"enwik8 param 'url' = {p['url']!r}: must be a URL or a file path")
    p["url"] = os.fspath(p["url"])
    for name in ("sha256", "raw_sha256"):
        value = p[name]
        if value is None and name == "raw_sha256":
            continue
        if not isinstance(value, str) or not _HEX64.match(value.lower()):
            raise ValueError(
                f"enwik8 param {name!r} = {value!r}: must be a 64-digit hex sha256"
                + (" or null" if name == "raw_sha256" else "")
            )
        p[name] = value.lower()
    if not isinstance(p["member"], str) or not p["member"]:
        raise ValueError(f"enwik8 param 'member' = {p['member']!r}: must be a non-empty name")
    for name in ("n_train", "n_valid", "n_test"):
        value = p[name]
        # Accept 9e7-style floats from YAML as long as they are whole numbers.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"enwik8 param {name!r} = {p[name]!r}: must be an integer > 0")
        p[name] = int(value)
    if p["cache_dir"] is not None:
        if not isinstance(p["cache_dir"], (str, os.PathLike)) or not os.fspath(p["cache_dir"]):
            raise ValueError(
                f"enwik8 param 'cache_dir' = {p['cache_dir']!r}: must be a directory or null"
            )
        p["cache_dir"] = os.fspath(p["cache_dir"])
    return p


def resolve_seq_len(params: dict, requested: int | None) -> int:
    """The training sequence length: ``requested`` (``train.seq_len``), which must be set.

    Example:
        >>> resolve_seq_len({}, None)
        Traceback (most recent call last):
        ...
        ValueError: task 'enwik8' needs a sequence length; allowed: an integer >= 2
    """
    if requested is None:
        raise ValueError("task 'enwik8' needs a sequence length; allowed: an integer >= 2")
    return requested


def fetch_zip(url: str, sha256: str, workdir: Path, cache_dir: str | None) -> Path:
    """Return a verified local copy of the zip, from ``cache_dir`` when possible.

    Without ``cache_dir`` the zip is downloaded into ``workdir`` (a staging directory the
    caller removes). With it, a cached zip whose sha256 matches is used as is; a cached zip
    that does not match is replaced by a fresh download.

    Example:
        >>> import tempfile, pathlib, hashlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     src = pathlib.Path(d) / "a.zip"
        ...     _ = src.write_bytes(b"zip bytes")
        ...     h = hashlib.sha256(b"zip bytes").hexdigest()
        ...     cache = pathlib.Path(d) / "cache"
        ...     first = fetch_zip(str(src), h, pathlib.Path(d), str(cache))
        ...     src.unlink()                      # the cache now serves it
        ...     second = fetch_zip(str(src), h, pathlib.Path(d), str(cache))
        ...     first == second == cache / "a.zip"
        True
    """
    name = Path(urllib.parse.urlparse(as_url(url)).path).name or "download.zip"
    if cache_dir is None:
        return download(url, Path(workdir) / name, sha256)[0]
    cached = Path(cache_dir) / name
    if cached.is_file():
        actual = sha256_file(cached)
        if actual == sha256:
            return cached
        warnings.warn(
            f"{cached}: cached sha256 {actual} is not the pinned {sha256}; downloading again",
            stacklevel=2,
        )
    return download(url, cached, sha256)[0]


def _copy_exact(src: BinaryIO, dst: Path, n: int, digest, zip_path: Path) -> None:
    with open(dst, "wb") as out:
        remaining = n
        while remaining:
            chunk = src.read(min(_CHUNK, remaining))
            if not chunk:
                raise DataIntegrityError(
                    f"{zip_path}: member ended {remaining} bytes early while writing {dst.name}"
                )
            out.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)


def split_member(zip_path: Path, member: str, sizes: dict[str, int], staging: Path) -> str:
    """Stream ``member`` of ``zip_path`` into ``<split>.bin`` files of the given sizes.

    Args:
        zip_path: a verified zip.
        member: name of the file inside it.
        sizes: bytes per split, in order, e.g. ``{"train": 90_000_000, ...}``; the member
            must hold exactly their sum.
        staging: directory the ``.bin`` files are written to.

    Returns:
        The hex sha256 of the whole member.

    Raises:
        DataIntegrityError: (one line) the zip is unreadable, truncated, fails its CRC,
            lacks ``member``, or the member's size is not the sum of ``sizes``.

    Example:
        >>> import tempfile, pathlib, zipfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     z = pathlib.Path(d) / "t.zip"
        ...     with zipfile.ZipFile(z, "w") as f:
        ...         f.writestr("m", b"abcdefghij")
        ...     _ = split_member(z, "m", {"train": 8, "valid": 1, "test": 1}, pathlib.Path(d))
        ...     [(pathlib.Path(d) / f"{s}.bin").read_bytes() for s in ("train", "test")]
        [b'abcdefgh', b'j']
    """
    total = sum(sizes.values())
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(zip_path) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError:
                names = ", ".join(zf.namelist()[:5])
                raise DataIntegrityError(
                    f"{zip_path}: no member {member!r} in the zip (found: {names})"
                ) from None
            if info.file_size != total:
                raise DataIntegrityError(
                    f"{zip_path}: member {member!r} has {info.file_size} bytes, expected "
                    f"{total} (= {' + '.join(str(v) for v in sizes.values())})"
                )
            with zf.open(info) as src:
                for split, size in sizes.items():
                    _copy_exact(src, staging / f"{split}.bin", size, digest, zip_path)
                # Reading past the end makes zipfile check the member's CRC.
                if src.read(1):
                    raise DataIntegrityError(
                        f"{zip_path}: member {member!r} is longer than its declared {total} bytes"
                    )
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataIntegrityError(
            f"{zip_path}: not a readable zip ({str(exc).strip() or type(exc).__name__}); "
            "the archive is truncated or corrupt"
        ) from None
    return digest.hexdigest()


def prepare_enwik8(out_dir: str | os.PathLike, params: dict | None = None) -> Path:
    """Download, verify and split enwik8 into ``out_dir``.

    Writes ``train.bin``, ``valid.bin``, ``test.bin`` (raw bytes, ``n_train``, ``n_valid``,
    ``n_test`` long) and ``manifest.json`` with their sha256. Every check (zip sha256,
    byte count, zip CRC, member size, member sha256) happens before anything is moved
    into ``out_dir``; on failure ``out_dir`` is left as it was.

    Args:
        out_dir: destination directory.
        params: see :func:`validate_params`; ``{}`` or None means the real enwik8.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        DataIntegrityError: a checksum, size or archive check failed (one line).
        ValueError: a bad parameter (one line).

    Example:
        >>> import tempfile, pathlib, zipfile, hashlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     z = pathlib.Path(d) / "tiny.zip"
        ...     with zipfile.ZipFile(z, "w") as f:
        ...         f.writestr("enwik8", bytes(range(100)))
        ...     h = hashlib.sha256(z.read_bytes()).hexdigest()
        ...     out = prepare_enwik8(pathlib.Path(d) / "enwik8", {
        ...         "url": str(z), "sha256": h, "raw_sha256": None,
        ...         "n_train": 90, "n_valid": 5, "n_test": 5})
        ...     [(f.name, f.stat().st_size) for f in sorted(out.glob("*.bin"))]
        [('test.bin', 5), ('train.bin', 90), ('valid.bin', 5)]
    """
    p = validate_params(params or {})
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging-"))
    try:
        zip_path = fetch_zip(p["url"], p["sha256"], staging, p["cache_dir"])
        sizes = {split: p[f"n_{split}"] for split in SPLITS}
        raw_sha = split_member(zip_path, p["member"], sizes, staging)
        if p["raw_sha256"] is not None and raw_sha != p["raw_sha256"]:
            raise DataIntegrityError(
                f"{zip_path}: member {p['member']!r} sha256 mismatch "
                f"(expected {p['raw_sha256']}, actual {raw_sha})"
            )
        # cache_dir is a machine-local path and does not change the content.
        recorded = {k: v for k, v in p.items() if k != "cache_dir"}
        return publish(staging, out_dir, TASK, recorded, [f"{s}.bin" for s in SPLITS])
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class Enwik8Dataset(Dataset):
    """Byte-level windows over one prepared enwik8 split, memory-mapped.

    Window ``i`` holds bytes ``[i * (seq_len - 1), i * (seq_len - 1) + seq_len)``:
    consecutive windows share one byte, so every byte after the first is a next-byte
    target exactly once across the split (no prediction is lost at window borders and
    none is counted twice). A trailing remainder shorter than a window is dropped.

    The file is opened with ``np.memmap`` lazily in each process, so DataLoader workers
    share the page cache instead of each holding a copy of 90 MB.

    Args:
        path: a ``.bin`` file of raw bytes. Integrity is checked by
            :func:`reformer.tasks.load_split`, not here.
        seq_len: tokens per item (>= 2, at most the file size).

    Items are dicts (the default collate stacks them into a batch):
        - ``"tokens"``: LongTensor ``(seq_len,)``, values in ``0 .. 255``
        - ``"loss_mask"``: BoolTensor ``(seq_len,)``, True everywhere but the last position
          (``loss_mask[t]``: predicting ``tokens[t + 1]`` counts).

    Example:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     f = pathlib.Path(d) / "valid.bin"
        ...     _ = f.write_bytes(b"abcdefghij")
        ...     ds = Enwik8Dataset(f, seq_len=4)
        ...     len(ds), bytes(ds[1]["tokens"].tolist()), ds[1]["loss_mask"].tolist()
        (3, b'defg', [True, True, True, False])
    """

    vocab_size = VOCAB_SIZE

    def __init__(self, path: str | os.PathLike, seq_len: int):
        self.path = Path(path)
        if isinstance(seq_len, bool) or not isinstance(seq_len, numbers.Integral) or seq_len < 2:
            raise ValueError(f"seq_len = {seq_len!r}: must be an integer >= 2")
        self.seq_len = int(seq_len)
        self.n_bytes = self.path.stat().st_size
        if self.seq_len > self.n_bytes:
            raise ValueError(
                f"seq_len = {self.seq_len}: must be at most the {self.n_bytes} bytes of {self.path}"
            )
        self.stride = self.seq_len - 1
        self.n = (self.n_bytes - 1) // self.stride
        self._mask = torch.ones(self.seq_len, dtype=torch.bool)
        self._mask[-1] = False
        self._data: np.memmap | None = None  # opened lazily, once per worker process

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(f"index {index} out of range for {self.n} windows")
        if self._data is None:
            self._data = np.memmap(self.path, dtype=np.uint8, mode="r")
        start = index * self.stride
        tokens = torch.from_numpy(self._data[start : start + self.seq_len].astype(np.int64))
        return {"tokens": tokens, "loss_mask": self._mask.clone()}

    def __getstate__(self) -> dict:
        # Workers started by spawn get the path, not a pickled copy of the mapped bytes.
        state = self.__dict__.copy()
        state["_data"] = None
        return state

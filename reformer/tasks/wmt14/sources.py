"""Fetching and reading the WMT14 archives: verified downloads, members, sentences.

Each archive is downloaded with its pinned checksum checked as it streams in (or taken from
``cache_dir`` when a verified copy is there); the wanted members are streamed out of the tar
(or gzip) file, and their sentences read: the ``<seg>`` contents of the WMT ``.sgm`` test
sets, the lines of plain text. A truncated or corrupt archive, a missing member or unequal
line counts raise a one-line :class:`~repro.data.manifest.DataIntegrityError`.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import tarfile
import urllib.parse
import warnings
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from reformer.tasks.wmt14.params import parse_checksum
from repro.data.download import as_url, download
from repro.data.manifest import DataIntegrityError, sha256_file

__all__ = ["read_segments"]


_CHUNK = 1 << 20


_SEG = re.compile(r"<seg[^>]*>(.*)</seg>", re.IGNORECASE)


def _file_digest(path: Path, algo: str) -> str:
    if algo == "sha256":
        return sha256_file(path)
    digest = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(source: Mapping[str, str], workdir: Path, cache_dir: str | None) -> tuple[Path, str]:
    """A verified local copy of ``source``'s archive (from ``cache_dir`` when it matches)."""
    name = Path(urllib.parse.urlparse(as_url(source["url"])).path).name or "download"
    # Several sources may share a file name (dev.tgz): keep them apart by source name.
    local = f"{source['name']}--{name}"
    if cache_dir is None:
        return download(source["url"], workdir / local, source["checksum"])
    cached = Path(cache_dir) / local
    if cached.is_file():
        algo, expected = parse_checksum(source["checksum"])
        if _file_digest(cached, algo) == expected:
            return cached, sha256_file(cached)
        warnings.warn(
            f"{cached}: cached file does not match the pinned {algo}; downloading again",
            stacklevel=2,
        )
    return download(source["url"], cached, source["checksum"])


def read_segments(data: bytes, member: str) -> list[str]:
    """Sentences of one text member: ``.sgm`` -> the ``<seg>`` contents, else its lines.

    Each sentence is stripped and inner runs of spaces are collapsed (sacreBLEU's cleaning
    of the WMT ``.sgm`` files), so the references equal sacreBLEU's.

    Example:
        >>> read_segments(b'<doc>\\n<seg id="1"> Hello   world </seg>\\n</doc>\\n', "x.sgm")
        ['Hello world']
        >>> read_segments(b"a b\\n c \\n", "x.en")
        ['a b', 'c']
    """
    text = data.decode("utf-8", errors="replace")
    if member.endswith(".sgm"):
        lines = [m.group(1) for line in text.splitlines() if (m := _SEG.search(line))]
    else:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
    return [" ".join(line.split()) for line in lines]


def _extract(archive: Path, members: Sequence[str], dest_dir: Path) -> dict[str, Path]:
    """Stream ``members`` out of a tar (any compression) or gzip archive into ``dest_dir``."""
    wanted = {m: dest_dir / f"{i}-{Path(m).name}" for i, m in enumerate(members)}
    found: dict[str, Path] = {}
    try:
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive, mode="r|*") as tar:
                for info in tar:
                    name = info.name.removeprefix("./")
                    if name in wanted and info.isfile():
                        src = tar.extractfile(info)
                        assert src is not None  # a regular file
                        with open(wanted[name], "wb") as out:
                            shutil.copyfileobj(src, out, _CHUNK)
                        found[name] = wanted[name]
        else:
            # A single gzip-compressed or plain text file serves both of its "members".
            with open(archive, "rb") as f:
                magic = f.read(2)
            opener = gzip.open if magic == b"\x1f\x8b" else open
            with opener(archive, "rb") as src:
                data = src.read()
            for m in members:
                wanted[m].write_bytes(data)
                found[m] = wanted[m]
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise DataIntegrityError(
            f"{archive}: not a readable archive ({str(exc).strip() or type(exc).__name__}); "
            "it is truncated or corrupt"
        ) from None
    missing = [m for m in members if m not in found]
    if missing:
        raise DataIntegrityError(f"{archive}: no member {missing[0]!r} in the archive")
    return found


def _read_pair(source: Mapping[str, str], archive: Path, workdir: Path) -> tuple[list, list]:
    files = _extract(archive, [source["src"], source["tgt"]], workdir)
    src = read_segments(files[source["src"]].read_bytes(), source["src"])
    tgt = read_segments(files[source["tgt"]].read_bytes(), source["tgt"])
    for f in files.values():
        f.unlink(missing_ok=True)
    if len(src) != len(tgt):
        raise DataIntegrityError(
            f"{archive}: {source['src']} has {len(src)} lines but {source['tgt']} has "
            f"{len(tgt)}; the parallel files must be aligned line by line"
        )
    return src, tgt

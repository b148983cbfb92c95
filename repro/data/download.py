"""Verified streaming downloads, shared by the dataset preparations (enwik8, WMT14).

:func:`download` streams a URL (``http(s)://``, ``file://`` or a plain local path) into a
temporary file beside its destination, hashes the bytes as they arrive, and renames the
file into place only once the byte count and the pinned checksum are right. A failed
download leaves nothing behind, so a destination is either absent, unchanged, or complete
and verified. Every error is one line that names the URL.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .manifest import DataIntegrityError

__all__ = ["CHECKSUM_ALGORITHMS", "as_url", "download", "expected_size", "parse_checksum"]

#: The checksum algorithms a pin may name, with the length of their hex digest.
CHECKSUM_ALGORITHMS = {"sha256": 64, "md5": 32}

_CHUNK = 1 << 20
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def parse_checksum(value: Any, where: str = "checksum") -> tuple[str, str]:
    """``"sha256:<hex>"``, ``"md5:<hex>"`` or a bare 64-digit sha256 -> ``(algorithm, hex)``.

    Case and surrounding white space are ignored; the hex digest comes back lower-case.

    Args:
        value: the pin.
        where: how the error message names it.

    Raises:
        ValueError: (one line) ``value`` is not such a pin.

    Example:
        >>> parse_checksum("MD5:" + "A" * 32)
        ('md5', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')
        >>> parse_checksum("abc", "pin")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: pin = 'abc': must be 'sha256:<64 hex digits>', 'md5:<32 hex digits>' or ...
    """
    if isinstance(value, str):
        algo, _, digest = value.strip().lower().rpartition(":")
        algo = algo or "sha256"
        n_hex = CHECKSUM_ALGORITHMS.get(algo)
        if n_hex is not None and re.fullmatch(f"[0-9a-f]{{{n_hex}}}", digest):
            return algo, digest
    raise ValueError(
        f"{where} = {value!r}: must be 'sha256:<64 hex digits>', "
        "'md5:<32 hex digits>' or a bare sha256"
    )


def as_url(url: str) -> str:
    """``url`` itself if it has a scheme, else the ``file://`` URL of that local path.

    Plain paths become URLs so that one code path (urllib) serves local and remote sources.

    Example:
        >>> as_url("http://example.org/a.zip")
        'http://example.org/a.zip'
        >>> as_url("data/a.zip").startswith("file:///")
        True
    """
    if _SCHEME.match(url):
        return url
    return Path(url).expanduser().resolve().as_uri()


def expected_size(response: Any, url: str) -> int | None:
    """Bytes the source promises (``None``: unknown), for the progress bar and the
    truncation check.

    The ``Content-Length`` header when the response has one (HTTP servers usually; urllib
    also sets it for ``file://``), else, for a ``file://`` URL, the size of that file.

    Args:
        response: what :func:`urllib.request.urlopen` returned (its ``headers``).
        url: the URL it was opened with (``file://``, ``http(s)://``).

    Example:
        >>> import email.message, pathlib, tempfile, types
        >>> bare = types.SimpleNamespace(headers=email.message.Message())
        >>> with tempfile.TemporaryDirectory() as d:
        ...     src = pathlib.Path(d) / "a.bin"
        ...     _ = src.write_bytes(b"abcd")
        ...     expected_size(bare, src.as_uri()), expected_size(bare, "http://example.org/a")
        (4, None)
    """
    length = (response.headers.get("Content-Length") or "").strip()
    if length.isdigit():
        return int(length)
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        try:
            return os.stat(urllib.request.url2pathname(parsed.path)).st_size
        except OSError:
            return None
    return None


def download(
    url: str, dest: str | os.PathLike, checksum: str, *, progress: bool = True
) -> tuple[Path, str]:
    """Stream ``url`` to ``dest``; keep it only if it matches ``checksum``.

    The bytes go to a temporary file beside ``dest`` (``.<name>.*.part``) and are hashed
    (with the pinned algorithm, and with sha256 for the record) as they arrive. The file is
    renamed to ``dest`` only after the byte count (when :func:`expected_size` knows it: a
    ``Content-Length`` or a local file's size) and the checksum are right. On any failure,
    interruption included, the temporary file is removed, so ``dest`` is either absent,
    unchanged, or complete and verified.

    Args:
        url: ``http(s)://``, ``file://`` URL or a local path.
        dest: where the verified file goes (its directory is created).
        checksum: the pin, see :func:`parse_checksum`.
        progress: show a tqdm progress bar (stderr): bytes against the total of
            :func:`expected_size` with a percentage, or a plain byte counter when the
            total is unknown (an HTTP response without ``Content-Length``).

    Returns:
        ``(dest, sha256 hex of the file)``: the sha256 even when the pin is md5, so the
        caller can record it.

    Raises:
        DataIntegrityError: (one line, naming the URL with the expected and actual values)
            a truncated download (fewer bytes than the ``Content-Length``) or a checksum
            mismatch.
        OSError: (one line) the URL cannot be opened, or the transfer broke off.
        ValueError: ``checksum`` is not a valid pin.

    Example:
        >>> import tempfile, pathlib, hashlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     src = pathlib.Path(d) / "a.bin"
        ...     _ = src.write_bytes(b"abc")
        ...     md5 = "md5:" + hashlib.md5(b"abc").hexdigest()
        ...     path, sha = download(str(src), pathlib.Path(d) / "b.bin", md5, progress=False)
        ...     path.read_bytes(), sha[:8]
        (b'abc', 'ba7816bf')
    """
    # Imported here: tqdm is only needed once something is really downloaded.
    from tqdm.auto import tqdm

    algo, expected = parse_checksum(checksum)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    out = os.fdopen(fd, "wb")
    try:
        try:
            response = urllib.request.urlopen(as_url(url), timeout=60)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise OSError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
        pinned, sha = hashlib.new(algo), hashlib.sha256()
        received = 0
        with response, out:
            expected_bytes = expected_size(response, as_url(url))
            bar = tqdm(
                total=expected_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"download {dest.name}",
                disable=not progress,
                leave=False,
            )
            with bar:
                try:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        pinned.update(chunk)
                        if algo != "sha256":  # otherwise ``pinned`` already is the sha256
                            sha.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                except (http.client.HTTPException, TimeoutError, ConnectionError) as exc:
                    raise OSError(
                        f"{url}: download interrupted after {received} bytes "
                        f"({type(exc).__name__}: {exc}); nothing was kept"
                    ) from None
                # tqdm redraws at most every 0.1 s: a fast (local) copy would otherwise
                # leave the first frame, "0%", as the last one a log shows.
                bar.refresh()
            out.flush()
            os.fsync(out.fileno())
        # A server that closes early is not an error to urllib: compare with what it promised.
        if expected_bytes is not None and received != expected_bytes:
            raise DataIntegrityError(
                f"{url}: truncated download (expected {expected_bytes} bytes, received "
                f"{received}); nothing was kept"
            )
        actual = pinned.hexdigest()
        if actual != expected:
            raise DataIntegrityError(
                f"{url}: {algo} mismatch (expected {expected}, actual {actual}, {received} "
                "bytes); the download is corrupt or changed upstream, nothing was kept"
            )
        os.replace(tmp, dest)
        return dest, (actual if algo == "sha256" else sha.hexdigest())
    except BaseException:
        out.close()  # idempotent; the with block may already have closed it
        tmp.unlink(missing_ok=True)
        raise

"""A tiny en-de corpus shaped like WMT14's archives, for smoke profiles and tests (offline).

``python -m reformer.tasks.wmt14 sample DIR`` writes it and prints the ``tasks.wmt14``
parameters that use it.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repro.data.manifest import sha256_file

__all__ = ["main", "write_sample_corpus"]


_SAMPLE = [
    ("the house is small", "das Haus ist klein"),
    ("the house is big", "das Haus ist groß"),
    ("the cat sleeps", "die Katze schläft"),
    ("the dog sleeps", "der Hund schläft"),
    ("my brother reads a book", "mein Bruder liest ein Buch"),
    ("my sister reads a letter", "meine Schwester liest einen Brief"),
    ("we drink water", "wir trinken Wasser"),
    ("we drink coffee in the morning", "wir trinken am Morgen Kaffee"),
    ("the weather is good today", "das Wetter ist heute gut"),
    ("the children play in the garden", "die Kinder spielen im Garten"),
    ("I see the old tree", "ich sehe den alten Baum"),
    ("the train is late", "der Zug ist spät"),
]


def _deterministic_tgz(path: Path, members: Mapping[str, str]) -> None:
    # Fixed names, times and owners: the same bytes (and sha256) on every machine.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, text in sorted(members.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue(), mtime=0))


def write_sample_corpus(directory: str | os.PathLike, repeat: int = 20) -> dict[str, Any]:
    """Write a tiny en-de corpus shaped like WMT14's archives; return params that use it.

    Three archives: ``train.tgz`` (plain parallel text), ``dev.tgz`` (newstest2013-style
    plain text) and ``test-full.tgz`` (newstest2014-style ``.sgm``), with fixed bytes, so
    their sha256 pins never change. Smoke profiles and tests train on it offline.

    Args:
        directory: where the archives go (created).
        repeat: copies of the sample sentences in the training text.

    Returns:
        ``tasks.wmt14`` parameters (sources with paths and sha256 pins, a small vocabulary).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = write_sample_corpus(d)
        ...     sorted(Path(d).iterdir())[0].name, p["test"]["checksum"][:7]
        ('dev.tgz', 'sha256:')
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    en, de = [e for e, _ in _SAMPLE], [g for _, g in _SAMPLE]

    def sgm(lines: list[str], kind: str) -> str:
        segs = "".join(f'<seg id="{i + 1}">{line}</seg>\n' for i, line in enumerate(lines))
        return f'<{kind}set setid="sample">\n<doc docid="sample">\n{segs}</doc>\n</{kind}set>\n'

    archives = {
        "train.tgz": {
            "train/sample.de-en.en": "\n".join(en * repeat) + "\n",
            "train/sample.de-en.de": "\n".join(de * repeat) + "\n",
        },
        "dev.tgz": {
            "dev/newstest2013.en": "\n".join(en[:4]) + "\n",
            "dev/newstest2013.de": "\n".join(de[:4]) + "\n",
        },
        "test-full.tgz": {
            "test-full/newstest2014-deen-src.en.sgm": sgm(en[4:8], "src"),
            "test-full/newstest2014-deen-ref.de.sgm": sgm(de[4:8], "ref"),
        },
    }
    for name, members in archives.items():
        _deterministic_tgz(directory / name, members)

    def source(name: str, archive: str, src: str, tgt: str) -> dict[str, str]:
        path = directory / archive
        return {
            "name": name,
            "url": os.fspath(path),
            "checksum": f"sha256:{sha256_file(path)}",
            "src": src,
            "tgt": tgt,
        }

    return {
        "train": [source("sample", "train.tgz", "train/sample.de-en.en", "train/sample.de-en.de")],
        "valid": source("newstest2013", "dev.tgz", "dev/newstest2013.en", "dev/newstest2013.de"),
        "test": source(
            "newstest2014",
            "test-full.tgz",
            "test-full/newstest2014-deen-src.en.sgm",
            "test-full/newstest2014-deen-ref.de.sgm",
        ),
        "vocab_size": 300,
        "max_len": 40,  # every sample pair fits (16 would keep only the shortest)
        "spm_sentences": 0,
        "num_threads": 1,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reformer.tasks.wmt14 sample DIR``: write :func:`write_sample_corpus` there.

    Prints the ``tasks.wmt14`` parameters as YAML (paste them into a profile).

    Example:
        >>> main(["bogus"])
        2
    """
    import sys

    import yaml

    if len(argv or []) != 2 or argv[0] != "sample":
        print("usage: python -m reformer.tasks.wmt14 sample DIR", file=sys.stderr)
        return 2
    params = write_sample_corpus(argv[1])
    print(yaml.safe_dump({"tasks": {"wmt14": params}}, sort_keys=False), end="")
    return 0

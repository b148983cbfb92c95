"""WMT14 English-German: the paper's translation task (Table 4), prepared and packed.

Preparation (:func:`prepare_wmt14`):

1. download the standard WMT14 en-de training corpus (Europarl v7, Common Crawl, News
   Commentary v9: 4.5M sentence pairs), newstest2013 (valid) and newstest2014 (test) from
   statmt.org, each archive checked against a pinned checksum as it streams in (kept in
   ``cache_dir`` when given, so a second preparation downloads nothing);
2. read the wanted members out of the archives (plain text, or the WMT ``.sgm`` format of
   the test sets: one ``<seg>`` per line), check that source and target have as many lines;
3. train one SentencePiece model on the source and target training text together (a
   shared vocabulary, as the paper's model shares its embeddings), ids ``pad 0, unk 1,
   bos 2, eos 3``, with byte fallback (no ``<unk>`` in outputs);
4. tokenise every split, drop training pairs that do not fit ``max_len`` tokens per side,
   and save the ids as flat arrays with offsets.

Nothing is written into the output directory until every step has passed: all files are
made in a staging directory beside it and moved in at the end, followed by the sha256
manifest (:mod:`repro.data.manifest`). A checksum mismatch, a truncated or unreadable
archive, a missing member or unequal line counts raise a one-line
:class:`~repro.data.manifest.DataIntegrityError` and leave ``out_dir`` as it was.

Prepared directory::

    spm.model, spm.vocab               the shared SentencePiece vocabulary
    {train,valid,test}.src.npy         source ids, all sentences concatenated (uint16/int32)
    {train,valid,test}.src.idx.npy     int64 offsets (n + 1): sentence i is [idx[i], idx[i+1])
    {train,valid,test}.tgt{,.idx}.npy  the same for the target side
    {valid,test}.en, {valid,test}.de   the raw text, one sentence per line (BLEU references)
    stats.json                         pair counts (read, kept, dropped as too long)
    manifest.json

Training sees a pair as one packed sequence of length ``2 * max_len`` (so the generic
language-model training loop and its DDP set-up serve translation unchanged):

    tokens = [src ids, eos, pad ...  | bos, tgt ids, eos, pad ...]
              <------ max_len ------>  <------- max_len -------->

:class:`PackedTranslationModel` unpacks it for :class:`reformer.models.ReformerEncoderDecoder`
and returns logits where position ``max_len + j`` predicts target token ``j + 1``, which is
exactly the language model's next-token convention; ``loss_mask`` (see
:func:`packed_loss_mask`) counts the non-padding target tokens only.

Pinned downloads (:data:`DEFAULT_SOURCES`) and where their checksums come from:

- ``training-parallel-europarl-v7.tgz`` (657,632,379 bytes), ``training-parallel-
  commoncrawl.tgz`` (918,311,367 bytes), ``training-parallel-nc-v9.tgz`` (80,418,416 bytes):
  sha256 as pinned by TensorFlow Datasets' ``url_checksums/wmt14_translate.txt`` (the first
  two also by an independent pipeline);
- newstest2013 from WMT's ``dev.tgz`` (38,654,961 bytes, the data.statmt.org copy that also
  holds all earlier test sets): sha256 as pinned by the same TensorFlow Datasets file;
- newstest2014 (``test-full.tgz``, the full 3,003-sentence set of sacreBLEU's
  ``wmt14/full``): **md5** as pinned by sacreBLEU's own dataset table (which checks it on
  every download); no published sha256 could be confirmed, so this pin is md5. After a
  first download the manifest records every archive's sha256 (``stats.json``), which can
  then be pinned instead (``checksum: "sha256:..."``).

Example:
    >>> ids = np.array([7, 8, 9, 6], dtype=np.int64)
    >>> pack_pair(ids[:3], ids[3:], max_len=5).tolist()
    [7, 8, 9, 3, 0, 2, 6, 3, 0, 0]
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import numbers
import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from repro.data.download import as_url, download
from repro.data.download import parse_checksum as _parse_checksum
from repro.data.manifest import DataIntegrityError, publish, sha256_file, verify_manifest

__all__ = [
    "BOS_ID",
    "DEFAULT_PARAMS",
    "DEFAULT_SOURCES",
    "EOS_ID",
    "PAD_ID",
    "TASK",
    "UNK_ID",
    "PackedTranslationModel",
    "WMT14Dataset",
    "encoder_decoder_kwargs",
    "evaluate_translation",
    "load_tokenizer",
    "load_wmt14_split",
    "pack_pair",
    "packed_loss_mask",
    "parse_checksum",
    "prepare_wmt14",
    "read_segments",
    "validate_params",
    "write_sample_corpus",
]

TASK = "wmt14"
SPLITS = ("train", "valid", "test")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

#: The standard WMT14 en-de data (see the module docstring for where the checksums come from).
DEFAULT_SOURCES: dict[str, Any] = {
    "train": [
        {
            "name": "europarl-v7",
            "url": "http://www.statmt.org/wmt13/training-parallel-europarl-v7.tgz",
            "checksum": "sha256:0224c7c710c8a063dfd893b0cc0830202d61f4c75c17eb8e31836103d27d96e7",
            "src": "training/europarl-v7.de-en.en",
            "tgt": "training/europarl-v7.de-en.de",
        },
        {
            "name": "commoncrawl",
            "url": "http://www.statmt.org/wmt13/training-parallel-commoncrawl.tgz",
            "checksum": "sha256:c7a74e2ea01ac6c920123108627e35278d4ccb5701e15428ffa34de86fa3a9e5",
            "src": "commoncrawl.de-en.en",
            "tgt": "commoncrawl.de-en.de",
        },
        {
            "name": "news-commentary-v9",
            "url": "http://www.statmt.org/wmt14/training-parallel-nc-v9.tgz",
            "checksum": "sha256:cb8953f292298e6877ae433c98912b927cb0766b303f4540512ddd286c748485",
            "src": "training/news-commentary-v9.de-en.en",
            "tgt": "training/news-commentary-v9.de-en.de",
        },
    ],
    "valid": {
        "name": "newstest2013",
        "url": "http://data.statmt.org/wmt19/translation-task/dev.tgz",
        "checksum": "sha256:7a7deccf82ebb05ba508dba5eb21356492224e8f630ec4f992132b029b4b25e7",
        "src": "dev/newstest2013.en",
        "tgt": "dev/newstest2013.de",
    },
    "test": {
        "name": "newstest2014",
        "url": "http://www.statmt.org/wmt14/test-full.tgz",
        # md5 (sacreBLEU's pin of wmt14/full); no sha256 of this file could be confirmed.
        "checksum": "md5:a8cd784e006feb32ac6f3d9ec7eb389a",
        "src": "test-full/newstest2014-deen-src.en.sgm",
        "tgt": "test-full/newstest2014-deen-ref.de.sgm",
    },
}

DEFAULT_PARAMS: dict[str, Any] = {
    **DEFAULT_SOURCES,
    "src_lang": "en",
    "tgt_lang": "de",
    # tensor2tensor's translate_ende_wmt32k vocabulary: 2^15 subwords shared by both sides.
    "vocab_size": 32768,
    "model_type": "unigram",  # SentencePiece's unigram LM ("bpe" also works)
    "character_coverage": 1.0,
    # Characters outside the vocabulary become UTF-8 byte pieces instead of <unk>, so every
    # reference character can be produced (adds 256 pieces to the vocabulary).
    "byte_fallback": True,
    "spm_sentences": 2_000_000,  # sentences sampled to train the vocabulary (0: all)
    "max_len": 256,  # tokens per side, special tokens included
    "max_train_pairs": None,  # keep only the first N training pairs (smoke profiles)
    "num_threads": 2,  # SentencePiece training threads
    "seed": 0,
    "cache_dir": None,  # where verified archives are kept between preparations
}

_CHUNK = 1 << 20
_SOURCE_KEYS = ("name", "url", "checksum", "src", "tgt")
_SEG = re.compile(r"<seg[^>]*>(.*)</seg>", re.IGNORECASE)


# ----------------------------------------------------------------------------- params


def parse_checksum(value: Any, where: str = "checksum") -> tuple[str, str]:
    """``"sha256:<hex>"``, ``"md5:<hex>"`` or a bare 64-digit sha256 -> ``(algorithm, hex)``.

    :func:`repro.data.download.parse_checksum`, with errors that name the wmt14 param.

    Example:
        >>> parse_checksum("MD5:" + "A" * 32)
        ('md5', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')
        >>> parse_checksum("abc")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: wmt14 param checksum = 'abc': must be 'sha256:<64 hex digits>', ...
    """
    return _parse_checksum(value, f"wmt14 param {where}")


def _check_source(source: Any, where: str) -> dict[str, str]:
    if not isinstance(source, Mapping):
        raise ValueError(
            f"wmt14 param {where} = {source!r}: must be a mapping with keys "
            f"{', '.join(_SOURCE_KEYS)}"
        )
    unknown = sorted(set(source) - set(_SOURCE_KEYS))
    if unknown:
        raise ValueError(
            f"wmt14 param {where}.{unknown[0]} is unknown; allowed: {', '.join(_SOURCE_KEYS)}"
        )
    out = {}
    for key in _SOURCE_KEYS:
        value = source.get(key)
        if key == "name" and value is None:
            value = Path(urllib.parse.urlparse(str(source.get("url", ""))).path).stem
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value:
            raise ValueError(f"wmt14 param {where}.{key} = {value!r}: must be a non-empty string")
        out[key] = value
    parse_checksum(out["checksum"], f"{where}.checksum")
    return out


def _int_param(p: dict, name: str, minimum: int, allow_none: bool = False) -> None:
    value = p[name]
    if value is None and allow_none:
        return
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        extra = " or null" if allow_none else ""
        raise ValueError(
            f"wmt14 param {name!r} = {p[name]!r}: must be an integer >= {minimum}{extra}"
        )
    p[name] = int(value)


def validate_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge ``params`` over :data:`DEFAULT_PARAMS` and check every value.

    Args:
        params: any of ``train`` (a list of sources), ``valid``, ``test`` (one source each;
            a source is ``{name, url, checksum, src, tgt}`` with ``src``/``tgt`` the member
            paths inside the archive), ``src_lang``, ``tgt_lang``, ``vocab_size``,
            ``model_type`` (``unigram``/``bpe``), ``character_coverage``, ``byte_fallback``,
            ``spm_sentences``,
            ``max_len``, ``max_train_pairs``, ``num_threads``, ``seed``, ``cache_dir``.

    Returns:
        The complete parameter dict.

    Raises:
        ValueError: one line naming the parameter, its value and what is allowed.

    Example:
        >>> validate_params({})["max_len"]
        256
        >>> validate_params({"max_len": 3})
        Traceback (most recent call last):
        ...
        ValueError: wmt14 param 'max_len' = 3: must be an integer >= 4
    """
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise ValueError(
            f"wmt14 param {unknown[0]!r} is unknown; allowed: {', '.join(DEFAULT_PARAMS)}"
        )
    p = {**DEFAULT_PARAMS, **params}
    if not isinstance(p["train"], Sequence) or isinstance(p["train"], str) or not p["train"]:
        raise ValueError(
            f"wmt14 param 'train' = {p['train']!r}: must be a non-empty list of sources"
        )
    p["train"] = [_check_source(s, f"train[{i}]") for i, s in enumerate(p["train"])]
    p["valid"] = _check_source(p["valid"], "valid")
    p["test"] = _check_source(p["test"], "test")
    for name in ("src_lang", "tgt_lang"):
        if not isinstance(p[name], str) or not re.fullmatch(r"[a-z]{2,3}", p[name]):
            raise ValueError(
                f"wmt14 param {name!r} = {p[name]!r}: must be a language code like 'en'"
            )
    if p["src_lang"] == p["tgt_lang"]:
        raise ValueError(f"wmt14 param 'tgt_lang' = {p['tgt_lang']!r}: must differ from src_lang")
    _int_param(p, "vocab_size", 8)
    _int_param(p, "spm_sentences", 0)
    _int_param(p, "max_len", 4)
    _int_param(p, "max_train_pairs", 1, allow_none=True)
    _int_param(p, "num_threads", 1)
    _int_param(p, "seed", 0)
    if not isinstance(p["byte_fallback"], bool):
        raise ValueError(
            f"wmt14 param 'byte_fallback' = {p['byte_fallback']!r}: must be true or false"
        )
    if p["model_type"] not in ("unigram", "bpe"):
        raise ValueError(f"wmt14 param 'model_type' = {p['model_type']!r}: allowed: unigram, bpe")
    cov = p["character_coverage"]
    if isinstance(cov, bool) or not isinstance(cov, numbers.Real) or not 0.9 <= cov <= 1.0:
        raise ValueError(f"wmt14 param 'character_coverage' = {cov!r}: must be in [0.9, 1.0]")
    if p["spm_sentences"] and p["spm_sentences"] <= 100:  # SentencePiece's own lower bound
        raise ValueError(
            f"wmt14 param 'spm_sentences' = {p['spm_sentences']}: must be 0 (all) or > 100"
        )
    if p["cache_dir"] is not None:
        if not isinstance(p["cache_dir"], (str, os.PathLike)) or not os.fspath(p["cache_dir"]):
            raise ValueError(
                f"wmt14 param 'cache_dir' = {p['cache_dir']!r}: must be a directory or null"
            )
        p["cache_dir"] = os.fspath(p["cache_dir"])
    return p


# ----------------------------------------------------------------------------- download


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


# ----------------------------------------------------------------------------- extraction


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


# ----------------------------------------------------------------------------- tokenise


def _train_spm(files: Sequence[Path], prefix: Path, p: Mapping[str, Any]) -> None:
    import sentencepiece as spm

    spm.set_random_generator_seed(int(p["seed"]) + 1)  # 0 would mean "from the clock"
    try:
        spm.SentencePieceTrainer.train(
            input=",".join(os.fspath(f) for f in files),
            model_prefix=os.fspath(prefix),
            vocab_size=p["vocab_size"],
            model_type=p["model_type"],
            character_coverage=float(p["character_coverage"]),
            input_sentence_size=p["spm_sentences"],
            shuffle_input_sentence=True,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            hard_vocab_limit=False,  # tiny corpora may not reach vocab_size pieces
            byte_fallback=bool(p["byte_fallback"]),
            num_threads=p["num_threads"],
            minloglevel=2,
        )
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"wmt14: SentencePiece training failed: {first}") from None
    # The model records the training files' paths and the output prefix (a temporary or
    # checkout-specific directory); clear them so the same corpus gives the same bytes.
    from sentencepiece import sentencepiece_model_pb2

    model_path = Path(f"{os.fspath(prefix)}.model")
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_path.read_bytes())
    del proto.trainer_spec.input[:]
    proto.trainer_spec.model_prefix = ""
    model_path.write_bytes(proto.SerializeToString())


def _encode_lines(sp: Any, lines: Iterable[str], batch: int = 50_000) -> list[list[int]]:
    out: list[list[int]] = []
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == batch:
            out += sp.encode(chunk)
            chunk = []
    if chunk:
        out += sp.encode(chunk)
    return out


def _save_ragged(seqs: Sequence[Sequence[int]], path: Path, dtype: np.dtype) -> None:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((t for s in seqs for t in s), dtype=dtype, count=int(offsets[-1]))
    np.save(path.with_name(path.name + ".npy"), flat)
    np.save(path.with_name(path.name + ".idx.npy"), offsets)


def _split_files(split: str) -> list[str]:
    return [f"{split}.{side}{kind}.npy" for side in ("src", "tgt") for kind in ("", ".idx")]


def prepare_wmt14(out_dir: str | os.PathLike, params: Mapping[str, Any] | None = None) -> Path:
    """Download, verify, tokenise and publish WMT14 en-de into ``out_dir``.

    Args:
        out_dir: destination directory (its files are replaced only once the new ones
            are complete).
        params: see :func:`validate_params`; ``{}`` or None means the real WMT14 en-de.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        DataIntegrityError: a checksum, archive or alignment check failed (one line).
        ValueError: a bad parameter, or SentencePiece could not train (one line).
        OSError: a download could not be opened.

    Example (a tiny corpus made on the spot; a source's url may be a local path):
        >>> import tempfile, pathlib, hashlib, tarfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     d = pathlib.Path(d)
        ...     _ = (d / "c.en").write_text("the house is small\\nthe cat\\n" * 60)
        ...     _ = (d / "c.de").write_text("das Haus ist klein\\ndie Katze\\n" * 60)
        ...     with tarfile.open(d / "p.tgz", "w:gz") as t:
        ...         t.add(d / "c.en", "c.en"); t.add(d / "c.de", "c.de")
        ...     h = hashlib.sha256((d / "p.tgz").read_bytes()).hexdigest()
        ...     s = {"url": str(d / "p.tgz"), "checksum": h, "src": "c.en", "tgt": "c.de"}
        ...     out = prepare_wmt14(d / "wmt14", {"train": [s], "valid": s, "test": s,
        ...                         "vocab_size": 40, "max_len": 16, "num_threads": 1,
        ...                         "byte_fallback": False})
        ...     len(load_wmt14_split(out, "test", seq_len=32))
        120
    """
    p = validate_params(params)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging-"))
    try:
        return _prepare(p, out_dir, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare(p: dict[str, Any], out_dir: Path, staging: Path) -> Path:
    import sentencepiece as spm

    work = staging / "work"
    work.mkdir()
    archives: dict[str, dict[str, Any]] = {}

    def fetch(source: Mapping[str, str]) -> Path:
        path, sha = _fetch(source, work, p["cache_dir"])
        archives[source["name"]] = {
            "url": source["url"],
            "sha256": sha,
            "bytes": path.stat().st_size,
        }
        return path

    # 1-2. Every download is verified before anything is tokenised.
    raw_train = {
        side: work / f"train.{p[lang]}" for side, lang in (("src", "src_lang"), ("tgt", "tgt_lang"))
    }
    n_read = 0
    with open(raw_train["src"], "w") as fs, open(raw_train["tgt"], "w") as ft:
        for source in p["train"]:
            src, tgt = _read_pair(source, fetch(source), work)
            for a, b in zip(src, tgt, strict=True):
                if p["max_train_pairs"] is not None and n_read >= p["max_train_pairs"]:
                    break
                if a and b:  # empty lines carry no translation
                    fs.write(a + "\n")
                    ft.write(b + "\n")
                    n_read += 1
    if n_read == 0:
        raise DataIntegrityError("wmt14: the training sources hold no non-empty sentence pair")
    evals: dict[str, tuple[list[str], list[str]]] = {}
    for split in ("valid", "test"):
        source = p[split]
        evals[split] = _read_pair(source, fetch(source), work)

    # 3. One SentencePiece model for both languages (shared embeddings).
    _train_spm([raw_train["src"], raw_train["tgt"]], staging / "spm", p)
    sp = spm.SentencePieceProcessor(model_file=os.fspath(staging / "spm.model"))
    vocab = sp.get_piece_size()
    dtype = np.dtype(np.uint16) if vocab <= np.iinfo(np.uint16).max else np.dtype(np.int32)

    # 4. Tokenise; training pairs must fit max_len per side with their special tokens.
    max_len = p["max_len"]
    with open(raw_train["src"]) as fs, open(raw_train["tgt"]) as ft:
        src_ids = _encode_lines(sp, (line.rstrip("\n") for line in fs))
        tgt_ids = _encode_lines(sp, (line.rstrip("\n") for line in ft))
    keep = [
        i
        for i in range(len(src_ids))
        if len(src_ids[i]) + 1 <= max_len and len(tgt_ids[i]) + 2 <= max_len
    ]
    _save_ragged([src_ids[i] for i in keep], staging / "train.src", dtype)
    _save_ragged([tgt_ids[i] for i in keep], staging / "train.tgt", dtype)
    del src_ids, tgt_ids
    stats: dict[str, Any] = {
        "vocab_size": vocab,
        "train_pairs_read": n_read,
        "train_pairs": len(keep),
        "train_pairs_too_long": n_read - len(keep),
    }
    files = ["spm.model", "spm.vocab", *_split_files("train")]
    for split, (src, tgt) in evals.items():
        _save_ragged(_encode_lines(sp, src), staging / f"{split}.src", dtype)
        _save_ragged(_encode_lines(sp, tgt), staging / f"{split}.tgt", dtype)
        for lang, lines in ((p["src_lang"], src), (p["tgt_lang"], tgt)):
            (staging / f"{split}.{lang}").write_text("".join(line + "\n" for line in lines))
            files.append(f"{split}.{lang}")
        files += _split_files(split)
        stats[f"{split}_pairs"] = len(src)
    stats["archives"] = archives
    (staging / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    files.append("stats.json")
    recorded = {k: v for k, v in p.items() if k != "cache_dir"}
    return publish(staging, out_dir, TASK, recorded, files)


# ----------------------------------------------------------------------------- datasets


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


# ----------------------------------------------------------------------------- model glue


def encoder_decoder_kwargs(
    model: Mapping[str, Any], vocab_size: int, max_len: int
) -> dict[str, Any]:
    """:class:`~reformer.models.ReformerEncoderDecoder` arguments from ModelConfig-style keys.

    ``n_layers`` gives both the encoder and the decoder depth (the paper's base model: 6 and
    6); ``n_encoder_layers``/``n_decoder_layers`` override it.

    Example:
        >>> kw = encoder_decoder_kwargs({"d_model": 16, "n_layers": 2, "n_heads": 2,
        ...                              "d_ff": 32, "attention": "full"}, 100, 8)
        >>> kw["n_encoder_layers"], kw["n_decoder_layers"], kw["max_seq_len"], kw["pad_id"]
        (2, 2, 8, 0)
    """
    n_layers = int(model.get("n_layers", 6))
    return {
        "vocab_size": int(vocab_size),
        "d_model": int(model.get("d_model", 512)),
        "n_encoder_layers": int(model.get("n_encoder_layers", n_layers)),
        "n_decoder_layers": int(model.get("n_decoder_layers", n_layers)),
        "n_heads": int(model.get("n_heads", 8)),
        "d_ff": int(model.get("d_ff", 2048)),
        "max_seq_len": int(max_len),
        "dropout": float(model.get("dropout", 0.0)),
        "reversible": bool(model.get("reversible", True)),
        "pad_id": PAD_ID,
        "ff_chunks": int(model.get("ff_chunks", 1)),
        "loss_chunks": int(model.get("loss_chunks", 1)),
    }


class PackedTranslationModel(nn.Module):
    """A language-model view of an encoder-decoder, for packed pairs.

    ``forward(tokens (b, S + T))`` splits the packed sequence into the source ``(b, S)`` and
    the decoder input ``(b, T)``, runs the encoder-decoder once, and returns logits
    ``(b, S + T, V)`` whose position ``S + j`` is the decoder's prediction of target token
    ``j + 1``; the source positions get zeros (no loss ever counts them). ``loss`` (used by
    the training objective when ``loss_chunks > 1``) computes the chunked target loss
    without building the full logits.

    Args:
        model: a :class:`~reformer.models.ReformerEncoderDecoder`.
        src_len: ``S``, the source part of the packed length (``max_len``).

    Example:
        >>> from reformer.models import ReformerEncoderDecoder
        >>> core = ReformerEncoderDecoder(20, d_model=8, n_heads=2, max_seq_len=4)
        >>> tokens = pack_pair([5, 6], [7], max_len=4)[None]
        >>> PackedTranslationModel(core, 4)(tokens).shape
        torch.Size([1, 8, 20])
    """

    def __init__(self, model: nn.Module, src_len: int) -> None:
        super().__init__()
        self.model = model
        self.src_len = int(src_len)
        self.vocab_size = model.vocab_size
        self.loss_chunks = getattr(model, "loss_chunks", 1)

    def _split(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        if tokens.dim() != 2 or tokens.shape[1] <= self.src_len:
            raise ValueError(
                f"tokens of shape {tuple(tokens.shape)} is not allowed: must be (batch, "
                f"{self.src_len} + target length)"
            )
        return tokens[:, : self.src_len], tokens[:, self.src_len :]

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        """Logits ``(b, S + T, V)`` (zeros on the source part)."""
        src, tgt_in = self._split(tokens)
        logits = self.model(src, tgt_in)  # (b, T, V)
        pad = logits.new_zeros(src.shape[0], self.src_len, logits.shape[-1])
        return torch.cat([pad, logits], dim=1)

    def loss(self, tokens: Tensor, targets: Tensor, loss_mask: Tensor | None = None) -> Tensor:
        """Mean cross-entropy of ``targets`` where ``loss_mask`` (``(b, S + T)`` each)."""
        src, tgt_in = self._split(tokens)
        s = self.src_len
        mask = loss_mask[:, s:] if loss_mask is not None else None
        return self.model.loss(src, tgt_in, targets[:, s:], loss_mask=mask)


@torch.no_grad()
def evaluate_translation(
    model: nn.Module,
    data_dir: str | os.PathLike,
    split: str = "test",
    *,
    method: str = "beam",
    beam_size: int = 4,
    alpha: float = 0.6,
    batch_size: int = 32,
    max_sentences: int | None = None,
    tokenize: str = "intl",
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Translate a prepared split and score it with the paper's three BLEU numbers.

    Args:
        model: a trained :class:`~reformer.models.ReformerEncoderDecoder`.
        data_dir: the prepared directory.
        split: ``valid`` or ``test``.
        method: ``beam`` (the paper's: ``beam_size`` 4, ``alpha`` 0.6) or ``greedy``.
        batch_size: sentences per decoding batch.
        max_sentences: only the first N sentences (None: all).
        tokenize: the sacreBLEU tokenizer.
        device: where to decode (default: the model's device).

    Returns:
        :func:`reformer.bleu.bleu_scores`'s dict plus ``n_sentences`` and ``hypotheses``.
    """
    from reformer.bleu import bleu_scores
    from reformer.decoding import translate

    manifest = verify_manifest(data_dir, [f"{split}.src.npy", f"{split}.src.idx.npy"])
    tgt_lang = manifest["params"].get("tgt_lang", "de")
    verify_manifest(data_dir, [f"{split}.{tgt_lang}"])
    refs = (Path(data_dir) / f"{split}.{tgt_lang}").read_text().split("\n")[:-1]
    sp = load_tokenizer(data_dir)
    ds = WMT14Dataset(data_dir, split, max_len=model.max_seq_len, vocab_size=sp.get_piece_size())
    n = len(ds) if max_sentences is None else min(len(ds), max_sentences)
    sources = [ds.pair(i)[0][: model.max_seq_len - 1] + [EOS_ID] for i in range(n)]
    outputs = translate(
        model,
        sources,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        method=method,
        beam_size=beam_size,
        alpha=alpha,
        batch_size=batch_size,
        device=device,
    )
    hypotheses = [sp.decode(ids) for ids in outputs]
    scores = bleu_scores(hypotheses, refs[:n], tokenize=tokenize)
    return {**scores, "n_sentences": n, "hypotheses": hypotheses}


# ----------------------------------------------------------------------------- sample corpus

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


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))

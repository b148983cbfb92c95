"""The wmt14 task's parameters, their checks, and the pinned WMT14 en-de sources.

:data:`DEFAULT_PARAMS` holds every ``tasks.wmt14`` parameter with its default;
:func:`validate_params` merges a profile's values over them and checks each one (a one-line
``ValueError`` naming the parameter otherwise); :func:`resolve_seq_len` gives the packed
training length.

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
"""

from __future__ import annotations

import numbers
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repro.data.download import parse_checksum as _parse_checksum

__all__ = [
    "BOS_ID",
    "DEFAULT_PARAMS",
    "DEFAULT_SOURCES",
    "EOS_ID",
    "PAD_ID",
    "SPLITS",
    "TASK",
    "UNK_ID",
    "parse_checksum",
    "resolve_seq_len",
    "validate_params",
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


_SOURCE_KEYS = ("name", "url", "checksum", "src", "tgt")


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


def resolve_seq_len(params: Mapping[str, Any], requested: int | None) -> int:
    """The training sequence length: a source and a target of ``max_len`` tokens, packed.

    Example:
        >>> resolve_seq_len({"max_len": 12}, None)
        24
    """
    packed = 2 * int(params.get("max_len", DEFAULT_PARAMS["max_len"]))
    if requested is not None and requested != packed:
        raise ValueError(
            f"{TASK} packs source and target into 2 x tasks.{TASK}.max_len = {packed}; "
            f"allowed: null or {packed}"
        )
    return packed

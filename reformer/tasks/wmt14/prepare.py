"""Preparing WMT14 en-de: download, verify, tokenise with SentencePiece, publish.

:func:`prepare_wmt14` runs the four steps of the package docstring (:mod:`reformer.tasks.wmt14`)
in a staging directory beside ``out_dir`` and moves the files in only when every step has
passed, followed by the sha256 manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reformer.tasks.wmt14.dataset import _save_ragged, _split_files
from reformer.tasks.wmt14.params import BOS_ID, EOS_ID, PAD_ID, TASK, UNK_ID, validate_params
from reformer.tasks.wmt14.sources import _fetch, _read_pair
from repro.data.manifest import DataIntegrityError, publish

__all__ = ["prepare_wmt14"]


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


def prepare_wmt14(out_dir: str | os.PathLike, params: Mapping[str, Any] | None = None) -> Path:
    """Download, verify, tokenise and publish WMT14 en-de into ``out_dir``.

    Args:
        out_dir: destination directory (its files are replaced only once the new ones
            are complete).
        params: see :func:`~reformer.tasks.wmt14.params.validate_params`; ``{}`` or None means
            the real WMT14 en-de.

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
        ...     from reformer.tasks.wmt14 import load_wmt14_split
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

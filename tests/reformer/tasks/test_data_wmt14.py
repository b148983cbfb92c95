"""WMT14 preparation, offline, on a tiny parallel corpus made by the test."""

from __future__ import annotations

import hashlib
import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from reformer.models import ReformerEncoderDecoder
from reformer.tasks import DataIntegrityError, verify_manifest
from reformer.tasks.wmt14 import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    PackedTranslationModel,
    WMT14Dataset,
    encoder_decoder_kwargs,
    evaluate_translation,
    load_tokenizer,
    load_wmt14_split,
    pack_pair,
    packed_loss_mask,
    prepare_wmt14,
    validate_params,
    write_sample_corpus,
)
from repro.training.metrics import LanguageModelObjective

EN = [
    "the house is small",
    "the cat sleeps on the mat",
    "my brother reads a book",
    "we drink water in the morning",
    "the weather is good today",
    "she writes a long letter",
    "the children play in the garden",
    "I see the old tree",
]
DE = [
    "das Haus ist klein",
    "die Katze schläft auf der Matte",
    "mein Bruder liest ein Buch",
    "wir trinken am Morgen Wasser",
    "das Wetter ist heute gut",
    "sie schreibt einen langen Brief",
    "die Kinder spielen im Garten",
    "ich sehe den alten Baum",
]
TEST_EN = ["the cat is small", "my brother sleeps & reads"]
TEST_DE = ["die Katze ist klein", "mein Bruder schläft & liest"]


def _tgz(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _sgm(lines: list[str], kind: str) -> str:
    segs = "".join(f'<seg id="{i + 1}"> {line}  </seg>\n' for i, line in enumerate(lines))
    return f'<{kind}set setid="newstest2014">\n<doc docid="d1">\n{segs}</doc>\n</{kind}set>\n'


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def corpus(tmp_path: Path) -> dict:
    """Archives shaped like the real ones, and params pointing at them."""
    raw = tmp_path / "raw"
    raw.mkdir()
    long_en = " ".join(["word"] * 80)  # too long for max_len: dropped from training
    europarl = _tgz(
        raw / "europarl.tgz",
        {
            "training/europarl-v7.de-en.en": "\n".join(EN * 10 + ["", long_en]) + "\n",
            "training/europarl-v7.de-en.de": "\n".join(DE * 10 + ["leer", "lang"]) + "\n",
            "training/europarl-v7.fr-en.fr": "ignored\n",
        },
    )
    crawl = _tgz(
        raw / "crawl.tgz",
        {
            "commoncrawl.de-en.en": "\n".join(EN[::-1] * 5) + "\n",
            "commoncrawl.de-en.de": "\n".join(DE[::-1] * 5) + "\n",
        },
    )
    dev = _tgz(
        raw / "dev.tgz",
        {
            "dev/newstest2013.en": "\n".join(EN[:3]) + "\n",
            "dev/newstest2013.de": "\n".join(DE[:3]) + "\n",
        },
    )
    test = _tgz(
        raw / "test-full.tgz",
        {
            "test-full/newstest2014-deen-src.en.sgm": _sgm(TEST_EN, "src"),
            "test-full/newstest2014-deen-ref.de.sgm": _sgm(TEST_DE, "ref"),
        },
    )
    md5 = "md5:" + hashlib.md5(test.read_bytes()).hexdigest()
    params = {
        "train": [
            {
                "name": "europarl",
                "url": str(europarl),
                "checksum": _sha(europarl),
                "src": "training/europarl-v7.de-en.en",
                "tgt": "training/europarl-v7.de-en.de",
            },
            {
                "name": "crawl",
                "url": str(crawl),
                "checksum": _sha(crawl),
                "src": "commoncrawl.de-en.en",
                "tgt": "commoncrawl.de-en.de",
            },
        ],
        "valid": {
            "name": "newstest2013",
            "url": dev.as_uri(),
            "checksum": _sha(dev),
            "src": "dev/newstest2013.en",
            "tgt": "dev/newstest2013.de",
        },
        "test": {
            "name": "newstest2014",
            "url": str(test),
            "checksum": md5,
            "src": "test-full/newstest2014-deen-src.en.sgm",
            "tgt": "test-full/newstest2014-deen-ref.de.sgm",
        },
        "vocab_size": 320,  # byte fallback takes 256 pieces
        "max_len": 24,
        "num_threads": 1,
        "spm_sentences": 0,
    }
    return {"params": params, "dir": tmp_path, "europarl": europarl}


def test_prepare_writes_verified_tokenised_splits(corpus):
    out = prepare_wmt14(corpus["dir"] / "data" / "wmt14", corpus["params"])
    manifest = verify_manifest(out)  # every file present with its recorded sha256
    assert manifest["task"] == "wmt14"
    assert {"spm.model", "test.de", "train.src.npy", "valid.tgt.idx.npy"} <= set(manifest["files"])
    stats = json.loads((out / "stats.json").read_text())
    # 82 europarl lines (one empty: dropped) + 40 crawl lines; the 80-word line is too long.
    assert stats["train_pairs_read"] == 81 + 40
    assert stats["train_pairs_too_long"] == 1 and stats["train_pairs"] == 120
    assert stats["test_pairs"] == 2 and stats["valid_pairs"] == 3
    assert len(stats["archives"]["newstest2014"]["sha256"]) == 64
    # Raw references: the <seg> contents, stripped as sacreBLEU does.
    assert (out / "test.de").read_text().splitlines() == TEST_DE
    assert (out / "test.en").read_text().splitlines() == TEST_EN
    # One shared vocabulary with the special ids the model expects.
    sp = load_tokenizer(out)
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2, 3)
    train = load_wmt14_split(out, "train", seq_len=48)
    assert len(train) == 120 and train.max_len == 24 and train.vocab_size == sp.get_piece_size()
    pairs = {(sp.decode(s), sp.decode(t)) for s, t in (train.pair(i) for i in range(len(train)))}
    assert pairs == set(zip(EN, DE, strict=True))
    item = train[0]
    src, tgt = train.pair(0)
    assert item["tokens"].tolist() == pack_pair(src, tgt, 24).tolist()
    assert item["tokens"][24] == BOS_ID and int(item["loss_mask"].sum()) == len(tgt) + 1
    test = load_wmt14_split(out, "test")
    assert [sp.decode(test.pair(i)[1]) for i in range(2)] == TEST_DE


def test_max_train_pairs_and_cache_dir(corpus):
    params = {**corpus["params"], "max_train_pairs": 10, "cache_dir": str(corpus["dir"] / "c")}
    out = prepare_wmt14(corpus["dir"] / "a", params)
    assert json.loads((out / "stats.json").read_text())["train_pairs_read"] == 10
    corpus["europarl"].unlink()  # the verified copy in cache_dir serves the second run
    again = prepare_wmt14(corpus["dir"] / "b", params)
    assert (again / "train.src.npy").read_bytes() == (out / "train.src.npy").read_bytes()


def _assert_untouched(out: Path, parent: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not [p for p in parent.iterdir() if ".staging-" in p.name]


def test_checksum_mismatch_is_one_line_and_writes_nothing(corpus):
    out = corpus["dir"] / "data" / "wmt14"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("old")
    params = corpus["params"]
    params["train"][1]["checksum"] = "sha256:" + "0" * 64
    with pytest.raises(DataIntegrityError) as err:
        prepare_wmt14(out, params)
    message = str(err.value)
    assert "\n" not in message and "crawl.tgz" in message and "sha256 mismatch" in message
    _assert_untouched(out, out.parent)


def test_md5_pin_is_checked_too(corpus):
    params = corpus["params"]
    params["test"]["checksum"] = "md5:" + "f" * 32
    with pytest.raises(DataIntegrityError, match=r"md5 mismatch \(expected f{32}"):
        prepare_wmt14(corpus["dir"] / "x", params)


def test_truncated_archive_missing_member_and_misaligned_files(corpus):
    out = corpus["dir"] / "data" / "wmt14"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("old")
    raw = corpus["dir"] / "raw"
    cut = raw / "cut.tgz"
    cut.write_bytes(corpus["europarl"].read_bytes()[:150])
    params = corpus["params"]
    params["train"][0] = {**params["train"][0], "url": str(cut), "checksum": _sha(cut)}
    with pytest.raises(DataIntegrityError, match="not a readable archive"):
        prepare_wmt14(out, params)
    params["train"][0] = {**corpus["params"]["train"][1], "src": "nope.en"}
    with pytest.raises(DataIntegrityError, match="no member 'nope.en'"):
        prepare_wmt14(out, params)
    bad = _tgz(raw / "bad.tgz", {"a.en": "one\ntwo\n", "a.de": "eins\n"})
    params["train"][0] = {
        "name": "bad",
        "url": str(bad),
        "checksum": _sha(bad),
        "src": "a.en",
        "tgt": "a.de",
    }
    with pytest.raises(DataIntegrityError, match="has 2 lines but a.de has 1"):
        prepare_wmt14(out, params)
    _assert_untouched(out, out.parent)


def test_a_changed_file_is_caught_before_reading(corpus):
    out = prepare_wmt14(corpus["dir"] / "w", corpus["params"])
    arr = np.load(out / "valid.src.npy")
    arr[0] += 1
    np.save(out / "valid.src.npy", arr)
    with pytest.raises(DataIntegrityError, match="valid.src.npy: sha256 mismatch"):
        load_wmt14_split(out, "valid")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"vocab": 10}, "wmt14 param 'vocab' is unknown"),
        (
            {"valid": {"url": "x", "checksum": "123", "src": "a", "tgt": "b"}},
            "wmt14 param valid.checksum = '123': must be",
        ),
        ({"model_type": "char"}, "allowed: unigram, bpe"),
        ({"spm_sentences": 50}, "must be 0 (all) or > 100"),
    ],
)
def test_bad_params_are_one_line_errors(params, message):
    with pytest.raises(ValueError) as err:
        validate_params(params)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_packed_objective_equals_the_encoder_decoder_loss():
    # The language-model objective on a packed pair must be the translation loss:
    # target token j + 1 predicted from source and target tokens up to j.
    torch.manual_seed(0)
    core = ReformerEncoderDecoder(30, d_model=16, n_heads=2, d_ff=32, max_seq_len=8).double()
    pairs = [([5, 6, 7], [8, 9]), ([10], [11, 12, 13, 14])]
    tokens = torch.stack([pack_pair(s, t, 8) for s, t in pairs])
    mask = packed_loss_mask(tokens, 8)
    loss, _, count = LanguageModelObjective(PackedTranslationModel(core, 8))(tokens, mask)
    src, tgt = tokens[:, :8], tokens[:, 8:]
    tgt_out = torch.cat([tgt[:, 1:], torch.full((2, 1), PAD_ID)], dim=1)
    expected = core.loss(src, tgt, tgt_out)  # its default mask: tgt_out != pad
    assert int(count) == (2 + 1) + (4 + 1)  # target tokens and EOS of both pairs
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)  # objective: float32 CE
    core.loss_chunks = 2  # the chunked path (no full logits) gives the same loss
    chunked, _, _ = LanguageModelObjective(PackedTranslationModel(core, 8))(tokens, mask)
    assert chunked.item() == pytest.approx(expected.item(), abs=1e-12)


def test_evaluate_translation_decodes_and_scores(corpus):
    out = prepare_wmt14(corpus["dir"] / "w", corpus["params"])
    sp = load_tokenizer(out)
    torch.manual_seed(0)
    model = ReformerEncoderDecoder(
        sp.get_piece_size(), d_model=16, n_heads=2, d_ff=32, max_seq_len=24
    )
    result = evaluate_translation(model, out, "test", beam_size=2, batch_size=2)
    assert result["n_sentences"] == 2 and len(result["hypotheses"]) == 2
    assert 0.0 <= result["sacrebleu_cased"] <= 100.0
    assert "tok:intl" in result["signature_cased"]
    greedy = evaluate_translation(model, out, "valid", method="greedy", max_sentences=1)
    assert greedy["n_sentences"] == 1


def test_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split 'dev' is unknown"):
        WMT14Dataset(tmp_path, "dev", 8, 10)
    assert EOS_ID == 3 and BOS_ID == 2


def test_sample_corpus_bytes_are_fixed(tmp_path):
    # The smoke profile pins these sha256 values: the sample archives must never change.
    params = write_sample_corpus(tmp_path)
    assert params["train"][0]["checksum"].endswith(
        "dc6491eb31c0a14b9d7751b754ac1ffb7f3a9f277875df9138675833e0cde577"
    )
    assert params["valid"]["checksum"].endswith(
        "17b1ba86d8a845580252b905eff4dafec25c5b1f9d59a77d4f4be7c9cc28f7f5"
    )
    assert params["test"]["checksum"].endswith(
        "dbd61f50c64859dc0bf32ac796912913fa07e922384f2fa5a45e4059090dcbea"
    )


def test_translation_smoke_end_to_end(tmp_path):
    """Prepare the sample corpus, train the reversible encoder-decoder with the generic
    training loop on packed pairs, then decode the test set and score it."""
    from repro.config import TrainConfig
    from repro.training import fit
    from repro.training.distributed import DistContext

    out = prepare_wmt14(tmp_path / "wmt14", write_sample_corpus(tmp_path / "raw"))
    train = load_wmt14_split(out, "train")
    valid = load_wmt14_split(out, "valid")
    torch.manual_seed(0)
    core = ReformerEncoderDecoder(
        **encoder_decoder_kwargs(
            {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64},
            train.vocab_size,
            train.max_len,
        )
    )
    model = PackedTranslationModel(core, train.max_len)
    ctx = DistContext(0, 1, 0, 1, torch.device("cpu"), None)
    cfg = TrainConfig(steps=16, batch_size=8, lr=3e-3, warmup_steps=2, log_every=8, valid_batches=1)
    result = fit(model, train, valid, cfg, ctx, desc="wmt14-smoke")
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < first["train_loss"] and math.isfinite(last["valid_loss"])
    scores = evaluate_translation(core, out, "test", beam_size=4, alpha=0.6, batch_size=4)
    assert scores["n_sentences"] == 4
    assert all(0.0 <= scores[k] <= 100.0 for k in ("bleu", "sacrebleu_cased", "sacrebleu_uncased"))

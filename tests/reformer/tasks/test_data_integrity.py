"""The Reformer's data loaders check every split against its sha256 manifest before reading it:
duplication (``.npy`` arrays) and enwik8 (raw bytes). The manifest itself is the kit's
(``tests/repro/data/test_data_manifest.py``, on the kit's fixture paper)."""

import hashlib
import json

import numpy as np
import pytest

from reformer.tasks import load_split, prepare_task
from repro.data.manifest import DataIntegrityError, verify_manifest

DUP = dict(length=8, vocab_size=5, n_train=6, n_valid=3, n_test=3, seed=0)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _prepared_enwik8(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("enwik8", bytes(np.random.default_rng(0).integers(0, 256, 100, np.uint8)))
    z = tmp_path / "tiny.zip"
    z.write_bytes(buf.getvalue())
    params = {"url": str(z), "sha256": _sha(z), "raw_sha256": None}
    params |= {"n_train": 90, "n_valid": 5, "n_test": 5}
    return prepare_task("enwik8", tmp_path / "enwik8", params), ".bin", {"seq_len": 4}


def _prepared_duplication(tmp_path):
    return prepare_task("duplication", tmp_path / "dup", DUP), ".npy", {}


@pytest.mark.parametrize("make", [_prepared_duplication, _prepared_enwik8])
def test_tampered_split_is_refused_by_load_split(tmp_path, make):
    out, suffix, kwargs = make(tmp_path)
    path = out / f"train{suffix}"
    expected = json.loads((out / "manifest.json").read_text())["files"][path.name]["sha256"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different content
    path.write_bytes(bytes(data))
    with pytest.raises(DataIntegrityError) as info:
        load_split(out, "train", **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert expected in message and _sha(path) in message
    assert "run `dvc repro` to prepare it again" in message
    # The other splits are untouched and still load.
    assert len(load_split(out, "valid", **kwargs)) > 0


def test_verification_happens_before_reading(tmp_path):
    out, _, _ = _prepared_duplication(tmp_path)
    # Garbage of the right size that numpy could not even parse: the integrity error
    # must come first.
    size = (out / "test.npy").stat().st_size
    (out / "test.npy").write_bytes(b"x" * size)
    with pytest.raises(DataIntegrityError, match="sha256 mismatch"):
        load_split(out, "test")


def test_truncated_missing_and_unlisted_files(tmp_path):
    out, _, _ = _prepared_duplication(tmp_path)
    size = (out / "train.npy").stat().st_size
    with open(out / "train.npy", "r+b") as f:
        f.truncate(size - 8)
    with pytest.raises(DataIntegrityError, match=rf"expected {size} bytes, actual {size - 8}"):
        load_split(out, "train")
    (out / "valid.npy").unlink()
    with pytest.raises(DataIntegrityError, match="valid.npy: file missing"):
        load_split(out, "valid")
    with pytest.raises(DataIntegrityError, match="not listed"):
        verify_manifest(out, ["other.npy"])


def test_missing_or_broken_manifest(tmp_path):
    out, _, _ = _prepared_duplication(tmp_path)
    (out / "manifest.json").write_text("{ not json")
    with pytest.raises(DataIntegrityError, match="not valid JSON") as info:
        load_split(out, "train")
    assert "\n" not in str(info.value)
    (out / "manifest.json").unlink()
    with pytest.raises(DataIntegrityError, match="manifest missing.*dvc repro"):
        load_split(out, "train")


def test_unknown_split(tmp_path):
    out, _, _ = _prepared_duplication(tmp_path)
    with pytest.raises(ValueError, match="split 'dev' is unknown; allowed: train, valid, test"):
        load_split(out, "dev")

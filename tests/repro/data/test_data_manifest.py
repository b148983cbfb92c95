"""Manifests: sha256 recorded at preparation, checked before every read.

The prepared splits are the kit's fixture paper's (``tests/repro/minipaper``): its copy task
(``.npy`` arrays) and its text task (raw ``.bin`` bytes, read in windows of ``seq_len``)."""

import hashlib
import json

import numpy as np
import pytest
from minipaper.paper import PAPER

from repro.data.manifest import DataIntegrityError, verify_manifest, write_manifest

DUP = dict(length=8, vocab_size=5, n_train=6, n_valid=3, n_test=3, seed=0)


def prepare_task(name, out, params):
    return PAPER.task(name).prepare(out, params)


def load_split(out, split, **kwargs):
    """The split of the task whose data ``out`` holds (its folder's name)."""
    return PAPER.task(out.name).load_split(out, split, **kwargs)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_write_manifest_records_hashlib_sha_size_and_shape(tmp_path):
    np.save(tmp_path / "train.npy", np.arange(12, dtype=np.int64).reshape(3, 4))
    (tmp_path / "train.bin").write_bytes(bytes(range(10)))
    path = write_manifest(tmp_path, "demo", {"a": 1, "p": tmp_path}, ["train.npy", "train.bin"])
    assert path == tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest["task"] == "demo"
    assert manifest["params"] == {"a": 1, "p": str(tmp_path)}
    npy = manifest["files"]["train.npy"]
    assert npy["sha256"] == _sha(tmp_path / "train.npy")
    assert npy["bytes"] == (tmp_path / "train.npy").stat().st_size
    assert npy["shape"] == [3, 4]
    assert manifest["files"]["train.bin"] == {
        "sha256": hashlib.sha256(bytes(range(10))).hexdigest(),
        "bytes": 10,
        "shape": [10],
    }
    # Written through a temporary file that is renamed: nothing else is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "train.bin", "train.npy"]
    assert verify_manifest(tmp_path) == manifest


def _prepared_text(tmp_path):
    params = {"n_train": 90, "n_valid": 5, "n_test": 5, "seed": 0}
    return prepare_task("text", tmp_path / "text", params), ".bin", {"seq_len": 4}


def _prepared_duplication(tmp_path):
    return prepare_task("copy", tmp_path / "copy", DUP), ".npy", {}


@pytest.mark.parametrize("make", [_prepared_duplication, _prepared_text])
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


def test_data_integrity_error_is_a_value_error():
    assert issubclass(DataIntegrityError, ValueError)

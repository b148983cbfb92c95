"""Manifests: sha256 recorded at preparation, checked before every read.

The prepared splits are the kit's fixture paper's (``tests/repro/minipaper``): its copy task
(``.npy`` arrays) and its text task (raw ``.bin`` bytes, read in windows of ``seq_len``).
The checks of a loader are in ``manifest_checks.py``, which a paper's tests run on its own
tasks too."""

import hashlib
import json

import numpy as np
from manifest_checks import LoadSplitChecks, sha256_of
from minipaper.paper import PAPER

from repro.data.manifest import DataIntegrityError, verify_manifest, write_manifest

DUP = dict(length=8, vocab_size=5, n_train=6, n_valid=3, n_test=3, seed=0)


def prepare_task(name, out, params):
    return PAPER.task(name).prepare(out, params)


def load_split(out, split, **kwargs):
    """The split of the task whose data ``out`` holds (its folder's name)."""
    return PAPER.task(out.name).load_split(out, split, **kwargs)


def test_write_manifest_records_hashlib_sha_size_and_shape(tmp_path):
    np.save(tmp_path / "train.npy", np.arange(12, dtype=np.int64).reshape(3, 4))
    (tmp_path / "train.bin").write_bytes(bytes(range(10)))
    path = write_manifest(tmp_path, "demo", {"a": 1, "p": tmp_path}, ["train.npy", "train.bin"])
    assert path == tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    assert manifest["task"] == "demo"
    assert manifest["params"] == {"a": 1, "p": str(tmp_path)}
    npy = manifest["files"]["train.npy"]
    assert npy["sha256"] == sha256_of(tmp_path / "train.npy")
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


class TestLoadSplit(LoadSplitChecks):
    makers = (_prepared_duplication, _prepared_text)
    load_split = staticmethod(load_split)


def test_data_integrity_error_is_a_value_error():
    assert issubclass(DataIntegrityError, ValueError)

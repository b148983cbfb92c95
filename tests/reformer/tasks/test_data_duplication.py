"""The duplication task of the paper (section 2.1): structure, loss mask, seeding, splits."""

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from reformer.tasks import DataIntegrityError, duplication_loss_mask, load_split, prepare_task
from reformer.tasks.duplication import generate_duplication

PARAMS = dict(length=16, vocab_size=7, n_train=64, n_valid=16, n_test=16, seed=3)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def prepared(tmp_path):
    return prepare_task("duplication", tmp_path / "dup", PARAMS)


def test_files_and_manifest(prepared):
    names = sorted(p.name for p in prepared.iterdir())
    assert names == ["manifest.json", "test.npy", "train.npy", "valid.npy"]
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["task"] == "duplication"
    assert manifest["params"] == PARAMS
    for split in ("train", "valid", "test"):
        path = prepared / f"{split}.npy"
        entry = manifest["files"][f"{split}.npy"]
        array = np.load(path)
        assert array.dtype == np.int64
        assert array.shape == (PARAMS[f"n_{split}"], PARAMS["length"])
        assert entry["shape"] == list(array.shape)
        assert entry["sha256"] == _sha(path)
        assert entry["bytes"] == path.stat().st_size
    # No staging directory is left beside the output.
    assert [p.name for p in prepared.parent.iterdir()] == ["dup"]


def test_sequences_are_0_w_0_w(prepared):
    L, V = PARAMS["length"], PARAMS["vocab_size"]
    for split in ("train", "valid", "test"):
        x = np.load(prepared / f"{split}.npy")
        for row in x.tolist():
            w = row[1 : L // 2]
            assert len(w) == L // 2 - 1
            assert row == [0] + w + [0] + w
            assert all(1 <= s <= V - 1 for s in w)


def test_symbols_are_uniform_over_1_to_vocab_minus_1():
    V = 5
    x = generate_duplication(2000, 20, V, np.random.default_rng(0))
    w = x[:, 1:10].ravel()
    counts = np.bincount(w, minlength=V)
    assert counts[0] == 0
    expected = w.size / (V - 1)
    # Chi-square with 3 degrees of freedom; 16.3 is the 0.999 quantile.
    chi2 = ((counts[1:] - expected) ** 2 / expected).sum()
    assert chi2 < 16.3


def test_loss_mask_counts_exactly_the_second_copy_of_w():
    for L in (4, 8, 16, 1024):
        mask = duplication_loss_mask(L)
        assert mask.dtype == torch.bool and mask.shape == (L,)
        # Independent definition: position t predicts token t+1; the second copy of w
        # occupies positions L/2 + 1 .. L - 1.
        second_copy = set(range(L // 2 + 1, L))
        expected = [(t + 1) in second_copy for t in range(L)]
        assert mask.tolist() == expected
    assert int(duplication_loss_mask(1024).sum()) == 511  # |w| in the paper


def test_masked_targets_are_copies_of_the_first_half(prepared):
    ds = load_split(prepared, "train")
    L = PARAMS["length"]
    for i in range(len(ds)):
        item = ds[i]
        tokens, mask = item["tokens"].tolist(), item["loss_mask"].tolist()
        for t in range(L):
            if mask[t]:
                # A masked target is determined by the prefix: it repeats token t+1-L/2.
                assert tokens[t + 1] == tokens[t + 1 - L // 2] != 0


def test_dataset_items_and_default_collate(prepared):
    ds = load_split(prepared, "valid", seq_len=PARAMS["length"])
    assert len(ds) == PARAMS["n_valid"] and ds.vocab_size == PARAMS["vocab_size"]
    item = ds[0]
    assert set(item) == {"tokens", "loss_mask"}
    assert item["tokens"].dtype == torch.int64 and item["tokens"].shape == (PARAMS["length"],)
    assert item["loss_mask"].dtype == torch.bool
    assert item["tokens"].tolist() == np.load(prepared / "valid.npy")[0].tolist()
    assert ds[-1]["tokens"].tolist() == np.load(prepared / "valid.npy")[-1].tolist()
    with pytest.raises(IndexError):
        ds[len(ds)]
    batch = next(iter(DataLoader(ds, batch_size=5)))
    assert batch["tokens"].shape == (5, PARAMS["length"])
    assert batch["loss_mask"].shape == (5, PARAMS["length"])
    assert batch["loss_mask"].dtype == torch.bool
    # Pickling (what spawned DataLoader workers get) carries the path, not the data.
    ds.__getitem__(0)
    assert len(pickle.dumps(ds)) < 2000
    assert pickle.loads(pickle.dumps(ds))[3]["tokens"].tolist() == ds[3]["tokens"].tolist()


def test_seq_len_must_match(prepared):
    with pytest.raises(ValueError, match="seq_len = 8"):
        load_split(prepared, "train", seq_len=8)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = prepare_task("duplication", tmp_path / "a", PARAMS)
    b = prepare_task("duplication", tmp_path / "b", PARAMS)
    c = prepare_task("duplication", tmp_path / "c", {**PARAMS, "seed": 4})
    for name in ("train.npy", "valid.npy", "test.npy"):
        assert _sha(a / name) == _sha(b / name)
        assert _sha(a / name) != _sha(c / name)
    assert (a / "manifest.json").read_bytes() == (b / "manifest.json").read_bytes()


def test_splits_differ_and_are_independent_streams(tmp_path):
    a = prepare_task("duplication", tmp_path / "a", PARAMS)
    train, valid, test = (np.load(a / f"{s}.npy") for s in ("train", "valid", "test"))
    n = PARAMS["n_valid"]
    assert not np.array_equal(train[:n], valid)
    assert not np.array_equal(valid, test)
    # Each split has its own stream: a bigger training set leaves valid and test as they were.
    b = prepare_task("duplication", tmp_path / "b", {**PARAMS, "n_train": 128})
    assert np.array_equal(np.load(b / "valid.npy"), valid)
    assert np.array_equal(np.load(b / "test.npy"), test)
    assert np.array_equal(np.load(b / "train.npy")[: PARAMS["n_train"]], train)


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"length": 7}, "length"),
        ({"length": 2}, "length"),
        ({"length": 16.0}, "length"),
        ({"vocab_size": 1}, "vocab_size"),
        ({"n_train": 0}, "n_train"),
        ({"n_valid": -1}, "n_valid"),
        ({"n_test": True}, "n_test"),
        ({"seed": "x"}, "seed"),
        ({"seed": -1}, "seed"),
        ({"lenght": 16}, "lenght"),
    ],
)
def test_bad_params_one_line_error_naming_param(tmp_path, change, name):
    with pytest.raises(ValueError) as info:
        prepare_task("duplication", tmp_path / "dup", {**PARAMS, **change})
    message = str(info.value)
    assert f"'{name}'" in message and "\n" not in message
    assert not isinstance(info.value, DataIntegrityError)
    assert not (tmp_path / "dup").exists()


def test_missing_param(tmp_path):
    params = dict(PARAMS)
    del params["seed"]
    with pytest.raises(ValueError, match="'seed' is missing"):
        prepare_task("duplication", tmp_path / "dup", params)


def test_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="allowed: duplication, enwik8") as info:
        prepare_task("copying", tmp_path / "x", PARAMS)
    assert "\n" not in str(info.value)


def test_prepare_again_replaces_files(tmp_path):
    out = prepare_task("duplication", tmp_path / "dup", PARAMS)
    first = _sha(out / "train.npy")
    prepare_task("duplication", out, {**PARAMS, "seed": 9})
    assert _sha(out / "train.npy") != first
    assert len(load_split(out, "train")) == PARAMS["n_train"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup"]

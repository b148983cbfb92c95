"""enwik8 preparation end to end on a small zip served from a local path, file:// and http://."""

import hashlib
import json
import zipfile

import numpy as np
import pytest
import test_data_download
import torch
from test_data_download import ServeBytes
from torch.utils.data import DataLoader

from reformer.tasks import DataIntegrityError, Enwik8Dataset, load_split, prepare_task
from reformer.tasks import enwik8 as enwik8_module

# The loopback server fixture lives with the download tests; pytest finds it by this name.
http_server = test_data_download.http_server

RAW = bytes(np.random.default_rng(1).integers(0, 256, size=1000, dtype=np.uint8))
SIZES = {"n_train": 900, "n_valid": 50, "n_test": 50}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_zip(path, data=RAW, member="enwik8", compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr(member, data)
    return path


@pytest.fixture
def tiny_zip(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    return _make_zip(src / "enwik8.zip")


def _params(zip_path, url=None, **extra):
    return {
        "url": url or str(zip_path),
        "sha256": _sha(zip_path.read_bytes()),
        "raw_sha256": _sha(RAW),
        **SIZES,
        **extra,
    }


def _assert_nothing_written(tmp_path, out):
    assert not out.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "src"]
    assert leftovers == [], leftovers


def test_pinned_defaults_are_the_canonical_enwik8():
    p = enwik8_module.validate_params({})
    assert p["url"] == "http://mattmahoney.net/dc/enwik8.zip"
    assert p["sha256"] == "547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc"
    assert p["raw_sha256"] == "2b49720ec4d78c3c9fabaee6e4179a5e997302b3a70029f30f2d582218c024a8"
    assert (p["n_train"], p["n_valid"], p["n_test"]) == (90_000_000, 5_000_000, 5_000_000)
    assert enwik8_module.validate_params({"n_train": 9e7})["n_train"] == 90_000_000


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-url"])
def test_end_to_end_splits_and_manifest(tmp_path, tiny_zip, as_uri):
    url = tiny_zip.as_uri() if as_uri else None
    out = prepare_task("enwik8", tmp_path / "enwik8", _params(tiny_zip, url=url))
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "test.bin",
        "train.bin",
        "valid.bin",
    ]
    assert (out / "train.bin").read_bytes() == RAW[:900]
    assert (out / "valid.bin").read_bytes() == RAW[900:950]
    assert (out / "test.bin").read_bytes() == RAW[950:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == "enwik8"
    for name in ("train.bin", "valid.bin", "test.bin"):
        data = (out / name).read_bytes()
        assert manifest["files"][name]["sha256"] == _sha(data)
        assert manifest["files"][name]["bytes"] == len(data)
    assert manifest["params"]["n_train"] == 900 and "cache_dir" not in manifest["params"]
    # Only the output directory remains: the downloaded zip and staging files are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enwik8", "src"]


def test_wrong_pinned_sha256_writes_nothing(tmp_path, tiny_zip):
    wrong = "0" * 64
    out = tmp_path / "enwik8"
    with pytest.raises(DataIntegrityError) as info:
        prepare_task("enwik8", out, _params(tiny_zip, sha256=wrong))
    message = str(info.value)
    assert "\n" not in message
    assert str(tiny_zip) in message
    assert wrong in message and _sha(tiny_zip.read_bytes()) in message
    _assert_nothing_written(tmp_path, out)


def test_failed_preparation_leaves_an_existing_directory_intact(tmp_path, tiny_zip):
    out = prepare_task("enwik8", tmp_path / "enwik8", _params(tiny_zip))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DataIntegrityError):
        prepare_task("enwik8", out, _params(tiny_zip, sha256="f" * 64))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert len(load_split(out, "train", seq_len=10)) > 0


def test_truncated_zip_against_the_pinned_sha256(tmp_path, tiny_zip):
    params = _params(tiny_zip)  # pins the sha256 of the complete zip
    tiny_zip.write_bytes(tiny_zip.read_bytes()[:-40])
    out = tmp_path / "enwik8"
    with pytest.raises(DataIntegrityError, match="sha256 mismatch"):
        prepare_task("enwik8", out, params)
    _assert_nothing_written(tmp_path, out)


def test_truncated_zip_that_passes_its_checksum_is_still_refused(tmp_path, tiny_zip):
    tiny_zip.write_bytes(tiny_zip.read_bytes()[:-40])
    out = tmp_path / "enwik8"
    with pytest.raises(DataIntegrityError, match="not a readable zip") as info:
        prepare_task("enwik8", out, _params(tiny_zip))  # sha256 of the truncated file
    assert "\n" not in str(info.value)
    _assert_nothing_written(tmp_path, out)


def test_crc_failure_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    z = _make_zip(tmp_path / "src" / "enwik8.zip", compression=zipfile.ZIP_STORED)
    data = bytearray(z.read_bytes())
    offset = data.index(RAW[500:520])  # stored: the member's bytes appear verbatim
    data[offset] ^= 0xFF
    z.write_bytes(bytes(data))
    out = tmp_path / "enwik8"
    with pytest.raises(DataIntegrityError, match="not a readable zip"):
        prepare_task("enwik8", out, _params(z))
    _assert_nothing_written(tmp_path, out)


@pytest.mark.parametrize(
    ("zip_kwargs", "match"),
    [
        ({"data": RAW[:999]}, "has 999 bytes, expected 1000"),
        ({"member": "enwik9"}, "no member 'enwik8'"),
    ],
)
def test_wrong_member_is_refused(tmp_path, zip_kwargs, match):
    (tmp_path / "src").mkdir()
    z = _make_zip(tmp_path / "src" / "enwik8.zip", **zip_kwargs)
    out = tmp_path / "enwik8"
    with pytest.raises(DataIntegrityError, match=match):
        prepare_task("enwik8", out, _params(z))
    _assert_nothing_written(tmp_path, out)


def test_member_sha256_mismatch_is_refused(tmp_path, tiny_zip):
    out = tmp_path / "enwik8"
    with pytest.raises(DataIntegrityError, match=f"expected {'a' * 64}, actual {_sha(RAW)}"):
        prepare_task("enwik8", out, _params(tiny_zip, raw_sha256="a" * 64))
    _assert_nothing_written(tmp_path, out)


def test_http_download(tmp_path, tiny_zip, http_server):
    ServeBytes.body = tiny_zip.read_bytes()
    url = f"http://127.0.0.1:{http_server.server_port}/enwik8.zip"
    out = prepare_task("enwik8", tmp_path / "enwik8", _params(tiny_zip, url=url))
    assert (out / "valid.bin").read_bytes() == RAW[900:950]


def test_truncated_http_download_writes_nothing(tmp_path, tiny_zip, http_server):
    full = tiny_zip.read_bytes()
    ServeBytes.body = full[: len(full) // 2]
    ServeBytes.claimed = len(full)
    url = f"http://127.0.0.1:{http_server.server_port}/enwik8.zip"
    out = tmp_path / "enwik8"
    cache = tmp_path / "cache"
    with pytest.raises(DataIntegrityError, match="truncated download") as info:
        prepare_task("enwik8", out, _params(tiny_zip, url=url, cache_dir=str(cache)))
    message = str(info.value)
    assert url in message and f"expected {len(full)} bytes, received {len(full) // 2}" in message
    assert list(cache.iterdir()) == []  # no partial zip kept in the cache either
    assert not out.exists()


def test_cache_dir_avoids_a_second_download(tmp_path, tiny_zip):
    cache = tmp_path / "cache"
    params = _params(tiny_zip, cache_dir=str(cache))
    prepare_task("enwik8", tmp_path / "a", params)
    assert (cache / "enwik8.zip").read_bytes() == tiny_zip.read_bytes()
    tiny_zip.unlink()  # the source is gone: only the cache can serve it now
    out = prepare_task("enwik8", tmp_path / "b", params)
    assert (out / "train.bin").read_bytes() == RAW[:900]


def test_corrupt_cache_is_downloaded_again(tmp_path, tiny_zip):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "enwik8.zip").write_bytes(b"stale")
    with pytest.warns(UserWarning, match="downloading again"):
        out = prepare_task("enwik8", tmp_path / "enwik8", _params(tiny_zip, cache_dir=cache))
    assert (cache / "enwik8.zip").read_bytes() == tiny_zip.read_bytes()
    assert (out / "test.bin").read_bytes() == RAW[950:]


def test_missing_source_is_a_one_line_error(tmp_path):
    with pytest.raises(OSError, match="cannot download") as info:
        prepare_task("enwik8", tmp_path / "enwik8", {"url": str(tmp_path / "nope.zip")})
    assert "\n" not in str(info.value)
    assert not (tmp_path / "enwik8").exists()


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"sha256": "abc"}, "sha256"),
        ({"raw_sha256": 5}, "raw_sha256"),
        ({"n_train": 0}, "n_train"),
        ({"n_test": 1.5}, "n_test"),
        ({"url": ""}, "url"),
        ({"sizes": 3}, "sizes"),
    ],
)
def test_bad_params(tmp_path, change, name):
    with pytest.raises(ValueError, match=f"'{name}'") as info:
        prepare_task("enwik8", tmp_path / "enwik8", change)
    assert "\n" not in str(info.value)


def _windows_reference(data: bytes, seq_len: int) -> list[bytes]:
    # Written independently: walk the file, one shared byte between neighbouring windows.
    out, start = [], 0
    while start + seq_len <= len(data):
        out.append(data[start : start + seq_len])
        start += seq_len - 1
    return out


def test_dataset_windows_cover_every_target_once(tmp_path, tiny_zip):
    out = prepare_task("enwik8", tmp_path / "enwik8", _params(tiny_zip))
    seq_len = 10
    ds = load_split(out, "train", seq_len=seq_len)
    assert isinstance(ds, Enwik8Dataset) and ds.vocab_size == 256
    reference = _windows_reference(RAW[:900], seq_len)
    assert len(ds) == len(reference) == 99
    targets = []
    for i, window in enumerate(reference):
        item = ds[i]
        assert item["tokens"].dtype == torch.int64 and item["tokens"].shape == (seq_len,)
        assert item["loss_mask"].dtype == torch.bool
        assert item["loss_mask"].tolist() == [True] * (seq_len - 1) + [False]
        assert bytes(item["tokens"].tolist()) == window
        targets.append(window[1:])
    # Every byte after the first is a target exactly once, in order.
    assert b"".join(targets) == RAW[1 : 1 + len(targets) * (seq_len - 1)]
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["tokens"].shape == (4, seq_len) and batch["loss_mask"].shape == (4, seq_len)
    assert int(batch["tokens"].max()) < 256 and int(batch["tokens"].min()) >= 0


def test_dataset_bad_seq_len(tmp_path, tiny_zip):
    out = prepare_task("enwik8", tmp_path / "enwik8", _params(tiny_zip))
    with pytest.raises(ValueError, match="seq_len = None"):
        load_split(out, "valid")
    with pytest.raises(ValueError, match="seq_len = 1:"):
        load_split(out, "valid", seq_len=1)
    with pytest.raises(ValueError, match="seq_len = 51: must be at most the 50 bytes"):
        load_split(out, "valid", seq_len=51)
    assert len(load_split(out, "valid", seq_len=50)) == 1

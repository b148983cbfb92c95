"""What a paper's ``load_split`` must do with the sha256 manifest of a prepared folder,
shared by the kit's tests (on its fixture paper) and a paper's own (on its tasks).

Each check takes a freshly prepared folder ``out`` and the paper's ``load_split(out, split,
**kwargs)``, changes the folder, and asserts the one-line error the loader gives. The
checks after :func:`check_tampered_split_is_refused` need a task whose splits are ``.npy``
files. :class:`LoadSplitChecks` runs them all as tests of a test module's class."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from repro.data.manifest import DataIntegrityError, verify_manifest

LoadSplit = Callable[..., Any]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_tampered_split_is_refused(
    out: Path, suffix: str, load_split: LoadSplit, **kwargs: Any
) -> None:
    """A split changed after preparation (same size) is refused with one line naming the
    file, both sha256 and the fix; the other splits still load."""
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
    assert expected in message and sha256_of(path) in message
    assert "run `dvc repro` to prepare it again" in message
    # The other splits are untouched and still load.
    assert len(load_split(out, "valid", **kwargs)) > 0


def check_verification_happens_before_reading(out: Path, load_split: LoadSplit) -> None:
    # Garbage of the right size that numpy could not even parse: the integrity error
    # must come first.
    size = (out / "test.npy").stat().st_size
    (out / "test.npy").write_bytes(b"x" * size)
    with pytest.raises(DataIntegrityError, match="sha256 mismatch"):
        load_split(out, "test")


def check_truncated_missing_and_unlisted_files(out: Path, load_split: LoadSplit) -> None:
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


def check_missing_or_broken_manifest(out: Path, load_split: LoadSplit) -> None:
    (out / "manifest.json").write_text("{ not json")
    with pytest.raises(DataIntegrityError, match="not valid JSON") as info:
        load_split(out, "train")
    assert "\n" not in str(info.value)
    (out / "manifest.json").unlink()
    with pytest.raises(DataIntegrityError, match="manifest missing.*dvc repro"):
        load_split(out, "train")


def check_unknown_split(out: Path, load_split: LoadSplit) -> None:
    with pytest.raises(ValueError, match="split 'dev' is unknown; allowed: train, valid, test"):
        load_split(out, "dev")


#: the checks of a folder of ``.npy`` splits, after :func:`check_tampered_split_is_refused`
NPY_CHECKS = (
    check_verification_happens_before_reading,
    check_truncated_missing_and_unlisted_files,
    check_missing_or_broken_manifest,
    check_unknown_split,
)


class LoadSplitChecks:
    """The manifest tests of a paper's loader: subclass it as ``Test...`` in a test module,
    with :attr:`makers` and :meth:`load_split`."""

    #: functions ``tmp_path -> (prepared folder, split suffix, load_split kwargs)``, one per
    #: task to test; the first prepares ``.npy`` splits
    makers: tuple[Callable[[Path], tuple[Path, str, dict[str, Any]]], ...] = ()

    @staticmethod
    def load_split(out: Path, split: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    def test_tampered_split_is_refused_by_load_split(self, tmp_path: Path) -> None:
        assert self.makers
        for i, make in enumerate(self.makers):
            (tmp_path / str(i)).mkdir()
            out, suffix, kwargs = make(tmp_path / str(i))
            check_tampered_split_is_refused(out, suffix, self.load_split, **kwargs)

    @pytest.mark.parametrize("check", NPY_CHECKS)
    def test_load_split_checks_the_manifest(
        self, tmp_path: Path, check: Callable[[Path, LoadSplit], None]
    ) -> None:
        out, _, _ = self.makers[0](tmp_path)
        check(out, self.load_split)

"""The Reformer's data loaders check every split against its sha256 manifest before reading it:
duplication (``.npy`` arrays) and enwik8 (raw bytes). The checks are the kit's
(``tests/repro/data/manifest_checks.py``, run there on the kit's fixture paper), here run on
:func:`reformer.tasks.load_split`."""

import io
import zipfile

import numpy as np
from manifest_checks import LoadSplitChecks, sha256_of

from reformer.tasks import load_split, prepare_task

DUP = dict(length=8, vocab_size=5, n_train=6, n_valid=3, n_test=3, seed=0)


def _prepared_enwik8(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("enwik8", bytes(np.random.default_rng(0).integers(0, 256, 100, np.uint8)))
    z = tmp_path / "tiny.zip"
    z.write_bytes(buf.getvalue())
    params = {"url": str(z), "sha256": sha256_of(z), "raw_sha256": None}
    params |= {"n_train": 90, "n_valid": 5, "n_test": 5}
    return prepare_task("enwik8", tmp_path / "enwik8", params), ".bin", {"seq_len": 4}


def _prepared_duplication(tmp_path):
    return prepare_task("duplication", tmp_path / "dup", DUP), ".npy", {}


class TestLoadSplit(LoadSplitChecks):
    makers = (_prepared_duplication, _prepared_enwik8)
    load_split = staticmethod(load_split)

"""A truncated download through the real ``dvc repro``: the prepare stage fails with one line,
keeps nothing, the training stage that needs the data never runs, and the next ``dvc repro``
(the server now serving the whole file) prepares the data.

The download is a small enwik8-shaped zip served over HTTP on loopback, claiming its full length
but closing the connection half way. This is the Reformer's enwik8 task in this repository's
pipeline; the kit's download checks are ``tests/repro/data/test_data_download.py``.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import test_data_download
import yaml
from pipeline_helpers import fresh_repo, pipeline_env
from test_data_download import ServeBytes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# The loopback server fixture lives with the download tests; pytest finds it by this name.
http_server = test_data_download.http_server

RAW = bytes(np.random.default_rng(8).integers(0, 256, size=1200, dtype=np.uint8))
SIZES = {"n_train": 1000, "n_valid": 100, "n_test": 100}


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("enwik8", data)
    return buffer.getvalue()


def repro(root: Path, stage: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in pipeline_env().items() if k.lower() not in ("http_proxy", "all_proxy")}
    env.update(no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    return subprocess.run(
        [str(Path(sys.prefix) / "bin" / "dvc"), "repro", stage],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )


def test_truncated_download_fails_keeps_nothing_and_is_prepared_on_the_next_repro(
    tmp_path, http_server
):
    root = fresh_repo(tmp_path)
    archive = zipped(RAW)
    url = f"http://127.0.0.1:{http_server.server_port}/enwik8.zip"
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tasks"]["enwik8"] = {
        "url": url,
        "sha256": hashlib.sha256(archive).hexdigest(),
        "raw_sha256": hashlib.sha256(RAW).hexdigest(),
        **SIZES,
    }
    params["experiments"]["enw"] = {"task": "enwik8", "train": {"seq_len": 32}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    ServeBytes.body, ServeBytes.claimed = archive[: len(archive) // 2], len(archive)
    failed = repro(root, "train@enw")
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    errors = [line for line in output.splitlines() if line.startswith("error: prepare enwik8")]
    assert len(errors) == 1, output[-3000:]
    assert "truncated download" in errors[0] and url in errors[0]
    assert f"expected {len(archive)} bytes, received {len(archive) // 2}" in errors[0]
    assert "Running stage 'train@enw'" not in output  # never trained on
    leftovers = sorted(str(p.relative_to(root)) for p in (root / "data").rglob("*"))
    assert leftovers == [], leftovers  # no partial download, no half-written split
    assert not (root / "models" / "enw").exists()

    ServeBytes.body = archive
    prepared = repro(root, "prepare@enwik8")
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
    assert "Running stage 'prepare@enwik8'" in prepared.stdout
    data = root / "data" / "enwik8"
    assert (data / "train.bin").read_bytes() == RAW[: SIZES["n_train"]]
    assert (data / "test.bin").read_bytes() == RAW[-SIZES["n_test"] :]
    assert os.path.isfile(data / "manifest.json")

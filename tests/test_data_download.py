"""reformer.data.download over a real HTTP server on loopback.

The truncated-body and unreachable-source cases are covered through the callers
(tests/test_data_enwik8.py, tests/test_reliability_data.py); here only what they do not
reach: the progress bar, an md5 pin's recorded sha256, and a mismatch that must leave an
existing file alone. :class:`ServeBytes` and the ``http_server`` fixture are shared with
those modules.
"""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from reformer.data import DataIntegrityError
from reformer.data.download import download

BODY = bytes(range(256)) * 40


class ServeBytes(http.server.BaseHTTPRequestHandler):
    """Serves ``body`` with a ``Content-Length`` of ``claimed`` bytes, then closes.

    ``claimed`` None means ``len(body)``; a larger value makes a truncated download.
    """

    body = b""
    claimed: int | None = None

    def do_GET(self):  # noqa: N802 (the http.server API)
        self.send_response(200)
        claimed = len(self.body) if self.claimed is None else self.claimed
        self.send_header("Content-Length", str(claimed))
        self.end_headers()
        self.wfile.write(self.body)  # possibly fewer bytes than claimed, then close

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(monkeypatch):
    """A :class:`ServeBytes` server on 127.0.0.1 (reset to an empty body), bypassing proxies."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    ServeBytes.body, ServeBytes.claimed = b"", None
    server = http.server.HTTPServer(("127.0.0.1", 0), ServeBytes)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_port}/data.bin"


def test_download_with_progress_and_an_md5_pin(tmp_path, http_server, capsys):
    ServeBytes.body = BODY
    pin = "md5:" + hashlib.md5(BODY).hexdigest()
    path, sha = download(_url(http_server), tmp_path / "out" / "data.bin", pin, progress=True)
    assert path.read_bytes() == BODY
    assert sha == hashlib.sha256(BODY).hexdigest()  # recorded even though the pin is md5
    assert "download data.bin" in capsys.readouterr().err
    assert [p.name for p in path.parent.iterdir()] == ["data.bin"]  # no .part left


def test_checksum_mismatch_keeps_nothing_and_leaves_the_old_file(tmp_path, http_server):
    ServeBytes.body = BODY
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"old")
    url = _url(http_server)
    with pytest.raises(DataIntegrityError) as info:
        download(url, dest, "0" * 64, progress=False)
    message = str(info.value)
    assert "\n" not in message and url in message
    actual = hashlib.sha256(BODY).hexdigest()
    assert f"sha256 mismatch (expected {'0' * 64}, actual {actual}" in message
    assert f"{len(BODY)} bytes" in message
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]  # the partial file is gone

"""repro.data.download over a real HTTP server on loopback: a truncated body, a source that
cannot be opened, a checksum mismatch that must leave an existing file alone, an md5 pin's
recorded sha256, and the progress bar (its total for ``file://`` and for a response without
``Content-Length``).

A paper's download tasks reach the same cases through their own tests (and a pipeline run of
a truncated download); :class:`ServeBytes` and the ``http_server`` fixture are shared with
them.
"""

from __future__ import annotations

import email.message
import hashlib
import http.server
import threading
import types

import pytest

from repro.data.download import download, expected_size
from repro.data.manifest import DataIntegrityError

BODY = bytes(range(256)) * 40


class ServeBytes(http.server.BaseHTTPRequestHandler):
    """Serves ``body`` with a ``Content-Length`` of ``claimed`` bytes, then closes.

    ``claimed`` None means ``len(body)``; a larger value makes a truncated download.
    ``send_length`` False sends no ``Content-Length`` (the body ends when the connection
    closes, HTTP/1.0).
    """

    body = b""
    claimed: int | None = None
    send_length = True

    def do_GET(self):  # noqa: N802 (the http.server API)
        self.send_response(200)
        claimed = len(self.body) if self.claimed is None else self.claimed
        if self.send_length:
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
    ServeBytes.body, ServeBytes.claimed, ServeBytes.send_length = b"", None, True
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


def _frames(err: str) -> list[str]:
    """The frames a tqdm bar drew on stderr (each starts with a carriage return); the
    blank frame that clears a ``leave=False`` bar is left out."""
    return [frame for frame in err.split("\r") if frame.strip()]


@pytest.fixture
def bars(monkeypatch) -> list:
    """Every tqdm bar that :func:`download` makes (it imports ``tqdm.auto.tqdm`` per call)."""
    import tqdm.auto

    made = []

    class Recording(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    return made


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


def test_truncated_body_keeps_nothing_and_says_how_much_came(tmp_path, http_server):
    ServeBytes.body, ServeBytes.claimed = BODY[:1000], len(BODY)
    url, dest = _url(http_server), tmp_path / "data.bin"
    with pytest.raises(DataIntegrityError, match="truncated download") as info:
        download(url, dest, hashlib.sha256(BODY).hexdigest(), progress=False)
    message = str(info.value)
    assert "\n" not in message and url in message
    assert f"expected {len(BODY)} bytes, received 1000" in message
    assert list(tmp_path.iterdir()) == []  # no partial file


def test_a_source_that_cannot_be_opened_is_one_line(tmp_path):
    missing = tmp_path / "nope.bin"
    with pytest.raises(OSError, match="cannot download") as info:
        download(str(missing), tmp_path / "out" / "data.bin", "0" * 64, progress=False)
    assert "\n" not in str(info.value) and str(missing) in str(info.value)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("as_path", [False, True])
def test_local_source_progress_total_is_the_file_size(tmp_path, bars, capsys, as_path):
    src = tmp_path / "source dir" / "data.bin"  # a space: %20 in the file:// URL
    src.parent.mkdir()
    src.write_bytes(BODY)
    url = str(src) if as_path else src.as_uri()
    pin = hashlib.sha256(BODY).hexdigest()
    download(url, tmp_path / "out.bin", pin, progress=True)
    (bar,) = bars
    assert bar.total == src.stat().st_size == 10240
    assert bar.n == bar.total
    # The last frame drawn is the finished one: 100% of 10.0 KiB, not the first frame's 0%.
    last = _frames(capsys.readouterr().err)[-1]
    assert "100%" in last and "10.0k/10.0k" in last


def test_expected_size_of_a_file_url_without_content_length(tmp_path):
    src = tmp_path / "a b.bin"
    src.write_bytes(BODY[:1000])
    bare = types.SimpleNamespace(headers=email.message.Message())
    assert expected_size(bare, src.as_uri()) == 1000
    assert expected_size(bare, (tmp_path / "missing").as_uri()) is None
    assert expected_size(bare, "http://127.0.0.1/x") is None
    with_length = email.message.Message()
    with_length["Content-Length"] = "7"
    assert expected_size(types.SimpleNamespace(headers=with_length), src.as_uri()) == 7


def test_unknown_length_shows_a_byte_counter(tmp_path, http_server, bars, capsys):
    ServeBytes.body, ServeBytes.send_length = BODY, False
    download(_url(http_server), tmp_path / "data.bin", hashlib.sha256(BODY).hexdigest())
    (bar,) = bars
    assert bar.total is None and bar.n == len(BODY)
    last = _frames(capsys.readouterr().err)[-1]
    assert "10.0kB" in last and "%" not in last

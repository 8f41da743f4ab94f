"""Downloads against a local HTTP server on 127.0.0.1 (no internet needed, none used)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from resnet_gui.core import paths
from resnet_gui.core.download import (
    cached_weights_path,
    download_weights,
    expected_hash_prefix,
    terminal_progress,
)
from resnet_gui.core.errors import (
    DownloadCancelled,
    DownloadError,
    HashMismatchError,
    WeightsNotAvailableError,
)

PAYLOAD = os.urandom(1_500_000)  # about 6 chunks of 256 KiB
PREFIX = hashlib.sha256(PAYLOAD).hexdigest()[:8]
WRONG_PREFIX = ("0" if PREFIX[0] != "0" else "1") + PREFIX[1:]


def _tiny_state_dict_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buffer)
    return buffer.getvalue()


TINY = _tiny_state_dict_bytes()
TINY_PREFIX = hashlib.sha256(TINY).hexdigest()[:8]


@dataclass
class Server:
    """What the fixture serves, and what it was asked for."""

    httpd: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, name: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/files/{name}"

    def stop(self) -> None:
        if self.thread.is_alive():
            self.release.set()
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    routes = {
        f"blob-{PREFIX}.pth": PAYLOAD,
        f"blob-{WRONG_PREFIX}.pth": PAYLOAD,
        f"tiny-{TINY_PREFIX}.pth": TINY,
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            server.requests.append(self.path)
            name = self.path.rsplit("/", 1)[-1]
            kind = name.split("-", 1)[0]
            if name in routes:
                self._send(routes[name])
            elif kind == "nolen":  # no Content-Length: the body ends when the connection closes
                self.send_response(200)
                self.end_headers()
                self.wfile.write(PAYLOAD)
            elif kind in ("cut", "reset"):  # promise the whole payload, send half, hang up
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
                self.wfile.flush()
                if kind == "reset":  # a TCP reset rather than an orderly close
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                self.close_connection = True
            elif kind == "stall":  # accepts, then never answers (until the test ends)
                server.release.wait(10)
            else:
                self.send_error(404, "Not Found")

        def _send(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated torch cache; returns its checkpoints folder (which may not exist yet)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return paths.checkpoints_dir()


@pytest.fixture()
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    srv = Server(httpd, threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True))
    httpd.RequestHandlerClass = _handler(srv)
    srv.thread.start()
    yield srv
    srv.stop()


def _files_in(folder: Path) -> list[str]:
    """Every entry in the cache folder, hidden partial files included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_cached_path_is_torch_hubs(cache: Path) -> None:
    url = "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
    assert cached_weights_path(url) == Path(torch.hub.get_dir()) / "checkpoints" / "resnet50-11ad3fa6.pth"
    assert cached_weights_path(url).parent == cache
    assert expected_hash_prefix("resnet50-11ad3fa6.pth") == "11ad3fa6"
    assert expected_hash_prefix("weights.pth") is None


def test_download_reports_progress_and_caches(cache: Path, server: Server) -> None:
    calls: list[tuple[int, int | None]] = []
    url = server.url(f"blob-{PREFIX}.pth")

    path = download_weights(url, progress=lambda done, total: calls.append((done, total)))

    assert path == cache / f"blob-{PREFIX}.pth"
    assert path.read_bytes() == PAYLOAD
    assert _files_in(cache) == [path.name]  # no partial file left behind
    assert len(calls) >= 4
    dones = [done for done, _ in calls]
    assert dones == sorted(dones)
    assert all(total == len(PAYLOAD) for _, total in calls)
    assert calls[-1] == (len(PAYLOAD), len(PAYLOAD))

    # Second call: served from the cache, no request at all.
    assert len(server.requests) == 1
    assert download_weights(url, progress=lambda d, t: calls.append((d, t))) == path
    assert len(server.requests) == 1


def test_unknown_length_still_ends_with_done_equal_total(cache: Path, server: Server) -> None:
    calls: list[tuple[int, int | None]] = []
    path = download_weights(server.url(f"nolen-{PREFIX}.pth"), progress=lambda d, t: calls.append((d, t)))
    assert path.read_bytes() == PAYLOAD
    assert all(total is None for _, total in calls[:-1])
    assert calls[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_hash_mismatch_keeps_nothing(cache: Path, server: Server) -> None:
    url = server.url(f"blob-{WRONG_PREFIX}.pth")
    with pytest.raises(HashMismatchError) as info:
        download_weights(url)
    message = str(info.value)
    assert WRONG_PREFIX in message and PREFIX in message and url in message
    assert "not kept" in message
    assert _files_in(cache) == []


def test_hash_check_can_be_disabled(cache: Path, server: Server) -> None:
    path = download_weights(server.url(f"blob-{WRONG_PREFIX}.pth"), check_hash=False)
    assert path.read_bytes() == PAYLOAD


@pytest.mark.parametrize("kind", ["cut", "reset"])
def test_interrupted_download_leaves_no_file(cache: Path, server: Server, kind: str) -> None:
    with pytest.raises(DownloadError) as info:
        download_weights(server.url(f"{kind}-{PREFIX}.pth"))
    assert not isinstance(info.value, HashMismatchError | DownloadCancelled)
    assert f"{kind}-{PREFIX}.pth" in str(info.value)
    assert _files_in(cache) == []


def test_http_error_leaves_no_file(cache: Path, server: Server) -> None:
    with pytest.raises(DownloadError) as info:
        download_weights(server.url("missing-0123abcd.pth"))
    assert "404" in str(info.value)
    assert _files_in(cache) == []


def test_stalled_server_times_out(cache: Path, server: Server) -> None:
    with pytest.raises(DownloadError) as info:
        download_weights(server.url(f"stall-{PREFIX}.pth"), timeout=0.3)
    assert "timed out" in str(info.value)
    assert _files_in(cache) == []


def test_cancel_midway_leaves_no_file(cache: Path, server: Server) -> None:
    calls: list[tuple[int, int | None]] = []

    def cancel() -> bool:
        return len(calls) >= 3  # after the initial report and two chunks

    with pytest.raises(DownloadCancelled):
        download_weights(
            server.url(f"blob-{PREFIX}.pth"), progress=lambda d, t: calls.append((d, t)), cancel=cancel
        )
    assert 0 < calls[-1][0] < len(PAYLOAD)
    assert _files_in(cache) == []


def test_cancel_before_start_makes_no_request(cache: Path, server: Server) -> None:
    with pytest.raises(DownloadCancelled):
        download_weights(server.url(f"blob-{PREFIX}.pth"), cancel=lambda: True)
    assert server.requests == []
    assert _files_in(cache) == []


def test_unreachable_server_explains_what_to_do(cache: Path) -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    name = "resnet50-11ad3fa6.pth"
    with pytest.raises(WeightsNotAvailableError) as info:
        download_weights(f"http://127.0.0.1:{port}/models/{name}", timeout=2)
    message = str(info.value)
    assert name in message
    assert str(cache) in message
    assert "--weights" in message and "import-keras" in message
    assert "Traceback" not in message and "Errno" not in message
    assert _files_in(cache) == []


def test_torch_hub_finds_our_download(cache: Path, server: Server) -> None:
    url = server.url(f"tiny-{TINY_PREFIX}.pth")
    download_weights(url)
    server.stop()  # from here on any network access would fail

    state_dict = torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True, weights_only=True)

    assert set(state_dict) == {"weight", "bias"}
    assert state_dict["weight"].shape == (2, 3)


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_progress_log_output_is_sparse() -> None:
    stream = io.StringIO()
    bar = terminal_progress(stream, label="x.pth")
    total = 100_000_000
    for done in range(0, total + 1, 1_000_000):
        bar(done, total)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert 2 <= len(lines) <= 11
    assert "100.0%" in lines[-1] and "100.0/100.0 MB" in lines[-1] and "MB/s" in lines[-1]


def test_terminal_progress_redraws_on_a_tty() -> None:
    stream = _FakeTTY()
    bar = terminal_progress(stream)
    bar(0, 2_000_000)
    bar(2_000_000, 2_000_000)
    text = stream.getvalue()
    assert text.count("\r") == 2
    assert text.endswith("\n") and "100.0%" in text


def test_unwritable_cache_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("TORCH_HOME", str(blocker))  # the cache folder cannot be created under a file
    with pytest.raises(DownloadError, match="Cannot save") as info:
        download_weights(server.url(f"blob-{PREFIX}.pth"))
    assert str(blocker) in str(info.value)

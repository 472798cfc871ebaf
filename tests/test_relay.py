"""The kernel's half of the stream relay, against a real HTTP server on loopback.

The relay fetches only the player's own origin, on a worker thread, and answers every request
(body as a binary buffer, or a status and a reason). The page's half is exercised in Chromium by
tests/browser/test_remote_browser.py.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ivs_widgets.widgets.relay import NO_ANSWER, StreamRelay

PLAYLIST = b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg00001.ts\n"
SEGMENT = bytes(range(256)) * 800  # 200 KB, a typical 2 s segment
TIMEOUT = 10


class Origin(ThreadingHTTPServer):
    """Serves a playlist, a segment, a redirect and a slow answer; records every path asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.release = threading.Event()  # the slow answer waits for it
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Origin

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.path == "/slow.m3u8":
            self.server.release.wait(TIMEOUT)
        body = {"/live.m3u8": PLAYLIST, "/slow.m3u8": PLAYLIST, "/seg00001.ts": SEGMENT}.get(self.path)
        if self.path == "/moved.m3u8":
            self.send_response(302)
            self.send_header("Location", "/live.m3u8")
        elif body is None:
            self.send_response(404)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


class Page:
    """What the page would receive: every answer the relay sends, in a queue."""

    def __init__(self, playback_url: str) -> None:
        self.playback_url = playback_url
        self.answers: queue.Queue[tuple[dict[str, Any], list[bytes]]] = queue.Queue()
        self.relay = StreamRelay(lambda: self.playback_url, lambda content, buffers: self.answers.put(
            (content, buffers)))

    def fetch(self, url: str, request_id: int = 1) -> tuple[dict[str, Any], bytes]:
        self.relay.handle({"type": "fetch", "id": request_id, "url": url})
        content, [body] = self.answers.get(timeout=TIMEOUT)
        return content, body


def test_the_players_own_stream_comes_back_whole(origin: Origin) -> None:
    page = Page(f"{origin.url}/live.m3u8")
    assert page.fetch(f"{origin.url}/live.m3u8", 7) == (
        {"type": "fetched", "id": 7, "status": 200, "reason": ""}, PLAYLIST)
    content, body = page.fetch(f"{origin.url}/seg00001.ts", 8)
    assert (content["id"], content["status"], body) == (8, 200, SEGMENT)


def test_an_error_status_is_passed_on(origin: Origin) -> None:
    content, body = Page(f"{origin.url}/live.m3u8").fetch(f"{origin.url}/seg99999.ts")
    assert (content["status"], body) == (404, b"")


@pytest.mark.parametrize("asked", [
    "http://127.0.0.1:{other}/live.m3u8",  # another port of the same machine
    "http://localhost:{port}/live.m3u8",  # the same server under another name
    "https://127.0.0.1:{port}/live.m3u8",
    "file:///etc/passwd",
    "http://127.0.0.1:99999/live.m3u8",
    "not a url",
])
def test_only_the_players_origin_is_fetched(origin: Origin, asked: str) -> None:
    port = origin.server_address[1]
    content, body = Page(f"{origin.url}/live.m3u8").fetch(asked.format(port=port, other=port + 1))
    assert (content["status"], body) == (NO_ANSWER, b"")
    assert "relays only its own stream" in content["reason"]
    assert origin.paths == []


def test_the_allowed_origin_follows_the_players_url(origin: Origin) -> None:
    page = Page("https://playback.live-video.net/api/video/v1/x.m3u8")
    assert page.fetch(f"{origin.url}/live.m3u8")[0]["status"] == NO_ANSWER
    page.playback_url = f"{origin.url}/live.m3u8"
    assert page.fetch(f"{origin.url}/live.m3u8")[0]["status"] == 200


def test_a_redirect_is_answered_not_followed(origin: Origin) -> None:
    content, body = Page(f"{origin.url}/live.m3u8").fetch(f"{origin.url}/moved.m3u8")
    assert (content["status"], body) == (302, b"")
    assert origin.paths == ["/moved.m3u8"]


def test_a_server_that_is_gone_is_an_answer_too(origin: Origin) -> None:
    url = f"{origin.url}/live.m3u8"
    origin.shutdown()
    origin.server_close()
    content, body = Page(url).fetch(url)
    assert (content["status"], body) == (NO_ANSWER, b"")
    assert content["reason"].startswith("the kernel could not fetch it")


def test_handling_a_request_never_waits_for_the_network(origin: Origin) -> None:
    page = Page(f"{origin.url}/live.m3u8")
    page.relay.handle({"type": "fetch", "id": 1, "url": f"{origin.url}/slow.m3u8"})
    assert page.answers.empty()  # handle() returned while the server still holds the answer
    origin.release.set()
    content, [body] = page.answers.get(timeout=TIMEOUT)
    assert (content["status"], body) == (200, PLAYLIST)

"""The kernel's half of the stream relay: fetch for a page that cannot reach the kernel's machine.

On Binder, JupyterHub, Colab or VS Code remote the browser reaches the Jupyter server and nothing
else of the machine the kernel runs on, so ``http://127.0.0.1:<port>/live.m3u8`` in the page names
the viewer's own computer. The page then asks over the widget's comm (``{"type": "fetch", "id",
"url"}``), which travels wherever the notebook does, base URLs and Voila included, and this module
answers with the body as a binary buffer (``{"type": "fetched", "id", "status"}``).

Requests are read by the kernel only when it is idle; the fetch itself runs on a worker thread and
its answer is sent from there, so the kernel's loop never waits on the network.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("ivs_widgets.widgets.relay")

#: Seconds for one fetch from the kernel's machine; a playlist or segment takes milliseconds.
FETCH_TIMEOUT = 5.0
#: Larger answers are refused: a 2 s segment is 100–300 KB, and the kernel holds each one whole.
MAX_BYTES = 16 * 1024 * 1024
#: Status of an answer that never came from the origin (refused URL, connection failed, too large).
NO_ANSWER = 0
DEFAULT_PORTS = {"http": 80, "https": 443}

Send = Callable[[dict[str, Any], list[bytes]], None]


class StreamRelay:
    """Fetches URLs of one origin, the one ``allowed()`` names, and sends each answer with ``send``.

    The origin is read at every request (the player's URL can change): the page can only have the
    kernel fetch what the kernel handed it, never an arbitrary URL.
    """

    def __init__(self, allowed: Callable[[], str], send: Send) -> None:
        self._allowed = allowed
        self._send = send

    def handle(self, request: dict[str, Any]) -> None:
        """Answer a ``fetch`` request from the page; returns at once, the fetch runs on a worker thread."""
        request_id, url = request.get("id"), request.get("url")
        if not isinstance(url, str) or _origin(url) is None or _origin(url) != _origin(self._allowed()):
            self._answer(request_id, NO_ANSWER, b"", f"the kernel relays only its own stream, not {url!r}")
            return
        _workers().submit(self._fetch, request_id, url)

    def _fetch(self, request_id: Any, url: str) -> None:
        try:
            with _opener().open(url, timeout=FETCH_TIMEOUT) as response:
                body = response.read(MAX_BYTES + 1)
                status = response.status
        except urllib.error.HTTPError as error:  # 404 and friends, and redirects (not followed)
            self._answer(request_id, error.code, b"", error.reason)
            return
        except OSError as error:  # refused, reset, timed out
            self._answer(request_id, NO_ANSWER, b"", f"the kernel could not fetch it: {error}")
            return
        if len(body) > MAX_BYTES:
            self._answer(request_id, NO_ANSWER, b"", f"larger than the relay's {MAX_BYTES // 2**20} MiB")
            return
        self._answer(request_id, status, body)

    def _answer(self, request_id: Any, status: int, body: bytes, reason: str = "") -> None:
        if reason:
            log.info("relay: %s", reason)
        self._send({"type": "fetched", "id": request_id, "status": status, "reason": reason}, [body])


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port out of range or not a number
        return None
    if port is None or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could point anywhere; the relay answers it as it is instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    # No proxies: the relay exists to reach the kernel's own machine, which a proxy would not.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


@functools.cache
def _workers() -> concurrent.futures.ThreadPoolExecutor:
    """One small pool for every player in the kernel: a player waits on one playlist and one segment."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="ivs-relay")

"""The kernel's half of the seed demo's WebSocket relay: chat for a page that cannot reach the sandbox.

The seed demo opens ``new WebSocket(endpoint, token)`` in the page. Where the page cannot reach the
kernel's machine (Binder, JupyterHub, Colab, VS Code remote), it uses a stand-in with the same
events and methods (``websocket_relay.js``) that asks over the widget's comm instead: ``ws-open``
(id, url, protocols), ``ws-send`` (id, data), ``ws-close`` (id, code, reason). The kernel opens the
WebSocket on a loop thread of this relay's own and answers as a browser's socket would fire its
events: ``ws-open`` (protocol), ``ws-message`` (data), ``ws-error`` (message), ``ws-close`` (code,
reason, wasClean), the last one exactly once per socket.

Only the demo's own endpoint is relayed, text frames only, each at most MAX_FRAME_BYTES: the page
cannot use the kernel as a proxy. Frames from the page are read by the kernel only when it is idle;
frames to the page are sent from the loop thread at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from ivs_widgets.loop_thread import LoopThread

log = logging.getLogger("ivs_widgets.widgets.websocket_relay")

#: Seconds for the opening handshake; the sandbox answers in milliseconds.
OPEN_TIMEOUT = 10.0
#: Seconds the closing handshake may take before the connection is dropped.
CLOSE_TIMEOUT = 2.0
#: Larger frames are refused both ways (close 1009): a chat frame is a few KB, and the kernel holds
#: each one whole, then the comm carries it as JSON.
MAX_FRAME_BYTES = 1024 * 1024
#: Close codes, as the page's close event reports them.
NORMAL, GOING_AWAY, UNSUPPORTED_DATA, ABNORMAL, TOO_BIG = 1000, 1001, 1003, 1006, 1009

Send = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class _Socket:
    """One relayed connection; touched only on the relay's loop."""

    outbox: asyncio.Queue[str | tuple[int, str]] = field(default_factory=asyncio.Queue)
    ws: ClientConnection | None = None  # set once the handshake succeeded
    task: asyncio.Task[None] | None = None


class WebSocketRelay:
    """Relays WebSockets to the one URL ``allowed()`` names (read at each open), answering with ``send``."""

    def __init__(self, allowed: Callable[[], str], send: Send, *, ssl: ssl_module.SSLContext | None = None) -> None:
        self._allowed = allowed
        self._send = send
        self._ssl = ssl
        self._thread: LoopThread | None = None  # started by the first open: direct pages never need it
        self._sockets: dict[str, _Socket] = {}
        self._closed = False

    @property
    def open_count(self) -> int:
        """How many relayed connections are open or opening."""
        return len(self._sockets)

    def handle(self, request: dict[str, Any]) -> None:
        """Act on a ``ws-*`` message from the page; returns at once, the socket lives on the relay's loop."""
        kind, socket_id = request.get("type"), request.get("id")
        if not isinstance(socket_id, str) or not socket_id:
            log.info("websocket relay: a %r request without an id, ignored", kind)
        elif kind == "ws-open":
            self._open(socket_id, request.get("url"), request.get("protocols"))
        elif kind in ("ws-send", "ws-close") and self._thread is not None:
            self._thread.call_soon(self._deliver, socket_id, request)
        elif kind in ("ws-send", "ws-close"):
            self._emit("ws-error", socket_id, message="this WebSocket is closed")
        else:
            self._emit("ws-error", socket_id, message=f"the relay does not know {kind!r}")

    def close(self, timeout: float = OPEN_TIMEOUT) -> None:
        """Close every relayed connection (1001, each reported to the page) and stop the relay's thread;
        later opens are refused. Safe to call twice."""
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is None or not thread.running:  # never opened, or a daemon thread at the kernel's exit
            return
        try:
            thread.run(self._close_all(), timeout)
        except TimeoutError:
            log.warning("websocket relay: connections still closing after %s s; dropped", timeout)
        finally:
            thread.stop()

    # -- on the caller's thread ------------------------------------------------------------------
    def _open(self, socket_id: str, url: Any, protocols: Any) -> None:
        if self._closed:
            self._fail(socket_id, "the demo has ended: the kernel relays no more connections")
        elif not isinstance(url, str) or url != self._allowed():
            self._fail(socket_id, f"the kernel relays only the demo's own endpoint, not {url!r}")
        elif not isinstance(protocols, list) or not all(isinstance(p, str) and p for p in protocols):
            self._fail(socket_id, "subprotocols must be a list of non-empty strings")
        else:
            if self._thread is None:
                self._thread = LoopThread("ivs-seed-relay").start()
            self._thread.call_soon(self._start, socket_id, url, protocols)

    def _fail(self, socket_id: str, message: str) -> None:
        """What a browser's socket does when it cannot connect: an error, then an abnormal close."""
        log.info("websocket relay: %s", message)
        self._emit("ws-error", socket_id, message=message)
        self._emit("ws-close", socket_id, code=ABNORMAL, reason="", wasClean=False)

    def _emit(self, kind: str, socket_id: str, **fields: Any) -> None:
        self._send({"type": kind, "id": socket_id, **fields})

    # -- on the relay's loop ---------------------------------------------------------------------
    def _start(self, socket_id: str, url: str, protocols: list[str]) -> None:
        if socket_id in self._sockets:
            self._emit("ws-error", socket_id, message="this socket id is already in use")
            return
        socket = self._sockets[socket_id] = _Socket()
        socket.task = asyncio.get_running_loop().create_task(self._serve(socket_id, socket, url, protocols))

    def _deliver(self, socket_id: str, request: dict[str, Any]) -> None:
        socket = self._sockets.get(socket_id)
        if socket is None:
            self._emit("ws-error", socket_id, message="this WebSocket is closed")
        elif request["type"] == "ws-close" and socket.ws is None:
            assert socket.task is not None
            socket.task.cancel()  # closed before it opened: a browser reports 1006
        elif request["type"] == "ws-close":
            socket.outbox.put_nowait(_close_frame(request.get("code"), request.get("reason")))
        elif not isinstance(data := request.get("data"), str):
            self._emit("ws-error", socket_id, message="the relay carries text frames only")
        elif len(data.encode()) > MAX_FRAME_BYTES:
            message = f"a frame of {len(data.encode())} bytes is larger than the relay's {MAX_FRAME_BYTES // 2**20} MiB"
            self._emit("ws-error", socket_id, message=message)
            socket.outbox.put_nowait((TOO_BIG, "message too big"))
        else:
            socket.outbox.put_nowait(data)

    async def _serve(self, socket_id: str, socket: _Socket, url: str, protocols: list[str]) -> None:
        try:
            async with connect(url, subprotocols=[Subprotocol(p) for p in protocols], ssl=self._ssl, proxy=None,
                               open_timeout=OPEN_TIMEOUT, close_timeout=CLOSE_TIMEOUT, max_size=MAX_FRAME_BYTES,
                               compression=None) as ws:
                socket.ws = ws
                self._emit("ws-open", socket_id, protocol=ws.subprotocol or "")
                writer = asyncio.create_task(_write(ws, socket.outbox))
                try:
                    await self._read(socket_id, ws)
                finally:
                    writer.cancel()
        except InvalidStatus as error:
            said = error.response.body.decode(errors="replace").strip() if error.response.body else ""
            self._emit("ws-error", socket_id, message=f"the server refused the connection: HTTP "
                                                      f"{error.response.status_code} {said}".rstrip())
        except (OSError, TimeoutError, WebSocketException) as error:
            self._emit("ws-error", socket_id, message=f"the kernel could not connect to {url}: {error}")
        finally:
            del self._sockets[socket_id]
            code = socket.ws.close_code if socket.ws is not None else None
            reason = socket.ws.close_reason if socket.ws is not None else ""
            self._emit("ws-close", socket_id, code=code or ABNORMAL, reason=reason or "",
                       wasClean=code not in (None, ABNORMAL))

    async def _read(self, socket_id: str, ws: ClientConnection) -> None:
        while True:
            try:
                frame = await ws.recv()
            except ConnectionClosed:
                return
            if isinstance(frame, bytes):
                self._emit("ws-error", socket_id, message="the server sent a binary frame; the relay carries "
                                                          "text frames only")
                await ws.close(UNSUPPORTED_DATA, "text frames only")
                return
            self._emit("ws-message", socket_id, data=frame)

    async def _close_all(self) -> None:
        sockets = list(self._sockets.values())
        for socket in sockets:
            if socket.ws is None:
                assert socket.task is not None
                socket.task.cancel()
            else:
                socket.outbox.put_nowait((GOING_AWAY, "the notebook closed the demo"))
        await asyncio.gather(*(socket.task for socket in sockets if socket.task), return_exceptions=True)


async def _write(ws: ClientConnection, outbox: asyncio.Queue[str | tuple[int, str]]) -> None:
    """Send the page's frames in order; a (code, reason) closes the connection."""
    while True:
        item = await outbox.get()
        try:
            if isinstance(item, str):
                await ws.send(item)
            else:
                await ws.close(*item)
                return
        except ConnectionClosed:
            return  # the reader reports how it closed


def _close_frame(code: Any, reason: Any) -> tuple[int, str]:
    """The page's close code and reason, or a normal close where a browser would have refused them."""
    if not (code == NORMAL or (isinstance(code, int) and 3000 <= code <= 4999)):
        code = NORMAL
    reason = reason if isinstance(reason, str) and len(reason.encode()) <= 123 else ""
    return code, reason

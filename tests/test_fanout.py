"""Fan-out on the wire: frames serialised once, queued per connection, written in turns.

Viewers here are bare sockets read through ``websockets``' own sans-I/O client, so every byte the
sandbox writes is checked by the library's parser and the raw byte streams can be compared.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri
from wsutil import TIMEOUT, barrier, join, mint, next_of, say, send

from ivs_widgets.sandbox import Sandbox
from ivs_widgets.sandbox.messaging.endpoint import STOP_GRACE_SECONDS
from ivs_widgets.sandbox.messaging.fanout import SLOW_CONSUMER_BYTES, SLOW_CONSUMER_REASON, WRITES_PER_TURN, FanOut

T = TypeVar("T")


class RawViewer:
    """A room member on a bare socket that reads only when told to, keeping every byte after the handshake."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.raw = b""

    @classmethod
    async def join(cls, sandbox: Sandbox, room_arn: str, user: str, receive_buffer: int | None = None) -> RawViewer:
        """Connect with a fresh token; ``receive_buffer`` set before connecting keeps the TCP window that small."""
        uri = parse_uri(sandbox.messaging_endpoint)
        protocol = ClientProtocol(uri, subprotocols=[Subprotocol(mint(sandbox, room_arn, user))])
        sock = socket.socket()
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port)), TIMEOUT)
        viewer = cls(sock, protocol)
        protocol.send_request(protocol.connect())
        await viewer._answer()
        while protocol.state is State.CONNECTING:
            await viewer._receive(keep=False)
        assert protocol.handshake_exc is None, protocol.handshake_exc
        assert len(protocol.events_received()) == 1  # the 101 response, no frame yet
        return viewer

    @property
    def local_address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    async def frames(self, count: int) -> list[Frame]:
        """Read until ``count`` frames have arrived."""
        frames: list[Frame] = []
        while len(frames) < count:
            assert not await self._receive(), "the server closed the connection"
            frames += self.protocol.events_received()
        return frames

    async def until_closed(self) -> list[Frame]:
        """Read (answering the server's close, as any client does) until the server ends the TCP connection."""
        frames: list[Frame] = []
        while not await self._receive():
            frames += self.protocol.events_received()
            await self._answer()
        return frames + self.protocol.events_received()

    async def _receive(self, keep: bool = True) -> bool:
        """Feed the next chunk to the parser; True at end of stream."""
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 1 << 16), TIMEOUT)
        if not data:
            self.protocol.receive_eof()
            return True
        if keep:
            self.raw += data
        self.protocol.receive_data(data)
        assert self.protocol.parser_exc is None, self.protocol.parser_exc
        return False

    async def send(self, *requests: dict[str, Any]) -> None:
        """Send requests as text frames in a single write, so the server reads them all at once."""
        for request in requests:
            self.protocol.send_text(json.dumps(request).encode())
        await self._answer()

    async def _answer(self) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, b"".join(self.protocol.data_to_send()))

    def close(self) -> None:
        self.sock.close()


async def on_sandbox_loop(sandbox: Sandbox, call: Callable[[], T]) -> T:
    """Run ``call`` on the sandbox's event loop without blocking this test's loop (its clients keep reading)."""
    async def run() -> T:
        return call()
    return await asyncio.to_thread(sandbox.run, run())


def server_side_state(sandbox: Sandbox, room_arn: str, viewer: RawViewer) -> State | None:
    """The protocol state of the sandbox's end of ``viewer``'s connection (None once it left the room)."""
    for connection in sandbox.messaging.connections(room_arn):
        if connection.remote_address == viewer.local_address:
            return connection.protocol.state
    return None


async def test_every_viewer_gets_byte_identical_well_formed_text_frames(sandbox: Sandbox,
                                                                        room: dict[str, Any]) -> None:
    contents = ["plain", "héllo wörld — ½ €", "emoji 👋🏽🎉 and 世界 and 𝄞", "x" * 500]
    viewers = [await RawViewer.join(sandbox, room["arn"], f"raw-{n}") for n in range(3)]
    try:
        async with await join(sandbox, room["arn"], "alice") as alice, await join(sandbox, room["arn"], "bob") as bob:
            for n, content in enumerate(contents):  # back to back: some share one write, each stays a message
                await say(alice, content, f"req-{n}")
            received = {ws: [await next_of(ws, "MESSAGE") for _ in contents] for ws in (alice, bob)}
            frames = [await viewer.frames(len(contents)) for viewer in viewers]
    finally:
        for viewer in viewers:
            viewer.close()
    assert [m["Content"] for m in received[alice]] == contents
    assert [m["RequestId"] for m in received[alice]] == [f"req-{n}" for n in range(len(contents))]
    assert received[bob] == received[alice]
    assert viewers[0].raw == viewers[1].raw == viewers[2].raw
    assert frames[0] == frames[1] == frames[2]
    assert b"".join(frame.serialize(mask=False) for frame in frames[0]) == viewers[0].raw  # nothing but these
    for frame, message in zip(frames[0], received[alice], strict=True):
        assert (frame.opcode, frame.fin, frame.rsv1, frame.rsv2, frame.rsv3) == (Opcode.TEXT, True, False, False, False)
        assert json.loads(frame.data.decode("utf-8")) == message


async def test_a_room_larger_than_one_writer_turn_gets_every_message_once_and_in_order(
        sandbox: Sandbox, ivschat: Any, room: dict[str, Any]) -> None:
    viewers = [await RawViewer.join(sandbox, room["arn"], f"raw-{n}") for n in range(WRITES_PER_TURN + 50)]
    contents = [f"message {n}" for n in range(5)]
    try:
        async with await join(sandbox, room["arn"], "alice") as alice:
            for n, content in enumerate(contents):  # later ones may arrive while the writer is part-way through
                await say(alice, content, f"req-{n}")
            assert [(await next_of(alice, "MESSAGE"))["Content"] for _ in contents] == contents
            received = [[json.loads(frame.data)["Content"] for frame in await viewer.frames(len(contents))]
                        for viewer in viewers]
            await barrier(ivschat, room["arn"], alice)
            after = [[json.loads(frame.data)["Type"] for frame in await viewer.frames(1)] for viewer in viewers]
    finally:
        for viewer in viewers:
            viewer.close()
    assert received == [contents] * len(viewers)
    assert after == [["EVENT"]] * len(viewers)  # the barrier came next: no message twice


async def test_closed_and_closing_connections_are_skipped_and_everyone_else_still_receives(
        sandbox: Sandbox, room: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    arn = room["arn"]
    async with await join(sandbox, arn, "mod") as mod, await join(sandbox, arn, "carol") as carol:
        left = await join(sandbox, arn, "left")
        await left.close()  # closed by its client, handshake completed
        vanished = await join(sandbox, arn, "vanished")
        vanished.transport.abort()  # TCP connection dropped without a closing handshake
        bob = await RawViewer.join(sandbox, arn, "bob")  # will not answer the server's close for now
        try:
            await send(mod, Action="DISCONNECT_USER", RequestId="kick", UserId="bob", Reason="bye")
            for ws in (mod, carol):
                assert (await next_of(ws, "EVENT"))["EventName"] == "aws:DISCONNECT_USER"
            assert await on_sandbox_loop(sandbox, lambda: server_side_state(sandbox, arn, bob)) is State.CLOSING
            await say(mod, "still here", "after")
            for ws in (mod, carol):
                assert (await next_of(ws, "MESSAGE"))["Content"] == "still here"
            bob_frames = await bob.until_closed()
        finally:
            bob.close()
    assert [frame.opcode for frame in bob_frames] == [Opcode.TEXT, Opcode.CLOSE]
    assert b"".join(frame.serialize(mask=False) for frame in bob_frames) == bob.raw  # not a byte after the close
    assert json.loads(bob_frames[0].data)["EventName"] == "aws:DISCONNECT_USER"
    assert Close.parse(bob_frames[1].data).code == 1000
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("ivs_widgets", "websockets.server"))] == []


async def test_a_viewer_that_stops_reading_never_holds_up_the_room_and_is_closed_with_1008(
        sandbox: Sandbox, room: dict[str, Any]) -> None:
    arn, text, fanout = room["arn"], "y" * 60_000, FanOut()
    async with await join(sandbox, arn, "alice") as alice:
        stalled = await RawViewer.join(sandbox, arn, "stalled", receive_buffer=4096)
        try:
            sent = 0
            while await on_sandbox_loop(sandbox, lambda: server_side_state(sandbox, arn, stalled)) is State.OPEN:
                assert sent * len(text) < 64 * SLOW_CONSUMER_BYTES, "the stalled viewer was never closed"
                await on_sandbox_loop(sandbox, lambda: fanout.broadcast(sandbox.messaging.connections(arn), text))
                sent += 1
                assert await asyncio.wait_for(alice.recv(), TIMEOUT) == text  # alice is never held up
            # Now it reads what it was owed, then the close; a wider window lets that take well under the
            # server's close timeout (a 4 KiB window crawls on delayed ACKs).
            stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            frames = await stalled.until_closed()
        finally:
            stalled.close()
    *messages, close = frames
    assert 0 < len(messages) < sent
    assert all((frame.opcode, frame.data) == (Opcode.TEXT, text.encode()) for frame in messages)
    assert close.opcode is Opcode.CLOSE
    assert (Close.parse(close.data).code, Close.parse(close.data).reason) == (1008, SLOW_CONSUMER_REASON)


async def test_errors_reach_only_the_requester_after_the_messages_queued_for_it(sandbox: Sandbox, ivschat: Any,
                                                                               room: dict[str, Any]) -> None:
    alice = await RawViewer.join(sandbox, room["arn"], "alice")
    try:
        async with await join(sandbox, room["arn"], "bob") as bob:
            # Both in one write: handled in one loop turn, the message still queued when the ERROR goes out.
            await alice.send({"Action": "SEND_MESSAGE", "RequestId": "m1", "Content": "first"},
                             {"Action": "SEND_MESSAGE", "RequestId": "bad", "Content": ""})
            message, error = [json.loads(frame.data) for frame in await alice.frames(2)]
            assert (await next_of(bob, "MESSAGE"))["RequestId"] == "m1"
            await barrier(ivschat, room["arn"], bob)  # bob got no ERROR
    finally:
        alice.close()
    assert (message["Type"], message["RequestId"]) == ("MESSAGE", "m1")
    assert (error["Type"], error["RequestId"], error["ErrorCode"]) == ("ERROR", "bad", 400)


async def test_stop_drops_a_client_that_cannot_answer_the_close_instead_of_waiting_for_it() -> None:
    """A ChatRoom on a notebook kernel's own loop cannot answer the close while the cell that stops the
    sandbox runs: stopping takes the grace period, then drops it, and raises nothing."""
    sandbox = Sandbox().start()
    room = sandbox.client().create_room()
    silent = await RawViewer.join(sandbox, room["arn"], "on-the-kernels-loop")
    try:
        started = time.monotonic()
        sandbox.stop()  # blocks this loop, as a cell blocks the kernel's
        assert time.monotonic() - started < STOP_GRACE_SECONDS + 3
    finally:
        silent.close()

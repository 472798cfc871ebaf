"""The sandbox at its descriptor limit and past the account's connection quota, in its own process.

A presenter's laptop may give ``ivs-sandbox`` 200 descriptors or fewer. Joins past what they allow
must be refused at once with a reason, everyone already in must keep chatting, the control plane
must keep answering, and the log must stay short; once people leave, joins succeed again.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sandbox_process import IVS_SANDBOX, Running, shell_environment
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

VIEWERS = 230
TIMEOUT = 10.0


def start(tmp_path: Path, *options: str, soft: int | None = None, hard: int | None = None) -> Running:
    """``ivs-sandbox`` with the descriptor limits given (a laptop's ``ulimit -n``)."""
    def limit() -> None:
        if soft is not None and hard is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    # Quotas off: the test mints a token per viewer as fast as it can (a load generator).
    return Running([IVS_SANDBOX, "--port", "0", "--no-rate-quotas", *options], env=shell_environment({}, tmp_path),
                   preexec_fn=limit)


@pytest.fixture
def stopped() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for sandbox in started:
        sandbox.kill()


def control(sandbox: Running) -> Any:
    env = sandbox.environment
    return boto3.client("ivschat", endpoint_url=env["AWS_ENDPOINT_URL_IVSCHAT"], region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def capacity(sandbox: Running) -> int:
    return int(re.match(r"up to ([\d,]+)", sandbox.value("connections"))[1].replace(",", ""))  # type: ignore[index]


def answers_in_time(ivschat: Any) -> None:
    """The control plane answers ListRooms and CreateChatToken in under 2 s."""
    started = time.monotonic()
    room = ivschat.list_rooms()["rooms"][0]
    ivschat.create_chat_token(roomIdentifier=room["arn"], userId="probe")
    assert time.monotonic() - started < 2.0


class Viewers:
    """Chat viewers joining one room, as many as the sandbox lets in."""

    def __init__(self, sandbox: Running, ivschat: Any, room_arn: str) -> None:
        self.endpoint = sandbox.messaging_endpoint
        self.ivschat, self.room_arn = ivschat, room_arn
        self.open: list[ClientConnection] = []
        self.refusals: list[tuple[float, int, str]] = []  # seconds taken, HTTP status, body

    async def join(self) -> bool:
        token = self.ivschat.create_chat_token(roomIdentifier=self.room_arn, userId=f"v{len(self.open)}",
                                               capabilities=["SEND_MESSAGE"])["token"]
        started = time.monotonic()
        try:
            ws = await connect(self.endpoint, subprotocols=[token], open_timeout=TIMEOUT, close_timeout=TIMEOUT)
        except InvalidStatus as refused:
            response = refused.response
            self.refusals.append((time.monotonic() - started, response.status_code, response.body.decode()))
            return False
        self.open.append(ws)
        return True

    async def all_receive_one_message(self) -> None:
        sender = self.open[0]
        await sender.send('{"Action": "SEND_MESSAGE", "Content": "still here?"}')
        received = await asyncio.gather(*(asyncio.wait_for(ws.recv(), TIMEOUT) for ws in self.open))
        assert all('"still here?"' in frame for frame in received)

    async def leave(self, count: int) -> None:
        leaving, self.open = self.open[:count], self.open[count:]
        await asyncio.gather(*(ws.close() for ws in leaving))

    async def close(self) -> None:
        await self.leave(len(self.open))


async def test_past_200_descriptors_joins_are_refused_with_a_reason_and_everyone_in_keeps_chatting(
        tmp_path: Path, stopped: list[Running]) -> None:
    sandbox = start(tmp_path, soft=200, hard=200)
    stopped.append(sandbox)
    admitted = capacity(sandbox)
    assert 0 < admitted < 200
    ivschat = control(sandbox)
    room = ivschat.create_room(name="crowded")
    viewers = Viewers(sandbox, ivschat, room["arn"])
    try:
        for number in range(VIEWERS):
            await viewers.join()
            if number % 25 == 0:
                answers_in_time(ivschat)
        assert len(viewers.open) == admitted
        assert len(viewers.refusals) == VIEWERS - admitted
        for seconds, status, body in viewers.refusals:
            assert seconds < 1.0
            assert (status, body.strip()) == (503, f"sandbox at its connection limit ({admitted}): raise ulimit -n "
                                                   "(open files) and restart the sandbox for more")
        answers_in_time(ivschat)
        await viewers.all_receive_one_message()

        await viewers.leave(60)
        deadline = time.monotonic() + TIMEOUT  # the closes finish on the sandbox's side, then a seat is free
        while not await viewers.join():
            assert time.monotonic() < deadline, "no join succeeded after 60 viewers left"
        await viewers.all_receive_one_message()
    finally:
        await viewers.close()
    assert sandbox.stop() == 0
    assert len(sandbox.printed) + len(sandbox.stderr().splitlines()) < 50


async def test_with_a_higher_hard_limit_the_sandbox_raises_its_own_and_everyone_joins(
        tmp_path: Path, stopped: list[Running]) -> None:
    sandbox = start(tmp_path, soft=200, hard=4096)
    stopped.append(sandbox)
    assert "file descriptors: 4,096" in sandbox.value("connections")
    ivschat = control(sandbox)
    viewers = Viewers(sandbox, ivschat, ivschat.create_room()["arn"])
    try:
        for _ in range(VIEWERS):
            assert await viewers.join()
        await viewers.all_receive_one_message()
    finally:
        await viewers.close()
    assert sandbox.stop() == 0


async def test_past_the_account_quota_of_connections_a_join_is_refused_until_someone_leaves(
        tmp_path: Path, stopped: list[Running]) -> None:
    sandbox = start(tmp_path, "--max-connections", "5")
    stopped.append(sandbox)
    assert "account quota: 5" in sandbox.value("connections")
    ivschat = control(sandbox)
    viewers = Viewers(sandbox, ivschat, ivschat.create_room()["arn"])
    try:
        for _ in range(5):
            assert await viewers.join()
        assert not await viewers.join()
        assert viewers.refusals[0][1:] == (429, "account quota reached: at most 5 concurrent chat connections "
                                                "(ivs-sandbox --max-connections)\n")
        await viewers.leave(1)
        deadline = time.monotonic() + TIMEOUT
        while not await viewers.join():
            assert time.monotonic() < deadline, "no join succeeded after a viewer left"
    finally:
        await viewers.close()
    assert sandbox.stop() == 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_out_of_descriptors_every_new_connection_is_refused_with_503_and_nothing_spins(
        tmp_path: Path, stopped: list[Running]) -> None:
    """Idle connections to the control plane use up the process's descriptors (no chat limit stops
    them): new connections must get a 503 at once, the process must idle, and one log line tells why."""
    sandbox = start(tmp_path, soft=200, hard=200)
    stopped.append(sandbox)
    control(sandbox).create_room(name="before")
    host, port = sandbox.environment["AWS_ENDPOINT_URL_IVSCHAT"].removeprefix("http://").rsplit(":", 1)
    idle = [socket.create_connection((host, int(port)), timeout=TIMEOUT) for _ in range(250)]
    try:
        probe = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        probe.sendall(b"GET / HTTP/1.1\r\nHost: sandbox\r\n\r\n")
        assert probe.recv(4096).startswith(b"HTTP/1.1 503 Service Unavailable")
        probe.close()
        before = cpu_seconds(sandbox.process.pid)
        await asyncio.sleep(2)  # a measurement window, not a wait for an event: the process must stay idle
        assert cpu_seconds(sandbox.process.pid) - before < 0.5
    finally:
        for connection in idle:
            connection.close()
    deadline = time.monotonic() + TIMEOUT  # the sandbox sees the closes, then has descriptors again
    while True:
        try:
            answers_in_time(control(sandbox))
            break
        except Exception:
            assert time.monotonic() < deadline, "the control plane did not recover"
    assert sandbox.stop() == 0
    log = sandbox.stderr()
    assert "out of file descriptors" in log and "raise ulimit -n" in log
    assert len(log.splitlines()) < 10

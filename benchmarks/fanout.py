"""Fan-out benchmark: one room, many viewers, the sandbox next to a bare ``websockets`` broadcast server.

A workshop room is one sender and hundreds of viewers, so the sandbox must fan a message out about as
fast as ``websockets`` itself can. Both targets are measured in the same run with the same receivers
and the same load: a sender at the room's maximum rate, then a burst.

Each target runs in its own process, the receivers in one more (or two), the sender in this one;
everything is on 127.0.0.1 and every wait is bounded, so the script stops by itself. The sender puts
``"<seq> <time.time_ns()>"`` in each message's Content; receivers subtract it from their own clock.
Receivers open their connection with ``websockets``' own handshake (sans-I/O ``ClientProtocol``),
then read frames with a few lines of slicing: ``websockets``' full parser costs the measuring side
about as much CPU per message as serving costs the server, and on a small machine the receivers
would then be what is measured.

The sender never makes the sandbox refuse a message: it sends message *n* only once it has seen
message *n - rate* come back plus one second, so the room's sliding one-second window always has
room. The baseline gets exactly the same pacing.

    python benchmarks/fanout.py            # 1,000 clients, 100 msg/s for 10 s, a burst of 100
    python benchmarks/fanout.py --quick    # 100 clients for 3 s
    python benchmarks/fanout.py --profile  # also cProfile the sandbox process and print the top entries
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import math
import multiprocessing
import os
import pstats
import resource
import selectors
import socket
import ssl
import statistics
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import boto3
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from ivs_widgets.protocol import formats as ids
from ivs_widgets.protocol import frames

HOST = "127.0.0.1"
BASELINE, SANDBOX = "baseline", "sandbox"
SENDER = "sender"
#: Where a receiver finds the sender's timestamp in a MESSAGE frame (``frames.dumps`` writes no spaces).
CONTENT = b'"Content":"'
#: A phase ends when every receiver has every message, or when nothing arrived for this long.
IDLE_SECONDS = 5.0
#: Longest wait for another process to answer (start-up includes minting a token per client).
REPLY_SECONDS = 120.0


# -- the two targets, each in its own process ----------------------------------------------------
def _server_process(kind: str, pipe: Connection, clients: int, profile_path: str | None) -> None:
    """Serve ``kind`` until the parent says stop; answer ``cpu`` with this process's CPU seconds."""
    _raise_open_files_limit(clients + 256)
    profiler = cProfile.Profile() if profile_path else None
    if profiler:
        profiler.enable()
    try:
        asyncio.run(_serve_sandbox(pipe) if kind == SANDBOX else _serve_baseline(pipe))
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile_path)


async def _serve_sandbox(pipe: Connection) -> None:
    from ivs_widgets.sandbox import Sandbox

    sandbox = Sandbox(rate_quotas=False)  # a load generator: it mints a token per client at once
    loop = asyncio.get_running_loop()

    def ready() -> None:
        pipe.send({"url": sandbox.messaging_endpoint, "environment": sandbox.environment()})
        _obey(pipe, lambda: loop.call_soon_threadsafe(sandbox.request_stop))

    await sandbox.serve(ready=ready)


async def _serve_baseline(pipe: Connection) -> None:
    """The least a chat relay does: wrap each request in a MESSAGE frame and ``broadcast`` it to all."""
    connections: set[ServerConnection] = set()

    async def relay(connection: ServerConnection) -> None:
        connections.add(connection)
        try:
            async for raw in connection:
                request = frames.parse_request(raw)
                broadcast(connections, frames.dumps(frames.ChatMessage(
                    id=ids.new_id(), content=request.content, attributes=request.attributes,
                    request_id=request.request_id, send_time=ids.rfc3339_nanos(time.time_ns()),
                    sender=frames.Sender(SENDER))))
        except ConnectionClosed:
            pass
        finally:
            connections.discard(connection)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    async with serve(relay, HOST, 0, compression=None) as server:
        pipe.send({"url": f"ws://{HOST}:{server.sockets[0].getsockname()[1]}"})
        _obey(pipe, lambda: loop.call_soon_threadsafe(stop.set))
        await stop.wait()


def _obey(pipe: Connection, stop: Callable[[], None]) -> None:
    """Answer the parent from a thread, so a busy event loop still reports its CPU time."""
    def run() -> None:
        try:
            while pipe.recv() == "cpu":
                pipe.send(time.process_time())
        except EOFError:
            pass
        stop()

    threading.Thread(target=run, name="fanout-control", daemon=True).start()


# -- receivers ------------------------------------------------------------------------------------
class _Receiver:
    """One viewer: a real WebSocket handshake, then a minimal reader of the server's unmasked frames."""

    __slots__ = ("sock", "buffer", "count", "last", "unexpected")

    def __init__(self, url: str, token: str | None, tls: ssl.SSLContext | None = None) -> None:
        uri = parse_uri(url)
        protocol = ClientProtocol(uri, subprotocols=[Subprotocol(token)] if token else None)
        protocol.send_request(protocol.connect())
        self.sock = socket.create_connection((uri.host, uri.port), timeout=30)
        if uri.secure:  # wss (soak.py --workshop): TLS records, then the same frames inside
            assert tls is not None, "a wss URL needs an SSL context"
            self.sock = tls.wrap_socket(self.sock, server_hostname=uri.host)
        self.sock.sendall(b"".join(protocol.data_to_send()))
        while protocol.state is State.CONNECTING:
            data = self.sock.recv(65536)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        if len(protocol.events_received()) != 1:  # only the 101 response: no frame may be swallowed
            raise RuntimeError("a frame arrived during the handshake")
        self.sock.setblocking(False)
        self.buffer = b""
        self.count = 0
        self.last = 0
        self.unexpected = 0

    def feed(self, latencies: array) -> int:
        """Read what arrived and record each message's send→receive latency; -1 once the server closed."""
        try:
            data = self.sock.recv(1 << 16)
        except (BlockingIOError, ssl.SSLWantReadError):  # nothing yet (for TLS: no whole record yet)
            return 0
        now = time.time_ns()
        if not data:
            return -1
        if self.buffer:
            data = self.buffer + data
        size, pos, messages = len(data), 0, 0
        while size - pos >= 2:
            length, start = data[pos + 1] & 0x7F, pos + 2
            if length == 126:
                length, start = int.from_bytes(data[pos + 2:pos + 4], "big"), pos + 4
            elif length == 127:
                length, start = int.from_bytes(data[pos + 2:pos + 10], "big"), pos + 10
            end = start + length
            if end > size:
                break
            head = data[pos]
            if not head & 0x80:
                raise RuntimeError("fragmented frame: broadcast never fragments")
            opcode = head & 0x0F
            if opcode == Opcode.TEXT:
                content = data.find(CONTENT, start, end)
                if content < 0:
                    self.unexpected += 1  # an EVENT or ERROR: nothing in this benchmark sends one
                else:
                    stamp = data.find(b" ", content, end) + 1
                    latencies.append(now - int(data[stamp:data.find(b'"', stamp, end)]))
                    messages += 1
            elif opcode == Opcode.PING:
                self.sock.send(Frame(Opcode.PONG, data[start:end]).serialize(mask=True))
            elif opcode == Opcode.CLOSE:
                return -1
            pos = end
        self.buffer = data[pos:]
        if messages:
            self.count += messages
            self.last = now
        return messages


def _receiver_process(pipe: Connection, url: str, tokens: list[str | None], ca_file: str | None = None) -> None:
    """Connect every receiver, then run phases: ``begin`` resets, ``end`` reports once all arrived.

    ``ca_file``: the CA that a ``wss`` server's certificate is checked against."""
    _raise_open_files_limit(len(tokens) + 256)
    tls = ssl.create_default_context(cafile=ca_file) if ca_file else None
    receivers = [_Receiver(url, token, tls) for token in tokens]
    selector = selectors.DefaultSelector()
    selector.register(pipe, selectors.EVENT_READ, None)
    for receiver in receivers:
        selector.register(receiver.sock, selectors.EVENT_READ, receiver)
    pipe.send(len(receivers))
    latencies, total, closed, cpu = array("q"), 0, 0, 0.0
    expected: int | None = None
    idle_until = 0.0
    while True:
        for key, _ in selector.select(0.05):
            receiver = key.data
            if receiver is None:
                command = pipe.recv()
                if command[0] == "begin":
                    latencies, total, cpu = array("q"), 0, time.process_time()
                    for r in receivers:
                        r.count = r.unexpected = r.last = 0
                    pipe.send("begun")
                elif command[0] == "end":
                    expected, idle_until = command[1], time.monotonic() + IDLE_SECONDS
                else:
                    for r in receivers:
                        r.sock.close()
                    return
                continue
            got = receiver.feed(latencies)
            if got < 0:
                selector.unregister(receiver.sock)
                closed += 1
            elif got:
                total += got
                idle_until = time.monotonic() + IDLE_SECONDS
        if expected is not None and (total >= expected * len(receivers) or time.monotonic() > idle_until):
            pipe.send({
                "latencies": latencies.tobytes(), "deliveries": total, "closed": closed,
                "lost": sum(max(0, expected - r.count) for r in receivers),
                "unexpected": sum(r.unexpected for r in receivers),
                "last_ns": max(r.last for r in receivers), "cpu": time.process_time() - cpu,
            })
            expected = None


# -- the sender -----------------------------------------------------------------------------------
class _Echoes:
    """The sender's own copy of each message (or the ERROR refusing it), by sequence number."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._slots: dict[int, asyncio.Future[float | None]] = {}
        self.refusals: dict[int, int] = {}
        self._task = asyncio.create_task(self._read())

    def _slot(self, seq: int) -> asyncio.Future[float | None]:
        if seq not in self._slots:
            self._slots[seq] = asyncio.get_running_loop().create_future()
        return self._slots[seq]

    async def _read(self) -> None:
        async for raw in self._ws:
            frame = frames.loads(raw)
            if isinstance(frame, frames.ChatMessage):
                self._slot(int(frame.content.split()[0])).set_result(time.monotonic())
            elif isinstance(frame, frames.ChatErrorFrame) and frame.request_id.isdigit():
                self.refusals[frame.error_code] = self.refusals.get(frame.error_code, 0) + 1
                self._slot(int(frame.request_id)).set_result(None)

    async def arrival(self, seq: int) -> float | None:
        """When message ``seq`` came back (monotonic clock), or None if the server refused it."""
        return await asyncio.wait_for(asyncio.shield(self._slot(seq)), REPLY_SECONDS)

    def close(self) -> None:
        self._task.cancel()


async def _send(ws: ClientConnection, echoes: _Echoes, first: int, count: int, window: int,
                rate: float | None) -> None:
    """Send ``count`` messages, ``rate`` per second (None: back to back), never beyond the room's window."""
    start = time.monotonic()
    for i in range(count):
        seq = first + i
        due = start + i / rate if rate else 0.0
        if seq >= window:
            back = await echoes.arrival(seq - window)
            if back is not None:
                due = max(due, back + 1.0)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(frames.dumps(frames.SendMessageRequest(content=f"{seq} {time.time_ns()}",
                                                             request_id=str(seq))))


# -- one target, both phases ----------------------------------------------------------------------
@dataclass
class Result:
    target: str
    phase: str
    sent: int
    refused: int
    send_seconds: float
    seconds: float  # first send → last receive
    deliveries: int
    lost: int
    unexpected: int
    closed: int
    latencies_ms: list[float]
    server_cpu: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds else float("nan")

    @property
    def deliveries_per_second(self) -> float:
        return self.deliveries / self.seconds if self.seconds else float("nan")

    def latency(self, fraction: float) -> float:
        values = self.latencies_ms
        return values[max(0, math.ceil(fraction * len(values)) - 1)] if values else float("nan")


def _recv(pipe: Connection, timeout: float = REPLY_SECONDS) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError("a benchmark process did not answer")
    return pipe.recv()


async def _ask(pipes: list[Connection], message: Any) -> list[Any]:
    for pipe in pipes:
        pipe.send(message)
    return list(await asyncio.gather(*(asyncio.to_thread(_recv, pipe) for pipe in pipes)))


async def _phase(target: str, name: str, ws: ClientConnection, echoes: _Echoes, server: Connection,
                 receivers: list[Connection], first: int, count: int, window: int,
                 rate: float | None) -> Result:
    await _ask(receivers, ("begin",))
    [cpu_before] = await _ask([server], "cpu")
    refused_before = sum(echoes.refusals.values())
    first_send = time.time_ns()
    started = time.monotonic()
    await _send(ws, echoes, first, count, window, rate)
    send_seconds = time.monotonic() - started
    backs = [await echoes.arrival(seq) for seq in range(first, first + count)]
    accepted = sum(back is not None for back in backs)
    reports = await _ask(receivers, ("end", accepted))
    [cpu_after] = await _ask([server], "cpu")
    latencies = array("q")
    for report in reports:
        latencies.frombytes(report["latencies"])
    return Result(
        target=target, phase=name, sent=count, send_seconds=send_seconds,
        refused=sum(echoes.refusals.values()) - refused_before,
        seconds=(max(r["last_ns"] for r in reports) - first_send) / 1e9,
        deliveries=sum(r["deliveries"] for r in reports), lost=sum(r["lost"] for r in reports),
        unexpected=sum(r["unexpected"] for r in reports), closed=sum(r["closed"] for r in reports),
        latencies_ms=sorted(value / 1e6 for value in latencies),
        server_cpu=cpu_after - cpu_before, client_cpu=sum(r["cpu"] for r in reports))


async def _drive(target: str, url: str, token: str | None, server: Connection, receivers: list[Connection],
                 args: argparse.Namespace) -> list[Result]:
    sustained = args.rate * args.seconds
    async with connect(url, subprotocols=[Subprotocol(token)] if token else None, compression=None) as ws:
        echoes = _Echoes(ws)
        try:
            steady = await _phase(target, "sustained", ws, echoes, server, receivers,
                                  0, sustained, args.rate, args.rate)
            # Let the room's one-second window empty, so the whole burst is admitted at once.
            last = max(filter(None, [await echoes.arrival(seq) for seq in range(sustained)]), default=0.0)
            await asyncio.sleep(max(0.0, last + 1.0 - time.monotonic()))
            burst = await _phase(target, "burst", ws, echoes, server, receivers,
                                 sustained, args.burst, args.rate, None)
        finally:
            echoes.close()
    return [steady, burst]


def _tokens(environment: dict[str, str], args: argparse.Namespace) -> tuple[list[str | None], str]:
    """A room at the benchmark's rate, a token per receiver and one for the sender, through boto3."""
    ivschat = boto3.client(
        "ivschat", endpoint_url=environment["AWS_ENDPOINT_URL_IVSCHAT"],
        region_name=environment["AWS_DEFAULT_REGION"], aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"])
    room = ivschat.create_room(name="fanout-benchmark", maximumMessageRatePerSecond=args.rate)["arn"]

    def token(user: str, capabilities: list[str]) -> str:
        return ivschat.create_chat_token(roomIdentifier=room, userId=user, capabilities=capabilities)["token"]

    with ThreadPoolExecutor(8) as pool:
        viewers: list[str | None] = list(pool.map(lambda i: token(f"viewer-{i}", []), range(args.clients)))
    return viewers, token(SENDER, ["SEND_MESSAGE"])


def measure(target: str, args: argparse.Namespace, profile_path: str | None = None) -> list[Result]:
    context = multiprocessing.get_context("spawn")
    server_pipe, child = context.Pipe()
    server = context.Process(target=_server_process, args=(target, child, args.clients, profile_path),
                             name=f"fanout-{target}", daemon=True)
    server.start()
    receivers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        started = _recv(server_pipe)
        print(f"{target}: server process {server.pid} (attach a profiler here), {started['url']}", flush=True)
        if target == SANDBOX:
            viewers, sender = _tokens(started["environment"], args)
        else:
            viewers, sender = [None] * args.clients, None
        for i in range(args.client_processes):
            pipe, child = context.Pipe()
            process = context.Process(target=_receiver_process, name=f"fanout-receivers-{i}", daemon=True,
                                      args=(child, started["url"], viewers[i::args.client_processes]))
            process.start()
            receivers.append((process, pipe))
        connected = sum(_recv(pipe) for _, pipe in receivers)
        assert connected == args.clients, f"{connected} of {args.clients} receivers connected"
        return asyncio.run(_drive(target, started["url"], sender, server_pipe, [p for _, p in receivers], args))
    finally:
        for process, pipe in receivers:  # receivers first: the server then closes no open connection
            pipe.send(("stop",))
            process.join(10)
        server_pipe.send("stop")
        server.join(30)
        for process in [server, *(process for process, _ in receivers)]:
            if process.is_alive():
                process.kill()


# -- report ---------------------------------------------------------------------------------------
PHASES = ("sustained", "burst")


def _print_round(results: list[Result]) -> dict[str, float]:
    """The table of one round; returns the sandbox/baseline deliveries/s ratio of each phase."""
    header = (f"{'phase':<10} {'target':<9} {'sent':>5} {'msg/s':>6} {'deliveries/s':>12} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'max ms':>7} {'lost':>5} {'refused':>7} {'server CPU':>10} {'µs/delivery':>11} "
              f"{'client CPU':>10}")
    print(header)
    print("-" * len(header))
    ratios: dict[str, float] = {}
    for phase in PHASES:
        rows = {r.target: r for r in results if r.phase == phase}
        for r in (rows[BASELINE], rows[SANDBOX]):
            print(f"{r.phase:<10} {r.target:<9} {r.sent:>5} {r.rate:>6.1f} {r.deliveries_per_second:>12,.0f} "
                  f"{r.latency(0.5):>7.1f} {r.latency(0.99):>7.1f} {r.latency(1.0):>7.1f} {r.lost:>5} "
                  f"{r.refused:>7} {r.server_cpu / r.seconds:>9.0%} "
                  f"{r.server_cpu / max(1, r.deliveries) * 1e6:>11.1f} {r.client_cpu / r.seconds:>9.0%}")
            if r.unexpected or r.closed:
                print(f"{'':<10} {'':<9} unexpected frames {r.unexpected}, connections closed {r.closed}")
        ratios[phase] = rows[SANDBOX].deliveries_per_second / rows[BASELINE].deliveries_per_second
        print(f"{phase:<10} {'ratio':<9} sandbox/baseline: deliveries/s {ratios[phase]:.2f}x, "
              f"server CPU per delivery {_cpu_ratio(rows):.2f}x")
    return ratios


def _print_targets(rounds: list[list[Result]], ratios: list[dict[str, float]]) -> None:
    """The issue's targets, on the median over the rounds."""
    p99 = statistics.median(r.latency(0.99) for results in rounds for r in results
                            if r.target == SANDBOX and r.phase == "sustained")
    lost = sum(r.lost + r.refused for results in rounds for r in results)
    print(f"\nTargets (issue 4){f', median of {len(rounds)} rounds' if len(rounds) > 1 else ''}:")
    for phase in PHASES:
        ratio = statistics.median(round_ratios[phase] for round_ratios in ratios)
        print(f"  {phase} deliveries/s >= 0.8x baseline: {ratio:.2f}x  {_verdict(ratio >= 0.8)}")
    print(f"  sandbox sustained p99 < 50 ms: {p99:.1f} ms  {_verdict(p99 < 50)}")
    print(f"  every client received every message: {lost} lost or refused  {_verdict(lost == 0)}")


def _cpu_ratio(rows: dict[str, Result]) -> float:
    sandbox, baseline = rows[SANDBOX], rows[BASELINE]
    return (sandbox.server_cpu / max(1, sandbox.deliveries)) / (baseline.server_cpu / max(1, baseline.deliveries))


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _raise_open_files_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="receivers in the room (default: 1000)")
    parser.add_argument("--rate", type=int, default=100,
                        help="the room's maximumMessageRatePerSecond, and the sender's rate (default: 100)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the sustained phase (default: 10)")
    parser.add_argument("--burst", type=int, default=100, help="messages sent back to back after it (default: 100)")
    parser.add_argument("--client-processes", type=int, default=1, choices=(1, 2),
                        help="processes the receivers are spread over (default: 1; the server needs a core)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure both targets this many times, alternating which goes first (default: 1)")
    parser.add_argument("--quick", action="store_true", help="100 clients for 3 s: a smoke run")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the sandbox process (its figures are then slower) and print the top entries")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.seconds = 100, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _raise_open_files_limit(256)
    print(f"Fan-out: 1 room, {args.clients} clients in {args.client_processes} receiver process(es), "
          f"room limit {args.rate} msg/s; sustained {args.seconds} s, then a burst of {args.burst}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the run")
    rounds: list[list[Result]] = []
    ratios: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        profile_path = os.path.join(folder, "sandbox.prof") if args.profile else None
        for number in range(args.rounds):
            order = (BASELINE, SANDBOX) if number % 2 == 0 else (SANDBOX, BASELINE)  # cancels drift
            results = [r for target in order
                       for r in measure(target, args, profile_path if target == SANDBOX else None)]
            print(f"\nRound {number + 1} of {args.rounds} (load average {os.getloadavg()[0]:.2f})")
            ratios.append(_print_round(results))
            rounds.append(results)
        _print_targets(rounds, ratios)
        if profile_path:
            print("\nSandbox process (last round), cProfile, by own time:")
            pstats.Stats(profile_path).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

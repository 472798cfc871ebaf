"""Soak benchmark: a room of 1,000 connections held for 10 minutes; does the sandbox's memory stay flat?

A workshop keeps one room open for an hour or more, so the sandbox must not grow per message or per
minute. ``ivs-sandbox`` runs in its own process; before it, the bare ``websockets`` broadcast server
of ``fanout.py`` runs the same soak in the same run, as the baseline: what Python and ``websockets``
alone do to a server's memory under this load. The idle sandbox's memory is a second baseline.

Load: ``--clients`` receivers (``fanout.py``'s lean receivers, in one more process) and ``--senders``
sending connections in this process, all in one room; ``--rate`` messages per second in total,
round-robin over the senders. The soak runs in rounds: after each, the script waits until the
senders have their own echoes and every receiver has every accepted message (or nothing arrived for
5 s), then reads the server's ``VmRSS`` and ``VmHWM`` from ``/proc/PID/status``. Memory "at start"
is after the first round (the warm-up), "at end" after the last; growth is end ÷ start − 1.
Everything is on 127.0.0.1 and every wait is bounded, so the script stops by itself.

    python benchmarks/soak.py                # 1,000 clients, 10 msg/s, 10 minutes per target (~22 min)
    python benchmarks/soak.py --quick        # 200 clients for 1 minute per target
    python benchmarks/soak.py --no-baseline  # the sandbox only (its idle memory stays a baseline)
    python benchmarks/soak.py --tracemalloc  # also diff the sandbox's allocations, warm-up → end
    python benchmarks/soak.py --workshop     # the sandbox as a workshop runs it: TLS, attendees join by room code
    python benchmarks/soak.py --profile      # the sandbox under cProfile: where one pass over the room goes

With ``--workshop`` the sandbox is ``ivs-sandbox --workshop``: every connection is TLS (its own CA,
checked by fingerprint), the receivers are attendees who got their tokens from the room code's join
route, and the senders are the presenter's. The baseline stays plain: it shows what Python and
``websockets`` do without TLS, so the sandbox/baseline memory ratio then includes TLS's share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import queue
import shlex
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Protocol

import boto3
import numpy as np
from fanout import (
    BASELINE,
    REPLY_SECONDS,
    SANDBOX,
    _ask,
    _Echoes,
    _raise_open_files_limit,
    _receiver_process,
    _recv,
    _server_process,
    _verdict,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from ivs_widgets import workshop
from ivs_widgets.cli import READY
from ivs_widgets.protocol import facts as c
from ivs_widgets.protocol import frames
from ivs_widgets.sandbox.core.validation import operation


def _model_max(operation_name: str, member: str) -> int:
    return int(operation(operation_name).input_shape.members[member].metadata["max"])


IVS_SANDBOX = str(Path(sys.executable).with_name("ivs-sandbox"))
MAX_ROOM_RATE = _model_max("CreateRoom", "maximumMessageRatePerSecond")
MAX_SESSION_MINUTES = _model_max("CreateChatToken", "sessionDurationInMinutes")
GROWTH_TARGET = 0.10
#: The room code's token limit in workshop mode: one join per receiver.
WORKSHOP_MAX_TOKENS = 100_000
MIB = 1024.0  # /proc reports kB
#: ``ivs-sandbox`` with tracemalloc on: SIGUSR1 writes a snapshot and prints its path on stdout.
TRACING_SANDBOX = """
import gc, os, signal, sys, tracemalloc
from ivs_widgets.cli import main

def snapshot(signum, frame):
    gc.collect()  # leaks, not garbage waiting for the collector
    snapshot.count += 1
    path = os.path.join(os.environ["SOAK_SNAPSHOTS"], f"{snapshot.count}.snapshot")
    tracemalloc.take_snapshot().dump(path)
    print("snapshot", path, flush=True)

snapshot.count = 0
signal.signal(signal.SIGUSR1, snapshot)
sys.exit(main(sys.argv[1:]))
"""


# -- what /proc says about the server ------------------------------------------------------------
@dataclass(frozen=True)
class Memory:
    rss: int  # kB
    hwm: int  # kB: the peak RSS so far


def _memory(pid: int) -> Memory:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return Memory(int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0]))


def _cpu_seconds(pid: int) -> float:
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# -- the two servers -----------------------------------------------------------------------------
class Server(Protocol):
    pid: int
    url: str
    environment: dict[str, str]
    #: What ``ivs-sandbox --workshop`` shares with attendees (``url``, ``room code``, ``fingerprint``).
    shared: dict[str, str]

    def log_lines(self) -> list[str]: ...
    def snapshot(self) -> str | None: ...
    def stop(self) -> None: ...


class SandboxProcess:
    """``ivs-sandbox --port 0`` in its own process; anything it logs (stderr) is counted as an error."""

    def __init__(self, log: IO[str], snapshots: str | None, workshop_mode: bool = False,
                 profile: str | None = None) -> None:
        if snapshots:
            command = [sys.executable, "-X", "tracemalloc", "-c", TRACING_SANDBOX]
        elif profile:  # cProfile writes its file when SIGTERM ends the sandbox normally
            command = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "ivs_widgets.sandbox"]
        else:
            command = [IVS_SANDBOX]
        command += ["--port", "0", "--no-rate-quotas"]  # a load generator
        if workshop_mode:
            command += ["--workshop", "--max-tokens", str(WORKSHOP_MAX_TOKENS)]
        self._log = log
        self._tracing = snapshots is not None
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True,
                                        env={**os.environ, "SOAK_SNAPSHOTS": snapshots} if snapshots else None)
        self.pid = self.process.pid
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._read, name="soak-sandbox-stdout", daemon=True).start()
        self.environment: dict[str, str] = {}
        self.shared: dict[str, str] = {}
        self.url = ""
        try:
            while not (line := self._line()).startswith(READY):
                if line.startswith("export "):
                    name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
                    self.environment[name] = value
                elif line.startswith("messaging (WebSocket):"):
                    self.url = line.split()[-1]
                elif line.startswith(("url:", "room code:", "fingerprint:")):
                    label, _, value = line.partition(":")
                    self.shared[label] = value.strip()
        except BaseException:
            self.process.kill()
            raise

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put("")  # the process has gone

    def _line(self) -> str:
        line = self._lines.get(timeout=REPLY_SECONDS)
        if not line and self.process.poll() is not None:
            raise RuntimeError(f"ivs-sandbox exited with {self.process.returncode}")
        return line

    def log_lines(self) -> list[str]:
        self._log.flush()
        return Path(self._log.name).read_text().splitlines()

    def snapshot(self) -> str | None:
        """Ask the tracing sandbox for a tracemalloc snapshot; its file's path (None when not tracing)."""
        if not self._tracing:
            return None
        self.process.send_signal(signal.SIGUSR1)
        while not (line := self._line()).startswith("snapshot "):
            pass
        return line.split(" ", 1)[1]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class BaselineProcess:
    """``fanout.py``'s bare ``websockets.broadcast`` relay, in its own process."""

    def __init__(self, clients: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self.process = context.Process(target=_server_process, args=(BASELINE, child, clients, None),
                                       name="soak-baseline", daemon=True)
        self.process.start()
        self.url = _recv(self._pipe)["url"]
        self.pid = self.process.pid or 0
        self.environment: dict[str, str] = {}
        self.shared: dict[str, str] = {}

    def log_lines(self) -> list[str]:
        return []  # it shares this script's stderr: anything it says is on the screen

    def snapshot(self) -> None:
        return None

    def stop(self) -> None:
        self._pipe.send("stop")
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()


# -- figures -------------------------------------------------------------------------------------
@dataclass
class Round:
    ends_at: float  # seconds since the first round began
    sent: int
    refused: int
    deliveries: int
    lost: int
    unexpected: int  # EVENT or ERROR frames at receivers
    closed: int  # receiver connections the server closed
    log_lines: int  # lines the server logged during the round
    latencies_ms: np.ndarray
    memory: Memory
    server_cpu: float
    client_cpu: float
    seconds: float
    load: float

    @property
    def errors(self) -> int:
        return self.refused + self.unexpected + self.closed + self.log_lines


@dataclass
class Soak:
    target: str
    connections: int
    idle: Memory  # the server before any request
    prepared: Memory  # after the room and the tokens (the sandbox), before any WebSocket
    connected: Memory = field(init=False)  # every connection open, no message yet
    rounds: list[Round] = field(default_factory=list)
    allocations: list[str] = field(default_factory=list)

    @property
    def start(self) -> Memory:
        return self.rounds[0].memory

    @property
    def end(self) -> Memory:
        return self.rounds[-1].memory

    @property
    def growth(self) -> float:
        return self.end.rss / self.start.rss - 1

    @property
    def kib_per_connection(self) -> float:
        return (self.connected.rss - self.prepared.rss) / self.connections

    @property
    def deliveries(self) -> int:
        return sum(r.deliveries for r in self.rounds)

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    def latency(self, percentile: float) -> float:
        values = np.concatenate([r.latencies_ms for r in self.rounds])
        return float(np.percentile(values, percentile)) if values.size else float("nan")


# -- one soak ------------------------------------------------------------------------------------
def _round_lengths(args: argparse.Namespace) -> list[float]:
    """The warm-up round, then rounds of ``--round-seconds`` up to ``--minutes`` in all."""
    rest = args.minutes * 60 - args.warmup
    lengths = [args.warmup] + [args.round_seconds] * int(rest // args.round_seconds)
    if rest % args.round_seconds:
        lengths.append(rest % args.round_seconds)
    return lengths


async def _round(server: Server, senders: list[ClientConnection], echoes: list[_Echoes],
                 receivers: list[Connection], first: int, seconds: float, rate: float, began: float) -> Round:
    await _ask(receivers, ("begin",))
    cpu_before, logged_before = _cpu_seconds(server.pid), len(server.log_lines())
    refused_before = sum(sum(e.refusals.values()) for e in echoes)
    count = round(seconds * rate)
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        seq = first + i
        await senders[seq % len(senders)].send(frames.dumps(frames.SendMessageRequest(
            content=f"{seq} {time.time_ns()}", request_id=str(seq))))
    backs = [await echoes[seq % len(echoes)].arrival(seq) for seq in range(first, first + count)]
    reports = await _ask(receivers, ("end", sum(back is not None for back in backs)))
    memory, cpu = _memory(server.pid), _cpu_seconds(server.pid) - cpu_before
    return Round(
        ends_at=time.monotonic() - began, sent=count,
        refused=sum(sum(e.refusals.values()) for e in echoes) - refused_before,
        deliveries=sum(r["deliveries"] for r in reports), lost=sum(r["lost"] for r in reports),
        unexpected=sum(r["unexpected"] for r in reports), closed=sum(r["closed"] for r in reports),
        log_lines=len(server.log_lines()) - logged_before,
        latencies_ms=np.concatenate([np.frombuffer(r["latencies"], dtype=np.int64) for r in reports]) / 1e6,
        memory=memory, server_cpu=cpu, client_cpu=sum(r["cpu"] for r in reports),
        seconds=time.monotonic() - start, load=os.getloadavg()[0])


async def _drive(soak: Soak, server: Server, sender_tokens: list[str | None], receivers: list[Connection],
                 args: argparse.Namespace) -> list[str]:
    """Connect the senders, run every round; the tracemalloc snapshots taken after warm-up and at the end."""
    tls_options = {"ssl": _trust(server)} if server.url.startswith("wss:") else {}
    async with contextlib.AsyncExitStack() as stack:
        senders = [await stack.enter_async_context(connect(
            server.url, subprotocols=[Subprotocol(token)] if token else None, compression=None, **tls_options))
            for token in sender_tokens]
        echoes = [_Echoes(ws) for ws in senders]
        for e in echoes:
            stack.callback(e.close)
        soak.connected = _memory(server.pid)
        snapshots: list[str] = []
        began, first = time.monotonic(), 0
        for number, seconds in enumerate(_round_lengths(args)):
            result = await _round(server, senders, echoes, receivers, first, seconds, args.rate, began)
            soak.rounds.append(result)
            first += result.sent
            _print_round(soak.target, result)
            if number == 0 and (path := server.snapshot()):
                snapshots.append(path)
        if path := server.snapshot():
            snapshots.append(path)
        return snapshots


def _trust(server: Server) -> ssl.SSLContext:
    """The workshop sandbox's CA, as its export lines name it for the presenter."""
    return workshop.client_context(Path(server.environment["AWS_CA_BUNDLE"]).read_bytes())


def _tokens(server: Server, args: argparse.Namespace) -> tuple[list[str | None], list[str | None]]:
    """One room, a token per receiver and per sender, through boto3 (workshop: receivers join by room code).

    The room's cap is the service's maximum, so scheduling jitter in the pacing never trips its
    sliding one-second window; sessions last as long as the service allows (three hours; in a
    workshop, as long as the room code's invite says).
    """
    environment = server.environment
    ivschat = boto3.client(
        "ivschat", endpoint_url=environment["AWS_ENDPOINT_URL_IVSCHAT"],
        region_name=environment["AWS_DEFAULT_REGION"], aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"], verify=environment.get("AWS_CA_BUNDLE", True))
    if server.shared:
        room = ivschat.list_rooms()["rooms"][0]["arn"]  # the room the printed code opens
        ivschat.update_room(identifier=room, maximumMessageRatePerSecond=MAX_ROOM_RATE)
    else:
        room = ivschat.create_room(name="soak-benchmark", maximumMessageRatePerSecond=MAX_ROOM_RATE)["arn"]

    def token(user: str, capabilities: list[str]) -> str:
        return ivschat.create_chat_token(roomIdentifier=room, userId=user, capabilities=capabilities,
                                         sessionDurationInMinutes=MAX_SESSION_MINUTES)["token"]

    def attendee(i: int) -> str:
        joined = workshop.join(server.shared["url"], server.shared["room code"], f"viewer {i}",
                               fingerprint=server.shared["fingerprint"])
        return joined.token_provider()().token

    with ThreadPoolExecutor(8) as pool:
        viewers: list[str | None] = list(pool.map(attendee if server.shared else lambda i: token(f"viewer-{i}", []),
                                                  range(args.clients)))
    return viewers, [token(f"sender-{i}", ["SEND_MESSAGE"]) for i in range(args.senders)]


def soak(target: str, args: argparse.Namespace, log: IO[str], snapshots: str | None) -> Soak:
    server: Server = (SandboxProcess(log, snapshots, args.workshop, args.profile) if target == SANDBOX
                      else BaselineProcess(args.clients))
    context = multiprocessing.get_context("spawn")
    receiver: multiprocessing.process.BaseProcess | None = None
    pipe: Connection | None = None
    try:
        idle = _memory(server.pid)
        print(f"\n{target}: server process {server.pid}, {server.url}, idle RSS {idle.rss / MIB:.1f} MiB", flush=True)
        if target == SANDBOX:
            viewers, sender_tokens = _tokens(server, args)
        else:
            viewers, sender_tokens = [None] * args.clients, [None] * args.senders
        result = Soak(target, args.clients + args.senders, idle, _memory(server.pid))
        pipe, child = context.Pipe()
        ca = server.environment.get("AWS_CA_BUNDLE") if server.url.startswith("wss:") else None
        receiver = context.Process(target=_receiver_process, args=(child, server.url, viewers, ca),
                                   name="soak-receivers", daemon=True)
        receiver.start()
        connected = _recv(pipe)
        assert connected == args.clients, f"{connected} of {args.clients} receivers connected"
        paths = asyncio.run(_drive(result, server, sender_tokens, [pipe], args))
        if len(paths) == 2:
            result.allocations = _allocation_growth(*paths)
        return result
    finally:
        if receiver is not None and pipe is not None:  # receivers first: the server then closes nothing
            pipe.send(("stop",))
            receiver.join(10)
            if receiver.is_alive():
                receiver.kill()
        server.stop()


def _allocation_growth(before: str, after: str, top: int = 15) -> list[str]:
    """The source lines whose live allocations grew most between two snapshots."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap*>")]
    old = tracemalloc.Snapshot.load(before).filter_traces(ignore)
    new = tracemalloc.Snapshot.load(after).filter_traces(ignore)
    stats = new.compare_to(old, "lineno")
    total = sum(s.size_diff for s in stats)
    return [f"total traced change {total / 1024:+.1f} KiB", *(str(s) for s in stats[:top])]


# -- report --------------------------------------------------------------------------------------
ROUND_HEADER = (f"{'target':<9} {'t s':>5} {'sent':>5} {'deliveries':>10} {'lost':>5} {'errors':>6} {'p50 ms':>7} "
                f"{'p99 ms':>7} {'RSS MiB':>8} {'HWM MiB':>8} {'server CPU':>10} {'client CPU':>10} {'load':>5}")


def _print_round(target: str, r: Round) -> None:
    p50, p99 = (np.percentile(r.latencies_ms, (50, 99)) if r.latencies_ms.size else (float("nan"),) * 2)
    print(f"{target:<9} {r.ends_at:>5.0f} {r.sent:>5} {r.deliveries:>10,} {r.lost:>5} {r.errors:>6} "
          f"{p50:>7.1f} {p99:>7.1f} {r.memory.rss / MIB:>8.1f} {r.memory.hwm / MIB:>8.1f} "
          f"{r.server_cpu / r.seconds:>9.0%} {r.client_cpu / r.seconds:>9.0%} {r.load:>5.2f}", flush=True)


def _print_summary(soaks: list[Soak]) -> None:
    header = (f"{'target':<9} {'idle':>7} {'connected':>9} {'KiB/conn':>8} {'start':>7} {'end':>7} {'growth':>7} "
              f"{'peak':>7} {'deliveries':>11} {'lost':>5} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7}")
    print("\nSummary (RSS in MiB; start = after the warm-up round, peak = VmHWM at the end)")
    print(header)
    print("-" * len(header))
    for s in soaks:
        print(f"{s.target:<9} {s.idle.rss / MIB:>7.1f} {s.connected.rss / MIB:>9.1f} {s.kib_per_connection:>8.1f} "
              f"{s.start.rss / MIB:>7.1f} {s.end.rss / MIB:>7.1f} {s.growth:>+7.1%} {s.end.hwm / MIB:>7.1f} "
              f"{s.deliveries:>11,} {s.lost:>5} {s.errors:>6} {s.latency(50):>7.1f} {s.latency(99):>7.1f}")
    sandbox = next(s for s in soaks if s.target == SANDBOX)
    baseline = next((s for s in soaks if s.target == BASELINE), None)
    if baseline:
        print(f"{'ratio':<9} sandbox/baseline: end RSS {sandbox.end.rss / baseline.end.rss:.2f}x, "
              f"KiB per connection {sandbox.kib_per_connection / baseline.kib_per_connection:.2f}x, "
              f"growth {sandbox.growth:+.1%} vs {baseline.growth:+.1%}, "
              f"p99 {sandbox.latency(99) / baseline.latency(99):.2f}x")
    print(f"{'':<9} sandbox end RSS / its idle RSS: {sandbox.end.rss / sandbox.idle.rss:.2f}x")
    if sandbox.allocations:
        print("\nSandbox allocations that grew from the warm-up to the end (tracemalloc). Its RSS above "
              "includes tracemalloc and the snapshots: judge growth by the traced change instead.")
        print("\n".join(f"  {line}" for line in sandbox.allocations))
    print("\nTargets (issue 9 item 5, issue 8):")
    verdict = "not judged under --tracemalloc" if sandbox.allocations else _verdict(sandbox.growth < GROWTH_TARGET)
    print(f"  sandbox RSS growth, warm-up → end, < {GROWTH_TARGET:.0%}: {sandbox.growth:+.1%}  {verdict}")
    print(f"  every client received every message: {sandbox.lost} lost  {_verdict(sandbox.lost == 0)}")
    print(f"  no errors (refusals, ERROR/EVENT frames, closed connections, sandbox log lines): {sandbox.errors}  "
          f"{_verdict(sandbox.errors == 0)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each soak (default: 10)")
    parser.add_argument("--clients", type=int, default=1000, help="receivers in the room (default: 1000)")
    parser.add_argument("--senders", type=int, default=4, help="sending connections, also in the room (default: 4)")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second in total (default: 10)")
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds of the first round, after which memory is 'at start' (default: 30)")
    parser.add_argument("--round-seconds", type=float, default=30.0,
                        help="seconds between memory samples (default: 30)")
    parser.add_argument("--quick", action="store_true", help="200 clients for 1 minute, 15 s rounds: a smoke run")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the bare websockets server's soak (halves the run)")
    parser.add_argument("--workshop", action="store_true",
                        help="run the sandbox in workshop mode: TLS, receivers join with the room code")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace the sandbox's allocations (slower, more memory) and print what grew")
    parser.add_argument("--profile", nargs="?", const=str(Path(tempfile.gettempdir()) / "soak-sandbox.prof"),
                        metavar="FILE", help="run the sandbox under cProfile (slower: use fewer --clients) and "
                        "print where its time went; the stats stay in FILE (default: soak-sandbox.prof in the "
                        "temporary folder)")
    args = parser.parse_args(argv)
    if args.profile and args.tracemalloc:
        parser.error("--profile and --tracemalloc each slow the sandbox down: use one at a time")
    if args.quick:
        args.minutes, args.clients, args.warmup, args.round_seconds = 1.0, 200, 15.0, 15.0
    if not 0 < args.rate <= MAX_ROOM_RATE:
        parser.error(f"--rate must be in (0, {MAX_ROOM_RATE}], the service's room maximum")
    if args.minutes * 60 <= args.warmup or args.minutes >= MAX_SESSION_MINUTES - 10:
        parser.error(f"--minutes must be longer than the warm-up and under {MAX_SESSION_MINUTES - 10} "
                     f"(chat sessions last at most {MAX_SESSION_MINUTES} minutes)")
    if args.workshop and args.minutes >= c.DEFAULT_SESSION_DURATION_MINUTES - 5:
        parser.error(f"with --workshop, --minutes must be under {c.DEFAULT_SESSION_DURATION_MINUTES - 5} "
                     "(a room code's tokens open sessions of the invite's default length)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _raise_open_files_limit(args.clients + args.senders + 256)  # the ivs-sandbox process inherits it
    print(f"Soak{' (workshop mode: TLS, receivers joined by room code)' if args.workshop else ''}: "
          f"1 room, {args.clients} receivers + {args.senders} senders, {args.rate:g} msg/s in total for "
          f"{args.minutes:g} min per target (warm-up {args.warmup:g} s, samples every {args.round_seconds:g} s); "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(ROUND_HEADER)
    soaks: list[Soak] = []
    with tempfile.TemporaryDirectory() as folder, open(Path(folder) / "sandbox.log", "w+") as log:
        snapshots = folder if args.tracemalloc else None
        for target in ([] if args.no_baseline else [BASELINE]) + [SANDBOX]:
            soaks.append(soak(target, args, log, snapshots))
        if logged := Path(log.name).read_text().splitlines():
            print(f"\nThe sandbox logged {len(logged)} lines; the first ones:")
            print("\n".join(logged[:10]))
    print(f"\nLoad average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    _print_summary(soaks)
    if args.profile:
        _print_profile(args.profile, next(s for s in soaks if s.target == SANDBOX).deliveries)
    return 0


def _print_profile(path: str, deliveries: int) -> None:
    """Where the sandbox's time went (wall clock, as cProfile counts it): the kernel's ``send`` on each
    connection's socket against everything Python does around it in the fan-out."""
    import pstats

    stats = pstats.Stats(path)
    entries = stats.stats  # type: ignore[attr-defined]  # (file, line, name) → (calls, prim, tottime, cumtime, callers)

    def total(name: str, column: int) -> tuple[int, float]:
        found = [(v[0], v[column]) for k, v in entries.items() if k[2] == name]
        return sum(n for n, _ in found), sum(t for _, t in found)

    sends, send_seconds = total("<method 'send' of '_socket.socket' objects>", 2)
    writes, write_seconds = total("write_frames", 3)
    print(f"\nProfile of the sandbox ({path}; cProfile's wall clock, so the machine's load is in it):")
    print(f"  {writes:,} frame writes (fan-out to one connection each) took {write_seconds:.1f} s, "
          f"{1e6 * write_seconds / max(writes, 1):.1f} µs each; of that the kernel's socket send "
          f"({sends:,} calls) took {send_seconds:.1f} s, {1e6 * send_seconds / max(sends, 1):.1f} µs each "
          f"({send_seconds / max(write_seconds, 1e-9):.0%})")
    print(f"  per delivery ({deliveries:,}): {1e6 * write_seconds / max(deliveries, 1):.1f} µs of fan-out; "
          f"one pass over 10,000 connections at that cost: {10_000 * write_seconds / max(deliveries, 1) * 1000:.0f} ms")
    print("  the 12 functions with the most time of their own:")
    stats.sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    raise SystemExit(main())

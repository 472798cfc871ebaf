"""File descriptors: how many connections the sandbox can hold, and what happens when they run out.

Every connection costs a descriptor, and so do the control plane's connections, sqlite, chat-log
files and the test stream's pipes. A laptop's soft limit is often 256 (macOS) or 1024 (Linux
desktops) while the hard limit is far higher, so at start the sandbox raises its soft limit to the
hard one, as servers do. It then admits chat connections up to the limit minus a reserve, and
refuses the rest at the handshake with a reason (``MessagingEndpoint``).

If descriptors run out all the same (another process of the user's, a burst of handshakes), a
listening socket's ``accept()`` fails with EMFILE and the pending connection stays in the backlog: a
server that merely logs and returns is woken again at once, and spins. :class:`SheddingSocket` keeps
one spare descriptor for that moment: it frees it, accepts the pending connection, answers it with
HTTP 503 and closes it, then takes the spare back. The backlog drains, nobody hangs, and
:class:`ProblemLog` writes one line per kind of problem per interval, with a count.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time

log = logging.getLogger("ivs_widgets.sandbox")

#: Descriptors kept back from chat connections for the control plane, sqlite, chat-log files, the test
#: stream and refusals in flight (the sandbox's choice).
RESERVE = 64
#: Without a way to read the limit (Windows), assume this many.
UNKNOWN_LIMIT = 4096
#: Where the hard limit is unlimited (macOS reports RLIM_INFINITY), raise the soft limit this far.
UNLIMITED_TARGET = 65536
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def raise_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit where the platform allows; the soft limit now."""
    try:
        import resource
    except ImportError:  # Windows
        return UNKNOWN_LIMIT
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # e.g. macOS caps the soft limit below an "unlimited" hard one
            pass
    return UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else int(soft)


def connection_capacity(limit: int) -> int:
    """Chat connections admitted under a descriptor limit of ``limit``."""
    return max(1, limit - RESERVE)


class ProblemLog:
    """One warning line per kind of problem per ``interval`` seconds, saying how often it happened."""

    def __init__(self, interval: float = 10.0, logger: logging.Logger = log) -> None:
        self.interval = interval
        self.log = logger
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def report(self, kind: str, message: str) -> None:
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            now = time.monotonic()
            if now - self._last.get(kind, float("-inf")) < self.interval:
                return
            count, self._counts[kind], self._last[kind] = self._counts[kind], 0, now
        self.log.warning("%s (%d time%s in the last %.0f s)", message, count, "" if count == 1 else "s", self.interval)


class SheddingSocket(socket.socket):
    """A listening socket whose ``accept()`` refuses a connection with 503 instead of failing with EMFILE."""

    problems: ProblemLog
    refusal: bytes
    _spare: int | None = None

    @classmethod
    def wrap(cls, listening: socket.socket, problems: ProblemLog, reason: str) -> SheddingSocket:
        """Take over ``listening`` (bound and listening); ``reason`` is the refusal's text."""
        wrapped = cls(listening.family, listening.type, listening.proto, fileno=listening.detach())
        wrapped.problems = problems
        body = f"{reason}\n".encode()
        wrapped.refusal = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                           b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        wrapped._spare = _open_spare()
        return wrapped

    def accept(self) -> tuple[socket.socket, object]:
        try:
            return super().accept()
        except OSError as error:
            if error.errno not in _OUT_OF_DESCRIPTORS:
                raise
            self._shed(error)
            raise BlockingIOError(errno.EAGAIN, "refused a connection: out of descriptors") from None

    def _shed(self, error: OSError) -> None:
        self.problems.report("descriptors", f"out of file descriptors ({os.strerror(error.errno or 0)}): "
                                            "refusing new connections with 503; raise ulimit -n")
        spare, self._spare = self._spare, None
        if spare is None:
            return
        os.close(spare)
        try:
            connection, _ = super().accept()
        except OSError:
            connection = None
        if connection is not None:
            try:
                connection.setblocking(False)
                connection.send(self.refusal)
            except OSError:
                pass
            connection.close()
        self._spare = _open_spare()

    def close(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            os.close(spare)
        super().close()


def _open_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None

"""What is happening in the rooms right now: message rates and recent denials, for the presenter.

``Activity`` listens to the messaging server (every MESSAGE/EVENT delivered, every ERROR sent and
every handshake refused) and keeps only small, bounded summaries: per-room counts for the last few
minutes, one per second, and the last errors. The workshop service reads ``room()`` and ``recent_errors()`` for the dashboard.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from ivs_widgets.protocol import frames

#: Seconds of per-second message counts kept per room (what the dashboard's rate chart shows).
RATE_WINDOW_SECONDS = 120
#: Denials and errors kept, newest last.
RECENT_ERRORS = 50


@dataclass(frozen=True)
class ErrorRecord:
    """An ERROR sent to a client, a refused handshake, or a refused workshop join."""

    time: float
    kind: str  # "message" | "handshake" | "join"
    code: int
    message: str
    room_arn: str = ""
    user_id: str = ""


class Activity:
    """Thread-safe: the messaging loop records, any thread reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, collections.Counter[int]] = {}
        self._totals: collections.Counter[str] = collections.Counter()
        self._denials: collections.Counter[str] = collections.Counter()
        self._errors: collections.deque[ErrorRecord] = collections.deque(maxlen=RECENT_ERRORS)

    def __call__(self, room_arn: str, frame: frames.Frame) -> None:
        """A ``MessagingServer`` listener: count delivered messages per room and second."""
        if not isinstance(frame, frames.ChatMessage):
            return
        second = int(time.time())
        with self._lock:
            counts = self._counts.setdefault(room_arn, collections.Counter())
            counts[second] += 1
            self._totals[room_arn] += 1
            for old in [s for s in counts if s <= second - RATE_WINDOW_SECONDS]:
                del counts[old]

    def error(self, kind: str, code: int, message: str, room_arn: str = "", user_id: str = "") -> None:
        with self._lock:
            self._errors.append(ErrorRecord(time.time(), kind, code, message, room_arn, user_id))
            if room_arn:
                self._denials[room_arn] += 1

    def room(self, room_arn: str, now: float | None = None) -> dict[str, Any]:
        """Messages per second over the last ``RATE_WINDOW_SECONDS`` (oldest first), totals, denials."""
        last = int(now if now is not None else time.time())
        with self._lock:
            counts = self._counts.get(room_arn, collections.Counter())
            rate = [counts.get(second, 0) for second in range(last - RATE_WINDOW_SECONDS + 1, last + 1)]
            return {"messageRate": rate, "messages": self._totals[room_arn], "errors": self._denials[room_arn]}

    def recent_errors(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(record) for record in self._errors]

    def forget(self, room_arn: str | None = None) -> None:
        """Drop one room's figures, or everything (reset)."""
        with self._lock:
            if room_arn is None:
                self._counts.clear()
                self._totals.clear()
                self._denials.clear()
                self._errors.clear()
            else:
                self._counts.pop(room_arn, None)
                self._totals.pop(room_arn, None)
                self._denials.pop(room_arn, None)

"""Waiting for chat logs that AWS delivers minutes after the chat, with a progress line.

IVS Chat documents the average delay from a message to its record: about 5 minutes for S3, about
10 seconds for CloudWatch Logs and Firehose. A reader waits for the number of records it expects
for up to three times that average (at least a minute), polling more slowly as time goes on, and
shows a text progress bar as it goes. Text, not a widget: a notebook keeps no widget state, so an
HTML export or GitHub still shows how the wait ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ivs_widgets.chat.history import ChatHistory

#: The average delivery delays that the IVS Chat User Guide documents ("IVS Chat Logging").
DOCUMENTED_DELAY_SECONDS = {"s3": 300.0, "cloudWatchLogs": 10.0, "firehose": 10.0}
FIRST_POLL_SECONDS, LONGEST_POLL_SECONDS = 1.0, 15.0
BAR_WIDTH = 24


def default_timeout(destination_kind: str) -> float:
    """How long to wait for records of a destination kind: three times its documented average, at least 60 s."""
    return max(60.0, 3 * DOCUMENTED_DELAY_SECONDS.get(destination_kind, 300.0))


class TextProgress:
    """One line that updates in place in a notebook (a display with an id), or on a terminal (``\\r``)."""

    def __init__(self, label: str, total: int, timeout: float) -> None:
        self.label, self.total, self.timeout = label, total, timeout
        self._handle: Any = None
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None:
                self._handle = display({"text/plain": self.line(0, 0.0)}, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        except ImportError:
            pass

    def line(self, count: int, elapsed: float) -> str:
        filled = BAR_WIDTH * min(count, self.total) // max(self.total, 1)
        return (f"{self.label} {'█' * filled}{'░' * (BAR_WIDTH - filled)} {count}/{self.total} records · "
                f"{_minutes(elapsed)} of at most {_minutes(self.timeout)}")

    def show(self, count: int, elapsed: float) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": self.line(count, elapsed)}, raw=True)
        else:
            print("\r" + self.line(count, elapsed), end="", flush=True)


def wait_for_records(read: Callable[[], ChatHistory], expect: int, timeout: float, where: str) -> ChatHistory:
    """``read()`` again until it returns at least ``expect`` records; a progress line shows only when the
    first read falls short. Raises TimeoutError after ``timeout`` seconds, saying what arrived."""
    history = read()
    if len(history.records) >= expect:
        return history
    started = time.monotonic()
    progress = TextProgress(f"chat logs in {where}", expect, timeout)
    pause = FIRST_POLL_SECONDS
    while len(history.records) < expect:
        elapsed = time.monotonic() - started
        progress.show(len(history.records), elapsed)
        if elapsed >= timeout:
            raise TimeoutError(f"{len(history.records)} of {expect} chat-log records reached {where} within "
                               f"{_minutes(timeout)}: delivery may be slow, run the cell again to keep waiting")
        time.sleep(min(pause, timeout - elapsed))  # storage offers no event: poll, less often as time goes on
        pause = min(pause * 2, LONGEST_POLL_SECONDS)
        history = read()
    progress.show(len(history.records), time.monotonic() - started)
    return history


def _minutes(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"

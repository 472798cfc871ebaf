"""The one rate limiter: at most ``limit`` events in any sliding one-second window."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateWindow:
    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        """Count one event now if the window has room; False (and nothing counted) if not."""
        now = self._clock()
        while self._times and now - self._times[0] >= 1.0:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

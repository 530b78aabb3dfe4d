"""Counting attempts in a sliding window: sign-in failures per address and per user, submissions per user.

Kept in the server's memory (one process); a restart forgets them.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class SlidingWindow:
    """At most ``limit`` events per key within ``seconds``.

    Args:
        limit: events allowed in the window.
        seconds: the window's length.
        clock: seconds, monotonic. Default ``time.monotonic``.
    """

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.seconds = seconds
        self.clock = clock
        self._events: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        events = self._events[key]
        while events and events[0] <= now - self.seconds:
            events.popleft()
        return events

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may act again (0: now)."""
        with self._lock:
            now = self.clock()
            events = self._trim(key, now)
            if len(events) < self.limit:
                if not events:
                    del self._events[key]
                return 0.0
            return events[0] + self.seconds - now

    def add(self, key: str) -> None:
        """Count one event for ``key``."""
        with self._lock:
            self._trim(key, self.clock()).append(self.clock())

    def clear(self, key: str) -> None:
        """Forget ``key``'s events (a successful sign-in)."""
        with self._lock:
            self._events.pop(key, None)

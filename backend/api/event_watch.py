"""One database read per interval tells every open event stream whether its experiment changed.

Without it, each stream read its experiment's state, epochs and cycles every half second: 200 open
streams were 1,200 queries a second, and other requests waited behind them. With it, one task reads a
version of every followed experiment per interval (``backend.service.events.experiment_versions``: the
columns a feed reports and its newest epoch and cycle row ids) and wakes the streams; a stream reads
its feed only when its experiment's version moved, or when its last read returned events (a feed
catching up over several reads). An idle stream costs nothing but the shared read.

Streams that follow the same experiment from the same position read its feed once between them
(:meth:`ChangeWatch.shared`: one read per key until the next version read), and feed reads run at most
``FEED_READERS`` at a time, so a burst of changes cannot take every thread of the pool from other
requests.

The task runs on the server's event loop while at least one stream follows an experiment, and stops
with the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Hashable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.concurrency import run_in_threadpool

logger = logging.getLogger(__name__)

Result = TypeVar("Result")
#: Feed reads that may run at once (the threadpool has 40 threads; the rest stay for other requests).
FEED_READERS = 4

#: The version of an experiment not read yet.
UNREAD: Hashable = ("unread",)

VersionReader = Callable[[Collection[int]], dict[int, Hashable]]


class ChangeWatch:
    """Reads the versions of every followed experiment once per ``interval`` and wakes the streams.

    Args:
        read: the versions of some experiments (missing ids: the experiment is gone); runs in the
            threadpool.
        interval: seconds between two reads.
    """

    def __init__(self, read: VersionReader, interval: float):
        self.read = read
        self.interval = interval
        self.reads = 0
        self._followers: Counter[int] = Counter()
        self._versions: dict[int, Hashable] = {}
        self._read_ids: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._tick: asyncio.Event | None = None
        self._shared: dict[Hashable, asyncio.Task[Any]] = {}
        self._limiter: CapacityLimiter | None = None

    @property
    def followed(self) -> int:
        """Streams following an experiment now."""
        return sum(self._followers.values())

    def version(self, experiment_id: int) -> Hashable:
        """The experiment's version at the last read (``UNREAD`` before its first, None once gone)."""
        if experiment_id not in self._read_ids:
            return UNREAD
        return self._versions.get(experiment_id)

    @asynccontextmanager
    async def following(self, experiment_id: int) -> AsyncIterator[None]:
        """While inside, the experiment's version is read every interval."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests start one per client): start afresh
            self._loop, self._task, self._tick, self._versions, self._read_ids = loop, None, None, {}, set()
            self._shared, self._limiter = {}, CapacityLimiter(FEED_READERS)
        self._followers[experiment_id] += 1
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="event-watch")
        try:
            yield
        finally:
            self._followers[experiment_id] -= 1
            if self._followers[experiment_id] <= 0:
                del self._followers[experiment_id]

    async def shared(self, key: Hashable, read: Callable[[], Result]) -> Result:
        """``read()`` in the threadpool, once for every caller with the same ``key`` until the next
        version read (later callers get the first one's result; at most ``FEED_READERS`` at a time).

        Args:
            key: what makes two reads the same (the experiment, its version and the reader's position).
            read: the blocking read.

        Returns:
            What ``read`` returned (callers share it: treat it as read-only).
        """
        pending = self._shared.get(key)
        if pending is None:
            limiter = self._limiter
            pending = asyncio.ensure_future(anyio.to_thread.run_sync(read, limiter=limiter))
            self._shared[key] = pending
        result: Result = await asyncio.shield(pending)  # one caller going away leaves the read to others
        return result

    async def next_read(self, timeout: float) -> None:
        """Wait until the next read has finished, or ``timeout`` seconds."""
        if self._tick is None:
            self._tick = asyncio.Event()
        try:
            await asyncio.wait_for(self._tick.wait(), timeout)
        except TimeoutError:
            pass

    async def _run(self) -> None:
        while self._followers:
            await asyncio.sleep(self.interval)
            ids = list(self._followers)
            if not ids:
                break
            try:
                versions = await run_in_threadpool(self.read, ids)
            except Exception:  # the database is away: keep the streams waiting, try again next time
                logger.exception("event watch: reading experiment versions failed")
            else:
                self._versions, self._read_ids, self._shared = versions, set(ids), {}
                self.reads += 1
            tick, self._tick = self._tick, asyncio.Event()
            if tick is not None:
                tick.set()

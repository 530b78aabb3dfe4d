"""How many event streams may be open at once, in all and per client address.

A stream takes a slot before its response starts and gives it back when the response ends, however it
ends: the experiment finished, the stream grew too old, or the client went away (the server cancels
the response, and :class:`SlotStreamingResponse` releases in a ``finally``). A request that finds no
free slot is answered ``429`` with ``Retry-After`` and an ``ErrorBody`` before anything streams.

The client is the connection's address as the server sees it; behind a reverse proxy every client
shares the proxy's address, so there the total limit is the one that matters.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from backend.api.app_state import made_once
from backend.schemas import ErrorBody
from backend.settings import Settings

#: Seconds a refused client is asked to wait before trying again.
RETRY_AFTER_SECONDS = 10


class StreamSlots:
    """Counts open streams, in all and per client (thread-safe: routes run in the threadpool).

    Args:
        total: most streams open at once.
        per_client: most streams one client address may hold at once.
    """

    def __init__(self, total: int, per_client: int):
        self.total = total
        self.per_client = per_client
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        """Streams open now."""
        with self._lock:
            return sum(self._open.values())

    def open_for(self, client: str) -> int:
        """Streams ``client`` holds now."""
        with self._lock:
            return self._open[client]

    def acquire(self, client: str) -> str | None:
        """Take a slot for ``client``.

        Returns:
            None when taken (give it back with :meth:`release`); otherwise why not, for the caller.
        """
        with self._lock:
            if self._open[client] >= self.per_client:
                return (
                    f"this client has {self._open[client]} event streams open, the most this server allows "
                    f"(PRUNELAB_MAX_STREAMS_PER_CLIENT={self.per_client}); close one or retry later"
                )
            if sum(self._open.values()) >= self.total:
                return (
                    f"this server has {self.total} event streams open, the most it allows "
                    "(PRUNELAB_MAX_STREAMS); retry later"
                )
            self._open[client] += 1
            return None

    def release(self, client: str) -> None:
        """Give back one of ``client``'s slots."""
        with self._lock:
            self._open[client] -= 1
            if self._open[client] <= 0:
                del self._open[client]


def stream_slots(app: FastAPI, settings: Settings) -> StreamSlots:
    """The app's stream slots (made on first use from the settings)."""
    return made_once(
        app, "stream_slots", lambda: StreamSlots(settings.max_streams, settings.max_streams_per_client)
    )


def too_many_streams(reason: str) -> JSONResponse:
    """The ``429`` answer to a stream that found no free slot."""
    body = ErrorBody(detail=reason, code="too_many_streams")
    return JSONResponse(
        body.model_dump(mode="json"), status_code=429, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


class SlotStreamingResponse(StreamingResponse):
    """A streaming response that gives its stream slot back when it ends, however it ends.

    Args:
        content: the stream.
        slots: where the slot was taken.
        client: whose slot it is.
        **kwargs: as for ``StreamingResponse``.
    """

    def __init__(self, content: Any, slots: StreamSlots, client: str, **kwargs: Any):
        super().__init__(content, **kwargs)
        self.slots = slots
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slots.release(self.client)

"""Live progress of one experiment as server-sent events (``text/event-stream``).

The route itself is a plain ``def`` (its existence check runs in the threadpool). The stream is an
async generator that waits on the event loop for the app's :class:`~backend.api.event_watch.ChangeWatch`
(one shared read per poll interval for every open stream) and reads its feed in the threadpool only
when its experiment changed, so an open stream holds no thread and almost no database time while it
waits. Streams are capped in all and per client address (``backend.api.stream_slots``): beyond the cap
the answer is ``429`` with ``Retry-After``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Collection, Hashable
from functools import partial
from typing import Annotated

import anyio
from fastapi import APIRouter, FastAPI, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from backend.api.app_state import made_once
from backend.api.deps import AppContext, ContextDep
from backend.api.event_watch import ChangeWatch
from backend.api.stream_slots import SlotStreamingResponse, stream_slots, too_many_streams
from backend.auth.deps import VisibleExperimentId
from backend.db import session_scope
from backend.schemas import ErrorBody
from backend.service.events import BATCH, Cursor, Event, EventFeed, experiment_versions

router = APIRouter(prefix="/experiments", tags=["events"])

#: Milliseconds a browser waits before reconnecting (sent as the stream's ``retry``).
RETRY_MS = 2000
#: A comment line is sent when nothing else was for this long, so proxies keep the stream open.
KEEPALIVE_SECONDS = 15.0
#: A stream closes after this long; the browser reconnects with ``Last-Event-ID`` and resumes.
MAX_STREAM_SECONDS = 1800.0


def _poll(context: AppContext, feed: EventFeed) -> tuple[list[Event], EventFeed]:
    """The events of a copy of ``feed`` and the copy after them (the caller's feed is not touched)."""
    after = dataclasses.replace(feed)
    with session_scope(context.session_factory) as session:
        return after.poll(session), after


def change_watch(app: FastAPI, context: AppContext) -> ChangeWatch:
    """The app's change watch (made on first use; it reads every ``event_poll_seconds``)."""

    def read(experiment_ids: Collection[int]) -> dict[int, Hashable]:
        with session_scope(context.session_factory) as session:
            return experiment_versions(session, experiment_ids)

    return made_once(app, "change_watch", lambda: ChangeWatch(read, context.event_poll_seconds))


def _full_batch(events: list[Event]) -> bool:
    """Whether a read stopped at its batch size (more rows wait: read again without a change)."""
    return any(sum(event.kind == kind for event in events) >= BATCH for kind in ("epoch", "cycle"))


async def event_stream(context: AppContext, feed: EventFeed, watch: ChangeWatch) -> AsyncIterator[str]:
    """The feed's events as SSE text until the experiment ends or the stream is too old.

    Args:
        context: where sessions come from.
        feed: the experiment's feed, positioned at the client's cursor.
        watch: tells when the experiment changed (the feed is read only then, or while a read that
            stopped at its batch size catches up).
    """
    yield f"retry: {RETRY_MS}\n\n"
    started = last_sent = anyio.current_time()
    seen: Hashable = None
    catching_up = True
    async with watch.following(feed.experiment_id):
        while True:
            version = watch.version(feed.experiment_id)
            events: list[Event] = []
            if catching_up or version != seen:
                seen = version
                key = (version, dataclasses.astuple(feed))  # same experiment, version and position
                events, after = await watch.shared(key, partial(_poll, context, feed))
                feed = dataclasses.replace(after)  # this stream's own copy of the shared result
                catching_up = _full_batch(events)
            for event in events:
                yield event.encode()
            now = anyio.current_time()
            if events:
                last_sent = now
            elif now - last_sent >= KEEPALIVE_SECONDS:
                last_sent = now
                yield ": keep-alive\n\n"
            if feed.finished or now - started >= MAX_STREAM_SECONDS:
                return
            await watch.next_read(timeout=KEEPALIVE_SECONDS)


@router.get(
    "/{experiment_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "status, epoch, cycle and end events"},
        404: {"model": ErrorBody, "description": "no such experiment"},
        429: {"model": ErrorBody, "description": "too many streams open (see Retry-After)"},
    },
    summary="Follow an experiment live",
)
def follow_experiment(
    experiment_id: VisibleExperimentId,
    context: ContextDep,
    request: Request,
    since: Annotated[str | None, Query(description="resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header(description="set by the browser when it reconnects")] = None,
) -> Response:
    """Server-sent events: ``epoch`` and ``cycle`` as the worker records them (the database is read
    every half second), ``status`` on every change of state, and ``end`` once the experiment finished.
    Every event's id is a cursor: reconnecting with ``Last-Event-ID`` (or ``since``) resumes after it.
    Open streams are capped in all and per client address (``PRUNELAB_MAX_STREAMS``,
    ``PRUNELAB_MAX_STREAMS_PER_CLIENT``): beyond the cap the answer is ``429`` with ``Retry-After``.
    A ``Last-Event-ID`` this server never wrote replays from the start; such a ``since`` is a 422."""
    cursor = Cursor.resume(last_event_id) if last_event_id else Cursor.parse(since)
    slots = stream_slots(request.app, context.settings)
    client = request.client.host if request.client is not None else "unknown"
    refused = slots.acquire(client)
    if refused is not None:
        return too_many_streams(refused)
    return SlotStreamingResponse(
        event_stream(context, EventFeed(experiment_id, cursor), change_watch(request.app, context)),
        slots,
        client,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

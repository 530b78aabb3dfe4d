"""Live progress of one experiment as server-sent events (``text/event-stream``).

The route itself is a plain ``def`` (its existence check runs in the threadpool). The stream is an
async generator that runs each database poll in the threadpool and sleeps on the event loop, so an
open stream holds a worker thread only for the milliseconds a poll takes, not for its whole life.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from backend.api.deps import AppContext, ContextDep, ExperimentId
from backend.db import session_scope
from backend.schemas import ErrorBody
from backend.service.events import Cursor, Event, EventFeed
from backend.service.queries import require_experiment

router = APIRouter(prefix="/experiments", tags=["events"])

#: Milliseconds a browser waits before reconnecting (sent as the stream's ``retry``).
RETRY_MS = 2000
#: A comment line is sent when nothing else was for this long, so proxies keep the stream open.
KEEPALIVE_SECONDS = 15.0
#: A stream closes after this long; the browser reconnects with ``Last-Event-ID`` and resumes.
MAX_STREAM_SECONDS = 1800.0


def _poll(context: AppContext, feed: EventFeed) -> list[Event]:
    with session_scope(context.session_factory) as session:
        return feed.poll(session)


async def event_stream(context: AppContext, feed: EventFeed) -> AsyncIterator[str]:
    """The feed's events as SSE text until the experiment ends or the stream is too old.

    Args:
        context: where sessions come from and how often to poll.
        feed: the experiment's feed, positioned at the client's cursor.
    """
    yield f"retry: {RETRY_MS}\n\n"
    started = last_sent = anyio.current_time()
    while True:
        events = await run_in_threadpool(_poll, context, feed)
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
        await anyio.sleep(context.event_poll_seconds)


@router.get(
    "/{experiment_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "status, epoch, cycle and end events"},
        404: {"model": ErrorBody, "description": "no such experiment"},
    },
    summary="Follow an experiment live",
)
def follow_experiment(
    experiment_id: ExperimentId,
    context: ContextDep,
    since: Annotated[str | None, Query(description="resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header(description="set by the browser when it reconnects")] = None,
) -> StreamingResponse:
    """Server-sent events: ``epoch`` and ``cycle`` as the worker records them (the database is read
    every half second), ``status`` on every change of state, and ``end`` once the experiment finished.
    Every event's id is a cursor: reconnecting with ``Last-Event-ID`` (or ``since``) resumes after it.
    A ``Last-Event-ID`` this server never wrote replays from the start; such a ``since`` is a 422."""
    cursor = Cursor.resume(last_event_id) if last_event_id else Cursor.parse(since)
    with session_scope(context.session_factory) as session:
        require_experiment(session, experiment_id)
    return StreamingResponse(
        event_stream(context, EventFeed(experiment_id, cursor)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

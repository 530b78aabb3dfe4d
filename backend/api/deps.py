"""What routes receive instead of looking things up: the app's context, a session, the queue, and
validated ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from pydantic import BeforeValidator
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.db import session_scope
from backend.schemas import ID_TEXT, MAX_ID
from backend.service.ports import Queue
from backend.settings import Settings


@dataclass(frozen=True)
class AppContext:
    """The dependencies ``create_app`` was given, kept on ``app.state.context``.

    Attributes:
        settings: the service's settings.
        engine: the database engine.
        session_factory: makes sessions on ``engine``.
        queue: where new experiments' ids go.
        event_poll_seconds: how often an event stream reads the database.
    """

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    queue: Queue
    event_poll_seconds: float


def get_context(request: Request) -> AppContext:
    """The context of the app serving this request."""
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    """A session for one request: committed when the route returns, rolled back when it raises."""
    with session_scope(context.session_factory) as session:
        yield session


def get_queue(context: ContextDep) -> Queue:
    """The queue new experiments go to."""
    return context.queue


#: ``scope="function"``: the session commits when the route returns, before the response is sent. With the
#: default (``"request"``) the commit ran after the response went out, so a client acting on a 201/303 at
#: once (sign in, then read /api/me) could find the row not yet committed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
QueueDep = Annotated[Queue, Depends(get_queue)]


def decimal_id(value: object) -> object:
    """A path's id text as written, refused unless plain decimal digits (``1.0``, `` 1``, ``+1``, ``01`` are
    not ids; pydantic would read them as 1). The range is checked after, by the type's bounds.

    Raises:
        ValueError: the text is not an id.
    """
    if isinstance(value, str) and ID_TEXT.fullmatch(value) is None:
        raise ValueError(f"an id is a decimal integer from 1 to {MAX_ID}, without sign, point or spaces")
    return value


#: Refuses id text pydantic would read leniently; each id type then bounds the value to the id columns.
DECIMAL_ID = BeforeValidator(decimal_id)
ExperimentId = Annotated[int, Path(ge=1, le=MAX_ID, description="the experiment's id"), DECIMAL_ID]
ArtifactId = Annotated[int, Path(ge=1, le=MAX_ID, description="the artifact's id"), DECIMAL_ID]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="the crossover run's id"), DECIMAL_ID]

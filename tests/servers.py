"""For tests that talk HTTP to the app (httpx, Chromium, the CLI): a real uvicorn server in a thread,
and the queue the app is given when no worker should run (it records what was enqueued)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class RecordingQueue:
    """A queue that remembers the ids it was given (no ``ping``: the health check skips it).

    Attributes:
        ids: enqueued ids in order.
        on_enqueue: called with each id before it is recorded (a test checks the row is committed).
        error: raised by ``enqueue`` instead of recording, when set.
    """

    ids: list[int] = field(default_factory=list)
    on_enqueue: Callable[[int], None] | None = None
    error: Exception | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(self, experiment_id: int) -> None:
        if self.error is not None:
            raise self.error
        if self.on_enqueue is not None:
            self.on_enqueue(experiment_id)
        with self._lock:
            self.ids.append(experiment_id)


@dataclass
class LiveServer:
    """A uvicorn server in a thread on a free loopback port."""

    url: str
    server: uvicorn.Server


@contextmanager
def live_server(app: Any, start_seconds: float = 15) -> Iterator[LiveServer]:
    """Serve ``app`` on ``127.0.0.1`` (an ephemeral port) until the block ends.

    Raises:
        RuntimeError: the server did not start within ``start_seconds``.
    """
    # log_config None: uvicorn's dictConfig would close the handlers pytest captures logs with
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", log_config=None, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_seconds
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --------------------------------------------------------------------------------------------- signed in

#: The user the fixtures sign in as.
TEST_ADMIN = "test-admin"


def admin_token(app: Any, name: str = TEST_ADMIN) -> str:
    """Create an admin user in the app's database (once per name) and return a new API token for them."""
    from sqlalchemy import update

    from backend.auth.keys import digest
    from backend.auth.roles import Role
    from backend.auth.users import add_user, issue_token
    from backend.db import session_scope
    from backend.models import ApiToken, User, utcnow

    with session_scope(app.state.context.session_factory) as session:
        user = session.query(User).filter(User.name == name).first()
        # another app on the same database keeps its own token: add one, revoke nothing
        token = issue_token(session, user) if user is not None else add_user(session, name, Role.admin)
        # used today already: tests that count a request's statements see no daily audit event
        session.execute(
            update(ApiToken).where(ApiToken.token_hash == digest(token)).values(last_used_at=utcnow())
        )
        return token


class DefaultAuthorization:
    """ASGI middleware: a request with neither an ``Authorization`` header nor a session cookie is sent
    as ``Authorization: Bearer <token>`` (the fixtures' clients act as a signed-in admin by default)."""

    def __init__(self, app: Any, token: str):
        self.app = app
        self.header = (b"authorization", f"Bearer {token}".encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            names = {name for name, _ in scope["headers"]}
            cookies = b"".join(value for name, value in scope["headers"] if name == b"cookie")
            if b"authorization" not in names and b"prunelab_session=" not in cookies:
                scope = {**scope, "headers": [*scope["headers"], self.header]}
        await self.app(scope, receive, send)


def signed_in_as_admin(app: Any) -> Any:
    """``app``, with every request lacking credentials sent as the test admin (see ``DefaultAuthorization``).

    Returns:
        The same app (its ``state.admin_token`` holds the token).
    """
    from sqlalchemy.exc import DBAPIError

    try:
        token = admin_token(app)
    except DBAPIError:  # a test of an unreachable or unmigrated database: nobody can sign in there
        return app
    app.add_middleware(DefaultAuthorization, token=token)
    app.state.admin_token = token
    return app


def admin_app(*args: Any, **kwargs: Any) -> Any:
    """``backend.app.create_app(...)`` signed in as the test admin (``signed_in_as_admin``): the drop-in
    test modules import as ``create_app`` when they build their own app."""
    from backend.app import create_app

    return signed_in_as_admin(create_app(*args, **kwargs))

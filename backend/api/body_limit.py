"""A cap on request bodies, enforced while they stream in (ASGI middleware).

A request whose ``Content-Length`` is over the limit is answered ``413`` at once, before any of its body
is read. A body without a length (chunked) or one that lies about it is counted as its chunks arrive;
the chunk that crosses the limit stops the reading, and whatever the route was about to answer is
replaced by the ``413``. Either way the server never holds more than the limit (plus one chunk) of a
body. The answer is an ``ErrorBody`` (``code`` ``body_too_large``) that names the limit.

The limit is one number for every path (``Settings.max_body_bytes``), except where a path prefix has its
own (``limits_by_prefix``; the longest matching prefix wins), e.g. a future upload route that takes
files larger than any JSON body.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.schemas import ErrorBody

#: The setting behind the default limit (named in the answer).
SETTING_NAME = "PRUNELAB_MAX_BODY_BYTES"


class BodyTooLarge(Exception):
    """Raised into the app from ``receive`` once the body crossed the limit (the app stops reading)."""


def too_large(limit: int) -> JSONResponse:
    """The ``413`` answer for a body over ``limit`` bytes."""
    body = ErrorBody(
        detail=f"the request body is over {limit:,} bytes, this server's limit ({SETTING_NAME})",
        code="body_too_large",
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=413, headers={"Connection": "close"})


class BodyLimit:
    """ASGI middleware that refuses request bodies over a size, counting bytes as they arrive.

    Args:
        app: the application it wraps.
        max_bytes: the most bytes of a body on any path.
        limits_by_prefix: path prefixes with their own limit (longest match wins). Default none.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limits_by_prefix: Mapping[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.limits_by_prefix = sorted((limits_by_prefix or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        """The body limit of a path: its longest matching prefix's, else ``max_bytes``."""
        for prefix, limit in self.limits_by_prefix:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if _declared_length(scope) > limit:
            await too_large(limit)(scope, receive, send)
            return
        received = 0
        exceeded = started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(f"request body over {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body cut short gives way to the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await too_large(limit)(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    """The request's ``Content-Length`` (0 when absent or not a plain number; the server checks it)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else 0
    return 0

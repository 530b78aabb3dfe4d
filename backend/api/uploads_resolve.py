"""The dependency that lets a request's spec name uploads by id (``prunespec.uploaded``).

Installed on every API route: it only sets a resolver for the request; the resolver signs the caller in
(``backend.auth.deps.current_user``) and reads the database the first time a spec names an upload, so
requests that name none cost nothing. Ids outside the caller's projects resolve to "no such upload".
"""

from __future__ import annotations

from fastapi import Request

from backend.api.deps import get_context
from backend.auth.deps import current_user
from backend.auth.roles import Identity
from backend.service.uploads import UploadResolver
from prunespec.uploaded import set_resolver


async def upload_resolver(request: Request) -> None:
    """Resolve upload ids in this request's spec for its caller (an async dependency: the resolver is set in
    the request's own context, where the body is validated after the dependencies)."""
    context = get_context(request)
    caller: list[Identity] = []

    def identity() -> Identity:
        if not caller:
            caller.append(current_user(request, context))
        return caller[0]

    set_resolver(UploadResolver(context.session_factory, identity))

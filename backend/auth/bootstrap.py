"""Starting a server safely: authentication off only on loopback, and the first admin's sign-in link."""

from __future__ import annotations

import ipaddress

from sqlalchemy.orm import Session, sessionmaker

from backend.auth.users import first_admin
from backend.db import session_scope
from backend.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class UnsafeBind(Exception):
    """Authentication is off and the server would listen beyond this machine."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_safe_bind(settings: Settings) -> None:
    """Refuse authentication off on a non-loopback address.

    Raises:
        UnsafeBind: ``auth`` is off and ``host`` is not a loopback address.
    """
    if not settings.auth and not is_loopback(settings.host):
        raise UnsafeBind(
            f"refusing to listen on {settings.host} with authentication off: PRUNELAB_AUTH=off is only "
            "for 127.0.0.1/localhost. Turn authentication on (the default) or bind to 127.0.0.1."
        )


def signin_url(settings: Settings, sessions: sessionmaker[Session]) -> str | None:
    """On a database without users: create the admin and return their one-time sign-in URL.

    Returns:
        ``http://HOST:PORT/signin?token=...``, or None when users exist (or authentication is off).
    """
    if not settings.auth:
        return None
    with session_scope(sessions) as session:
        token = first_admin(session)
    if token is None:
        return None
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "[::]") else settings.host
    return f"http://{host}:{settings.port}/signin?token={token}"

"""Browser sessions: opened by signing in, found by their cookie, ended by signing out or expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.keys import digest, new_secret
from backend.models import User, WebSession, utcnow


@dataclass(frozen=True)
class OpenedSession:
    """What the browser is given: the session secret (HttpOnly cookie) and the CSRF token."""

    secret: str
    csrf_token: str
    max_age_seconds: int


def open_session(session: Session, user: User, days: float) -> OpenedSession:
    """Start a session for ``user`` lasting ``days``."""
    secret, csrf = new_secret(), new_secret()
    lifetime = timedelta(days=days)
    session.add(
        WebSession(
            user_id=user.id, session_hash=digest(secret), csrf_token=csrf, expires_at=utcnow() + lifetime
        )
    )
    session.flush()
    return OpenedSession(secret, csrf, int(lifetime.total_seconds()))


def find_session(session: Session, secret: str) -> tuple[User, WebSession] | None:
    """The live session a cookie names and its user (None: unknown, ended, expired or user inactive)."""
    row = session.scalar(
        select(WebSession).where(WebSession.session_hash == digest(secret), WebSession.ended_at.is_(None))
    )
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user, row


def end_session(session: Session, secret: str) -> None:
    """End the session a cookie names (nothing when it is unknown)."""
    session.execute(
        update(WebSession)
        .where(WebSession.session_hash == digest(secret), WebSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )

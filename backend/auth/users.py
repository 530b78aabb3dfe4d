"""Users and their API tokens: add, list, revoke, reset, and recognise a token.

A token is shown once, when it is made; only its SHA-256 digest is stored. A ``signin`` token (the
link ``prunelab serve`` prints on a fresh data directory) is spent by its first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.auth.keys import digest, new_secret
from backend.auth.roles import Role
from backend.models import DEFAULT_PROJECT_ID, ApiToken, Membership, User, WebSession, utcnow
from backend.service.errors import Conflict, InvalidInput, NotFound

#: A user name: letters, digits and ``._@-``, 1 to 100 characters.
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
#: The admin ``prunelab serve`` creates on a fresh data directory.
FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class UserInfo:
    """A user as ``prunelab users list`` shows it (no secrets)."""

    name: str
    role: str
    active: bool
    tokens: int
    last_used_at: datetime | None


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound("user", name)
    return user


def issue_token(session: Session, user: User, kind: str = "api") -> str:
    """A new token for ``user`` (``api`` or ``signin``); returns the secret, stored only as its hash."""
    secret = new_secret()
    session.add(ApiToken(user_id=user.id, token_hash=digest(secret), kind=kind))
    session.flush()
    return secret


def add_user(session: Session, name: str, role: Role, project_id: int = DEFAULT_PROJECT_ID) -> str:
    """Create a user, a member of ``project_id`` with the same role, and return their first API token.

    Raises:
        InvalidInput: the name is not a user name.
        Conflict: a user of that name exists.
    """
    if USER_NAME.fullmatch(name) is None:
        raise InvalidInput(
            ("name",), "a user name is 1-100 letters, digits or ._@- (starting with a letter/digit)"
        )
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name} exists")
    user = User(name=name, role=Role(role).value, active=True)
    session.add(user)
    session.flush()
    session.add(Membership(project_id=project_id, user_id=user.id, role=Role(role).value))
    return issue_token(session, user)


def list_users(session: Session) -> list[UserInfo]:
    """Every user with the number of live tokens and when one was last used."""
    tokens = (
        select(
            ApiToken.user_id,
            func.count(ApiToken.id).label("tokens"),
            func.max(ApiToken.last_used_at).label("last_used"),
        )
        .where(ApiToken.revoked_at.is_(None), ApiToken.kind == "api")
        .group_by(ApiToken.user_id)
        .subquery()
    )
    rows = session.execute(
        select(User, tokens.c.tokens, tokens.c.last_used)
        .outerjoin(tokens, tokens.c.user_id == User.id)
        .order_by(User.name)
    )
    return [
        UserInfo(user.name, user.role, user.active, count or 0, last_used) for user, count, last_used in rows
    ]


def revoke_user(session: Session, name: str) -> None:
    """Revoke every token and end every session of the user at once (they can no longer sign in).

    Raises:
        NotFound: no such user.
    """
    user = _user(session, name)
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        update(WebSession)
        .where(WebSession.user_id == user.id, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )


def reset_token(session: Session, name: str) -> str:
    """Revoke the user's tokens and sessions and return a new API token.

    Raises:
        NotFound: no such user.
    """
    revoke_user(session, name)
    return issue_token(session, _user(session, name))


#: How fresh a token's ``last_used_at`` is kept (it is written at most this often).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenUse:
    """A recognised token: its user, and whether this is its first use today (audited once a day)."""

    user: User
    first_today: bool


def use_token(session: Session, secret: str, kind: str | None = "api") -> TokenUse | None:
    """The user a live token of ``kind`` (None: either kind) belongs to, marking it used (a ``signin``
    token is spent).

    Returns:
        None when the token is unknown, revoked, spent or its user inactive.
    """
    query = select(ApiToken).where(ApiToken.token_hash == digest(secret), ApiToken.revoked_at.is_(None))
    token = session.scalar(query if kind is None else query.where(ApiToken.kind == kind))
    if token is None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    first_today = token.last_used_at is None or token.last_used_at.date() != now.date()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # at most one write a minute per token: a read-only request then writes nothing
        token.last_used_at = now
    if token.kind == "signin":
        spent = session.execute(
            update(ApiToken)
            .where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            return None
    return TokenUse(user, first_today)


def first_admin(session: Session) -> str | None:
    """On a database without users: create the admin and return a one-time sign-in token for them.

    Returns:
        The sign-in secret, or None when users exist already.
    """
    if session.scalar(select(func.count(User.id))):
        return None
    add_user(session, FIRST_ADMIN, Role.admin)
    return issue_token(session, _user(session, FIRST_ADMIN), kind="signin")


def signin_link(session: Session, name: str) -> str:
    """A one-time sign-in token for an existing user.

    Raises:
        NotFound: no such user.
    """
    return issue_token(session, _user(session, name), kind="signin")

"""The one dependency every router uses: who is calling (``CurrentUser``), and what they may touch.

A request proves who it is with ``Authorization: Bearer <token>`` (API clients; no CSRF token needed) or
with the session cookie the sign-in page sets (browsers; every state-changing request then also sends
the ``prunelab_csrf`` cookie's value in ``X-CSRF-Token``). Viewers only read: any other method is
refused for them here, once. With ``auth`` off (loopback only) every request is the local admin.

Experiments are reached through ``VisibleExperimentId`` (404 outside the caller's projects, so ids do
not leak) and changed through ``ManagedExperimentId`` (their owner, or an admin).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.app_state import made_once
from backend.api.deps import ArtifactId, ContextDep, ExperimentId, SessionDep
from backend.auth import audit
from backend.auth.errors import Forbidden, NotSignedIn, TooManyRequests
from backend.auth.projects import memberships
from backend.auth.roles import Identity, Role
from backend.auth.sessions import find_session
from backend.auth.throttle import SlidingWindow
from backend.auth.users import use_token
from backend.db import session_scope
from backend.models import Artifact, Experiment, User
from backend.service.errors import NotFound
from backend.settings import Settings

SESSION_COOKIE = "prunelab_session"
CSRF_COOKIE = "prunelab_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The caller when authentication is off (loopback only).
LOCAL_ADMIN = Identity(user_id=None, name="local", role=Role.admin, projects=None, via="local")


def client_address(request: Request) -> str:
    """The address the request came from ("" when unknown)."""
    return request.client.host if request.client is not None else ""


def identity_of(session: Session, user: User, via: str) -> Identity:
    """A user as the caller of a request (admins see every project)."""
    role = Role(user.role)
    projects = None if role is Role.admin else memberships(session, user.id)
    return Identity(user_id=user.id, name=user.name, role=role, projects=projects, via=via)


def _bearer(request: Request, session: Session) -> Identity:
    scheme, _, secret = request.headers["authorization"].partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise NotSignedIn("send the API token as 'Authorization: Bearer <token>'")
    use = use_token(session, secret.strip())
    if use is None:
        raise NotSignedIn("the API token is unknown or revoked")
    if use.first_today:
        audit.record(session, use.user.name, "token.use", f"user {use.user.name}", client_address(request))
    return identity_of(session, use.user, "token")


def _cookie(request: Request, session: Session, secret: str) -> Identity:
    found = find_session(session, secret)
    if found is None:
        raise NotSignedIn("your session has ended; sign in again at /signin")
    user, row = found
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), row.csrf_token.encode()):
            raise Forbidden(f"the {CSRF_HEADER} header is missing or wrong; reload the page")
    return identity_of(session, user, "session")


def current_user(request: Request, context: ContextDep) -> Identity:
    """The signed-in caller (read in a short transaction of its own, committed at once: a token's
    last use and its audit event are kept even when the route then fails, and an event stream holds
    no connection).

    Raises:
        NotSignedIn: no token or session, or an unknown, revoked or expired one (401; pages: 303).
        Forbidden: a cookie request that changes something without the CSRF token, or a viewer
            asking to change something (403).
    """
    if not context.settings.auth:
        return LOCAL_ADMIN
    secret = request.cookies.get(SESSION_COOKIE)
    if "authorization" not in request.headers and not secret:
        raise NotSignedIn("sign in: send 'Authorization: Bearer <token>', or sign in at /signin")
    with session_scope(context.session_factory) as session:
        if "authorization" in request.headers:
            identity = _bearer(request, session)
        else:
            identity = _cookie(request, session, secret or "")
    if request.method not in SAFE_METHODS and identity.role is Role.viewer:
        raise Forbidden("viewers can read but not change anything")
    return identity


CurrentUser = Annotated[Identity, Depends(current_user)]


def require(role: Role) -> Callable[[Identity], Identity]:
    """A dependency: the caller, refused (403) unless their role includes ``role``."""

    def check(user: CurrentUser) -> Identity:
        if not user.role.at_least(role):
            raise Forbidden(f"this needs the {role.value} role")
        return user

    return check


AdminUser = Annotated[Identity, Depends(require(Role.admin))]


def visible_experiment(experiment_id: ExperimentId, user: CurrentUser, context: ContextDep) -> int:
    """The path's experiment id, when the caller may see it.

    Raises:
        NotFound: no such experiment, or it is in a project the caller is not in (the same 404).
    """
    with session_scope(context.session_factory) as session:
        project_id = session.scalar(select(Experiment.project_id).where(Experiment.id == experiment_id))
    if project_id is None or not user.sees(project_id):
        raise NotFound("experiment", experiment_id)
    return experiment_id


VisibleExperimentId = Annotated[int, Depends(visible_experiment)]


def managed_experiment(experiment_id: VisibleExperimentId, user: CurrentUser, context: ContextDep) -> int:
    """The path's experiment id, when the caller may change it: an admin, or its owner while a member
    of its project.

    Raises:
        NotFound: the caller cannot see it.
        Forbidden: they see it but may not change it.
    """
    if user.is_admin:
        return experiment_id
    with session_scope(context.session_factory) as session:
        row = session.execute(
            select(Experiment.owner_id, Experiment.project_id).where(Experiment.id == experiment_id)
        ).one()
    role = user.role_in(row.project_id)
    if row.owner_id is None or row.owner_id != user.user_id or role is None or not role.at_least(Role.member):
        raise Forbidden(f"only its owner or an admin may change experiment {experiment_id}")
    return experiment_id


ManagedExperimentId = Annotated[int, Depends(managed_experiment)]


def visible_artifact(artifact_id: ArtifactId, user: CurrentUser, context: ContextDep) -> int:
    """The path's artifact id, when the caller may see its experiment.

    Raises:
        NotFound: no such artifact, or its experiment is outside the caller's projects.
    """
    with session_scope(context.session_factory) as session:
        project_id = session.scalar(
            select(Experiment.project_id)
            .join(Artifact, Artifact.experiment_id == Experiment.id)
            .where(Artifact.id == artifact_id)
        )
    if project_id is None or not user.sees(project_id):
        raise NotFound("artifact", artifact_id)
    return artifact_id


VisibleArtifactId = Annotated[int, Depends(visible_artifact)]


def require_visible(session: Session, user: Identity, experiment_ids: list[int]) -> None:
    """Refuse (404, naming the first) ids the caller may not see, as a list route's filter.

    Raises:
        NotFound: an id does not exist or is outside the caller's projects.
    """
    found = select(Experiment.id, Experiment.project_id).where(Experiment.id.in_(experiment_ids))
    rows = {row.id: row.project_id for row in session.execute(found)}
    for experiment_id in experiment_ids:
        project_id = rows.get(experiment_id)
        if project_id is None or not user.sees(project_id):
            raise NotFound("experiment", experiment_id)


@dataclass(frozen=True)
class Throttles:
    """The app's counters: sign-in failures per address and per user name, submissions per user."""

    signin_by_address: SlidingWindow
    signin_by_user: SlidingWindow
    submissions: SlidingWindow


def throttles(request: Request, context: ContextDep) -> Throttles:
    """This app's counters (made on first use)."""
    settings: Settings = context.settings

    def make() -> Throttles:
        return Throttles(
            SlidingWindow(settings.signin_attempts, settings.signin_lock_seconds),
            SlidingWindow(settings.signin_attempts, settings.signin_lock_seconds),
            SlidingWindow(settings.submissions_per_minute, 60.0),
        )

    return made_once(request.app, "auth_throttles", make)


ThrottlesDep = Annotated[Throttles, Depends(throttles)]


def submitter(user: CurrentUser, limits: ThrottlesDep, context: ContextDep) -> Identity:
    """The caller, counted against the submissions per user per minute.

    Raises:
        TooManyRequests: over ``submissions_per_minute`` (429 with ``Retry-After``).
    """
    wait = limits.submissions.wait(user.name)
    if wait > 0:
        raise TooManyRequests(
            f"at most {context.settings.submissions_per_minute} experiments per user per minute; "
            f"try again in {wait:.0f} s",
            wait,
        )
    limits.submissions.add(user.name)
    return user


Submitter = Annotated[Identity, Depends(submitter)]


@dataclass(frozen=True)
class AuditLog:
    """Records the caller's actions in the audit trail (with the request's transaction)."""

    session: Session
    actor: str
    address: str

    def __call__(self, action: str, target: str = "", **detail: Any) -> None:
        """Record ``action`` on ``target`` by the caller."""
        audit.record(self.session, self.actor, action, target, self.address, **detail)


def audit_log(request: Request, user: CurrentUser, session: SessionDep) -> AuditLog:
    """The caller's audit log."""
    return AuditLog(session, user.name, client_address(request))


AuditDep = Annotated[AuditLog, Depends(audit_log)]

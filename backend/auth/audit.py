"""The audit trail: who did what, when, from which address."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.models import AuditEvent


class AuditEventOut(BaseModel):
    """One audited action (``GET /api/audit``)."""

    id: int
    at: str
    actor: str | None
    action: str
    target: str
    address: str
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """One page of the audit trail, newest first, and how many events there are."""

    total: int
    items: list[AuditEventOut]


def record(
    session: Session, actor: str | None, action: str, target: str = "", address: str = "", **detail: Any
) -> None:
    """Add an event to the trail (written with the caller's transaction).

    Args:
        session: an open session.
        actor: the user's name (None: unknown, e.g. a failed sign-in).
        action: e.g. ``experiment.create``, ``signin.failure``, ``token.use``, ``user.add``.
        target: what it was done to, e.g. ``experiment 12``.
        address: the client's address.
        detail: anything else worth keeping (JSON).
    """
    session.add(
        AuditEvent(actor=actor, action=action[:32], target=target[:200], address=address[:64], detail=detail)
    )


def audit_page(session: Session, offset: int, limit: int) -> AuditPage:
    """Events newest first, ``limit`` from ``offset``."""
    total = session.scalar(select(func.count(AuditEvent.id))) or 0
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).offset(offset).limit(limit))
    items = [
        AuditEventOut(
            id=row.id,
            at=row.at.isoformat(),
            actor=row.actor,
            action=row.action,
            target=row.target,
            address=row.address,
            detail=row.detail,
        )
        for row in rows
    ]
    return AuditPage(total=total, items=items)

"""Whether the service's dependencies answer: the database, its schema revision, the broker.

The health answer is public: a failed check says which dependency failed and the exception's type,
never its message (which names hosts, ports, users and file paths); the message goes to the server log.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text

from backend import migrate
from backend.schemas import Health, HealthCheck
from backend.service.ports import PingableQueue, Queue

logger = logging.getLogger(__name__)


def _error(check: str, exc: Exception) -> str:
    """What a caller learns about a failed check; the full exception goes to the log."""
    logger.warning("health check %s failed: %s: %s", check, type(exc).__name__, exc)
    return f"{type(exc).__name__} (details in the server log)"


def check_database(engine: Engine) -> HealthCheck:
    """The database answers ``SELECT 1``."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return HealthCheck(ok=False, detail=_error("database", exc))
    return HealthCheck(ok=True, detail=engine.dialect.name)


def check_migration(engine: Engine) -> HealthCheck:
    """The database's schema revision is this code's head revision."""
    try:
        at_head = migrate.is_at_head(engine)
    except Exception as exc:
        return HealthCheck(ok=False, detail=_error("migration", exc))
    if at_head:
        return HealthCheck(ok=True, detail="at head")
    return HealthCheck(ok=False, detail=f"not at head; run `{migrate.UPGRADE_COMMAND}`")


def check_queue(queue: Queue) -> HealthCheck:
    """The broker answers, for queues that can ``ping()``; other queues pass unchecked."""
    if not isinstance(queue, PingableQueue):
        return HealthCheck(ok=True, detail=f"{type(queue).__name__} cannot be pinged; not checked")
    try:
        reachable = queue.ping()
    except Exception as exc:
        return HealthCheck(ok=False, detail=_error("broker", exc))
    return HealthCheck(ok=reachable, detail="reachable" if reachable else "unreachable")


def check_health(engine: Engine, queue: Queue) -> Health:
    """Every check, and ``ok`` only when all of them passed.

    Args:
        engine: the service's database engine.
        queue: the service's queue.
    """
    checks = {
        "database": check_database(engine),
        "migration": check_migration(engine),
        "broker": check_queue(queue),
    }
    status = "ok" if all(check.ok for check in checks.values()) else "unavailable"
    return Health(status=status, checks=checks)

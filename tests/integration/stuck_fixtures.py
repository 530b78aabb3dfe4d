"""Helpers for the stuck-job tests (``test_stuck_*.py``): migrated databases of each kind, crossover rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from backend.db import make_engine, make_session_factory, session_scope
from backend.models import CrossoverRun
from backend.settings import Settings


def migrated_settings(request: pytest.FixtureRequest) -> Settings:
    """The ``migrated_sqlite_settings`` or ``migrated_postgres_settings`` fixture the parametrised request
    names (a database at head)."""
    chosen: Settings = request.getfixturevalue(f"migrated_{request.param}_settings")
    return chosen


def session_factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A session factory on the database of ``settings``; its engine is disposed afterwards."""
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def insert_crossover(
    sessions: sessionmaker[Session], densities: tuple[float, ...] = (0.25, 0.5, 1.0), **columns: Any
) -> int:
    """A crossover run (8 × 4 kernel, TensorFlow, queued unless ``columns`` say otherwise); returns its id."""
    with session_scope(sessions) as session:
        run = CrossoverRun(
            rows=8,
            cols=4,
            batch=1,
            backends=["tensorflow"],
            densities=list(densities),
            runs=1,
            warmup=0,
            threads=1,
            block_rows=1,
            **columns,
        )
        session.add(run)
        session.flush()
        return run.id

"""Integration fixtures: throwaway databases on the real PostgreSQL server, and settings for them.

The PostgreSQL server is ``postgresql://postgres@127.0.0.1:5432/postgres`` (trust auth) unless
``PRUNELAB_TEST_POSTGRES_ADMIN_URL`` names another maintenance database. Each test that asks for
``postgres_url`` gets a new, uniquely named database that is dropped afterwards. When the server is
unreachable the test fails in CI (``CI`` set) and is skipped elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from services import missing_service
from sqlalchemy import make_url

from backend.settings import Settings

ADMIN_URL = os.environ.get(
    "PRUNELAB_TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _admin_connection() -> psycopg.Connection:
    """An autocommit connection to the maintenance database (``CREATE DATABASE`` needs autocommit).

    Raises:
        pytest.fail.Exception: the server is unreachable and ``CI`` is set.
        pytest.skip.Exception: the server is unreachable outside CI.
    """
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        missing_service(f"PostgreSQL is unreachable at {ADMIN_URL}: {error}".strip())


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped when the test ends.

    Returns:
        Its SQLAlchemy URL: the admin URL with driver ``postgresql+psycopg`` and database
        ``prunelab_test_<hex>``.
    """
    name = f"prunelab_test_{uuid.uuid4().hex[:16]}"
    with _admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with _admin_connection() as admin:
            # FORCE: a test that forgot to dispose its engine must not leave the database behind
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings whose database and broker are SQLite files in ``tmp_path`` (whatever the environment says)."""
    return Settings(data_dir=tmp_path, database_url="", broker_url="")


@pytest.fixture
def postgres_settings(postgres_url: str, tmp_path: Path) -> Settings:
    """Settings for a throwaway PostgreSQL database, with the data directory in ``tmp_path``."""
    return Settings(data_dir=tmp_path, database_url=postgres_url, broker_url="")

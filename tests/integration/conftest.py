"""Integration fixtures: throwaway databases on the real PostgreSQL server, and settings for them.

The PostgreSQL server is ``postgresql://postgres@127.0.0.1:5432/postgres`` (trust auth) unless
``PRUNELAB_TEST_POSTGRES_ADMIN_URL`` names another maintenance database. Each test that asks for
``postgres_url`` gets a new, uniquely named database that is dropped afterwards. When the server is
unreachable the test fails in CI (``CI`` set) and is skipped elsewhere.

``migrated_sqlite_settings`` and ``migrated_postgres_settings`` give a database already at head: a copy of
a SQLite file, or a ``CREATE DATABASE ... TEMPLATE`` of a PostgreSQL database, each migrated once per
session (test_migrations.py proves the migrations themselves on empty databases).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from services import missing_service
from sqlalchemy import make_url

from backend.migrate import upgrade_to_head
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


@contextmanager
def _throwaway_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of ``template`` if given), dropped when the block ends.

    Returns:
        Its SQLAlchemy URL: the admin URL with driver ``postgresql+psycopg`` and database
        ``prunelab_test_<hex>``.
    """
    name = f"prunelab_test_{uuid.uuid4().hex[:16]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with _admin_connection() as admin:
        admin.execute(create)
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with _admin_connection() as admin:
            # FORCE: a test that forgot to dispose its engine must not leave the database behind
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped when the test ends; yields its URL."""
    with _throwaway_database() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session; yields its name."""
    with _throwaway_database() as url:
        upgrade_to_head(Settings(database_url=url, broker_url=""))
        name = make_url(url).database
        assert name is not None
        yield name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file migrated to head once per session."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("sqlite-template"), database_url="", broker_url="")
    upgrade_to_head(settings)
    return settings.data_dir / "prunelab.db"


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """Settings whose database and broker are SQLite files in ``tmp_path`` (whatever the environment says)."""
    return Settings(data_dir=tmp_path, database_url="", broker_url="")


@pytest.fixture
def postgres_settings(postgres_url: str, tmp_path: Path) -> Settings:
    """Settings for a throwaway PostgreSQL database, with the data directory in ``tmp_path``."""
    return Settings(data_dir=tmp_path, database_url=postgres_url, broker_url="")


@pytest.fixture
def migrated_sqlite_settings(sqlite_template: Path, tmp_path: Path) -> Settings:
    """``sqlite_settings`` with the database already at head (a copy of the session's template)."""
    shutil.copyfile(sqlite_template, tmp_path / sqlite_template.name)
    return Settings(data_dir=tmp_path, database_url="", broker_url="")


@pytest.fixture
def migrated_postgres_settings(postgres_template: str, tmp_path: Path) -> Iterator[Settings]:
    """``postgres_settings`` with the database already at head (a copy of the session's template)."""
    with _throwaway_database(template=postgres_template) as url:
        yield Settings(data_dir=tmp_path, database_url=url, broker_url="")

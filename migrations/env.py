"""Alembic environment for prunelab: migrates ``backend.models.Base.metadata``.

Configured by :func:`backend.migrate.alembic_config` (no ini file). A caller may hand over an open
connection in ``config.attributes["connection"]`` (tests migrate a given engine that way); otherwise
``env.py`` connects to ``sqlalchemy.url``. On SQLite the operations run in batch mode (copy and
rename a table, since SQLite's ALTER TABLE is limited), with foreign-key enforcement off while they
run so that recreating a referenced table cannot cascade-delete its children; a foreign-key check
afterwards refuses a migration that left orphans. Never imports TensorFlow.
"""

from __future__ import annotations

import warnings
from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from backend.models import Base

config = context.config
target_metadata = Base.metadata


def _options(dialect_name: str) -> dict[str, Any]:
    """``context.configure`` options shared by online and offline runs."""
    return {
        "target_metadata": target_metadata,
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
    }


def run_migrations_offline() -> None:
    """Emit the migration as SQL text (``--sql``) instead of running it."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline migrations need sqlalchemy.url (see backend.migrate.alembic_config)")
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(url.split(":", 1)[0].split("+", 1)[0]),
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_foreign_keys(connection: Connection, enabled: bool | None = None) -> bool:
    """Set SQLite's foreign-key enforcement (when ``enabled`` is given) and return its state.

    The pragma is a no-op inside an open SQLite transaction, so the statement's own (autobegun)
    transaction is ended at once when the caller had none open.
    """
    had_transaction = connection.in_transaction()
    if enabled is not None:
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")
    state = bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar())
    if not had_transaction:
        connection.commit()
    return state


def _run_on(connection: Connection) -> None:
    """Run the migrations on an open connection (best given with no transaction open)."""
    sqlite = connection.dialect.name == "sqlite"
    enforced = sqlite and _sqlite_foreign_keys(connection)
    if enforced and _sqlite_foreign_keys(connection, False):
        raise RuntimeError(
            "cannot turn off SQLite foreign keys inside an open transaction; "
            "pass a connection that has not written anything yet"
        )
    try:
        context.configure(connection=connection, **_options(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                orphans = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if orphans:
                    raise RuntimeError(f"the migration left rows with broken foreign keys: {orphans[:10]}")
    finally:
        if enforced and not _sqlite_foreign_keys(connection, True):
            warnings.warn(
                "SQLite foreign keys could not be turned back on (the caller's transaction is open)",
                RuntimeWarning,
                stacklevel=1,
            )


def run_migrations_online() -> None:
    """Migrate the connection given in ``config.attributes``, or connect to ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or config.attributes['connection']")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as own_connection:
            _run_on(own_connection)
            own_connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

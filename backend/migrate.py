"""Schema migrations: Alembic configured in code, and the check that a database is at head.

Alembic is configured programmatically (no ``alembic.ini`` in the working directory): the scripts live
in ``migrations/`` at the project root and the database URL comes from :class:`Settings`, so
``prunelab db upgrade`` works from any directory. Revision files are named
``<yyyymmdd>_<rev>_<slug>.py`` with sequential revision ids (``0001``, ``0002``, ...); write one with
:func:`new_revision` (autogenerate, then review it by hand).

The service refuses to start on a database that is not at head (:func:`require_head`).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine

from backend.db import make_engine
from backend.settings import Settings

#: The Alembic script directory (``env.py``, ``script.py.mako``, ``versions/``).
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: Revision file names: creation date, revision id, then the message as a slug.
FILE_TEMPLATE = "%(year)d%(month).2d%(day).2d_%(rev)s_%(slug)s"

#: The command that brings a database to head, named in every :class:`MigrationRequired`.
UPGRADE_COMMAND = "prunelab db upgrade"


class MigrationRequired(RuntimeError):
    """The database's schema revision is not the one this version of prunelab needs.

    Attributes:
        current: the database's revision, ``None`` for a database that was never migrated.
        head: the revision this code expects.
    """

    def __init__(self, message: str, *, current: str | None, head: str):
        super().__init__(message)
        self.current = current
        self.head = head


def alembic_config(settings: Settings | None = None, *, connection: Connection | None = None) -> Config:
    """An Alembic configuration for prunelab's migrations, built without an ini file.

    Args:
        settings: where ``sqlalchemy.url`` comes from. Default ``None``: no URL is set (enough for
            reading the scripts, e.g. :func:`head_revision`).
        connection: an open connection for ``env.py`` to migrate instead of connecting by URL.
            Default ``None``.

    Returns:
        A :class:`Config` with ``script_location`` set to the absolute path of ``migrations/``.

    Raises:
        FileNotFoundError: the migrations directory is missing (e.g. installed as a wheel without it).
    """
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise FileNotFoundError(f"prunelab's migrations are missing: expected {MIGRATIONS_DIR / 'env.py'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE.replace("%", "%%"))
    config.set_main_option("timezone", "UTC")
    if settings is not None:
        # set_main_option interpolates "%"; a URL may carry percent-encoded characters
        config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(settings: Settings) -> None:
    """Migrate the configured database to the newest revision (creating it from empty if need be).

    Args:
        settings: the database to migrate (``database_url``; SQLite's directory is created).
    """
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            command.upgrade(alembic_config(settings, connection=connection), "head")
            connection.commit()
    finally:
        engine.dispose()


def new_revision(settings: Settings, message: str, *, autogenerate: bool = True) -> Script | None:
    """Write a new revision file whose id follows the current head (``0001`` → ``0002``).

    Args:
        settings: the database autogenerate compares ``backend.models`` against; it must be at head.
        message: what the revision does, in a few words (becomes the file name's slug).
        autogenerate: fill in the operations from the difference between models and database.
            Default True. Review the result: autogenerate misses renames and some type changes.

    Returns:
        The new script, as Alembic returns it.
    """
    script = ScriptDirectory.from_config(alembic_config())
    heads = script.get_heads()
    numbers = [int(head) for head in heads if head.isdigit()]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            config = alembic_config(settings, connection=connection)
            result = command.revision(config, message=message, autogenerate=autogenerate, rev_id=rev_id)
    finally:
        engine.dispose()
    return result if isinstance(result, Script) else None


def head_revision() -> str:
    """The newest revision in ``migrations/versions``.

    Raises:
        alembic.util.CommandError: the scripts have more than one head (merge them).
    """
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration revisions in {MIGRATIONS_DIR / 'versions'}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or ``None`` when it was never migrated (no ``alembic_version`` row)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    """True when the database's revision is the newest one in ``migrations/versions``."""
    return current_revision(engine) == head_revision()


def require_head(engine: Engine) -> None:
    """Refuse a database whose schema is not at head.

    Raises:
        MigrationRequired: the database is empty or behind (the message says to run
            ``prunelab db upgrade``), or at a revision these scripts do not know (it was migrated
            by a newer prunelab).
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    script = ScriptDirectory.from_config(alembic_config())
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise MigrationRequired(
            f"The database at {where} is at revision {current}, which this prunelab does not know "
            f"(it expects {head}); the database was migrated by a newer prunelab. Install that version, "
            f"or use a different database. (`{UPGRADE_COMMAND}` cannot downgrade it.)",
            current=current,
            head=head,
        )
    state = "has never been migrated" if current is None else f"is at revision {current}"
    raise MigrationRequired(
        f"The database at {where} {state}; this prunelab needs revision {head}. "
        f"Run `{UPGRADE_COMMAND}` to migrate it.",
        current=current,
        head=head,
    )

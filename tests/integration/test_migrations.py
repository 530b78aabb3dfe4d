"""Migrations: an empty database migrated to head has exactly the schema of ``backend.models``.

Runs on SQLite (a file in ``tmp_path``) and on the real PostgreSQL server (a throwaway database).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Integer, MetaData, String, inspect, text

from backend import migrate
from backend.db import make_engine
from backend.models import NAMING_CONVENTION, Base
from backend.settings import Settings

VERSIONS_DIR = migrate.MIGRATIONS_DIR / "versions"
MODEL_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for an empty database of each kind; the working directory is ``tmp_path`` (no ini there)."""
    monkeypatch.chdir(tmp_path)
    chosen: Settings = request.getfixturevalue(f"{request.param}_settings")
    return chosen


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """prunelab's own engine on the test database, disposed afterwards."""
    engine = make_engine(settings)
    yield engine
    engine.dispose()


def schema_drift(engine: Engine, metadata: MetaData = Base.metadata) -> list[Any]:
    """What autogenerate would write to turn the database's schema into ``metadata`` (empty: no drift)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def user_relations(engine: Engine) -> set[str]:
    """Tables, plus on PostgreSQL every relation (indexes, sequences) in the public schema."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public'"
                )
            )
            return {row[0] for row in rows}
        return set(inspect(connection).get_table_names())


def test_empty_database_migrates_to_head_without_drift(settings: Settings, engine: Engine) -> None:
    assert migrate.current_revision(engine) is None
    assert not migrate.is_at_head(engine)

    migrate.upgrade_to_head(settings)

    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.is_at_head(engine)
    assert set(inspect(engine).get_table_names()) == MODEL_TABLES | {"alembic_version"}
    assert schema_drift(engine) == []


def test_upgrade_at_head_is_a_no_op(settings: Settings, engine: Engine) -> None:
    migrate.upgrade_to_head(settings)
    migrate.upgrade_to_head(settings)
    assert migrate.is_at_head(engine)
    assert schema_drift(engine) == []


def test_drift_check_reports_a_model_change_without_a_migration(settings: Settings, engine: Engine) -> None:
    migrate.upgrade_to_head(settings)
    altered = MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(altered)
    experiments = altered.tables["experiments"]
    experiments.append_column(Column("priority", Integer, nullable=True))
    experiments.c.name.type = String(300)

    drift = schema_drift(engine, altered)

    added = [d for d in drift if isinstance(d, tuple) and d[0] == "add_column"]
    assert [(d[2], d[3].name) for d in added] == [("experiments", "priority")]
    modified = [m for d in drift if isinstance(d, list) for m in d if m[0] == "modify_type"]
    assert [(m[2], m[3], m[-1].length) for m in modified] == [("experiments", "name", 300)]
    assert len(drift) == 2


def test_require_head_names_the_upgrade_command_until_migrated(settings: Settings, engine: Engine) -> None:
    with pytest.raises(migrate.MigrationRequired, match="prunelab db upgrade") as raised:
        migrate.require_head(engine)
    assert raised.value.current is None
    assert raised.value.head == migrate.head_revision()

    migrate.upgrade_to_head(settings)
    migrate.require_head(engine)


def test_downgrade_to_base_drops_everything_and_upgrade_restores_it(
    settings: Settings, engine: Engine
) -> None:
    migrate.upgrade_to_head(settings)
    with engine.connect() as connection:
        command.downgrade(migrate.alembic_config(settings, connection=connection), "base")
        connection.commit()

    assert migrate.current_revision(engine) is None
    left = user_relations(engine)
    assert left <= {"alembic_version", "alembic_version_pkc"}, f"downgrade left {left - {'alembic_version'}}"

    migrate.upgrade_to_head(settings)
    assert migrate.is_at_head(engine)
    assert schema_drift(engine) == []


def test_require_head_refuses_a_database_from_a_newer_prunelab(sqlite_settings: Settings) -> None:
    migrate.upgrade_to_head(sqlite_settings)
    engine = make_engine(sqlite_settings)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(migrate.MigrationRequired, match="newer prunelab") as raised:
            migrate.require_head(engine)
        assert raised.value.current == "9999"
        assert not migrate.is_at_head(engine)
    finally:
        engine.dispose()


def test_sqlite_foreign_keys_stay_on_for_a_connection_handed_to_alembic(sqlite_settings: Settings) -> None:
    engine = make_engine(sqlite_settings)
    try:
        with engine.connect() as connection:
            command.upgrade(migrate.alembic_config(sqlite_settings, connection=connection), "head")
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            # and they are enforced: a cycle of a missing experiment is refused
            with pytest.raises(Exception, match="FOREIGN KEY"):
                connection.exec_driver_sql(
                    "INSERT INTO epochs (experiment_id, cycle, epoch, seconds, created_at) "
                    "VALUES (12345, 0, 0, 0.0, '2026-01-01')"
                )
        assert migrate.is_at_head(engine)
    finally:
        engine.dispose()


def test_upgrade_runs_anywhere_without_tensorflow(tmp_path: Path) -> None:
    """A fresh process in a directory with no alembic.ini migrates and never imports TensorFlow."""
    code = (
        "import sys\n"
        "from backend import migrate\n"
        "from backend.db import make_engine\n"
        "from backend.settings import Settings\n"
        "settings = Settings()\n"
        "migrate.upgrade_to_head(settings)\n"
        "migrate.require_head(make_engine(settings))\n"
        "assert 'tensorflow' not in sys.modules, 'migrations imported TensorFlow'\n"
        "print(settings.database_url)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRUNELAB_")}
    env["PRUNELAB_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "prunelab.db").is_file()


def test_revision_files_are_dated_and_named_after_their_revision() -> None:
    files = sorted(p.name for p in VERSIONS_DIR.glob("*.py"))
    assert files, f"no revisions in {VERSIONS_DIR}"
    script = ScriptDirectory.from_config(migrate.alembic_config())
    by_file = {Path(rev.path).name: rev for rev in script.walk_revisions()}
    assert sorted(by_file) == files
    for name, rev in by_file.items():
        match = re.fullmatch(r"(\d{8})_(\d{4})_([a-z0-9_]+)\.py", name)
        assert match, f"{name}: expected <yyyymmdd>_<rev>_<slug>.py"
        assert match[2] == rev.revision, f"{name}: file says {match[2]}, script says {rev.revision}"
        assert "empty_message" not in match[3]
        assert rev.doc and rev.doc != "empty message"
    assert script.get_heads() == [migrate.head_revision()]

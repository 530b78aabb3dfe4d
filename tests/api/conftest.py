"""API test fixtures: a migrated temporary database (SQLite, and PostgreSQL where it runs), a queue
double, a TestClient, a live uvicorn server, and a factory for hand-made result rows.

The SQLite schema is migrated once per session and copied per test. PostgreSQL tests create a
throwaway database per test from a migrated template database on ``127.0.0.1:5432`` (trust auth,
user ``postgres``; override with ``PRUNELAB_TEST_POSTGRES``) and drop it afterwards. Where PostgreSQL
does not answer, its tests are skipped, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql
from servers import LiveServer, RecordingQueue, live_server, signed_in_as_admin
from services import missing_service
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import StarletteDeprecationWarning

from backend.app import create_app
from backend.arrays import encode
from backend.db import session_scope
from backend.migrate import upgrade_to_head
from backend.models import Artifact, Cycle, EpochRow, Experiment, LayerStatsRow, Status
from backend.settings import Settings

with warnings.catch_warnings():
    # Starlette asks for httpx2; the installed httpx works and nothing else is offered here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

POSTGRES_ADMIN = os.environ.get("PRUNELAB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SPEC: dict[str, Any] = {
    "name": "sum-trim",
    "model": "sum-mlp",
    "dataset": {"name": "sum", "train_samples": 1000, "test_samples": 100},
    "training": {"epochs": 2},
    "pruning": {"criterion": "activation_count", "max_cycles": 3},
}


# --------------------------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to head once per session."""
    directory = tmp_path_factory.mktemp("sqlite-template")
    upgrade_to_head(Settings(data_dir=directory))
    return directory / "prunelab.db"


@pytest.fixture
def sqlite_settings(sqlite_template: Path, tmp_path: Path) -> Settings:
    """Settings for a fresh migrated SQLite database in ``tmp_path`` (the broker is never used)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copyfile(sqlite_template, data_dir / "prunelab.db")
    return Settings(data_dir=data_dir, broker_url="memory://")


def _postgres_reachable() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_ADMIN} is not reachable: {exc}"


def _admin(template: str, *names: str) -> None:
    """Run an administrative statement (``CREATE``/``DROP DATABASE``) with quoted database names."""
    statement = sql.SQL(template).format(*(sql.Identifier(name) for name in names))
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as connection:
        connection.execute(statement)


def _database_url(name: str) -> str:
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session; yields its name."""
    problem = _postgres_reachable()
    if problem is not None:
        missing_service(problem)
    name = f"prunelab_api_template_{uuid.uuid4().hex[:10]}"
    _admin("CREATE DATABASE {}", name)
    try:
        upgrade_to_head(Settings(database_url=_database_url(name), broker_url="memory://"))
        yield name
    finally:
        _admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


@pytest.fixture
def postgres_settings(postgres_template: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a throwaway migrated PostgreSQL database, dropped after the test."""
    name = f"prunelab_api_{uuid.uuid4().hex[:12]}"
    _admin("CREATE DATABASE {} TEMPLATE {}", name, postgres_template)
    try:
        yield Settings(data_dir=tmp_path / "data", database_url=_database_url(name), broker_url="memory://")
    finally:
        _admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Settings for a fresh migrated database: each test using it runs on SQLite and on PostgreSQL."""
    name = "sqlite_settings" if request.param == "sqlite" else "postgres_settings"
    value: Settings = request.getfixturevalue(name)
    return value


# --------------------------------------------------------------------------------------------- app


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def app(settings: Settings, queue: RecordingQueue) -> FastAPI:
    """The app on the parametrised database with the recording queue; requests without credentials act
    as a signed-in admin (``servers.signed_in_as_admin``)."""
    return signed_in_as_admin(create_app(settings, queue))


@pytest.fixture
def sqlite_app(sqlite_settings: Settings, queue: RecordingQueue) -> FastAPI:
    """The app on SQLite only (for tests whose subject is not persistence), signed in as an admin."""
    return signed_in_as_admin(create_app(sqlite_settings, queue))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def sqlite_client(sqlite_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(sqlite_app) as test_client:
        yield test_client


def app_engine(app: FastAPI) -> Engine:
    engine: Engine = app.state.context.engine
    return engine


@contextmanager
def recorded_sql(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block, lowercased."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lower())

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


# --------------------------------------------------------------------------------------------- rows


class RowFactory:
    """Hand-made rows, as the worker's recorder would write them, committed one call at a time."""

    def __init__(self, factory: sessionmaker[Session]):
        self.sessions = factory

    def experiment(self, **values: Any) -> int:
        """An experiment row; defaults to a queued copy of ``SPEC``."""
        data: dict[str, Any] = {
            "name": SPEC["name"],
            "spec": {**SPEC, "model": {"preset": "sum-mlp"}},
            "status": Status.queued.value,
        }
        data.update(values)
        with session_scope(self.sessions) as session:
            row = Experiment(**data)
            session.add(row)
            session.flush()
            return row.id

    def update(self, experiment_id: int, **values: Any) -> None:
        with session_scope(self.sessions) as session:
            row = session.get_one(Experiment, experiment_id)
            for key, value in values.items():
                setattr(row, key, value)

    def epoch(self, experiment_id: int, cycle: int, epoch: int, loss: float = 0.5) -> None:
        with session_scope(self.sessions) as session:
            session.add(
                EpochRow(
                    experiment_id=experiment_id,
                    cycle=cycle,
                    epoch=epoch,
                    loss=loss,
                    metric=loss * 2,
                    val_loss=loss + 0.1,
                    val_metric=None,
                    seconds=0.25,
                )
            )

    def cycle(
        self,
        experiment_id: int,
        index: int,
        widths: dict[str, int] | None = None,
        *,
        loss: float = 0.1,
        layers: dict[str, int] | None = None,
        bins: int = 4,
        scores: dict[str, list[float]] | None = None,
    ) -> int:
        """A finished cycle; ``layers`` maps layer name to units for layer statistics rows, ``scores``
        layer name to its recorded weight scores (a weight criterion's)."""
        widths = widths or {"hidden": 1000 // (index + 1), "out": 1}
        after = {name: max(1, units // 2) for name, units in widths.items()}
        with session_scope(self.sessions) as session:
            row = Cycle(
                experiment_id=experiment_id,
                index=index,
                model_spec={"input_shape": [2], "layers": []},
                widths=widths,
                widths_after=after,
                params=10 * widths["hidden"],
                flops=20 * widths["hidden"],
                layer_costs=[{"name": "hidden", "type": "dense", "params": 1, "flops": 2}],
                removed={"hidden": list(range(widths["hidden"] - after["hidden"]))},
                folded={},
                merged={},
                metric_name="rmse",
                loss=loss,
                metric=loss / 2,
                val_loss=loss * 1.1,
                val_metric=loss / 3,
                train_seconds=1.5,
                stats_seconds=0.5,
                prune_seconds=0.1,
            )
            for position, (name, units) in enumerate((layers or {}).items()):
                layer = layer_stats_row(name, units, outputs=100, bins=bins, seed=position)
                if scores and name in scores:
                    layer.scores = encode("scores", np.asarray(scores[name]))
                row.layers.append(layer)
            session.add(row)
            session.flush()
            return row.id

    def artifact(
        self, experiment_id: int, content: bytes, filename: str = "final.keras", **values: Any
    ) -> int:
        with session_scope(self.sessions) as session:
            row = Artifact(
                experiment_id=experiment_id,
                kind=values.pop("kind", "final"),
                filename=filename,
                media_type=values.pop("media_type", "application/x-keras"),
                size_bytes=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content=content,
                **values,
            )
            session.add(row)
            session.flush()
            return row.id


def layer_stats_row(name: str, units: int, *, outputs: int, bins: int, seed: int = 0) -> LayerStatsRow:
    """A layer statistics row with deterministic per-unit arrays: unit ``i`` has ``i % outputs`` zeros."""
    rng = np.random.default_rng(seed)
    zeros = np.arange(units) % (outputs + 1)
    active = outputs - zeros
    histograms = rng.integers(0, 10, size=(units, bins))
    return LayerStatsRow(
        layer=name,
        units=units,
        outputs=outputs,
        summary={"apoz_mean": float(np.mean(zeros / outputs)), "dead": int((active == 0).sum())},
        histogram=histograms.sum(axis=0).tolist(),
        bin_edges=np.linspace(-1.0, 1.0, bins + 1).tolist(),
        active=encode("active", active),
        zeros=encode("zeros", zeros),
        mean=encode("mean", np.linspace(0.0, 1.0, units)),
        variance=encode("variance", np.full(units, 0.25)),
        minimum=encode("minimum", np.zeros(units)),
        maximum=encode("maximum", np.ones(units)),
        unit_histograms=encode("unit_histograms", histograms),
    )


@pytest.fixture
def rows(app: FastAPI) -> RowFactory:
    """Rows in the parametrised app's database."""
    return RowFactory(app.state.context.session_factory)


@pytest.fixture
def sqlite_rows(sqlite_app: FastAPI) -> RowFactory:
    return RowFactory(sqlite_app.state.context.session_factory)


# --------------------------------------------------------------------------------------------- live server


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def spec() -> dict[str, Any]:
    """A valid experiment spec (a fresh copy per test)."""
    return copy.deepcopy(SPEC)


@pytest.fixture
def serve() -> Callable[[FastAPI], AbstractContextManager[LiveServer]]:
    """``with serve(app) as server:`` runs the app in uvicorn on a free loopback port."""
    return live_server


@pytest.fixture
def record_sql() -> Callable[[FastAPI], AbstractContextManager[list[str]]]:
    """``with record_sql(app) as statements:`` collects the SQL the app's engine runs."""
    return lambda app: recorded_sql(app_engine(app))

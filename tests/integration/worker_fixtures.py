"""Helpers for the worker integration tests: real Redis, real worker processes, a tiny experiment.

Workers are ``celery -A worker.celery_app worker --pool=prefork --concurrency=1`` processes started in
their own process group with the database, broker and lease settings in their environment, and
stopped (or SIGKILLed, group and all) by the test. Every wait is bounded and fails with the worker's
log attached.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from services import missing_service
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.db import make_engine, make_session_factory, session_scope
from backend.migrate import upgrade_to_head
from backend.models import Cycle, EpochRow, Experiment
from backend.settings import Settings

#: The Redis database the worker tests own (flushed before each worker starts).
REDIS_URL = os.environ.get("PRUNELAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
#: How long a worker may take to start and import TensorFlow in its child, in seconds.
START_SECONDS = 60.0
VENV_BIN = Path(sys.executable).parent
T = TypeVar("T")


def redis_broker() -> str:
    """The test Redis database, flushed.

    Raises:
        pytest.fail.Exception: Redis is unreachable and ``CI`` is set.
        pytest.skip.Exception: Redis is unreachable outside CI.
    """
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
        client.flushdb()
        client.close()
    except redis.RedisError as error:
        missing_service(f"Redis is unreachable at {REDIS_URL}: {error}")
    return REDIS_URL


def sqlite_redis_settings(directory: Path, **overrides: Any) -> Settings:
    """SQLite in ``directory`` with the flushed test Redis, a 0.5 s heartbeat and a 60 s lease."""
    values: dict[str, Any] = {"heartbeat_seconds": 0.5, "lease_seconds": 60, **overrides}
    return Settings(data_dir=directory, database_url="", broker_url=redis_broker(), **values)


def tiny_spec(**sections: dict[str, Any]) -> dict[str, Any]:
    """A few seconds of CPU: sum data (2,000 examples), one hidden dense layer of 16, 3 cycles of 2 epochs.

    Args:
        **sections: fields merged into the spec's ``dataset``, ``training``, ``pruning`` or ``benchmark``
            section.
    """
    spec: dict[str, Any] = {
        "name": "tiny-sum",
        "seed": 1,
        "model": {
            "input_shape": [2],
            "layers": [
                {"type": "dense", "name": "hidden", "units": 16, "activation": "relu"},
                {"type": "dense", "name": "out", "units": 1},
            ],
        },
        "dataset": {"name": "sum", "train_samples": 2000, "test_samples": 500},
        "training": {
            "optimizer": "adam",
            "learning_rate": 0.01,
            "batch_size": 200,
            "epochs": 2,
            "loss": "mse",
        },
        "pruning": {"criterion": {"type": "apoz", "k": 0.0}, "max_fraction": 0.5, "max_cycles": 3},
        # TFLite benchmarks have their own tests (test_benchmarks_worker.py); here they only cost time
        "benchmark": {"cycles": "none"},
    }
    for section, fields in sections.items():
        spec[section] = {**spec[section], **fields}
    return spec


def migrated(settings: Settings) -> sessionmaker[Session]:
    """Migrate the settings' database to head and return a session factory on it."""
    upgrade_to_head(settings)
    return make_session_factory(make_engine(settings))


def insert_experiment(sessions: sessionmaker[Session], spec: dict[str, Any], **columns: Any) -> int:
    """Insert an experiment (queued unless ``columns`` say otherwise) and commit; returns its id."""
    with session_scope(sessions) as session:
        experiment = Experiment(name=spec.get("name", "test"), spec=spec, **columns)
        session.add(experiment)
        session.flush()
        return experiment.id


def experiment_row(sessions: sessionmaker[Session], experiment_id: int) -> Experiment:
    """The experiment's row as committed now (detached)."""
    with session_scope(sessions) as session:
        return session.get_one(Experiment, experiment_id)


def cycle_rows(sessions: sessionmaker[Session], experiment_id: int) -> list[Cycle]:
    """The experiment's cycle rows, by index (detached)."""
    with session_scope(sessions) as session:
        return list(
            session.scalars(select(Cycle).where(Cycle.experiment_id == experiment_id).order_by(Cycle.index))
        )


def epoch_count(sessions: sessionmaker[Session], experiment_id: int) -> int:
    """How many epoch rows the experiment has."""
    with session_scope(sessions) as session:
        return int(
            session.scalar(select(func.count(EpochRow.id)).where(EpochRow.experiment_id == experiment_id))
            or 0
        )


@dataclass
class WorkerProcess:
    """A running ``celery worker`` (the leader of its own process group) and its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        """The worker's output so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def children(self) -> list[int]:
        """Pids of the worker's pool processes (Linux ``/proc``)."""
        pids: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            pids.extend(int(pid) for pid in task.read_text().split())
        return pids

    def kill(self) -> None:
        """SIGKILL the whole process group (the worker and its pool children), as a crash would."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to the worker), then SIGKILL the group if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


def worker_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment of a worker process for ``settings`` (``overrides`` are extra variables)."""
    env = dict(os.environ)
    env.update(
        PRUNELAB_DATABASE_URL=settings.database_url,
        PRUNELAB_BROKER_URL=settings.broker_url,
        PRUNELAB_DATA_DIR=str(settings.data_dir),
        PRUNELAB_HEARTBEAT_SECONDS=str(settings.heartbeat_seconds),
        PRUNELAB_LEASE_SECONDS=str(settings.lease_seconds),
        PRUNELAB_MAX_ATTEMPTS=str(settings.max_attempts),
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def start_worker(
    settings: Settings, log: Path, *, name: str = "w1", env: dict[str, str] | None = None
) -> WorkerProcess:
    """Start a prefork worker (concurrency 1) on the ``prunelab`` queue and wait until it is ready.

    Args:
        settings: its database, broker, heartbeat, lease and attempt settings (passed as environment).
        log: where its output goes.
        name: its node name (``<name>@%h``).
        env: extra environment variables (e.g. other ``PRUNELAB_`` settings). Default None.

    Raises:
        pytest.fail.Exception: the worker exited or did not become ready within ``START_SECONDS``.
    """
    command = [
        str(VENV_BIN / "celery"),
        "-A",
        "worker.celery_app",
        "worker",
        "--pool=prefork",
        "--concurrency=1",
        "-Q",
        "prunelab",
        "--loglevel=INFO",
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=worker_env(settings, **(env or {})),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = WorkerProcess(process=process, log=log)
    try:
        wait_for(lambda: " ready." in worker.log_text() or None, START_SECONDS, "the worker to start", worker)
    except BaseException:
        worker.stop()
        raise
    return worker


@contextmanager
def running_worker(
    settings: Settings, log: Path, *, name: str = "w1", env: dict[str, str] | None = None
) -> Iterator[WorkerProcess]:
    """A started worker (``start_worker``'s arguments), stopped when the block ends (however it ends)."""
    worker = start_worker(settings, log, name=name, env=env)
    try:
        yield worker
    finally:
        worker.stop()


def wait_for(
    probe: Callable[[], T | None], timeout: float, what: str, worker: WorkerProcess | None = None
) -> T:
    """Poll ``probe`` every 50 ms until it returns something truthy.

    Args:
        probe: returns the awaited value, or something falsy (None, False, an empty list) until then.
        timeout: seconds before giving up.
        what: what is awaited (for the failure message).
        worker: whose log to show on failure.

    Returns:
        The probe's value.

    Raises:
        pytest.fail.Exception: ``timeout`` passed, or the worker exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited while waiting for {what}:\n{worker.log_text()[-4000:]}")
        if time.monotonic() > deadline:
            log = f"\nworker log:\n{worker.log_text()[-4000:]}" if worker is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{log}")
        time.sleep(0.05)


def wait_for_status(
    sessions: sessionmaker[Session],
    experiment_id: int,
    statuses: set[str],
    timeout: float,
    worker: WorkerProcess | None = None,
) -> Experiment:
    """Wait until the experiment's status is one of ``statuses``; returns the row."""

    def probe() -> Experiment | None:
        row = experiment_row(sessions, experiment_id)
        return row if row.status in statuses else None

    return wait_for(probe, timeout, f"experiment {experiment_id} to be {sorted(statuses)}", worker)

"""Broker transport options by broker: what each transport is told."""

from __future__ import annotations

from pathlib import Path

from backend.queue import SQLITE_BROKER_BUSY_SECONDS, WORKER_MAX_MEMORY_KIB, make_celery
from backend.settings import Settings


def test_the_embedded_sqlite_broker_waits_for_its_lock(tmp_path: Path) -> None:
    app = make_celery(Settings(data_dir=tmp_path))
    assert app.conf.broker_url.startswith("sqla+sqlite:")
    assert app.conf.broker_transport_options == {"connect_args": {"timeout": SQLITE_BROKER_BUSY_SECONDS}}
    with app.connection_for_write() as connection:  # the options reach SQLite through create_engine
        engine, _ = connection.default_channel._open()
        with engine.connect() as sqlite:
            busy_ms = sqlite.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert busy_ms == SQLITE_BROKER_BUSY_SECONDS * 1000


def test_redis_gets_a_visibility_timeout_and_no_sqlite_options(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/15")
    options = make_celery(settings).conf.broker_transport_options
    assert options == {"visibility_timeout": settings.broker_visibility_timeout}


def test_a_worker_process_is_replaced_once_it_holds_too_much_memory(tmp_path: Path) -> None:
    # TensorFlow keeps every pruned model's traces for the process's life: prefork replaces the process
    conf = make_celery(Settings(data_dir=tmp_path)).conf
    assert conf.worker_max_memory_per_child == WORKER_MAX_MEMORY_KIB == 4 * 2**20

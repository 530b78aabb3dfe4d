"""The no-server default: kombu's SQLAlchemy transport on a SQLite file as the broker, a real worker.

``Settings()`` with nothing configured puts both the database and the broker (``sqla+sqlite``) in
the data directory; this runs one tiny experiment end to end through that broker with late
acknowledgement, as ``prunelab serve`` would without Redis.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
from pathlib import Path

from worker_fixtures import (
    cycle_rows,
    experiment_row,
    insert_experiment,
    migrated,
    running_worker,
    tiny_spec,
    wait_for,
    wait_for_status,
)

from backend.queue import CeleryQueue
from backend.settings import Settings


def test_an_experiment_runs_through_the_embedded_sqlite_broker(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    settings = sqlite_settings.model_copy(update={"heartbeat_seconds": 0.5})
    broker_file = settings.data_dir / "broker.db"
    assert settings.broker_url == f"sqla+sqlite:///{broker_file}" and settings.embedded
    sessions = migrated(settings)
    queue = CeleryQueue(settings)
    assert queue.ping()

    with running_worker(settings, tmp_path / "worker.log") as worker:
        experiment_id = insert_experiment(sessions, tiny_spec())
        queue.enqueue(experiment_id)
        row = wait_for_status(sessions, experiment_id, {"succeeded", "failed", "cancelled"}, 90, worker)

        def delivered() -> list[tuple[int]]:
            with sqlite3.connect(broker_file) as broker:
                return broker.execute("SELECT visible FROM kombu_message").fetchall()

        # the transport marks a message invisible on delivery; the late ack does not resurrect it
        messages = wait_for(delivered, 10, "the broker's message table", worker)

    assert (row.status, row.error, row.attempts, row.stop_reason) == ("succeeded", None, 1, "max_cycles")
    assert [c.index for c in cycle_rows(sessions, experiment_id)] == [0, 1, 2]
    assert messages == [(0,)]
    assert experiment_row(sessions, experiment_id).final_cycle == 2


def test_a_killed_pool_child_is_redelivered_by_the_embedded_broker(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """acks_late + task_reject_on_worker_lost on the SQLAlchemy transport: the message comes back."""
    settings = sqlite_settings.model_copy(update={"heartbeat_seconds": 0.5, "lease_seconds": 4.0})
    sessions = migrated(settings)
    experiment_id = insert_experiment(sessions, tiny_spec(training={"first_epochs": 1, "epochs": 8}))

    with running_worker(settings, tmp_path / "worker.log") as worker:
        CeleryQueue(settings).enqueue(experiment_id)
        cycle_0 = wait_for(lambda: cycle_rows(sessions, experiment_id), 90, "cycle 0", worker)[0]
        os.kill(worker.children()[0], signal.SIGKILL)
        row = wait_for_status(sessions, experiment_id, {"succeeded", "failed", "cancelled"}, 90, worker)
        first_task = re.search(r"run_experiment\[([0-9a-f-]+)\] received", worker.log_text())
        assert first_task is not None
        redelivered = f"run_experiment[{first_task.group(1)}] received"
        wait_for(lambda: worker.log_text().count(redelivered) == 2, 60, "the lost task's redelivery", worker)
        wait_for(
            lambda: "is already succeeded" in worker.log_text(), 30, "the redelivery to be skipped", worker
        )

    assert (row.status, row.attempts) == ("succeeded", 2)
    cycles = cycle_rows(sessions, experiment_id)
    assert [c.index for c in cycles] == [0, 1, 2]
    assert (cycles[0].id, cycles[0].created_at) == (cycle_0.id, cycle_0.created_at)

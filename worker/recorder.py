"""The engine's Reporter for a Celery task: every epoch and cycle goes to the database as it happens.

``on_epoch`` stores the epoch and the live progress; ``on_cycle`` stores the cycle's row, its layer
statistics (per-unit arrays as blobs), the trained model, the checkpoint for the next cycle and the
experiment's summary in one transaction; ``cancelled`` reads ``cancel_requested`` at most once a
second, and says True once the run has used its wall time (``timed_out`` then tells why). A
:class:`Heartbeat` thread proves the worker is alive while the task runs.

Importing this module does not import TensorFlow (the worker's parent process imports it); Keras is
only touched through the models the engine hands over.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from backend import arrays
from backend.db import session_scope
from backend.models import Cycle, LayerStatsRow
from backend.progress import ProgressDetail
from backend.service import recording, runs
from prunespec.spec import ExperimentSpec
from worker.engine.results import CycleResult, EpochRecord, LayerStats

if TYPE_CHECKING:
    import keras
    import numpy as np

logger = logging.getLogger(__name__)

#: Minimum seconds between two reads of ``cancel_requested``.
CANCEL_POLL_SECONDS = 1.0


def finite(value: Any) -> Any:
    """JSON-ready data: NumPy scalars/arrays as Python values, NaN and ±inf as None (PostgreSQL's JSON
    refuses them)."""
    if isinstance(value, dict):
        return {str(key): finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return finite(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def model_bytes(model: keras.Model) -> bytes:
    """A model as the bytes of a ``.keras`` file, without optimizer state.

    The ``.keras`` format always saves a compiled model's optimizer (and ``clone_model`` copies the
    compilation), so a compiled model is first rebuilt from its config with the same weights, which
    also leaves the engine's model untouched.

    Args:
        model: the model to store.

    Returns:
        The file's content; load it with ``worker.resume.model_from_bytes``.
    """
    if getattr(model, "optimizer", None) is not None:
        bare = type(model).from_config(model.get_config())
        bare.set_weights(model.get_weights())
        model = bare
    with tempfile.TemporaryDirectory(prefix="prunelab-model-") as directory:
        path = Path(directory) / "model.keras"
        model.save(path)
        return path.read_bytes()


def layer_row(stats: LayerStats, scores: np.ndarray | None = None) -> LayerStatsRow:
    """One layer's statistics as a row: a JSON summary, the layer histogram, per-unit blobs.

    Args:
        stats: the layer's activation statistics.
        scores: the layer's per-unit weight scores, when its criterion reads weights. Default None.

    Returns:
        an unsaved row (``cycle_id`` unset).
    """
    apoz = stats.apoz
    return LayerStatsRow(
        layer=stats.layer,
        units=stats.units,
        outputs=int(stats.outputs),
        summary=finite(
            {
                "outputs": int(stats.outputs),
                "apoz_mean": float(apoz.mean()) if apoz.size else None,
                "apoz_std": float(apoz.std()) if apoz.size else None,
                "variance_mean": float(stats.variance.mean()) if stats.variance.size else None,
                "dead": int((stats.active == 0).sum()),
            }
        ),
        histogram=finite(stats.layer_histogram),
        bin_edges=finite(stats.bin_edges),
        active=arrays.encode("active", stats.active),
        zeros=arrays.encode("zeros", stats.zeros),
        mean=arrays.encode("mean", stats.mean),
        variance=arrays.encode("variance", stats.variance),
        minimum=arrays.encode("minimum", stats.minimum),
        maximum=arrays.encode("maximum", stats.maximum),
        unit_histograms=arrays.encode("unit_histograms", stats.histogram),
        scores=None if scores is None else arrays.encode("scores", scores),
    )


def cycle_row(result: CycleResult) -> Cycle:
    """A finished cycle as an unsaved row with its layer statistics (``experiment_id`` unset).

    Losses and metrics that are not finite (a diverged run) are stored as NULL, the same on every
    database (SQLite would turn NaN into NULL anyway).
    """
    return Cycle(
        index=result.index,
        model_spec=result.spec.model_dump(mode="json"),
        widths=dict(result.widths),
        widths_after=dict(result.widths_after),
        params=int(result.params),
        flops=int(result.flops),
        layer_costs=finite([vars(cost) for cost in result.layer_costs]),
        removed=finite(result.removed),
        folded=finite(result.folded),
        merged=finite(result.merged),
        metric_name=result.metric_name,
        loss=_number(result.loss),
        metric=_number(result.metric),
        val_loss=_number(result.val_loss),
        val_metric=_number(result.val_metric),
        train_seconds=float(result.train_seconds),
        stats_seconds=float(result.stats_seconds),
        prune_seconds=float(result.prune_seconds),
        accepted=bool(result.accepted),
        pruned_from=result.pruned_from,
        layers=[layer_row(stats, result.scores.get(name)) for name, stats in result.stats.items()],
    )


class Heartbeat:
    """A daemon thread that refreshes a leased run's heartbeat every ``interval`` seconds.

    Use it as a context manager around the task's work. When a beat finds the lease gone (the row
    was cancelled, finished or taken over), :attr:`lost` turns True and the thread stops.

    Args:
        sessions: session factory for the run's database.
        lease: the worker's lease on an experiment or a crossover run.
        interval: seconds between beats (``Settings.heartbeat_seconds``).
    """

    def __init__(self, sessions: sessionmaker[Session], lease: runs.RunLease, interval: float):
        self.sessions = sessions
        self.lease = lease
        self.interval = interval
        self._label = f"{'experiment' if isinstance(lease, runs.Lease) else 'crossover run'} {lease.row_id}"
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{lease.row_id}", daemon=True)

    @property
    def lost(self) -> bool:
        """True once a beat found that this worker no longer owns the experiment."""
        return self._lost.is_set()

    def beat(self) -> bool:
        """Refresh the heartbeat now.

        Returns:
            False when the lease is lost.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database is unreachable (the thread logs and retries).
        """
        with session_scope(self.sessions) as session:
            alive = runs.heartbeat(session, self.lease)
        if not alive:
            self._lost.set()
        return alive

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.beat():
                    if not self._stop.is_set():  # not merely the task's own ending racing the beat
                        logger.warning("%s: lease lost", self._label)
                    return
            except Exception:  # a database hiccup must not kill the thread; the next beat retries
                logger.exception("%s: heartbeat failed", self._label)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=max(self.interval, 1.0) * 2)


class DatabaseRecorder:
    """Implements ``worker.engine.results.Reporter`` by writing to the experiment's rows.

    Args:
        sessions: session factory for the experiment's database.
        lease: the worker's lease; every write is refused (``runs.LeaseLost``) once it is lost.
        spec: the experiment (for the planned epoch count).
        metric_name: the experiment's metric (shown with the live progress).
        higher_is_better: the direction of that metric (for the best metric).
        heartbeat: the task's heartbeat; when it reports the lease lost, :meth:`cancelled` says True.
        cancel_poll_seconds: minimum seconds between reads of ``cancel_requested``. Default 1.
        clock: monotonic seconds (tests pass a fake). Default ``time.monotonic``.
        wall_seconds: the run stops (``cancelled`` says True, ``timed_out`` turns True) once this many
            seconds have passed since the recorder was made. Default None: no limit.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lease: runs.Lease,
        spec: ExperimentSpec,
        *,
        metric_name: str,
        higher_is_better: bool,
        heartbeat: Heartbeat | None = None,
        cancel_poll_seconds: float = CANCEL_POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_seconds: float | None = None,
    ):
        self.sessions = sessions
        self.lease = lease
        self.spec = spec
        self.metric_name = metric_name
        self.higher_is_better = higher_is_better
        self.heartbeat = heartbeat
        self.cancel_poll_seconds = cancel_poll_seconds
        self.clock = clock
        self._cancel_requested = False
        self._polled_at: float | None = None
        self.wall_seconds = wall_seconds
        self.started_at = clock()
        self.timed_out = False
        training = spec.training
        self.planned_epochs = training.cycle0_epochs + (spec.pruning.max_cycles - 1) * training.epochs

    def epochs_done(self, record: EpochRecord) -> int:
        """Epochs finished so far in the planned schedule, counting ``record``."""
        training = self.spec.training
        before = 0 if record.cycle == 0 else training.cycle0_epochs + (record.cycle - 1) * training.epochs
        return before + record.epoch + 1

    def on_epoch(self, record: EpochRecord) -> None:
        """Store the epoch and the live progress (one transaction).

        Raises:
            runs.LeaseLost: the worker no longer owns the experiment.
        """
        values = recording.EpochValues(
            cycle=record.cycle,
            epoch=record.epoch,
            loss=_number(record.loss),
            metric=_number(record.metric),
            val_loss=_number(record.val_loss),
            val_metric=_number(record.val_metric),
            seconds=float(record.seconds),
        )
        detail = ProgressDetail.of_epoch(
            cycle=record.cycle,
            epoch=record.epoch + 1,
            epochs=record.epochs,
            metric_name=self.metric_name,
            loss=values.loss,
            metric=values.metric,
            val_loss=values.val_loss,
            val_metric=values.val_metric,
        )
        progress = self.epochs_done(record) / max(self.planned_epochs, 1)
        with session_scope(self.sessions) as session:
            recording.record_epoch(session, self.lease, values, progress=progress, progress_detail=detail)

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        """Store the cycle, its models and the experiment's summary (one transaction).

        Raises:
            runs.LeaseLost: the worker no longer owns the experiment (nothing is written).
        """
        index = result.index
        trained_file = recording.ModelFile(f"cycle-{index}-trained.keras", model_bytes(trained))
        checkpoint = (
            None
            if pruned is None
            else recording.ModelFile(f"cycle-{index}-pruned.keras", model_bytes(pruned))
        )
        row = cycle_row(result)
        with session_scope(self.sessions) as session:
            recording.record_cycle(
                session, self.lease, row, trained_file, checkpoint, higher_is_better=self.higher_is_better
            )
        logger.info(
            "experiment %s: cycle %s recorded (widths %s -> %s)",
            self.lease.experiment_id,
            index,
            result.widths,
            result.widths_after,
        )

    def cancelled(self) -> bool:
        """Whether the run should stop: cancel requested (read at most once a ``cancel_poll_seconds``),
        the lease lost, or the wall time used up (then ``timed_out`` is True)."""
        if self.heartbeat is not None and self.heartbeat.lost:
            return True
        now = self.clock()
        if self.wall_seconds is not None and now - self.started_at >= self.wall_seconds:
            self.timed_out = True
            return True
        if self._polled_at is None or now - self._polled_at >= self.cancel_poll_seconds:
            with session_scope(self.sessions) as session:
                self._cancel_requested = runs.is_cancel_requested(session, self.lease.experiment_id)
            self._polled_at = now
        return self._cancel_requested

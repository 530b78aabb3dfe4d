"""Realistic experiment histories for the dashboard's browser tests, written as the worker's recorder
would write them: experiments, epochs, cycles with per-layer costs, activation statistics with
histograms, TFLite benchmarks and artifacts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from servers import RecordingQueue
from sqlalchemy.orm import Session, sessionmaker

from backend.arrays import encode
from backend.db import session_scope
from backend.models import (
    Artifact,
    Cycle,
    EpochRow,
    Experiment,
    LayerStatsRow,
    Status,
    TFLiteBenchmark,
    utcnow,
)
from prunespec.costs import model_cost
from prunespec.spec import ExperimentSpec

BINS = 24


def lenet_spec(name: str, *, criterion: dict[str, Any] | None = None, max_cycles: int = 8) -> ExperimentSpec:
    """LeNet-300-100 on MNIST with APoZ (or the given criterion)."""
    return ExperimentSpec.model_validate(
        {
            "name": name,
            "model": "lenet-300-100",
            "dataset": {"name": "mnist", "train_samples": 8000, "test_samples": 2000},
            "training": {"loss": "crossentropy", "epochs": 3, "first_epochs": 4},
            "pruning": {"criterion": criterion or {"type": "apoz", "k": 1.0}, "max_cycles": max_cycles},
        }
    )


@dataclass
class Dashboard:
    """The live server: its URL, the queue it enqueues to and a writer of result rows."""

    url: str
    queue: RecordingQueue
    history: History


@dataclass
class History:
    """Writes histories into the database behind ``sessions`` (one transaction per call)."""

    sessions: sessionmaker[Session]

    def experiment(
        self,
        spec: ExperimentSpec,
        *,
        owner: str = "ada",
        tags: tuple[str, ...] = (),
        notes: str = "",
        status: Status = Status.queued,
        age_minutes: float = 0.0,
    ) -> int:
        """A new experiment row (no cycles); returns its id."""
        cost = model_cost(spec.model)
        with session_scope(self.sessions) as session:
            row = Experiment(
                name=spec.name,
                owner=owner,
                tags=list(tags),
                notes=notes,
                spec=spec.model_dump(mode="json"),
                seed=spec.seed,
                status=status.value,
                initial_params=cost.params,
                initial_flops=cost.flops,
                created_at=utcnow() - timedelta(minutes=age_minutes),
                started_at=None if status == Status.queued else utcnow() - timedelta(minutes=age_minutes),
            )
            session.add(row)
            session.flush()
            return row.id

    def update(self, experiment_id: int, **values: Any) -> None:
        """Set columns of an experiment."""
        with session_scope(self.sessions) as session:
            row = session.get_one(Experiment, experiment_id)
            for key, value in values.items():
                setattr(row, key, value)

    def epoch(self, experiment_id: int, cycle: int, epoch: int, *, loss: float, metric: float) -> None:
        """One training epoch."""
        with session_scope(self.sessions) as session:
            session.add(
                EpochRow(
                    experiment_id=experiment_id,
                    cycle=cycle,
                    epoch=epoch,
                    loss=loss,
                    metric=metric,
                    val_loss=loss * 1.08 + 0.01,
                    val_metric=metric - 0.006,
                    seconds=1.7,
                )
            )

    def cycle(
        self, experiment_id: int, index: int, widths: dict[str, int], *, seed: int = 0
    ) -> dict[str, int]:
        """One finished cycle of a LeNet-style model with statistics for every prunable layer.

        Returns:
            the widths its pruning kept (for the next cycle).
        """
        rng = np.random.default_rng(seed * 1000 + index)
        with session_scope(self.sessions) as session:
            experiment = session.get_one(Experiment, experiment_id)
            spec = ExperimentSpec.model_validate(experiment.spec)
            model = spec.model.with_widths(widths)
            cost = model_cost(model)
            prunable = model.prunable_names()
            metric = 0.975 - 0.004 * index + float(rng.normal(0, 0.002))
            loss = 0.09 + 0.01 * index
            stats, removed, kept = [], {}, dict(widths)
            for name in prunable:
                units = widths[name]
                outputs = 4000
                apoz = np.clip(rng.beta(2.0, 5.0, units) + (rng.random(units) < 0.12) * 0.45, 0, 1)
                zeros = (apoz * outputs).astype(np.int64)
                threshold = apoz.mean() + apoz.std()
                gone = [int(unit) for unit in np.flatnonzero(apoz > threshold)][: max(units // 2, 0)]
                if units - len(gone) < 4:
                    gone = gone[: max(units - 4, 0)]
                removed[name] = gone
                kept[name] = units - len(gone)
                values = np.concatenate(
                    [np.zeros(int(apoz.mean() * 3000)), rng.gamma(1.5 + index * 0.1, 0.6, 3000)]
                )
                histogram, edges = np.histogram(values, bins=BINS, range=(0.0, 6.0 - index * 0.2))
                stats.append(
                    LayerStatsRow(
                        layer=name,
                        units=units,
                        outputs=outputs,
                        summary={"apoz_mean": float(apoz.mean()), "dead": int((apoz >= 1).sum())},
                        histogram=histogram.tolist(),
                        bin_edges=edges.tolist(),
                        active=encode("active", outputs - zeros),
                        zeros=encode("zeros", zeros),
                        mean=encode("mean", rng.random(units)),
                        variance=encode("variance", rng.gamma(2.0, 0.05, units)),
                        minimum=encode("minimum", np.zeros(units)),
                        maximum=encode("maximum", rng.random(units) * 5),
                        unit_histograms=encode("unit_histograms", rng.integers(0, 50, (units, BINS))),
                    )
                )
            row = Cycle(
                experiment_id=experiment_id,
                index=index,
                model_spec=model.model_dump(mode="json"),
                widths=dict(widths),
                widths_after=kept,
                params=cost.params,
                flops=cost.flops,
                layer_costs=[
                    {"name": layer.name, "type": layer.type, "params": layer.params, "flops": layer.flops}
                    for layer in cost.layers
                ],
                removed=removed,
                folded={},
                merged={},
                metric_name="accuracy",
                loss=loss,
                metric=metric + 0.01,
                val_loss=loss * 1.1,
                val_metric=metric,
                train_seconds=12.5,
                stats_seconds=1.2,
                prune_seconds=0.3,
                layers=stats,
            )
            session.add(row)
            session.flush()
            content = f"model of cycle {index}".encode()
            session.add(
                Artifact(
                    experiment_id=experiment_id,
                    cycle_index=index,
                    kind="trained",
                    filename=f"cycle-{index}-trained.keras",
                    media_type="application/x-keras",
                    size_bytes=len(content),
                    sha256=hashlib.sha256(content).hexdigest(),
                    content=content,
                )
            )
            experiment.cycles_done = index + 1
            experiment.metric_name = "accuracy"
            experiment.final_cycle = index
            experiment.final_params = cost.params
            experiment.final_flops = cost.flops
            experiment.final_widths = dict(widths)
            experiment.final_metric = metric
            experiment.best_metric = max(experiment.best_metric or 0.0, metric)
        return kept

    def tflite(self, experiment_id: int, cycle_index: int, *, latency_us: float, model_bytes: int) -> None:
        """A float32 and a float16 benchmark of one cycle's model."""
        with session_scope(self.sessions) as session:
            for fmt, factor in (("float32", 1.0), ("float16", 0.8)):
                session.add(
                    TFLiteBenchmark(
                        experiment_id=experiment_id,
                        cycle_index=cycle_index,
                        format=fmt,
                        status="ok",
                        model_bytes=int(model_bytes * (0.5 if fmt == "float16" else 1.0)),
                        threads=1,
                        runs=200,
                        latency_median_us=latency_us * factor,
                        latency_p90_us=latency_us * factor * 1.15,
                        latency_mean_us=latency_us * factor * 1.03,
                        latency_min_us=latency_us * factor * 0.9,
                        latency_std_us=latency_us * 0.05,
                        keras_metric=0.97,
                        tflite_metric=0.97 - (0.0004 if fmt == "float16" else 0.0),
                    )
                )

    def finished(
        self,
        spec: ExperimentSpec,
        *,
        cycles: int,
        seed: int = 0,
        status: Status = Status.succeeded,
        epochs: int = 3,
        tflite: bool = True,
        **values: Any,
    ) -> int:
        """An experiment with ``cycles`` finished cycles, their epochs and (optionally) TFLite numbers."""
        experiment_id = self.experiment(spec, status=status, **values)
        widths = spec.model.widths()
        rng = np.random.default_rng(seed)
        for index in range(cycles):
            for epoch in range(epochs + (1 if index == 0 else 0)):
                loss = 0.6 * np.exp(-0.9 * epoch) / (1 + index) + 0.08 + float(rng.normal(0, 0.004))
                self.epoch(experiment_id, index, epoch, loss=loss, metric=0.99 - loss / 4)
            widths = self.cycle(experiment_id, index, widths, seed=seed)
        if tflite and cycles:
            first = 180.0 + seed * 7
            self.tflite(experiment_id, 0, latency_us=first, model_bytes=1_070_000)
            self.tflite(experiment_id, cycles - 1, latency_us=first / (1.6 + seed * 0.3), model_bytes=260_000)
            self.update(experiment_id, latency_speedup=1.6 + seed * 0.3)
        finished = status in (Status.succeeded, Status.failed, Status.cancelled)
        self.update(
            experiment_id,
            progress=1.0 if finished else 0.5,
            stop_reason="max_cycles" if status == Status.succeeded else None,
            finished_at=utcnow() if finished else None,
        )
        return experiment_id

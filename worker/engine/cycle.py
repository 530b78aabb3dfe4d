"""The trimming loop: train → lock → measure → choose → prune → retrain from the surviving weights.

Cycle k trains the model it is handed, evaluates it on the held-out split, measures the channels of
every prunable dependency group (``prunespec.groups``) on training examples, chooses units by the
recipe, and hands a smaller model (same surviving weights) to cycle k + 1. The loop stops when a
cycle removes nothing, after ``max_cycles``, when the validation metric falls more than
``tolerance`` behind cycle 0's (the last accepted cycle's model is then the result), or when the
reporter says the run is cancelled.

A cycle beyond the tolerance is rejected. With ``pruning.backoff.retries`` N > 0 a rejection does not
end the run: the last accepted cycle's trained model is pruned again with a smaller step (see
``prunespec.spec.Backoff``) and handed to the next cycle, up to N rejections in a row. Every cycle's
model is therefore pruned from the last accepted cycle before it (``CycleResult.pruned_from``).

Every cycle reseeds from ``seed + k``, so a run is reproducible and a resumed run continues exactly as
an uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from prunespec.costs import model_cost
from prunespec.groups import Group, groups_by_name
from prunespec.layers import ModelSpec
from prunespec.spec import ExperimentSpec
from prunespec.stops import StopReason
from worker.engine import criteria
from worker.engine.build import build_model, set_layer_weights
from worker.engine.data import Dataset, fit_to_model
from worker.engine.distortion import distort
from worker.engine.group_stats import combine
from worker.engine.results import CycleResult, ExperimentResult, LayerStats, NullReporter, Reporter, Selection
from worker.engine.stats import measure_probes
from worker.engine.surgery import LayerPlan, can_merge, prune
from worker.engine.training import (
    EpochProgress,
    Objective,
    Validation,
    compile_model,
    freeze_kernels,
    objective,
    targets,
)
from worker.engine.weight_scores import weight_scores


class ExperimentCancelled(Exception):
    """The run was cancelled before its first cycle finished."""


@dataclass(frozen=True)
class Kept:
    """The last accepted cycle: its trained model is the result so far, and what a back-off prunes again.

    Attributes:
        index: the cycle.
        model: the model it trained.
        spec: that model's architecture.
    """

    index: int
    model: keras.Model
    spec: ModelSpec


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts.

    Attributes:
        cycle: index of the next cycle to run.
        model: the pruned model handed to that cycle (its layer names as in ``spec``).
        spec: that model's architecture.
        baseline_metric: cycle 0's validation metric (for the tolerance check).
        kept: the last accepted cycle before ``cycle``. Default None: the cycle before it, whose model
            is not at hand (a rejection then ends the run, as without back-off).
        rejections: rejected cycles in a row just before ``cycle`` (0 after an accepted one).
    """

    cycle: int
    model: keras.Model
    spec: ModelSpec
    baseline_metric: float
    kept: Kept | None = None
    rejections: int = 0


def _stats_sample(x: np.ndarray, samples: int | None, seed: int) -> np.ndarray:
    if samples is None or samples >= len(x):
        return x
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size=samples, replace=False))
    return x[rows]


def _layer_inputs(
    model: keras.Model, spec: ModelSpec, names: Sequence[str], x: np.ndarray
) -> dict[str, np.ndarray]:
    """What the named layers receive on ``x`` (needed to merge always-active units)."""
    if not names:
        return {}
    outputs = [model.get_layer(name).input for name in names]
    values = keras.Model(model.input, outputs).predict(x, batch_size=4096, verbose=0)
    values = values if isinstance(values, list) else [values]
    return dict(zip(names, values, strict=True))


def _plans(
    selections: dict[str, Selection],
    probes: dict[str, list[LayerStats]],
    groups: dict[str, Group],
    mergeable: set[str],
) -> dict[str, LayerPlan]:
    plans: dict[str, LayerPlan] = {}
    for name, selection in selections.items():
        merge = selection.merge.tolist() if name in mergeable else []
        if selection.count == 0 and not merge:
            continue
        at_probes = {
            probe: {int(u): float(measured.mean[u]) for u in selection.constant}
            for probe, measured in zip(groups[name].probes, probes[name], strict=True)
        }
        plans[name] = LayerPlan(
            remove=selection.remove.tolist(),
            constants=at_probes[groups[name].probes[0]],
            merge=merge,
            probe_constants=at_probes,
        )
    return plans


def penalised_layers(model_spec: ModelSpec, groups: Sequence[str]) -> list[str]:
    """Every producer of the named groups: the layers that carry the unit penalties."""
    by_name = groups_by_name(model_spec)
    return [producer for name in groups for producer in by_name[name].producers]


class _Run:
    """One experiment's state across cycles."""

    def __init__(self, spec: ExperimentSpec, data: Dataset, reporter: Reporter):
        self.spec = spec
        self.reporter = reporter
        self.goal: Objective = objective(spec.training)
        fitted = fit_to_model(data, spec.model, spec.training.loss)
        self.x_train, self.x_test = fitted.x_train, fitted.x_test
        self.y_train = targets(fitted.y_train, self.goal, fitted.num_classes)
        self.y_test = targets(fitted.y_test, self.goal, fitted.num_classes)
        self.x_stats = _stats_sample(self.x_train, spec.pruning.stats_samples, spec.seed)
        self.prunable = list(spec.pruning.layers or spec.model.prunable_names())
        #: how a channel's statistics aggregate over its group's probes (mean, max or sum)
        self.group_score = spec.pruning.group_score

    def train(self, model: keras.Model, cycle: int) -> EpochProgress:
        training = self.spec.training
        if cycle > 0 and self.spec.pruning.finetune == "snapshot":
            freeze_kernels(model)
        epochs = training.cycle0_epochs if cycle == 0 else training.epochs
        steps = epochs * math.ceil(len(self.x_train) / training.batch_size)
        compile_model(model, training, self.goal, steps=steps)
        validation = Validation(
            self.x_test, self.y_test, training.validation_batch_size or training.batch_size
        )
        progress = EpochProgress(
            cycle,
            epochs,
            self.goal.metric_name,
            self.reporter.on_epoch,
            self.reporter.cancelled,
            validation=validation if training.validation_every > 1 else None,
        )
        model.fit(
            self.x_train,
            self.y_train,
            batch_size=training.batch_size,
            epochs=epochs,
            validation_data=(self.x_test, self.y_test),
            validation_batch_size=validation.batch_size,
            validation_freq=training.validation_every,
            shuffle=True,
            callbacks=[progress],
            verbose=0,
        )
        return progress

    def choose(
        self, model: keras.Model, model_spec: ModelSpec, step: float = 1.0
    ) -> tuple[dict[str, LayerStats], dict[str, LayerPlan], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Measure the trained model and plan the removal.

        Args:
            model: the trained model.
            model_spec: its architecture.
            step: the share of the full step to remove (``criteria.select_units``). Default 1.

        Returns:
            the first probe's statistics by layer, the removal plans, the inputs of the layers to merge,
            and the weight scores of the layers whose criterion reads weights.
        """
        pruning = self.spec.pruning
        probes = measure_probes(
            model,
            model_spec,
            self.prunable,
            self.x_stats,
            batch_size=max(self.spec.training.batch_size, 1024),
            bins=pruning.histogram_bins,
        )
        stats = {name: measured[0] for name, measured in probes.items()}
        # a channel is scored over every probe of its group (pruning.group_score), and called constant
        # only where it is constant at every probe
        scored = {name: combine(measured, self.group_score) for name, measured in probes.items()}
        groups = groups_by_name(model_spec)
        weights = weight_scores(
            model,
            model_spec,
            self.prunable,
            pruning,
            producers={name: groups[name].producers for name in self.prunable},
        )
        scores = dict(weights)
        selections = criteria.select_units(
            scored,
            pruning,
            model_spec.widths(),
            self.prunable,
            scores=scores,
            spec=model_spec,
            baseline=self.spec.model,
            step=step,
        )
        mergeable = {
            name for name in self.prunable if pruning.merge_linear and can_merge(model_spec, groups[name])
        }
        plans = _plans(selections, probes, groups, mergeable)
        merging = [name for name, plan in plans.items() if plan.merge]
        layer_inputs = _layer_inputs(model, model_spec, merging, self.x_stats)
        return stats, plans, layer_inputs, weights

    def prune(
        self,
        model: keras.Model,
        model_spec: ModelSpec,
        plans: Mapping[str, LayerPlan],
        layer_inputs: Mapping[str, np.ndarray],
        seed: int,
    ) -> tuple[keras.Model, ModelSpec]:
        """The smaller model the plans leave (same surviving weights), distorted as the recipe says."""
        pruning = self.spec.pruning
        pruned_model, pruned_spec = prune(
            model,
            model_spec,
            plans,
            training=self.spec.training,
            prunable=penalised_layers(model_spec, self.prunable),
            layer_inputs=layer_inputs,
        )
        # a group already at min_units cannot lose another unit, so noise there would only hurt
        widths_after = pruned_spec.widths()
        noisy = penalised_layers(
            pruned_spec, [name for name in self.prunable if widths_after[name] > pruning.min_units]
        )
        distort(pruned_model, noisy, pruning.distortion, np.random.default_rng(seed))
        return pruned_model, pruned_spec


def run_cycles(
    spec: ExperimentSpec,
    data: Dataset,
    reporter: Reporter | None = None,
    *,
    resume: ResumePoint | None = None,
    initial_weights: Mapping[str, list[np.ndarray]] | None = None,
) -> ExperimentResult:
    """Run trimming cycles until a stop rule fires.

    Args:
        spec: the experiment.
        data: its dataset (checked against the model before any training).
        reporter: receives every epoch and cycle, and is asked after every epoch whether the run is
            cancelled. Default: a no-op reporter.
        resume: continue from a checkpoint instead of building a fresh model. Default None.
        initial_weights: cycle 0 starts from these weights (by spec layer name, every weighted layer;
            e.g. an uploaded model's trained weights) instead of freshly initialised ones. Default None.

    Returns:
        The cycles that ran, the final model and why the loop stopped.

    Raises:
        worker.engine.data.DatasetError: the data does not fit the model.
        ExperimentCancelled: cancelled before the first cycle finished.
    """
    reporter = reporter or NullReporter()
    run = _Run(spec, data, reporter)
    pruning = spec.pruning
    kept: Kept | None = None
    rejections = 0
    if resume is None:
        keras.utils.set_random_seed(spec.seed)
        model_spec = spec.model
        model = build_model(model_spec, spec.training, penalised_layers(model_spec, run.prunable))
        if initial_weights is not None:
            set_layer_weights(model, dict(initial_weights))
        first, baseline = 0, None
    else:
        model_spec, model, first, baseline = resume.spec, resume.model, resume.cycle, resume.baseline_metric
        kept, rejections = resume.kept, resume.rejections

    cycles: list[CycleResult] = []
    final_model: keras.Model | None = None
    final_position = -1
    stop_reason = StopReason.max_cycles
    for index in range(first, pruning.max_cycles):
        keras.utils.set_random_seed(spec.seed + index)
        if reporter.cancelled():
            stop_reason = StopReason.cancelled
            break
        started = time.perf_counter()
        progress = run.train(model, index)
        if progress.was_cancelled:
            stop_reason = StopReason.cancelled
            break
        val_loss, val_metric = (
            float(v) for v in model.evaluate(run.x_test, run.y_test, batch_size=4096, verbose=0)
        )
        trained_at = time.perf_counter()
        last = progress.records[-1]
        baseline = val_metric if baseline is None else baseline
        accepted = run.goal.worse_by(val_metric, baseline) <= (
            pruning.tolerance if pruning.tolerance is not None else np.inf
        )
        # every cycle's model was pruned from the last accepted cycle before it
        pruned_from = kept.index if kept is not None else (index - 1 if index > 0 else None)
        rejections = 0 if accepted else rejections + 1

        stats, plans, layer_inputs, weights = run.choose(model, model_spec)
        measured_at = time.perf_counter()
        last_cycle = index == pruning.max_cycles - 1
        pruned_model: keras.Model | None = None
        pruned_spec = model_spec
        if accepted and not last_cycle and plans:
            pruned_model, pruned_spec = run.prune(model, model_spec, plans, layer_inputs, spec.seed + index)
        backed_off: keras.Model | None = None
        if not accepted and not last_cycle and kept is not None and rejections <= pruning.backoff.retries:
            # back off: the last accepted model again, with a smaller step
            _, retry_plans, retry_inputs, _ = run.choose(
                kept.model, kept.spec, pruning.backoff.step(rejections)
            )
            if retry_plans:
                backed_off, pruned_spec = run.prune(
                    kept.model, kept.spec, retry_plans, retry_inputs, spec.seed + index
                )
        pruned_at = time.perf_counter()

        cost = model_cost(model_spec)
        applied = pruned_model is not None
        result = CycleResult(
            index=index,
            spec=model_spec,
            widths=model_spec.widths(),
            params=cost.params,
            flops=cost.flops,
            layer_costs=list(cost.layers),
            metric_name=run.goal.metric_name,
            epochs=progress.records,
            loss=last.loss,
            metric=last.metric,
            val_loss=val_loss,
            val_metric=val_metric,
            stats=stats,
            removed={n: sorted(set(p.remove) | set(p.merge)) for n, p in plans.items()} if applied else {},
            folded={n: sorted(p.constants or {}) for n, p in plans.items()} if applied else {},
            merged={n: list(p.merge) for n, p in plans.items() if p.merge} if applied else {},
            # a rejected cycle's own model loses nothing (a back-off prunes the kept model instead)
            widths_after=pruned_spec.widths() if applied else model_spec.widths(),
            train_seconds=trained_at - started,
            stats_seconds=measured_at - trained_at,
            prune_seconds=pruned_at - measured_at,
            accepted=accepted,
            scores=weights,
            pruned_from=pruned_from,
        )
        cycles.append(result)
        reporter.on_cycle(result, model, pruned_model if accepted else backed_off)
        if not accepted:
            if backed_off is None:
                stop_reason = StopReason.tolerance
                break
            model, model_spec = backed_off, pruned_spec
            continue
        kept = Kept(index, model, model_spec)
        final_model, final_position = model, len(cycles) - 1
        if last_cycle:
            stop_reason = StopReason.max_cycles
            break
        if pruned_model is None:
            stop_reason = StopReason.nothing_removed
            break
        model, model_spec = pruned_model, pruned_spec

    if final_model is None and resume is None:
        # cycle 0 is its own baseline and always accepted, so only a cancel gets here
        raise ExperimentCancelled("cancelled before the first cycle finished")
    return ExperimentResult(
        cycles=cycles, final_position=final_position, stop_reason=stop_reason, model=final_model
    )

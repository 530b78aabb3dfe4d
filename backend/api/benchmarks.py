"""TFLite benchmark and crossover routes: read an experiment's benchmarks, run them again, and queue,
list, read and cancel crossover runs. Each route parses, calls the service, and returns its schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response, status

from backend.api.deps import ContextDep, RunId, SessionDep
from backend.auth.deps import ManagedExperimentId, VisibleExperimentId, current_user
from backend.schemas import ErrorBody, ValidationErrorBody
from backend.schemas_benchmarks import (
    BenchmarkQueued,
    BenchmarkRequest,
    CrossoverCreate,
    CrossoverCreated,
    CrossoverOut,
    ExperimentBenchmarks,
)
from backend.service import benchmarks, crossover
from backend.service.errors import QueueUnavailable
from backend.service.ports import TaskQueue

router = APIRouter(tags=["benchmarks"], dependencies=[Depends(current_user)])

Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": ErrorBody, "description": "no such experiment or run"}}
INVALID: Responses = {
    422: {"model": ValidationErrorBody, "description": "a field is invalid; `loc` names it"}
}
CONFLICT: Responses = {409: {"model": ErrorBody, "description": "the experiment has not succeeded"}}
QUEUE_DOWN: Responses = {503: {"model": ErrorBody, "description": "the queue refused the task"}}


def get_task_queue(context: ContextDep) -> TaskQueue:
    """The app's queue, if it can send benchmark and crossover tasks.

    Raises:
        QueueUnavailable: the app's queue can send experiments only.
    """
    queue = context.queue
    if isinstance(queue, TaskQueue):
        return queue
    raise QueueUnavailable("this server's queue cannot send benchmark or crossover tasks")


TaskQueueDep = Annotated[TaskQueue, Depends(get_task_queue)]


@router.get("/experiments/{experiment_id}/benchmarks", responses=NOT_FOUND, summary="TFLite benchmarks")
def experiment_benchmarks(experiment_id: VisibleExperimentId, session: SessionDep) -> ExperimentBenchmarks:
    """Every benchmark row (latency, size, fidelity, bits, the ``.tflite`` download) and, per benchmarked
    cycle, its FLOPs reduction against its measured speed-up, both relative to the baseline cycle."""
    return benchmarks.experiment_benchmarks(session, experiment_id)


@router.post(
    "/experiments/{experiment_id}/benchmarks",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, **CONFLICT, **INVALID, **QUEUE_DOWN},
    summary="Benchmark a finished experiment again",
)
def rerun_benchmarks(
    queue: TaskQueueDep,  # first: a server that cannot queue benchmarks says so before anything else
    experiment_id: ManagedExperimentId,
    session: SessionDep,
    response: Response,
    request: Annotated[BenchmarkRequest | None, Body()] = None,
) -> BenchmarkQueued:
    """Queue the conversion and timing of a succeeded experiment's cycles; the new rows replace the old
    ones when the run is done (formats, runs and threads come from the spec)."""
    queued = benchmarks.request_benchmarks(session, queue, experiment_id, request or BenchmarkRequest())
    response.headers["Location"] = queued.url
    return queued


@router.post(
    "/crossover",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**INVALID, **QUEUE_DOWN},
    summary="Time dense against sparse products across densities",
)
def create_crossover(
    request: Annotated[CrossoverCreate, Body()], session: SessionDep, queue: TaskQueueDep, response: Response
) -> CrossoverCreated:
    """Save a crossover run (``queued``) and hand its id to the workers; follow it at ``url``."""
    created = crossover.create_run(session, queue, request)
    response.headers["Location"] = created.url
    return created


@router.get("/crossover", responses=INVALID, summary="Crossover runs")
def list_crossover(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=crossover.MAX_LISTED)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[CrossoverOut]:
    """Crossover runs, newest first, with their timings and crossover densities."""
    return crossover.list_runs(session, limit, offset)


@router.get("/crossover/{run_id}", responses=NOT_FOUND, summary="One crossover run")
def get_crossover(run_id: RunId, session: SessionDep) -> CrossoverOut:
    """The run's state and, once it succeeded, per back end the timing at every density and the
    crossover density."""
    return crossover.get_run(session, run_id)


@router.post(
    "/crossover/{run_id}/cancel",
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "the run has already finished"}},
    summary="Cancel a crossover run",
)
def cancel_crossover(run_id: RunId, session: SessionDep) -> CrossoverOut:
    """A queued run is cancelled at once; a running one stops before its next density or back end
    (``cancel_requested`` is set); a finished one is a conflict."""
    return crossover.cancel_run(session, run_id)

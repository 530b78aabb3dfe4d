"""API latency on a large history: the experiment listing and one experiment, against a baseline.

Usage:
    python benchmarks/api_latency.py [--database-url URL] [--experiments 1000] [--cycles 30]
        [--epochs 5] [--widths 1000,300,100] [--bins 32] [--requests 200]

Fills a database with ``--experiments`` finished experiments of ``--cycles`` cycles each: epoch rows,
cycle rows, and one layer-statistics row per layer and cycle with every per-unit blob (widths start
at ``--widths`` and shrink as pruning shrinks them: a fifth after cycle 0, then by a fifth a cycle).
Then it starts ``uvicorn`` on a free loopback port in a separate process and times, over one
keep-alive connection, ``--requests`` sequential requests each of:

* ``baseline``: ``GET /api/presets`` (no database; the framework's own cost),
* ``list``: ``GET /api/experiments`` (the default page: 50 newest),
* ``get``: ``GET /api/experiments/{id}`` (random ids; spec and 30 cycle summaries),
* ``layers``: ``GET /api/experiments/{id}/cycles/0/layers`` (the largest cycle's blobs decoded).

It prints JSON: row counts, generation time, p50/p95 in milliseconds, and each endpoint's p50 as a
ratio to the baseline's (absolute times drift on shared machines; the ratios are the result).

The default database is SQLite in a temporary directory (deleted afterwards). With
``--database-url`` (e.g. a throwaway PostgreSQL database) the schema is migrated and, unless it
already holds that many experiments, filled; the rows are left in place for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import Engine, func, insert, select

from backend.arrays import encode
from backend.auth.roles import Role
from backend.auth.users import add_user, issue_token
from backend.db import make_engine, make_session_factory, session_scope
from backend.migrate import upgrade_to_head
from backend.models import Cycle, EpochRow, Experiment, LayerStatsRow, Status, User, utcnow
from backend.settings import Settings
from prunespec.presets import preset

LAYER_NAMES = ("fc1", "fc2", "fc3")
BATCH_EXPERIMENTS = 20


def _widths(initial: list[int], cycles: int) -> list[list[int]]:
    """Per cycle, the width of each layer: full, then a fifth, then shrinking by a fifth a cycle."""
    out = [list(initial)]
    for _ in range(1, cycles):
        factor = 0.2 if len(out) == 1 else 0.8
        out.append([max(4, int(width * factor)) for width in out[-1]])
    return out


class Blobs:
    """Per-unit arrays of a given width, made once and reused (generation is I/O bound, not RNG bound)."""

    def __init__(self, bins: int, seed: int = 0):
        self.bins = bins
        self.rng = np.random.default_rng(seed)
        self.cache: dict[int, dict[str, Any]] = {}

    def row(self, width: int, outputs: int) -> dict[str, Any]:
        if width not in self.cache:
            zeros = self.rng.integers(0, outputs, width)
            histograms = self.rng.integers(0, outputs // self.bins + 1, (width, self.bins))
            self.cache[width] = {
                "units": width,
                "outputs": outputs,
                "summary": {
                    "apoz_mean": float(zeros.mean() / outputs),
                    "dead": int((zeros == outputs).sum()),
                },
                "histogram": histograms.sum(axis=0).tolist(),
                "bin_edges": np.linspace(-1.0, 3.0, self.bins + 1).tolist(),
                "active": encode("active", outputs - zeros),
                "zeros": encode("zeros", zeros),
                "mean": encode("mean", self.rng.random(width)),
                "variance": encode("variance", self.rng.random(width)),
                "minimum": encode("minimum", np.zeros(width)),
                "maximum": encode("maximum", self.rng.random(width) * 3),
                "unit_histograms": encode("unit_histograms", histograms),
            }
        return self.cache[width]


def _spec() -> dict[str, Any]:
    return {
        "name": "bench",
        "seed": 0,
        "model": preset("lenet-300-100").model_dump(mode="json"),
        "dataset": {"name": "mnist"},
    }


def generate(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    """Insert the experiments and their rows in batches; returns row counts and seconds."""
    started = time.perf_counter()
    initial = [int(width) for width in args.widths.split(",")]
    names = list(LAYER_NAMES[: len(initial)]) + [f"fc{i + 1}" for i in range(len(LAYER_NAMES), len(initial))]
    schedule = _widths(initial, args.cycles)
    blobs = Blobs(args.bins)
    spec = _spec()
    now = utcnow()
    counts = {"experiments": 0, "cycles": 0, "epochs": 0, "layer_stats": 0}
    for first in range(0, args.experiments, BATCH_EXPERIMENTS):
        count = min(BATCH_EXPERIMENTS, args.experiments - first)
        with engine.begin() as connection:
            experiment_rows = [
                {
                    "name": f"bench-{first + i:05d}",
                    "owner": f"user{(first + i) % 7}",
                    "tags": ["bench", f"group{(first + i) % 10}"],
                    "notes": "",
                    "spec": spec,
                    "seed": 0,
                    "status": Status.succeeded.value,
                    "cancel_requested": False,
                    "progress": 1.0,
                    "progress_detail": {},
                    "attempts": 1,
                    "stop_reason": "max_cycles",
                    "final_cycle": args.cycles - 1,
                    "created_at": now - timedelta(minutes=args.experiments - first - i),
                    "cycles_done": args.cycles,
                    "metric_name": "accuracy",
                    "initial_params": 266_610,
                    "final_params": 5_000,
                    "final_metric": 0.9 + (first + i) % 100 / 1000,
                    "best_metric": 0.99,
                }
                for i in range(count)
            ]
            ids = list(connection.scalars(insert(Experiment).returning(Experiment.id), experiment_rows))
            cycle_rows: list[dict[str, Any]] = []
            epoch_rows: list[dict[str, Any]] = []
            for experiment_id in ids:
                for index, widths in enumerate(schedule):
                    named = dict(zip(names, widths, strict=True))
                    cycle_rows.append(
                        {
                            "experiment_id": experiment_id,
                            "index": index,
                            "model_spec": spec["model"],
                            "widths": named,
                            "widths_after": named,
                            "params": sum(widths) * 100,
                            "flops": sum(widths) * 200,
                            "layer_costs": [
                                {"name": n, "type": "dense", "params": 1, "flops": 2} for n in names
                            ],
                            "removed": {},
                            "folded": {},
                            "merged": {},
                            "metric_name": "accuracy",
                            "loss": 0.1,
                            "metric": 0.97,
                            "val_loss": 0.12,
                            "val_metric": 0.96,
                            "train_seconds": 3.0,
                            "stats_seconds": 0.5,
                            "prune_seconds": 0.1,
                            "accepted": True,
                        }
                    )
                    epoch_rows.extend(
                        {
                            "experiment_id": experiment_id,
                            "cycle": index,
                            "epoch": epoch,
                            "loss": 0.2,
                            "metric": 0.95,
                            "val_loss": 0.21,
                            "val_metric": 0.94,
                            "seconds": 0.6,
                        }
                        for epoch in range(args.epochs)
                    )
            cycle_ids = list(connection.scalars(insert(Cycle).returning(Cycle.id), cycle_rows))
            layer_rows = [
                {"cycle_id": cycle_id, "layer": name, **blobs.row(width, outputs=10_000)}
                for cycle_id, cycle in zip(cycle_ids, cycle_rows, strict=True)
                for name, width in cycle["widths"].items()
            ]
            connection.execute(insert(EpochRow), epoch_rows)
            connection.execute(insert(LayerStatsRow), layer_rows)
        counts["experiments"] += len(ids)
        counts["cycles"] += len(cycle_rows)
        counts["epochs"] += len(epoch_rows)
        counts["layer_stats"] += len(layer_rows)
        print(
            f"  generated {counts['experiments']}/{args.experiments} experiments", file=sys.stderr, end="\r"
        )
    print(file=sys.stderr)
    return {"rows": counts, "generate_seconds": round(time.perf_counter() - started, 1)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn_process(settings: Settings) -> Iterator[str]:
    """``uvicorn backend.app:create_app`` in a child process on a free loopback port; yields its URL."""
    port = _free_port()
    env = {
        **os.environ,
        "PRUNELAB_DATA_DIR": str(settings.data_dir),
        "PRUNELAB_DATABASE_URL": settings.database_url,
        "PRUNELAB_BROKER_URL": "memory://",  # nothing is enqueued; the queue is never contacted
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "backend.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/presets", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


#: The admin the benchmarks read as (sign-in is on by default, as a user would run the server).
READER = "bench-reader"


def reader(session: Any) -> User:
    """The benchmarks' admin, created on first use in this database."""
    user = session.query(User).filter(User.name == READER).one_or_none()
    if user is None:
        add_user(session, READER, Role.admin)
        user = session.query(User).filter(User.name == READER).one()
    return user


def api_token(settings: Settings) -> str:
    """A new API token of the benchmarks' admin (its secret)."""
    engine = make_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            return issue_token(session, reader(session))
    finally:
        engine.dispose()


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def time_endpoints(
    url: str, paths: dict[str, Callable[[], str]], requests: int, token: str, warmup: int = 10
) -> dict[str, dict[str, float]]:
    """GET every path ``requests`` times after ``warmup`` untimed rounds, interleaved round by round
    over one keep-alive connection, as the holder of the API ``token``; p50, p95 and max in
    milliseconds per path."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        for round_index in range(requests + warmup):
            for name, path in paths.items():
                target = path()
                started = time.perf_counter()
                response = client.get(target)
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                if round_index >= warmup:  # the first rounds warm caches and connections
                    samples[name].append(elapsed)
    return {name: _percentiles(values) for name, values in samples.items()}


def ratios_to_baseline(latency: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each endpoint's p50 over the ``baseline`` endpoint's p50 (timed in the same rounds)."""
    baseline = latency["baseline"]["p50_ms"]
    return {
        name: round(values["p50_ms"] / baseline, 2) for name, values in latency.items() if name != "baseline"
    }


def measure(
    url: str, ids: list[int], requests: int, token: str, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Time the list, one experiment and one cycle's layers against a baseline that reads no database."""
    rng = random.Random(seed)
    paths = {
        "baseline": lambda: "/api/presets",
        "list": lambda: "/api/experiments",
        "get": lambda: f"/api/experiments/{rng.choice(ids)}",
        "layers": lambda: f"/api/experiments/{rng.choice(ids)}/cycles/0/layers",
    }
    return time_endpoints(url, paths, requests, token)


def add_history_arguments(parser: argparse.ArgumentParser, requests: int) -> None:
    """The options that size the generated history (and the timed requests per endpoint)."""
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=5, help="epoch rows per cycle")
    parser.add_argument("--widths", default="1000,300,100", help="layer widths at cycle 0")
    parser.add_argument("--bins", type=int, default=32, help="histogram bins per unit")
    parser.add_argument("--requests", type=int, default=requests, help="timed requests per endpoint")


def stored_history(data_dir: Path, args: argparse.Namespace) -> tuple[Settings, dict[str, Any], list[int]]:
    """Migrate the database (``--database-url``, or SQLite in ``data_dir``) and fill it with the
    history unless it already holds ``--experiments`` experiments.

    Returns:
        The settings, a report of what was generated (or reused) and every experiment id.
    """
    overrides = {"database_url": args.database_url} if args.database_url else {}
    settings = Settings(data_dir=data_dir, broker_url="memory://", **overrides)
    upgrade_to_head(settings)
    engine = make_engine(settings)
    try:
        with engine.connect() as connection:
            existing = connection.scalar(select(func.count()).select_from(Experiment)) or 0
        report: dict[str, Any] = {"database": engine.dialect.name}
        if existing >= args.experiments:
            report["reused_experiments"] = existing
        else:
            report.update(generate(engine, args))
        with engine.connect() as connection:
            ids = list(connection.scalars(select(Experiment.id)))
    finally:
        engine.dispose()
    if settings.is_sqlite:
        report["database_mb"] = round((data_dir / "prunelab.db").stat().st_size / 2**20, 1)
    return settings, report, ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_history_arguments(parser, requests=200)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="prunelab-bench-") as tmp:
        settings, report, ids = stored_history(Path(tmp), args)
        token = api_token(settings)
        with uvicorn_process(settings) as url:
            latency = measure(url, ids, args.requests, token)
    report.update(
        {
            "requests_per_endpoint": args.requests,
            "latency": latency,
            "p50_ratio_to_baseline": ratios_to_baseline(latency),
        }
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

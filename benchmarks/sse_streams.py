"""Other requests' latency while many server-sent event streams are open, against a baseline with none.

Usage:
    python benchmarks/sse_streams.py [--streams 200] [--experiments 20] [--requests 200]
        [--epoch-seconds 0] [--quick]

Starts ``uvicorn backend.app:create_app`` in a child process on a free loopback port (SQLite in a
temporary directory, embedded broker never contacted), adds ``--experiments`` running experiments, and
times ``--requests`` sequential ``GET /api/experiments`` (one keep-alive connection):

* ``baseline``: with no stream open;
* ``streams``: with ``--streams`` event streams open (spread over the experiments, each having received
  its first event), held open while the requests are timed. With ``--epoch-seconds S`` a writer
  thread records one epoch of every experiment each S seconds meanwhile, as busy workers would (every
  stream then has events to read); 0 (the default) leaves the experiments idle.

It prints JSON: p50/p95/max in milliseconds of both phases, the p50 and p95 ratios to the baseline,
and how many streams the server accepted and refused (it runs with stream limits raised to
``--streams``, so none should be refused). Absolute times drift on shared machines; the ratios and
the p95 with streams open (target: under 100 ms with 200 streams) are the result. ``--quick`` is 200
streams and 60 requests per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_latency  # noqa: E402  (the uvicorn child process)

from backend.db import make_engine, session_scope  # noqa: E402
from backend.db import make_session_factory as sessions_of  # noqa: E402
from backend.migrate import upgrade_to_head  # noqa: E402
from backend.models import EpochRow, Experiment, Status, utcnow  # noqa: E402
from backend.settings import Settings  # noqa: E402

SPEC: dict[str, Any] = {
    "name": "sse-bench",
    "model": {"preset": "sum-mlp"},
    "dataset": {"name": "sum", "train_samples": 1000, "test_samples": 100},
}


class EpochWriter:
    """A thread that records one epoch of every experiment each ``seconds`` (as busy workers would)."""

    def __init__(self, settings: Settings, ids: list[int], seconds: float):
        self.engine = make_engine(settings)
        self.sessions = sessions_of(self.engine)
        self.ids, self.seconds = ids, seconds
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="epoch-writer", daemon=True)

    def _run(self) -> None:
        epoch = 0
        while not self._stop.wait(self.seconds):
            with session_scope(self.sessions) as session:
                for experiment_id in self.ids:
                    session.add(
                        EpochRow(experiment_id=experiment_id, cycle=0, epoch=epoch, loss=0.5, seconds=0.1)
                    )
                    session.get_one(Experiment, experiment_id).progress = min(1.0, epoch / 1000)
            epoch += 1
            self.written += len(self.ids)

    def __enter__(self) -> EpochWriter:
        if self.seconds > 0:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.engine.dispose()


def running_experiments(settings: Settings, count: int) -> list[int]:
    """``count`` running experiments (no cycles yet); their ids."""
    engine = make_engine(settings)
    try:
        with session_scope(sessions_of(engine)) as session:
            rows = [
                Experiment(
                    name=f"sse-{index}",
                    spec=SPEC,
                    status=Status.running.value,
                    started_at=utcnow(),
                    heartbeat_at=utcnow(),
                )
                for index in range(count)
            ]
            session.add_all(rows)
            session.flush()
            return [row.id for row in rows]
    finally:
        engine.dispose()


async def time_requests(client: httpx.AsyncClient, url: str, requests: int, warmup: int = 5) -> list[float]:
    """Seconds each of ``requests`` sequential GETs took (after ``warmup`` untimed ones)."""
    samples = []
    for index in range(warmup + requests):
        started = time.perf_counter()
        response = await client.get(url)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        if index >= warmup:
            samples.append(elapsed)
    return samples


async def hold_stream(
    client: httpx.AsyncClient, url: str, opened: asyncio.Queue[int], release: asyncio.Event
) -> None:
    """Open one event stream, report its status once the first event arrived, read it until released."""
    async with client.stream("GET", url) as response:
        await opened.put(response.status_code)
        if response.status_code != 200:
            return
        lines = response.aiter_lines()
        reading = asyncio.ensure_future(_drain(lines))
        await release.wait()
        reading.cancel()


async def _drain(lines: Any) -> None:
    async for _line in lines:
        pass


async def run(
    url: str, ids: list[int], streams: int, requests: int, writer: EpochWriter | None = None
) -> dict[str, Any]:
    """Both phases against a running server."""
    listing = f"{url}/api/experiments"
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    timeout = httpx.Timeout(60.0)
    async with (
        httpx.AsyncClient(timeout=timeout) as timer,
        httpx.AsyncClient(timeout=timeout, limits=limits) as followers,
    ):
        baseline = await time_requests(timer, listing, requests)
        opened: asyncio.Queue[int] = asyncio.Queue()
        release = asyncio.Event()
        tasks = [
            asyncio.ensure_future(
                hold_stream(
                    followers, f"{url}/api/experiments/{ids[index % len(ids)]}/events", opened, release
                )
            )
            for index in range(streams)
        ]
        statuses = [await opened.get() for _ in range(streams)]
        if writer is not None:
            with writer:
                await asyncio.sleep(2 * writer.seconds)  # the streams are busy reading epochs
                with_streams = await time_requests(timer, listing, requests)
        else:
            with_streams = await time_requests(timer, listing, requests)
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    base, loaded = api_latency._percentiles(baseline), api_latency._percentiles(with_streams)
    return {
        "streams": streams,
        "accepted": statuses.count(200),
        "refused": len(statuses) - statuses.count(200),
        "requests_per_phase": requests,
        "baseline": base,
        "with_streams": loaded,
        "p50_ratio": round(loaded["p50_ms"] / base["p50_ms"], 2),
        "p95_ratio": round(loaded["p95_ms"] / base["p95_ms"], 2),
        "target_p95_under_100_ms": loaded["p95_ms"] < 100.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--experiments", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--epoch-seconds", type=float, default=0.0, help="record epochs meanwhile (0: idle)")
    parser.add_argument("--quick", action="store_true", help="200 streams, 60 requests per phase")
    args = parser.parse_args(argv)
    if args.quick:
        args.streams, args.requests = 200, 60

    with tempfile.TemporaryDirectory(prefix="prunelab-sse-") as tmp:
        settings = Settings(data_dir=Path(tmp), broker_url="memory://")
        upgrade_to_head(settings)
        ids = running_experiments(settings, args.experiments)
        os.environ["PRUNELAB_MAX_STREAMS"] = str(args.streams)  # the child inherits the environment
        os.environ["PRUNELAB_MAX_STREAMS_PER_CLIENT"] = str(args.streams)
        with api_latency.uvicorn_process(settings) as url:
            writer = EpochWriter(settings, ids, args.epoch_seconds) if args.epoch_seconds > 0 else None
            report = asyncio.run(run(url, ids, args.streams, args.requests, writer))
    report["experiments"] = args.experiments
    report["epoch_seconds"] = args.epoch_seconds
    report["epochs_written"] = writer.written if writer is not None else 0
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

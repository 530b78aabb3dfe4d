"""Many clients at once against a live server: no lock errors, every experiment saved and queued."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fastapi import FastAPI

PARALLEL = 20


def test_parallel_creates_all_succeed(app: FastAPI, queue: Any, serve: Any, spec: dict[str, Any]) -> None:
    start = threading.Barrier(PARALLEL)

    def create(index: int, base_url: str) -> httpx.Response:
        body = {"spec": {**spec, "name": f"parallel-{index}"}, "tags": ["load"]}
        with httpx.Client(base_url=base_url, timeout=60) as client:
            start.wait()
            return client.post("/api/experiments", json=body)

    with serve(app) as server, ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(pool.map(lambda i: create(i, server.url), range(PARALLEL)))
        listing = httpx.get(f"{server.url}/api/experiments", params={"tag": "load", "limit": 100}).json()

    assert [response.status_code for response in responses] == [202] * PARALLEL, [
        response.text for response in responses if response.status_code != 202
    ]
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == PARALLEL
    assert sorted(queue.ids) == sorted(ids)
    assert listing["total"] == PARALLEL
    assert {item["name"] for item in listing["items"]} == {f"parallel-{i}" for i in range(PARALLEL)}


def test_parallel_cancels_and_reads_of_one_experiment(app: FastAPI, serve: Any, spec: dict[str, Any]) -> None:
    with serve(app) as server:
        created = httpx.post(f"{server.url}/api/experiments", json={"spec": spec}).json()
        url = f"{server.url}{created['url']}"

        def hit(index: int) -> int:
            if index % 2:
                return httpx.get(url, timeout=60).status_code
            return httpx.post(f"{url}/cancel", json={}, timeout=60).status_code

        with ThreadPoolExecutor(PARALLEL) as pool:
            codes = list(pool.map(hit, range(PARALLEL)))

    cancels = codes[0::2]
    assert codes[1::2] == [200] * (PARALLEL // 2)
    assert cancels.count(200) == 1 and cancels.count(409) == PARALLEL // 2 - 1

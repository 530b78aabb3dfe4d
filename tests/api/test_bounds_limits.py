"""Cost limits on submitted specs: create and rerun refuse a spec over a limit with a 422 (409 for a
rerun) naming the limit and the spec's value; both previews show every estimate against its limit."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin

from backend.settings import Settings

#: 255 hidden dense layers of 65,536 units on the sum dataset: 1.09e12 parameters.
HUGE_DENSE: dict[str, Any] = {
    "input_shape": [2],
    "layers": [{"type": "dense", "units": 65536, "activation": "relu"}] * 255
    + [{"type": "dense", "units": 1}],
}
#: Two 8,192-filter convolutions on 28×28 images: 9.47e11 FLOPs per example.
HUGE_CONV: dict[str, Any] = {
    "input_shape": [28, 28, 1],
    "layers": [
        {"type": "conv2d", "filters": 8192, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "conv2d", "filters": 8192, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "flatten"},
        {"type": "dense", "units": 10},
    ],
}


def _client(settings: Settings, queue: Any, **limits: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=limits), queue)) as client:
        yield client


@pytest.fixture
def limited(sqlite_settings: Settings, queue: Any) -> Iterator[TestClient]:
    """The app with the default limits."""
    yield from _client(sqlite_settings, queue)


def _issue(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    issues = response.json()["detail"]
    assert len(issues) == 1
    issue: dict[str, Any] = issues[0]
    return issue


def test_a_model_over_the_parameter_limit_is_refused_naming_the_limit_and_its_value(
    limited: TestClient, queue: Any, spec: dict[str, Any]
) -> None:
    spec["model"] = HUGE_DENSE

    issue = _issue(limited.post("/api/experiments", json={"spec": spec}))

    assert issue["field"] == "spec.model" and issue["loc"] == ["body", "spec", "model"]
    assert issue["msg"] == (
        "model has 1.09e12 parameters; this server allows at most 5e7 (PRUNELAB_MAX_PARAMETERS)"
    )
    assert queue.ids == []
    assert limited.get("/api/experiments").json()["total"] == 0


def test_a_model_over_the_flops_limit_is_refused(
    sqlite_settings: Settings, queue: Any, spec: dict[str, Any]
) -> None:
    spec["model"] = HUGE_CONV
    spec["dataset"] = {"name": "mnist", "train_samples": 100, "test_samples": 10}
    spec["training"]["loss"] = "crossentropy"
    for client in _client(sqlite_settings, queue, max_parameters=10**12):
        issue = _issue(client.post("/api/experiments", json={"spec": spec}))

    assert issue["field"] == "spec.model"
    assert issue["msg"] == (
        "model costs 9.47e11 FLOPs per example; "
        "this server allows at most 2e10 (PRUNELAB_MAX_FLOPS_PER_EXAMPLE)"
    )


def test_training_work_over_the_limit_is_refused_with_examples_and_epochs(
    sqlite_settings: Settings, queue: Any, spec: dict[str, Any]
) -> None:
    spec["dataset"]["train_samples"] = 10_000
    spec["training"] = {"epochs": 4, "first_epochs": 10}
    spec["pruning"]["max_cycles"] = 3  # 10 + 2 × 4 = 18 epochs → 180,000
    for client in _client(sqlite_settings, queue, max_training_examples_epochs=179_999):
        issue = _issue(client.post("/api/experiments", json={"spec": spec}))
    for client in _client(sqlite_settings, queue, max_training_examples_epochs=180_000):
        accepted = client.post("/api/experiments", json={"spec": spec})

    assert issue["field"] == "spec.training"
    assert issue["msg"] == (
        "training examples × epochs over all cycles is 180,000 (10,000 examples × 18 epochs); "
        "this server allows at most 179,999 (PRUNELAB_MAX_TRAINING_EXAMPLES_EPOCHS)"
    )
    assert accepted.status_code == 202


def test_a_rerun_of_a_spec_now_over_a_limit_is_a_conflict(
    sqlite_settings: Settings, queue: Any, spec: dict[str, Any]
) -> None:
    for client in _client(sqlite_settings, queue):
        created = client.post("/api/experiments", json={"spec": spec}).json()
    for client in _client(sqlite_settings, queue, max_parameters=10):
        response = client.post(f"{created['url']}/rerun", json={})

    assert response.status_code == 409
    assert "is over this server's limits: model has" in response.json()["detail"]
    assert "at most 10 (PRUNELAB_MAX_PARAMETERS)" in response.json()["detail"]
    assert queue.ids == [created["id"]]


def _by_name(preview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in preview["limits"]}


def test_the_previews_show_every_estimate_against_its_limit(
    limited: TestClient, spec: dict[str, Any]
) -> None:
    huge = copy.deepcopy(spec)
    huge["model"] = HUGE_DENSE

    yaml_text = {"content": yaml.safe_dump(huge), "headers": {"content-type": "text/yaml"}}
    parsed = limited.post("/api/specs/parse", **yaml_text)
    previewed = limited.post("/api/specs/preview", json={"spec": spec})

    assert parsed.status_code == 200 and previewed.status_code == 200
    over = _by_name(parsed.json())
    assert over["parameters"]["within"] is False and over["parameters"]["limit"] == 50_000_000
    assert over["parameters"]["value"] == parsed.json()["cost"]["params"] > 10**12
    assert (over["parameters"]["setting"], over["parameters"]["field"]) == (
        "PRUNELAB_MAX_PARAMETERS",
        "model",
    )
    within = _by_name(previewed.json())
    assert all(check["within"] for check in within.values())
    assert within["training_examples_epochs"]["value"] == 1000 * (2 + 2 * 2)
    assert within["wall_seconds"] == {
        "name": "wall_seconds",
        "field": "training",
        "value": None,
        "limit": 4 * 3600,
        "within": True,
        "setting": "PRUNELAB_MAX_WALL_SECONDS",
    }

"""Bad input: 422 naming the field (as the client wrote it), nothing saved, nothing enqueued."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

SPEC: dict[str, Any] = {
    "name": "sum-trim",
    "model": "sum-mlp",
    "dataset": {"name": "sum", "train_samples": 1000},
}


def _body(**spec_changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec.update(spec_changes)
    return {"spec": spec}


@pytest.mark.parametrize(
    ("body", "loc", "type_", "words"),
    [
        pytest.param(
            _body(training={"learning_rate": 20.0}),
            ["body", "spec", "training", "learning_rate"],
            "less_than_equal",
            "10",
            id="out-of-range",
        ),
        pytest.param(
            _body(training={"learning_rate": 0}),
            ["body", "spec", "training", "learning_rate"],
            "greater_than",
            "greater than 0",
            id="zero-learning-rate",
        ),
        pytest.param(
            _body(training={"epochs": 2, "epochz": 3}),
            ["body", "spec", "training", "epochz"],
            "extra_forbidden",
            "not permitted",
            id="unknown-spec-field",
        ),
        pytest.param(
            {**_body(), "colour": "red"},
            ["body", "colour"],
            "extra_forbidden",
            "not permitted",
            id="unknown-field",
        ),
        pytest.param(
            _body(model="lenet-9000"), ["body", "spec", "model"], "value_error", "unknown preset", id="preset"
        ),
        pytest.param(
            _body(dataset={"name": "cifar-10"}),
            ["body", "spec", "dataset"],
            "union_tag_invalid",
            "mnist",
            id="unknown-dataset",
        ),
        pytest.param(
            _body(model={"input_shape": [2], "layers": [{"type": "dense", "units": 0}]}),
            ["body", "spec", "model", "layers", 0, "units"],
            "greater_than_equal",
            "1",
            id="layer-field-without-union-tag",
        ),
        pytest.param(
            _body(pruning={"criterion": {"type": "apoz", "k": -1}}),
            ["body", "spec", "pruning", "criterion", "k"],
            "greater_than_equal",
            "0",
            id="criterion-field-without-union-tag",
        ),
        pytest.param(
            _body(pruning={"tolerance": 0.01, "backoff": {"retries": 2, "factor": 1.0}}),
            ["body", "spec", "pruning", "backoff", "factor"],
            "less_than",
            "less than 1",
            id="backoff-factor",
        ),
        pytest.param(
            _body(pruning={"backoff": {"retries": 2}}),
            ["body", "spec", "pruning"],
            "value_error",
            "backoff.retries: needs a tolerance",
            id="backoff-without-tolerance",
        ),
        pytest.param(
            {"spec": {"model": "sum-mlp", "dataset": {"name": "sum"}}},
            ["body", "spec", "name"],
            "missing",
            "required",
            id="missing-name",
        ),
        pytest.param(
            {**_body(), "tags": ["ok"] * 21}, ["body", "tags"], "too_long", "20", id="too-many-tags"
        ),
        pytest.param(
            {**_body(), "owner": "  "}, ["body", "owner"], "string_too_short", "1", id="blank-owner"
        ),
        pytest.param({}, ["body", "spec"], "missing", "required", id="no-spec"),
    ],
)
def test_invalid_specs_are_422_naming_the_field(
    sqlite_client: TestClient, queue: Any, body: dict[str, Any], loc: list[Any], type_: str, words: str
) -> None:
    for path in ("/api/experiments", "/api/specs/preview"):
        if path.endswith("preview") and loc[1] != "spec":
            continue  # the preview takes only a spec
        response = sqlite_client.post(path, json=body)

        assert response.status_code == 422, response.text
        issues = response.json()["detail"]
        matching = [issue for issue in issues if issue["loc"] == loc]
        assert matching, issues
        assert matching[0]["type"] == type_
        assert words.lower() in matching[0]["msg"].lower()
        assert matching[0]["field"] == ".".join(str(part) for part in loc[1:])
        assert not matching[0]["msg"].startswith("Value error")
    assert queue.ids == []
    assert sqlite_client.get("/api/experiments").json()["total"] == 0


def test_a_shape_error_names_the_layer(sqlite_client: TestClient) -> None:
    spec = _body(model={"input_shape": [28, 28, 1], "layers": [{"type": "dense", "name": "fc", "units": 10}]})

    response = sqlite_client.post("/api/experiments", json=spec)

    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["loc"] == ["body", "spec", "model", "layers"]
    assert "layer 0 (dense 'fc')" in issue["msg"] and "flatten" in issue["msg"]


@pytest.mark.parametrize("content", [b"{not json", b'{"spec": ', b"", b"[1, 2]"])
def test_malformed_json_is_422(sqlite_client: TestClient, queue: Any, content: bytes) -> None:
    response = sqlite_client.post(
        "/api/experiments", content=content, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"][0] == "body"
    assert issue["type"] in {"json_invalid", "missing", "model_attributes_type"}
    assert queue.ids == []


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("limit=0", ["query", "limit"]),
        ("limit=501", ["query", "limit"]),
        ("offset=-1", ["query", "offset"]),
        ("sort=colour", ["query", "sort"]),
        ("order=sideways", ["query", "order"]),
        ("status=paused", ["query", "status", 0]),
        ("page=2", ["query", "page"]),
    ],
)
def test_bad_listing_parameters_are_422(sqlite_client: TestClient, query: str, loc: list[Any]) -> None:
    response = sqlite_client.get(f"/api/experiments?{query}")

    assert response.status_code == 422
    assert [issue["loc"] for issue in response.json()["detail"]] == [loc]


@pytest.mark.parametrize(
    "path",
    ["/api/experiments/abc", "/api/experiments/0", "/api/artifacts/-3", "/api/experiments/1/cycles/x/layers"],
)
def test_malformed_ids_are_422(sqlite_client: TestClient, path: str) -> None:
    response = sqlite_client.get(path)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "path"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/experiments/999"),
        ("GET", "/api/experiments/999/cycles"),
        ("GET", "/api/experiments/999/epochs"),
        ("GET", "/api/experiments/999/cycles/0/layers"),
        ("GET", "/api/experiments/999/artifacts"),
        ("GET", "/api/experiments/999/events"),
        ("GET", "/api/artifacts/999"),
        ("POST", "/api/experiments/999/cancel"),
        ("POST", "/api/experiments/999/rerun"),
        ("DELETE", "/api/experiments/999"),
    ],
)
def test_unknown_ids_are_404(sqlite_client: TestClient, method: str, path: str) -> None:
    response = sqlite_client.request(method, path, json={} if method == "POST" else None)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "999 does not exist" in response.json()["detail"]

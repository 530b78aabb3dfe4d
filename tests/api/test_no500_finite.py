"""Numbers that are not finite (``NaN``, ``Infinity``, ``1e999``) are refused with a 422 naming the field,
on SQLite and on PostgreSQL (whose JSON refuses them), in JSON bodies and in YAML specs."""

from __future__ import annotations

import copy
import json
from typing import Any, get_args, get_origin

import pytest
from fastapi.testclient import TestClient
from no500_doubles import TasksAndExperiments
from pydantic import BaseModel

from backend.api.pages import SpecText
from backend.schemas import ExperimentCreate, ExperimentQuery, SpecPreviewRequest
from backend.schemas_benchmarks import BenchmarkRequest, CrossoverCreate

SPEC: dict[str, Any] = {
    "name": "sum-trim",
    "model": "sum-mlp",
    "dataset": {"name": "sum", "train_samples": 1000, "test_samples": 100},
    "training": {"epochs": 2},
    "pruning": {"criterion": "activation_count", "max_cycles": 3},
}
#: Where a number goes in a spec, and where the error should point (as written).
PLACES = [
    (("pruning", "tolerance"), ["pruning", "tolerance"]),
    (("pruning", "criterion"), ["pruning", "criterion", "threshold"]),
    (("training", "learning_rate"), ["training", "learning_rate"]),
    (("dataset", "std"), ["dataset", "std"]),
]
#: JSON text Python's parser reads as a non-finite float (the first two are not JSON at all).
NOT_FINITE = ["NaN", "Infinity", "-Infinity", "1e999"]
MARK = 123.456


@pytest.fixture
def queue() -> TasksAndExperiments:
    """Replaces the API fixtures' queue so that crossover requests reach validation."""
    return TasksAndExperiments()


def _spec_with(place: tuple[str, ...]) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    section, key = place
    if key == "criterion":
        spec[section][key] = {"type": "variance", "threshold": MARK}
    else:
        spec[section][key] = MARK
    return spec


def _json_with(body: dict[str, Any], literal: str) -> bytes:
    return json.dumps(body).replace(str(MARK), literal).encode()


@pytest.mark.parametrize("literal", NOT_FINITE)
@pytest.mark.parametrize(("place", "loc"), PLACES)
def test_a_spec_number_that_is_not_finite_is_422_naming_it(
    client: TestClient, place: tuple[str, ...], loc: list[str], literal: str
) -> None:
    for url in ("/api/experiments", "/api/specs/preview"):
        body = _json_with({"spec": _spec_with(place)}, literal)

        response = client.post(url, content=body, headers={"content-type": "application/json"})

        assert response.status_code == 422, (url, place, literal, response.status_code, response.text[:300])
        assert ["body", "spec", *loc] in [issue["loc"] for issue in response.json()["detail"]]
    assert client.get("/api/experiments").json()["total"] == 0


@pytest.mark.parametrize("literal", [".inf", ".nan", "-.inf", "1e999"])
def test_a_yaml_spec_number_that_is_not_finite_is_422_naming_it(
    sqlite_client: TestClient, literal: str
) -> None:
    text = json.dumps(_spec_with(("pruning", "tolerance"))).replace(str(MARK), literal)

    response = sqlite_client.post("/api/specs/parse", content=text, headers={"content-type": "text/yaml"})

    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"][0]["loc"] == ["body", "spec", "pruning", "tolerance"]


def test_a_crossover_density_that_is_not_finite_is_422(sqlite_client: TestClient) -> None:
    body = _json_with({"rows": 8, "cols": 8, "densities": [MARK]}, "NaN")

    response = sqlite_client.post(
        "/api/crossover", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "densities"]


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    """Every model reachable from ``model``'s fields, into ``seen``."""
    if model in seen:
        return
    seen.add(model)
    pending: list[Any] = [field.annotation for field in model.model_fields.values()]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _models(annotation, seen)
        elif get_origin(annotation) is not None or get_args(annotation):
            pending.extend(get_args(annotation))


def test_every_request_model_refuses_non_finite_numbers() -> None:
    seen: set[type[BaseModel]] = set()
    for body in (
        ExperimentCreate,
        SpecPreviewRequest,
        CrossoverCreate,
        BenchmarkRequest,
        ExperimentQuery,
        SpecText,
    ):
        _models(body, seen)

    allowing = sorted(model.__name__ for model in seen if model.model_config.get("allow_inf_nan", True))

    assert len(seen) > 20
    assert allowing == []

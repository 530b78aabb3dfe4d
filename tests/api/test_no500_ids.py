"""Ids on every route: decimal integers within the database's id column (1 to 2**31 - 1) or a 422 naming
the parameter, never a 500 (PostgreSQL's ``integer`` refuses larger values) and never a lenient reading
(``1.0``, `` 1``, ``+1``, ``01`` are not ids)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from no500_doubles import TasksAndExperiments

from backend.schemas import MAX_ID

#: Path parameters that are not ids, with a value each route accepts.
OTHER_PARAMETERS = {"index": "0", "name": "widths"}
TOO_LARGE = [2**31, 2**63 - 1]
NOT_DECIMAL = ["1.0", "%20%31", "1%20", "+1", "01", "1e0", "0x1", "%EF%BC%91", "1_0", "-1", "0"]


@pytest.fixture
def queue() -> TasksAndExperiments:
    """Replaces the API fixtures' queue so that the benchmark routes validate their ids too."""
    return TasksAndExperiments()


def _id_operations(client: TestClient) -> list[tuple[str, str, str]]:
    """``(method, path template, id parameter)`` for every operation whose path holds an id, from the
    OpenAPI document, plus the dashboard's experiment page (not in the document)."""
    document = client.get("/openapi.json").json()
    operations = [("get", "/experiments/{experiment_id}", "experiment_id")]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                    operations.append((method, path, parameter["name"]))
    return operations


def _url(template: str, id_name: str, value: str) -> str:
    url = template.replace("{" + id_name + "}", value)
    for name, other in OTHER_PARAMETERS.items():
        url = url.replace("{" + name + "}", other)
    assert "{" not in url, url
    return url


def _request(client: TestClient, method: str, url: str) -> Any:
    body: dict[str, Any] | None = {} if method in ("post", "put", "patch") else None
    return client.request(method.upper(), url, json=body)


def test_the_largest_id_is_the_id_columns_largest() -> None:
    assert MAX_ID == 2**31 - 1


def test_every_id_route_is_covered(sqlite_client: TestClient) -> None:
    operations = _id_operations(sqlite_client)

    assert {path for _method, path, _name in operations} >= {
        "/api/experiments/{experiment_id}",
        "/api/artifacts/{artifact_id}",
        "/api/crossover/{run_id}",
        "/api/experiments/{experiment_id}/events",
    }
    assert len(operations) >= 16


@pytest.mark.parametrize("value", TOO_LARGE)
def test_an_id_beyond_the_column_is_422_naming_it_on_every_route(client: TestClient, value: int) -> None:
    for method, template, id_name in _id_operations(client):
        response = _request(client, method, _url(template, id_name, str(value)))

        assert response.status_code == 422, (method, template, response.status_code, response.text[:200])
        assert ["path", id_name] in [issue["loc"] for issue in response.json()["detail"]], template


def test_the_largest_id_is_a_plain_404_on_every_route(client: TestClient) -> None:
    for method, template, id_name in _id_operations(client):
        response = _request(client, method, _url(template, id_name, str(MAX_ID)))

        assert response.status_code < 500, (method, template, response.text[:200])
        expected = (200,) if template == "/experiments/{experiment_id}" else (404, 422)  # the page
        assert response.status_code in expected, (method, template, response.status_code)


@pytest.mark.parametrize("text", NOT_DECIMAL)
def test_an_id_that_is_not_plain_decimal_is_refused_everywhere(sqlite_client: TestClient, text: str) -> None:
    for method, template, id_name in _id_operations(sqlite_client):
        response = _request(sqlite_client, method, _url(template, id_name, text))

        assert response.status_code in (404, 422), (method, template, text, response.status_code)
        if response.status_code == 404:  # only the router may answer 404 (no route), never a lookup
            assert "does not exist" not in response.text, (method, template, text)


def test_delete_of_1_0_deletes_nothing(sqlite_client: TestClient, sqlite_rows: Any) -> None:
    experiment_id = sqlite_rows.experiment(status="succeeded")
    assert experiment_id == 1

    assert sqlite_client.delete("/api/experiments/1.0").status_code == 422
    assert sqlite_client.get("/api/experiments/1").status_code == 200


def test_an_artifact_is_not_served_for_a_spaced_id(sqlite_client: TestClient, sqlite_rows: Any) -> None:
    artifact_id = sqlite_rows.artifact(sqlite_rows.experiment(status="succeeded"), b"model")
    assert artifact_id == 1

    response = sqlite_client.get("/api/artifacts/%20%31")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "artifact_id"]
    assert "decimal" in response.json()["detail"][0]["msg"]
    assert sqlite_client.get("/api/artifacts/1").content == b"model"


@pytest.mark.parametrize("ids", ["2147483648", "9223372036854775807", "1,01", "²", "1,1.0", "+1"])
def test_compare_ids_outside_the_column_or_not_decimal_are_422(client: TestClient, ids: str) -> None:
    for url in ("/api/compare", "/api/compare/figures/widths", "/api/compare/export"):
        response = client.get(url, params={"ids": ids})

        assert response.status_code == 422, (url, ids, response.text[:200])
        assert response.json()["detail"][0]["loc"] == ["query", "ids"]


def test_the_openapi_document_declares_the_id_range(sqlite_client: TestClient) -> None:
    document = sqlite_client.get("/openapi.json").json()
    for path, methods in document["paths"].items():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"].endswith("_id"):
                    schema = parameter["schema"]
                    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, MAX_ID), (
                        path
                    )

"""A small fuzz of every operation in the OpenAPI document: random path values, query values and bodies
(JSON of any shape, non-finite numbers, raw bytes) never make the API answer 5xx (SQLite, bounded
examples so that it stays fast)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from no500_doubles import TasksAndExperiments

#: Path and query texts that probe the parsers: ids at and past every bound, lenient spellings, oddities.
EDGE_TEXTS = [
    "0",
    "1",
    "2147483647",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "1" * 400,
    "-1",
    "1.0",
    " 1",
    "+1",
    "01",
    "1e3",
    "NaN",
    "Infinity",
    "\u0661",
    "\u00b2",
    "%",
    "..",
    "a,b",
    "1,2,3",
    "",
]
texts = st.one_of(st.sampled_from(EDGE_TEXTS), st.text(max_size=30))
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _operations(client: TestClient) -> list[tuple[str, str, list[dict[str, Any]], bool]]:
    """``(method, path, parameters, has body)`` of every operation in the OpenAPI document."""
    document = client.get("/openapi.json").json()
    return [
        (method.upper(), path, operation.get("parameters", []), "requestBody" in operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


@st.composite
def _body(draw: st.DrawFn) -> tuple[bytes, str]:
    """A body and its content type: JSON (NaN and Infinity as Python writes them), YAML text, text
    nested deep, or raw bytes."""
    kind = draw(st.sampled_from(["json", "json", "bytes", "yaml", "deep"]))
    if kind == "deep":
        depth = draw(st.integers(min_value=30, max_value=5000))
        opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ("- ", "")]))
        text = opening * depth + "1" + closing * depth
        return text.encode(), draw(st.sampled_from(["application/json", "text/yaml"]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode(), "application/json"
    if kind == "yaml":
        return draw(st.text(max_size=200)).encode(), "text/yaml"
    return draw(st.binary(max_size=200)), draw(st.sampled_from(["application/json", "text/plain", ""]))


@pytest.fixture
def queue() -> TasksAndExperiments:
    """Replaces the API fixtures' queue so that the benchmark and crossover routes are reachable."""
    return TasksAndExperiments()


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_operation_answers_5xx_to_random_input(sqlite_client: TestClient, data: st.DataObject) -> None:
    method, path, parameters, has_body = data.draw(st.sampled_from(_operations(sqlite_client)))
    url = path
    query: dict[str, str] = {}
    for parameter in parameters:
        value = data.draw(texts)
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", quote(value or "x", safe=""))
        elif parameter["in"] == "query" and data.draw(st.booleans()):
            query[parameter["name"]] = value
    headers: dict[str, str | bytes] = {}
    content = None
    if (
        has_body
        and data.draw(st.booleans())
        or method in ("POST", "PUT", "PATCH")
        and data.draw(st.booleans())
    ):
        content, content_type = data.draw(_body())
        if content_type:
            headers["content-type"] = content_type
    if data.draw(st.booleans()):
        headers["last-event-id"] = data.draw(st.sampled_from(EDGE_TEXTS)).encode()  # raw bytes, as sent

    response = sqlite_client.request(method, url, params=query, content=content, headers=headers)

    assert response.status_code < 500, (method, url, query, content, response.text[:300])

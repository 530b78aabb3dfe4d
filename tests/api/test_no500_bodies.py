"""Bodies the API cannot read are 422 with a message (as the README promises), never 400 or 500: text
that is not UTF-8, JSON nested thousands deep, and spec text (YAML or JSON) nested past the limit."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from no500_doubles import TasksAndExperiments

from prunespec.spec_yaml import MAX_SPEC_DEPTH

JSON_ROUTES = ["/api/experiments", "/api/specs/preview", "/api/crossover", "/api/experiments/1/benchmarks"]
UNREADABLE = {
    "latin-1": b'{"spec": {"name": "caf\xe9"}}',
    "nested-5000": b"[" * 5000 + b"]" * 5000,
    "nested-100000": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
}


@pytest.fixture
def queue() -> TasksAndExperiments:
    """Replaces the API fixtures' queue so that the benchmark and crossover routes read their bodies."""
    return TasksAndExperiments()


@pytest.mark.parametrize("body", UNREADABLE.values(), ids=UNREADABLE.keys())
@pytest.mark.parametrize("url", JSON_ROUTES)
def test_an_unreadable_json_body_is_422_with_a_message(
    sqlite_client: TestClient, url: str, body: bytes
) -> None:
    response = sqlite_client.post(url, content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422, response.text[:300]
    issue = response.json()["detail"][0]
    assert issue["loc"] == ["body"]
    assert issue["type"] == "body_unreadable"
    assert "UTF-8" in issue["msg"] and "nested" in issue["msg"]


SURROGATES = {"escaped": b'"\\ud800"', "raw-bytes": b'"\xed\xa0\x80"'}


@pytest.mark.parametrize("surrogate", SURROGATES.values(), ids=SURROGATES.keys())
@pytest.mark.parametrize("field", ["notes", "owner", "name"])
def test_a_string_with_a_lone_surrogate_is_422_naming_it(
    client: TestClient, field: str, surrogate: bytes
) -> None:
    body = {"spec": {"name": "x", "model": "sum-mlp", "dataset": {"name": "sum"}}, "notes": "n", "owner": "o"}
    text = json.dumps(body).encode()
    if field == "name":
        text = text.replace(b'"x"', surrogate)
        loc = ["body", "spec", "name"]
    else:
        text = text.replace(b'"' + body[field].encode() + b'"', surrogate, 1)
        loc = ["body", field]

    response = client.post("/api/experiments", content=text, headers={"content-type": "application/json"})

    assert response.status_code == 422, response.text[:300]
    assert response.json()["detail"][0]["loc"] == loc
    assert client.get("/api/experiments").json()["total"] == 0


def _deep_flow(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_block(depth: int) -> str:
    return "".join(" " * level + "a:\n" for level in range(depth - 1)) + " " * (depth - 1) + "a: 1\n"


@pytest.mark.parametrize("text", [_deep_flow(500), _deep_block(500), '{"a":' * 500 + "1" + "}" * 500])
def test_spec_text_nested_too_deep_is_422_naming_the_text(sqlite_client: TestClient, text: str) -> None:
    as_yaml = sqlite_client.post("/api/specs/parse", content=text, headers={"content-type": "text/yaml"})
    as_json = sqlite_client.post(
        "/api/specs/parse", content=json.dumps({"text": text}), headers={"content-type": "application/json"}
    )

    for response in (as_yaml, as_json):
        assert response.status_code == 422, response.text[:300]
        issue = response.json()["detail"][0]
        assert issue["loc"] == ["body", "text"]
        assert f"nested more than {MAX_SPEC_DEPTH} levels deep" in issue["msg"]

"""The API publishes each criterion's label (its one definition) where the dashboard reads it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from prunespec.criteria import LABELS


def test_openapi_titles_every_criterion_schema_with_its_label(sqlite_client: TestClient) -> None:
    response = sqlite_client.get("/openapi.json")
    assert response.status_code == 200
    found: dict[str, str] = {}
    # as frontend/js/criteria.js reads them
    for name, schema in response.json()["components"]["schemas"].items():
        kind = schema.get("properties", {}).get("type", {})
        kind = kind.get("const", kind.get("default"))
        if re.search(r"Criterion(-Input|-Output)?$", name) and isinstance(kind, str):
            found[kind] = schema["title"]
    assert found == LABELS
    assert found["bn_scale"] == "BN scale |γ| (Liu et al.)"

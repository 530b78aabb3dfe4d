"""Artifacts: listed without their bytes, downloaded by id with the row's file name."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.api.artifacts import content_disposition


def test_artifacts_are_listed_by_cycle_and_downloaded_by_id(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment()
    content = bytes(range(256)) * 40
    final_id = rows.artifact(experiment_id, content, "sum-trim-final.keras", cycle_index=None)
    trained_id = rows.artifact(experiment_id, b"cycle 0", "cycle-0.keras", kind="trained", cycle_index=0)

    listed = client.get(f"/api/experiments/{experiment_id}/artifacts").json()

    assert [item["id"] for item in listed] == [trained_id, final_id]
    final = listed[1]
    assert final["size_bytes"] == len(content)
    assert final["sha256"] == hashlib.sha256(content).hexdigest()
    assert final["url"] == f"/api/artifacts/{final_id}"
    assert "content" not in final
    download = client.get(final["url"])
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "application/x-keras"
    assert download.headers["content-disposition"].startswith('attachment; filename="sum-trim-final.keras"')
    assert download.headers["etag"] == f'"{final["sha256"]}"'


def test_a_hostile_file_name_cannot_escape_the_header(client: TestClient, rows: Any) -> None:
    artifact_id = rows.artifact(rows.experiment(), b"x", '../../etc/"passwd"\r\nX-Evil: 1.keras')

    download = client.get(f"/api/artifacts/{artifact_id}")

    assert download.status_code == 200
    assert "x-evil" not in download.headers
    header = download.headers["content-disposition"]
    assert "/" not in header.split("filename*=")[0] and "\r" not in header and "\n" not in header


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("model.keras", "attachment; filename=\"model.keras\"; filename*=UTF-8''model.keras"),
        ("a/b\\c.tflite", "attachment; filename=\"a_b_c.tflite\"; filename*=UTF-8''a_b_c.tflite"),
        ("größe.keras", "attachment; filename=\"gr__e.keras\"; filename*=UTF-8''gr%C3%B6%C3%9Fe.keras"),
        ("..", "attachment; filename=\"artifact\"; filename*=UTF-8''artifact"),
    ],
)
def test_content_disposition(filename: str, expected: str) -> None:
    assert content_disposition(filename) == expected

"""The app as a whole: no TensorFlow in the service, OpenAPI docs, default dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin

from backend.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_service_never_imports_tensorflow(sqlite_settings: Settings) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from fastapi.testclient import TestClient
        from backend.app import create_app
        from backend.settings import Settings

        class Queue:
            def enqueue(self, experiment_id):
                pass

        settings = Settings(data_dir={str(sqlite_settings.data_dir)!r}, broker_url="memory://", auth=False)
        with TestClient(create_app(settings, Queue())) as client:
            for path in ("/api/datasets", "/api/presets", "/api/experiments", "/api/health"):
                assert client.get(path).status_code == 200, path
            spec = {{"name": "x", "model": "lenet-5", "dataset": {{"name": "mnist"}}}}
            assert client.post("/api/specs/preview", json={{"spec": spec}}).status_code == 200
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras"))
        print(loaded)
        """
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_openapi_docs_describe_every_route(sqlite_client: TestClient) -> None:
    assert sqlite_client.get("/docs").status_code == 200
    paths = sqlite_client.get("/openapi.json").json()["paths"]

    assert {
        "/api/experiments",
        "/api/experiments/{experiment_id}",
        "/api/experiments/{experiment_id}/cycles",
        "/api/experiments/{experiment_id}/epochs",
        "/api/experiments/{experiment_id}/cycles/{index}/layers",
        "/api/experiments/{experiment_id}/artifacts",
        "/api/experiments/{experiment_id}/events",
        "/api/experiments/{experiment_id}/cancel",
        "/api/experiments/{experiment_id}/rerun",
        "/api/artifacts/{artifact_id}",
        "/api/presets",
        "/api/datasets",
        "/api/specs/preview",
        "/api/health",
    } <= set(paths)
    create = paths["/api/experiments"]["post"]
    assert "202" in create["responses"] and "422" in create["responses"]
    assert "409" in paths["/api/experiments/{experiment_id}"]["delete"]["responses"]


def test_without_a_queue_the_app_sends_to_celery(sqlite_settings: Settings) -> None:
    from backend.queue import CeleryQueue

    app = create_app(sqlite_settings)

    assert isinstance(app.state.context.queue, CeleryQueue)
    assert app.state.context.queue.settings is sqlite_settings

"""The dashboard's server side without a browser: pages, static files, plotly.js from the installed
plotly package, and the YAML spec parser the new-experiment page uses."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from servers import RecordingQueue
from servers import admin_app as create_app  # signed in as the test admin

from backend.migrate import upgrade_to_head
from backend.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

#: 10 aliases of 10 aliases ... five levels deep: 100,000 values from a few lines of YAML.
ALIAS_BOMB = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcd", "bcde", strict=True)
)
LENET = "name: lenet\nmodel: lenet-300-100\ndataset: {name: mnist}\ntraining: {loss: crossentropy}\n"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("pages"), broker_url="memory://")
    upgrade_to_head(settings)
    with TestClient(create_app(settings, RecordingQueue())) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "title", "script"),
    [
        ("/", "Experiments", "list.js"),
        ("/experiments/7", "Experiment", "experiment.js"),
        ("/compare", "Compare", "compare.js"),
        ("/new", "New experiment", "new.js"),
    ],
)
def test_pages_are_html_with_a_strict_policy(client: TestClient, path: str, title: str, script: str) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f"<title>{title} · prunelab</title>" in response.text
    policy = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    )
    assert "https://" not in response.text  # nothing from a CDN
    # the shared layout around the page's own fragment, every placeholder filled
    assert response.text.count('<header class="nav">') == 1 and "{{" not in response.text
    assert f'<script type="module" src="/static/js/pages/{script}"></script>' in response.text


def test_an_experiment_page_needs_a_numeric_id(client: TestClient) -> None:
    assert client.get("/experiments/abc").status_code == 422


def test_plotly_js_comes_from_the_installed_plotly_package(client: TestClient) -> None:
    response = client.get("/vendor/plotly.min.js")

    bundled = Path(str(files("plotly") / "package_data" / "plotly.min.js")).read_bytes()
    assert response.status_code == 200 and response.content == bundled
    assert response.headers["content-type"].startswith("text/javascript")
    assert "max-age" in response.headers["cache-control"]


def test_scripts_and_styles_are_static_files(client: TestClient) -> None:
    script = client.get("/static/js/dom.js")
    style = client.get("/static/css/app.css")

    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert client.get("/static/../backend/app.py").status_code == 404
    assert client.get("/static/index.html").status_code == 404  # pages only with their policy


def test_the_frontend_never_writes_html_strings() -> None:
    frontend = Path(__file__).resolve().parents[2] / "frontend" / "js"
    for script in frontend.rglob("*.js"):
        text = script.read_text(encoding="utf-8")
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
            assert forbidden not in text, f"{script.name} uses {forbidden}"


# --------------------------------------------------------------------------------------------- YAML


def test_yaml_is_parsed_validated_and_costed(client: TestClient) -> None:
    as_yaml = client.post("/api/specs/parse", content=LENET, headers={"Content-Type": "text/yaml"})
    as_json = client.post("/api/specs/parse", json={"text": LENET})

    assert as_yaml.status_code == 200, as_yaml.text
    assert as_yaml.json() == as_json.json()
    preview = as_yaml.json()
    assert preview["cost"]["params"] == 266_610
    assert preview["spec"]["model"]["layers"][0]["name"] == "fc1"  # the preset expanded
    assert preview["spec"]["pruning"]["criterion"] == {"type": "apoz", "k": 1.0}  # defaults filled in


def test_a_yaml_syntax_error_names_the_line(client: TestClient) -> None:
    response = client.post(
        "/api/specs/parse", content="name: [oops\nmodel: x", headers={"Content-Type": "text/yaml"}
    )

    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"] == ["body", "text"] and issue["field"] == "text"
    assert "line 2" in issue["msg"]


def test_spec_errors_name_the_field_as_written(client: TestClient) -> None:
    text = (
        "name: bad\nmodel:\n  input_shape: [2]\n  layers:\n    - {type: dense, units: 0}\n"
        "    - {type: dense, units: 1}\ndataset: {name: sum}\ntraining: {learning_rate: -1}\n"
    )

    response = client.post("/api/specs/parse", content=text, headers={"Content-Type": "application/yaml"})

    assert response.status_code == 422
    fields = {issue["field"]: issue["msg"] for issue in response.json()["detail"]}
    assert fields == {
        "spec.model.layers.0.units": "Input should be greater than or equal to 1",
        "spec.training.learning_rate": "Input should be greater than 0",
    }


@pytest.mark.parametrize(
    ("body", "content_type", "field", "message"),
    [
        ("- just\n- a list\n", "text/yaml", "text", "mapping"),
        (
            ALIAS_BOMB,
            "text/yaml",
            "text",
            "at most",
        ),
        ('{"text": "name: x", "extra": 1}', "application/json", "extra", "Extra inputs"),
        ("x" * 900_000, "text/yaml", "", "at most"),
    ],
)
def test_what_is_not_a_spec_is_a_422(
    client: TestClient, body: str, content_type: str, field: str, message: str
) -> None:
    response = client.post("/api/specs/parse", content=body, headers={"Content-Type": content_type})

    assert response.status_code == 422, response.text
    issue = response.json()["detail"][0]
    assert issue["field"] == field and message in issue["msg"]


@pytest.mark.parametrize("content_type", ["application/xml", "multipart/form-data; boundary=x", None])
def test_the_parser_refuses_other_media_types_with_415(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = client.post("/api/specs/parse", content="name: x", headers=headers)

    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_media_type"
    assert "text/yaml" in response.json()["detail"]

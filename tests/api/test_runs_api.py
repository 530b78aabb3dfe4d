"""Managing runs over the API: editing tags and notes, rerun lineage, recipes, and specs refused at
submit because they cannot run (a blank name, MNIST on a server without its files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servers import admin_app as create_app  # signed in as the test admin

from backend.models import Status
from backend.settings import Settings
from prunespec.spec import ExperimentSpec, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _issues(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(issue["field"], issue["msg"]) for issue in response.json()["detail"]]


@pytest.fixture
def no_system_datasets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No dataset files outside the server's own data directory (HOME and $PRUNELAB_DATA_DIR moved)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PRUNELAB_DATA_DIR", raising=False)


# --------------------------------------------------------------------------------------------- PATCH


def test_patch_replaces_tags_and_notes_and_records_the_edit(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(tags=["old"], notes="before", status=Status.running.value)

    response = client.patch(
        f"/api/experiments/{experiment_id}", json={"tags": ["  sum ", "best", "sum"], "notes": "after"}
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["tags"], body["notes"], body["status"]) == (["sum", "best"], "after", "running")
    assert body["edited_by"] == "test-admin" and body["edited_at"] is not None
    assert client.get(f"/api/experiments/{experiment_id}").json()["tags"] == ["sum", "best"]


def test_patch_with_only_notes_keeps_the_tags(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(tags=["keep"], notes="before")

    body = client.patch(f"/api/experiments/{experiment_id}", json={"notes": ""}).json()

    assert (body["tags"], body["notes"]) == (["keep"], "")


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        ({"tags": ["ok", "   "]}, "tags.1", "at least 1 character"),
        ({"tags": ["x" * 41]}, "tags.0", "at most 40 characters"),
        ({"tags": [f"t{i}" for i in range(21)]}, "tags", "at most 20 items"),
        ({"notes": "n" * 10_001}, "notes", "at most 10000 characters"),
        ({"name": "renamed"}, "name", "Extra inputs are not permitted"),
        ({}, "", "send tags, notes or both"),
    ],
    ids=["blank-tag", "long-tag", "too-many-tags", "long-notes", "other-field", "nothing"],
)
def test_patch_refuses_unbounded_or_unknown_fields_naming_them(
    sqlite_client: TestClient, sqlite_rows: Any, edit: dict[str, Any], field: str, message: str
) -> None:
    experiment_id = sqlite_rows.experiment(tags=["old"])

    issues = _issues(sqlite_client.patch(f"/api/experiments/{experiment_id}", json=edit))

    assert len(issues) == 1
    assert issues[0][0] == field and message in issues[0][1]
    assert sqlite_client.get(f"/api/experiments/{experiment_id}").json()["tags"] == ["old"]


def test_patch_of_an_unknown_experiment_is_404(client: TestClient) -> None:
    response = client.patch("/api/experiments/999999", json={"notes": "x"})

    assert response.status_code == 404
    assert response.json()["detail"] == "experiment 999999 does not exist"


# --------------------------------------------------------------------------------------------- lineage


def test_a_rerun_records_its_source_and_both_sides_show_it(client: TestClient, spec: dict[str, Any]) -> None:
    source = client.post("/api/experiments", json={"spec": spec}).json()["id"]

    first = client.post(f"/api/experiments/{source}/rerun", json={}).json()["id"]
    second = client.post(f"/api/experiments/{source}/rerun", json={}).json()["id"]
    grandchild = client.post(f"/api/experiments/{first}/rerun", json={}).json()["id"]

    detail = client.get(f"/api/experiments/{source}").json()
    assert (detail["rerun_of"], detail["reruns"]) == (None, [first, second])
    child = client.get(f"/api/experiments/{first}").json()
    assert (child["rerun_of"], child["reruns"]) == (source, [grandchild])


def test_deleting_the_source_of_a_rerun_clears_the_link(client: TestClient, spec: dict[str, Any]) -> None:
    source = client.post("/api/experiments", json={"spec": spec}).json()["id"]
    rerun = client.post(f"/api/experiments/{source}/rerun", json={}).json()["id"]
    client.post(f"/api/experiments/{source}/cancel", json={})

    assert client.delete(f"/api/experiments/{source}").status_code == 204

    assert client.get(f"/api/experiments/{rerun}").json()["rerun_of"] is None


def test_a_rerun_keeps_tags_longer_than_todays_bound(client: TestClient, rows: Any) -> None:
    experiment_id = rows.experiment(tags=["t" * 50], status=Status.succeeded.value)

    response = client.post(f"/api/experiments/{experiment_id}/rerun", json={})

    assert response.status_code == 202
    assert client.get(response.json()["url"]).json()["tags"] == ["t" * 50]


# --------------------------------------------------------------------------------------------- recipes


def test_recipes_are_every_example_with_its_comment_and_stored_spec(sqlite_client: TestClient) -> None:
    recipes = {recipe["name"]: recipe for recipe in sqlite_client.get("/api/recipes").json()}

    assert set(recipes) == {path.stem for path in EXAMPLES.glob("*.yaml")}
    best = recipes["sum-best"]
    assert best["spec"] == load_spec(EXAMPLES / "sum-best.yaml").model_dump(mode="json")
    assert best["summary"] == (
        "Çallı 2017, summation experiment: the best recipe we found, and the documented default."
    )
    assert "merge_linear + merge_tolerance" in best["description"] and "#" not in best["description"]
    assert best["spec"]["pruning"]["merge_linear"] is True
    assert best["spec"]["model"]["layers"][0]["units"] == 1000


def test_the_examples_folder_is_the_packaged_recipes_folder() -> None:
    packaged = Path(__file__).resolve().parents[2] / "backend" / "recipes"

    assert EXAMPLES.resolve() == packaged.resolve()


def test_submitting_a_recipe_stores_exactly_its_spec(sqlite_client: TestClient) -> None:
    recipe = next(one for one in sqlite_client.get("/api/recipes").json() if one["name"] == "sum-best")

    created = sqlite_client.post("/api/experiments", json={"spec": recipe["spec"]}).json()

    assert sqlite_client.get(created["url"]).json()["spec"] == recipe["spec"]


# --------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("name", ["", " ", "\t  \n"])
def test_a_blank_name_is_refused_at_submit(client: TestClient, spec: dict[str, Any], name: str) -> None:
    spec["name"] = name

    issues = _issues(client.post("/api/experiments", json={"spec": spec}))

    assert [field for field, _ in issues] == ["spec.name"]
    assert client.get("/api/experiments").json()["total"] == 0


def test_a_blank_name_is_refused_by_the_spec_itself(spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="name must contain something besides spaces"):
        ExperimentSpec.model_validate({**spec, "name": "   "})


@pytest.mark.usefixtures("no_system_datasets")
@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_an_image_dataset_this_server_lacks_is_refused_at_submit(
    client: TestClient, spec: dict[str, Any], queue: Any, dataset: str
) -> None:
    spec.update(model="lenet-5", dataset={"name": dataset}, training={"loss": "crossentropy"})

    issues = _issues(client.post("/api/experiments", json={"spec": spec}))

    assert len(issues) == 1
    field, message = issues[0]
    assert field == "spec.dataset.name"
    assert f"this server has no {dataset} files" in message
    assert "into the server's data directory (PRUNELAB_DATA_DIR)" in message
    assert "/" not in message.replace(f"{dataset}/", "")  # names no directory of the server
    assert queue.ids == [] and client.get("/api/experiments").json()["total"] == 0


@pytest.mark.usefixtures("no_system_datasets")
def test_mnist_is_accepted_where_the_server_has_its_files(
    sqlite_settings: Settings, mnist_t10k_dir: Path, queue: Any, spec: dict[str, Any]
) -> None:
    assert sqlite_settings.data_dir is not None
    (sqlite_settings.data_dir / "mnist").symlink_to(mnist_t10k_dir, target_is_directory=True)
    spec.update(model="lenet-5", dataset={"name": "mnist"}, training={"loss": "crossentropy"})

    with TestClient(create_app(sqlite_settings, queue)) as client:
        response = client.post("/api/experiments", json={"spec": spec})

    assert response.status_code == 202
    assert queue.ids == [response.json()["id"]]


@pytest.mark.usefixtures("no_system_datasets")
def test_rerunning_an_mnist_experiment_without_its_files_is_refused(
    sqlite_client: TestClient, sqlite_rows: Any, spec: dict[str, Any]
) -> None:
    spec.update(model="lenet-5", dataset={"name": "mnist"}, training={"loss": "crossentropy"})
    experiment_id = sqlite_rows.experiment(spec=spec, status=Status.failed.value)

    issues = _issues(sqlite_client.post(f"/api/experiments/{experiment_id}/rerun", json={}))

    assert issues[0][0] == "spec.dataset.name"
    assert sqlite_client.get("/api/experiments").json()["total"] == 1

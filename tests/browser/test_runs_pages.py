"""Managing runs in Chromium: delete with confirmation, editing tags and notes, clone into the New form,
rerun lineage both ways, loading a recipe into the New form, and the compare page's settings table."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from dashboard_rows import Dashboard, lenet_spec

from backend.models import Status
from backend.service.catalog import recipes

expect: Any
try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails in CI) with the reason
    expect = None

Visit = Callable[[str], Any]
Shot = Callable[[str], Path]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _api(dashboard: Dashboard, path: str) -> httpx.Response:
    return httpx.get(f"{dashboard.url}{path}", timeout=10)


def test_delete_asks_first_and_then_removes_the_experiment(
    page: Any, visit: Visit, dashboard: Dashboard
) -> None:
    experiment_id = dashboard.history.finished(lenet_spec(_unique("doomed")), cycles=1, tflite=False)

    visit(f"/experiments/{experiment_id}")
    page.click("#delete")
    expect(page.locator("#delete-dialog")).to_be_visible()
    expect(page.locator("#delete-dialog")).to_contain_text(f"Delete experiment #{experiment_id}?")
    page.click("#delete-cancel")
    expect(page.locator("#delete-dialog")).to_have_count(0)
    assert _api(dashboard, f"/api/experiments/{experiment_id}").status_code == 200

    page.click("#delete")
    page.click("#delete-confirm")
    page.wait_for_url(re.compile(r"/$"))
    assert _api(dashboard, f"/api/experiments/{experiment_id}").status_code == 404


def test_a_running_experiment_cannot_be_deleted_from_its_page(
    page: Any, visit: Visit, dashboard: Dashboard
) -> None:
    experiment_id = dashboard.history.finished(
        lenet_spec(_unique("busy")), cycles=1, status=Status.running, tflite=False
    )

    visit(f"/experiments/{experiment_id}")

    expect(page.locator("#delete")).to_be_disabled()


def test_tags_and_notes_are_edited_in_place_and_saved(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    experiment_id = dashboard.history.finished(
        lenet_spec(_unique("edit")), cycles=1, tflite=False, tags=("old",), notes="before"
    )

    visit(f"/experiments/{experiment_id}")
    expect(page.locator("#experiment-notes")).to_have_text("before")
    page.click("#edit-tags-notes")
    expect(page.locator("#edit-tags")).to_have_value("old")
    page.fill("#edit-tags", " alpha,  beta , ,alpha")
    page.fill("#edit-notes", "after: <b>not bold</b>")
    screenshot("runs-edit-tags-notes")
    page.click("#edit-save")

    expect(page.locator("#experiment-notes")).to_have_text("after: <b>not bold</b>")
    expect(page.locator(".exp-meta .chip")).to_have_text(["alpha", "beta"])
    expect(page.locator("#tags-notes")).to_contain_text("edited by test-admin")
    stored = _api(dashboard, f"/api/experiments/{experiment_id}").json()
    assert (stored["tags"], stored["notes"]) == (["alpha", "beta"], "after: <b>not bold</b>")


def test_a_tag_that_is_too_long_is_refused_beside_the_form(
    page: Any, visit: Visit, dashboard: Dashboard
) -> None:
    experiment_id = dashboard.history.finished(lenet_spec(_unique("long")), cycles=1, tflite=False)

    visit(f"/experiments/{experiment_id}")
    page.click("#edit-tags-notes")
    page.fill("#edit-tags", "x" * 41)
    page.click("#edit-save")

    expect(page.locator("#edit-error")).to_contain_text("at most 40 characters")
    assert _api(dashboard, f"/api/experiments/{experiment_id}").json()["tags"] == []


def test_clone_opens_the_new_form_filled_with_the_experiments_spec(
    page: Any, visit: Visit, dashboard: Dashboard
) -> None:
    name = _unique("cloned")
    spec = lenet_spec(name, criterion={"type": "variance", "threshold": 0.25}, max_cycles=6)
    experiment_id = dashboard.history.finished(spec, cycles=1, tflite=False, tags=("a", "b"), notes="why")

    visit(f"/experiments/{experiment_id}")
    page.click("#clone")
    page.wait_for_url(re.compile(rf"/new\?from={experiment_id}$"))
    page.wait_for_selector("body[data-state=ready]")

    expect(page.locator("#clone-note")).to_contain_text(f"#{experiment_id}")
    expect(page.locator("#f-spec-name")).to_have_value(name)
    expect(page.locator("#f-spec-model")).to_have_value("lenet-300-100")
    expect(page.locator("#f-spec-dataset-name")).to_have_value("mnist")
    expect(page.locator("#f-spec-pruning-criterion-type")).to_have_value("variance")
    expect(page.locator("#f-spec-pruning-criterion-threshold")).to_have_value("0.25")
    expect(page.locator("#f-spec-pruning-max_cycles")).to_have_value("6")
    expect(page.locator("#f-tags")).to_have_value("a, b")
    expect(page.locator("#f-notes")).to_have_value("why")


def test_rerun_lineage_shows_on_both_pages(page: Any, visit: Visit, dashboard: Dashboard) -> None:
    source = dashboard.history.finished(lenet_spec(_unique("source")), cycles=1, tflite=False)
    reruns = [dashboard.history.experiment(lenet_spec(_unique("again"))) for _ in range(2)]
    for rerun in reruns:
        dashboard.history.update(rerun, rerun_of=source)

    visit(f"/experiments/{source}")
    expect(page.locator("#reruns")).to_have_text(f"Reruns: #{reruns[0]}, #{reruns[1]}")
    page.click(f"#reruns a:text('#{reruns[1]}')")
    page.wait_for_selector("body[data-state=ready]")
    expect(page.locator("#rerun-of")).to_have_text(f"Rerun of #{source}")


def test_loading_a_recipe_fills_the_form_and_creates_exactly_its_spec(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    recipe = next(one for one in recipes() if one.name == "sum-best")

    visit("/new")
    page.select_option("#recipe", "sum-best")
    expect(page.locator("#recipe-description")).to_contain_text("merge_linear + merge_tolerance")
    page.click("#load-recipe")

    for field, value in {
        "spec-name": "sum-best",
        "spec-model": "sum-mlp",
        "spec-dataset-train_samples": "200000",
        "spec-training-optimizer": "momentum",
        "spec-training-learning_rate": "0.01",
        "spec-training-loss": "rmse",
        "spec-training-group_lasso": "0.003",
        "spec-training-lr_schedule": "cosine",
        "spec-pruning-criterion-type": "activation_count",
        "spec-pruning-max_fraction": "1",
        "spec-pruning-merge_tolerance": "0.01",
    }.items():
        expect(page.locator(f"#f-{field}")).to_have_value(value)
    expect(page.locator("#f-spec-pruning-merge_linear")).to_be_checked()
    screenshot("runs-recipe-loaded")
    page.click("#submit")
    page.wait_for_url(re.compile(r"/experiments/\d+$"))

    experiment_id = int(page.url.rsplit("/", 1)[1])
    assert _api(dashboard, f"/api/experiments/{experiment_id}").json()["spec"] == recipe.spec


def test_a_loaded_recipe_keeps_the_settings_the_form_has_no_field_for(page: Any, visit: Visit) -> None:
    recipe = next(one for one in recipes() if one.name == "lenet5-apoz")

    visit("/new")
    page.select_option("#recipe", "lenet5-apoz")
    page.click("#load-recipe")
    expect(page.locator("#f-spec-pruning-criterion-k")).to_have_value("0")
    with page.expect_response(
        lambda one: one.url.endswith("/api/experiments") and one.request.method == "POST"
    ) as answer:
        page.click("#submit")

    sent = answer.value.request.post_data_json["spec"]
    assert sent["pruning"]["layers"] == recipe.spec["pruning"]["layers"] == ["ip1"]
    assert sent["benchmark"]["warmup"] == recipe.spec["benchmark"]["warmup"]
    assert answer.value.status == 202  # the dashboard's data directory holds MNIST


def test_compare_shows_every_setting_side_by_side_with_differences_marked(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    first = dashboard.history.finished(lenet_spec(_unique("apoz"), max_cycles=8), cycles=2, seed=1)
    second = dashboard.history.finished(
        lenet_spec(_unique("variance"), criterion={"type": "variance", "threshold": 0.1}, max_cycles=5),
        cycles=2,
        seed=2,
    )

    visit(f"/compare?ids={first},{second}")
    table = page.locator("#settings-table")
    differing = table.locator("tr.differs")
    expect(table.locator("tr[data-setting='pruning.max_cycles'] td")).to_have_text(
        ["pruning.max_cycles (differs)", "8", "5"]
    )
    expect(table.locator("tr[data-setting='pruning.criterion.type']")).to_have_class("differs")
    expect(table.locator("tr[data-setting='training.loss']")).not_to_have_class("differs")
    expect(table.locator("tr[data-setting='model'] td").nth(1)).to_have_text("lenet-300-100")
    page.locator("#settings-summary").wait_for()
    page.get_by_role("radio", name="Only differences").click()
    expect(table.locator("tr[data-setting='training.loss']")).to_have_count(0)
    assert differing.count() == table.locator("tbody tr").count()
    expect(page.locator("#compare-table")).to_contain_text("speed-up, FLOPs (cycle 0 / final)")
    expect(page.locator("#compare-table")).to_contain_text(" %")
    page.wait_for_function("document.getElementById('chart-parcoords').data?.[0]?.type === 'parcoords'")
    screenshot("runs-compare-settings")

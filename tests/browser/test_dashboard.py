"""The dashboard in Chromium: list → experiment → compare → new experiment, live updates without a
reload, user text that stays text, and validation errors beside their fields."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboard_rows import Dashboard, lenet_spec

from backend.api.pages import LIST_FIRST_REQUEST
from backend.models import Status, utcnow

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, in CI, fails) with the reason
    expect = None

XSS = "<img src=x onerror=alert(1)>"
Visit = Callable[[str], Any]
Shot = Callable[[str], Path]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _points(page: Any, chart: str) -> int:
    """How many x values the first trace of a drawn chart has."""
    return int(page.evaluate(f"document.getElementById('{chart}').data[0]?.x?.length ?? 0"))


def _wait_for_points(page: Any, chart: str, count: int) -> None:
    """Wait until the first trace of a chart has ``count`` x values (the page's CSP forbids eval)."""
    page.wait_for_function(
        "([chart, count]) => document.getElementById(chart).data[0]?.x?.length === count", arg=[chart, count]
    )


# --------------------------------------------------------------------------------------------- list


def test_the_list_filters_sorts_pages_and_selects_for_compare(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    group = _unique("grid")
    for position in range(27):
        dashboard.history.experiment(lenet_spec(f"{group}-{position:02d}"), owner="lin", age_minutes=position)
    done = dashboard.history.finished(
        lenet_spec(f"{group}-done"), cycles=2, seed=1, tags=("mnist", "sweep"), age_minutes=30
    )

    visit(f"/?q={group}&limit=25")
    rows = page.locator("#experiments-body tr")
    expect(rows).to_have_count(25)
    expect(page.locator("#pager-range")).to_have_text("1–25 of 28")
    page.click("#page-next")
    expect(rows).to_have_count(3)
    expect(page.locator("#pager-range")).to_have_text("26–28 of 28")

    page.locator("th.sortable button", has_text="Name").click()
    expect(rows.first.locator(".name-cell a")).to_have_text(f"{group}-00")
    page.locator(".status-filter label", has_text="Succeeded").click()
    expect(rows).to_have_count(1)
    done_row = page.locator(f"tr[data-id='{done}']")
    expect(done_row.locator(".badge")).to_have_text("Succeeded")
    expect(done_row.locator(".widths-cell")).to_contain_text("fc3 10")
    expect(done_row).to_contain_text("×1.90")  # the seeded latency speed-up (1.6 + 0.3 · seed)
    assert "status=succeeded" in page.url and f"q={group}" in page.url
    screenshot("list")

    done_row.get_by_role("checkbox").check()
    expect(page.locator("#selection-count")).to_have_text("1 selected")
    expect(page.locator("#compare-selected")).to_have_attribute("aria-disabled", "true")
    page.click("#filters-clear")
    expect(page.locator("#selection-count")).to_have_text("1 selected")  # the selection survives
    page.fill("#filter-q", group)
    first = done - 27  # f"{group}-00", first by name
    page.locator(f"tr[data-id='{first}']").get_by_role("checkbox").check()
    expect(page.locator("#compare-selected")).to_have_attribute("aria-disabled", "false")
    page.click("#compare-selected")
    page.wait_for_url(re.compile(r"/compare\?ids="))
    assert set(page.url.split("ids=")[1].split(",")) == {str(done), str(first)}


def test_the_list_asks_for_its_first_rows_once_while_its_html_is_parsed(
    page: Any, visit: Visit, dashboard: Dashboard
) -> None:
    dashboard.history.experiment(lenet_spec(_unique("preloaded")), owner="lin")
    asked: list[str] = []

    def note(request: Any) -> None:
        if "/api/experiments" in request.url:
            asked.append(request.url)

    page.on("request", note)

    visit("/")
    expect(page.locator("#experiments-body tr[data-id]").first).to_be_visible()
    # one request, made by the head's preload (before the modules ran); the script's fetch took it
    assert [url.removeprefix(dashboard.url) for url in asked] == [LIST_FIRST_REQUEST]
    assert _list_initiators(page) == ["link"]

    asked.clear()
    visit("/?owner=lin")  # another state: no preload, the script asks itself
    expect(page.locator("#experiments-body tr[data-id]").first).to_be_visible()
    assert len(asked) == 1 and "owner=lin" in asked[0]
    assert _list_initiators(page) == ["fetch"]


def _list_initiators(page: Any) -> list[str]:
    return list(
        page.evaluate(
            "performance.getEntriesByType('resource')"
            ".filter((entry) => entry.name.includes('/api/experiments')).map((entry) => entry.initiatorType)"
        )
    )


# --------------------------------------------------------------------------------------------- experiment


def test_an_experiment_page_draws_every_view(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    name = _unique("lenet-apoz")
    experiment_id = dashboard.history.finished(
        lenet_spec(name),
        cycles=4,
        seed=2,
        tags=("mnist",),
        notes="Hu et al. on LeNet-300-100",
        age_minutes=90,
    )

    visit(f"/experiments/{experiment_id}")

    expect(page.locator("#experiment-name")).to_have_text(name)
    expect(page.locator("#experiment-status .badge")).to_have_text("Succeeded")
    for chart in ("widths", "costs", "training", "activations", "criterion", "tflite", "speedup"):
        expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-loaded", "true")
    assert _points(page, "chart-widths") == 4
    expect(page.locator("#cycles-table tbody tr")).to_have_count(4)
    expect(page.locator("#tflite-table tbody tr")).to_have_count(4)  # two formats at cycles 0 and 3
    expect(page.locator("#diff-table tbody tr")).to_have_count(3)
    expect(page.locator("#diff-table tbody tr").first).to_contain_text("300 →")
    page.select_option("#diff-after", "")
    expect(page.locator("#diff-table tbody tr").first).to_contain_text("pruned")
    page.select_option("#criterion-layer-select", "fc2")
    expect(page.locator("#chart-criterion .legendtext").first).to_contain_text("kept")
    expect(page.locator("#spec-body")).to_contain_text("APoZ (Hu et al.), k = 1")
    downloads = page.locator("#artifacts-table a")
    expect(downloads).to_have_count(4)
    assert re.fullmatch(r"/api/artifacts/\d+", downloads.first.get_attribute("href") or "")
    screenshot("experiment")

    with page.expect_navigation():
        page.click("#rerun")
    rerun_id = int(page.url.rsplit("/", 1)[1])
    assert rerun_id != experiment_id and dashboard.queue.ids[-1] == rerun_id
    page.wait_for_selector("body[data-state=ready]")
    expect(page.locator("#experiment-status .badge")).to_have_text("Queued")
    expect(page.locator("#tflite-body")).to_contain_text("No TFLite benchmarks yet")
    page.click("#cancel")
    expect(page.locator("#experiment-status .badge")).to_have_text("Cancelled")


def test_a_running_experiment_updates_without_a_reload(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    history = dashboard.history
    experiment_id = history.finished(
        lenet_spec(_unique("live")), cycles=1, seed=3, status=Status.running, tflite=False
    )
    history.update(experiment_id, progress=0.25, progress_detail={"cycle": 1, "epoch": 0, "epochs": 3})

    visit(f"/experiments/{experiment_id}")
    page.evaluate("window.__sameDocument = true")
    # the header says where the run stands as the list does: the cycle and when it stops
    progress = page.locator("#progress-cycles .progress-label")
    expect(progress).to_have_text("cycle 1 (stops when nothing is removed or after 8 cycles)")
    expect(progress).to_have_attribute("title", "25 % of the planned epochs")
    epochs_before = _points(page, "chart-training")
    assert epochs_before == 4  # cycle 0 trained first_epochs = 4
    page.evaluate("Plotly.relayout('chart-training', {'xaxis.range': [0.5, 3.5]})")

    for epoch in range(2):
        history.epoch(experiment_id, 1, epoch, loss=0.2 - epoch / 50, metric=0.95)
    history.update(
        experiment_id,
        progress=0.6,
        progress_detail={"cycle": 1, "epoch": 2, "epochs": 3, "val_loss": 0.123, "metric_name": "accuracy"},
    )
    expect(progress).to_have_attribute("title", "60 % of the planned epochs")
    expect(page.locator("#progress-text")).to_contain_text("cycle 1 · epoch 2 of 3 · val loss 0.123")
    _wait_for_points(page, "chart-training", epochs_before + 2)
    x_range = page.evaluate("document.getElementById('chart-training').layout.xaxis.range")
    assert x_range == [0.5, 3.5]  # the zoom survived the redraw (uirevision)

    history.cycle(experiment_id, 1, {"fc1": 250, "fc2": 86, "fc3": 10}, seed=3)
    expect(page.locator("#cycles-table tbody tr")).to_have_count(2)
    _wait_for_points(page, "chart-widths", 2)
    expect(progress).to_have_text("cycle 2 (stops when nothing is removed or after 8 cycles)")
    screenshot("experiment-running")

    history.update(
        experiment_id, progress_detail={"cycle": 1, "stage": "benchmarking", "benchmark_cycles": [0, 1]}
    )
    expect(page.locator("#progress-text")).to_have_text("Benchmarking TFLite models of cycles 0, 1")

    history.update(experiment_id, status=Status.succeeded.value, finished_at=utcnow(), progress=1.0)
    expect(page.locator("#experiment-status .badge")).to_have_text("Succeeded")
    expect(page.locator(".live-progress")).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True


# --------------------------------------------------------------------------------------------- compare


def test_the_compare_page_overlays_experiments_and_exports(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    ids = [
        dashboard.history.finished(lenet_spec(_unique(f"cmp{seed}")), cycles=3 + seed, seed=seed)
        for seed in range(3)
    ]
    joined = ",".join(str(one) for one in ids)

    visit(f"/compare?ids={joined}")

    expect(page.locator(".compare-chip")).to_have_count(3)
    for chart in ("widths", "pareto-flops", "pareto-latency", "loss"):
        expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-loaded", "true")
    assert (
        page.evaluate("document.getElementById('chart-widths').data.length") == 6
    )  # 3 experiments × 2 prunable layers (the output layer cannot be pruned and is not drawn)
    front = page.evaluate("document.getElementById('chart-pareto-flops').data.at(-1).name")
    assert front == "Pareto front"
    expect(page.locator("#compare-table thead th")).to_have_count(4)
    expect(page.locator("#compare-table")).to_contain_text("units · fc1")
    assert page.get_attribute("#export-csv", "href") == f"/api/compare/export?ids={joined}&format=csv"
    with page.expect_download() as download:
        page.click("#export-json")
    assert download.value.suggested_filename.endswith(".json")
    screenshot("compare")

    page.locator(".compare-chip").first.get_by_role("button").click()
    expect(page.locator(".compare-chip")).to_have_count(2)
    assert page.url.endswith(f"ids={ids[1]},{ids[2]}")


# --------------------------------------------------------------------------------------------- new


def test_the_form_creates_an_experiment_that_shows_in_the_list(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    name = _unique("from-the-form")
    visit("/new")
    expect(page.locator("#preview-params")).to_have_text("4,001")  # sum-mlp

    page.fill("#f-spec-name", name)
    page.select_option("#f-spec-model", "lenet-300-100")
    expect(page.locator("#preview-params")).to_have_text("266,610")
    expect(page.locator("#f-spec-training-loss")).to_have_value("crossentropy")
    page.select_option("#f-spec-pruning-criterion-type", "variance")
    expect(page.locator("#f-spec-pruning-criterion-threshold")).to_be_visible()
    expect(page.locator("#f-spec-pruning-criterion-k")).to_be_hidden()
    page.fill("#f-spec-pruning-criterion-threshold", "0.001")
    page.fill("#f-spec-training-epochs", "2")
    page.select_option("#f-spec-training-lr_schedule", "cosine")
    expect(page.locator("#f-spec-pruning-merge_tolerance")).to_be_hidden()
    page.check("#f-spec-pruning-merge_linear")
    page.fill("#f-spec-pruning-merge_tolerance", "0.01")
    expect(page.locator("#f-spec-pruning-backoff-retries")).to_be_hidden()  # no tolerance: nothing to retry
    page.fill("#f-spec-pruning-tolerance", "0.01")
    expect(page.locator("#f-spec-pruning-backoff-factor")).to_be_hidden()
    page.fill("#f-spec-pruning-backoff-retries", "2")
    page.fill("#f-spec-pruning-backoff-factor", "0.25")
    page.fill("#f-tags", "form, browser")
    page.fill("#f-notes", "made by the browser test")
    screenshot("new-experiment")
    page.click("#submit")

    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    experiment_id = int(page.url.rsplit("/", 1)[1])
    assert dashboard.queue.ids[-1] == experiment_id
    page.wait_for_selector("body[data-state=ready]")
    expect(page.locator("#experiment-name")).to_have_text(name)
    expect(page.locator("#spec-body")).to_contain_text("Variance (Çallı), threshold = 0.001")
    expect(page.locator("#spec-body")).to_contain_text("schedulecosine")
    expect(page.locator("#spec-body")).to_contain_text("merge tolerance0.01")
    expect(page.locator("#spec-body")).to_contain_text("back-off2 retries, step × 0.25")
    page.click("nav.nav-links >> text=Experiments")
    page.wait_for_selector("body[data-state=ready]")
    page.fill("#filter-q", name)
    row = page.locator(f"tr[data-id='{experiment_id}']")
    expect(row).to_contain_text(name)
    expect(row.locator(".badge")).to_have_text("Queued")
    expect(row.locator(".chip")).to_have_text(["form", "browser"])


def test_validation_errors_appear_beside_their_fields(page: Any, visit: Visit, screenshot: Shot) -> None:
    visit("/new")
    page.fill("#f-spec-training-learning_rate", "-1")
    page.fill("#f-spec-pruning-max_fraction", "two")
    page.click("#submit")

    expect(page.locator("#e-spec-name")).to_have_text("String should have at least 1 character")
    expect(page.locator("#e-spec-training-learning_rate")).to_have_text("Input should be greater than 0")
    expect(page.locator("#e-spec-pruning-max_fraction")).to_contain_text("valid number")
    expect(page.locator("#f-spec-training-learning_rate")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-errors")).to_contain_text("3 fields need attention")
    expect(page.locator("#f-spec-name")).to_be_focused()
    assert page.url.endswith("/new")
    screenshot("new-experiment-errors")

    page.fill("#f-spec-training-learning_rate", "0.01")
    expect(page.locator("#e-spec-training-learning_rate")).to_have_text("")  # the live preview clears it


def test_a_yaml_spec_is_parsed_by_the_server_and_can_be_edited_in_the_form(
    page: Any, visit: Visit, screenshot: Shot
) -> None:
    visit("/new")
    page.click("#tab-yaml")
    page.fill("#yaml-text", "name: [unclosed\nmodel: sum-mlp")
    expect(page.locator("#e-yaml")).to_contain_text("line 2")

    page.fill(
        "#yaml-text",
        "name: yaml-run\nmodel: lenet-5\ndataset: {name: mnist}\n"
        "training: {loss: crossentropy, learning_rate: -2}",
    )
    expect(page.locator("#e-yaml")).to_contain_text("training.learning_rate: Input should be greater than 0")

    page.fill(
        "#yaml-text", "name: yaml-run\nmodel: lenet-5\ndataset: {name: mnist}\ntraining: {loss: crossentropy}"
    )
    expect(page.locator("#preview-params")).to_have_text("431,080")
    expect(page.locator("#e-yaml")).to_have_text("")
    screenshot("new-experiment-yaml")
    page.click("#yaml-to-form")
    expect(page.locator("#f-spec-name")).to_have_value("yaml-run")
    expect(page.locator("#f-spec-model")).to_have_value("lenet-5")
    expect(page.locator("#f-spec-dataset-name")).to_have_value("mnist")


# --------------------------------------------------------------------------------------------- user text


def test_user_text_is_shown_as_text_everywhere(
    page: Any, visit: Visit, dashboard: Dashboard, watched: Any
) -> None:
    experiment_id = dashboard.history.finished(
        lenet_spec(XSS), cycles=2, seed=4, owner="mallory", tags=(XSS, "plain"), notes=f"notes {XSS}"
    )
    other = dashboard.history.finished(lenet_spec(_unique("neighbour")), cycles=2, seed=5)

    visit("/?owner=mallory")
    row = page.locator(f"tr[data-id='{experiment_id}']")
    expect(row.locator(".name-cell a")).to_have_text(XSS)
    expect(row.locator(".chip").first).to_have_text(XSS)

    visit(f"/experiments/{experiment_id}")
    expect(page.locator("#experiment-name")).to_have_text(XSS)
    expect(page.locator("#experiment-notes")).to_have_text(f"notes {XSS}")
    expect(page.locator(".exp-meta .chip").first).to_have_text(XSS)
    assert page.title() == f"{XSS} · prunelab"

    visit(f"/compare?ids={experiment_id},{other}")
    expect(page.locator(".compare-chip a").first).to_have_text(XSS)
    expect(page.locator("#compare-table thead th").nth(1)).to_have_text(f"{XSS} (#{experiment_id})")
    legend = page.locator("#chart-widths .legendtext").first
    expect(legend).to_have_text(f"{XSS} (#{experiment_id}) · fc1")

    for path in ("/?owner=mallory", f"/experiments/{experiment_id}", f"/compare?ids={experiment_id},{other}"):
        visit(path)
        assert page.locator("img").count() == 0, path
    assert watched.dialogs == []

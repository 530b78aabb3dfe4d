"""A graph model's pages in Chromium: the New page's preview lists a graph preset's dependency groups (a
fixed one with its reason), and a graph experiment's page shows its layers with their inputs, its
groups' widths before → after and the model drawn as a graph."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dashboard_rows import Dashboard
from graph_rows import finished_graph, residual_spec

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, in CI, fails) with the reason
    expect = None

Visit = Callable[[str], Any]
Shot = Callable[[str], Path]


def test_the_new_page_lists_a_graph_presets_groups_and_why_a_fixed_one_is_fixed(
    page: Any, visit: Visit, screenshot: Shot
) -> None:
    visit("/new")
    expect(page.locator("#f-spec-model option[value=resnet-mini]")).to_contain_text("FLOPs")

    page.select_option("#f-spec-model", "resnet-mini")

    fixed = page.locator("#groups-table tr.group-fixed")
    expect(fixed.last).to_contain_text("fixed: feeds the model's output")
    shared = page.locator("#groups-table tr.group-prunable", has_text="producers:")
    expect(shared.first).to_be_visible()  # a residual group: several producers tied by an add
    expect(page.locator("#groups-summary")).to_contain_text("prunable")
    expect(page.locator("#f-spec-dataset-name")).to_have_value("mnist")
    screenshot("new-graph-preset")


def test_a_graph_experiment_shows_layer_inputs_group_widths_and_the_drawn_graph(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Shot
) -> None:
    name = f"residual-{uuid.uuid4().hex[:6]}"
    experiment_id = finished_graph(
        dashboard.history,
        residual_spec(name),
        [{"stem": 8, "c1": 6}, {"stem": 6, "c1": 4}, {"stem": 5, "c1": 4}],
    )

    visit(f"/experiments/{experiment_id}")

    expect(page.locator("#experiment-name")).to_have_text(name)
    rows = page.locator("#diff-table tbody tr")
    expect(rows).to_have_count(6)
    add = page.locator("#diff-table tr[data-layer=sum]")
    expect(add.locator(".diff-inputs")).to_have_text("c2, stem")
    expect(add).to_contain_text("8 → 5")  # the add carries group stem: its width comes from the group
    stem = page.locator("#diff-groups tr[data-group=stem]")
    expect(stem).to_contain_text("stem, c2")
    expect(stem).to_contain_text("8 → 5")
    expect(page.locator("#diff-groups tr[data-group=out]")).to_contain_text("fixed: feeds the model's output")
    graph = page.locator("#diff-graph")
    expect(graph).to_have_attribute("data-loaded", "true")
    expect(graph.locator("text", has_text="sum  8 → 5")).to_have_count(1)
    for chart in ("widths", "criterion"):
        expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-loaded", "true")
    screenshot("experiment-graph")


#: A residual dense graph on generated sum data: d0 and d2 feed one add, so they form one group.
TINY_RESIDUAL = """\
name: {name}
seed: 5
model:
  input_shape: [2]
  layers:
    - {{type: dense, name: d0, units: 8, activation: relu}}
    - {{type: dense, name: d1, units: 6, activation: relu}}
    - {{type: dense, name: d2, units: 8}}
    - {{type: add, name: skip, inputs: [d0, d2]}}
    - {{type: activation, name: skip_relu, activation: relu}}
    - {{type: dense, name: out, units: 1}}
dataset: {{name: sum, train_samples: 300, test_samples: 100}}
training: {{learning_rate: 0.01, batch_size: 100, epochs: 1, loss: mse}}
pruning: {{criterion: {{type: apoz, k: 0.0}}, max_fraction: 0.5, max_cycles: 2}}
benchmark: {{cycles: none}}
"""


@pytest.mark.slow
def test_a_real_graph_experiment_runs_through_the_worker_and_its_pages_draw(
    page: Any, visit: Visit, dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"tiny-residual-{uuid.uuid4().hex[:6]}"
    visit("/new")
    page.click("#tab-yaml")
    page.fill("#yaml-text", TINY_RESIDUAL.format(name=name))
    expect(page.locator("#groups-table tr[data-group=d0]")).to_contain_text("producers: d0, d2")
    with page.expect_navigation():
        page.click("#submit")
    experiment_id = int(page.url.rsplit("/", 1)[1])
    assert dashboard.queue.ids[-1] == experiment_id

    # The worker's task, run here on the dashboard's database (the queue only recorded the id).
    database = dashboard.history.sessions.kw["bind"].url.database
    monkeypatch.setenv("PRUNELAB_DATA_DIR", str(Path(database).parent))
    monkeypatch.setenv("PRUNELAB_BROKER_URL", "memory://")
    monkeypatch.delenv("PRUNELAB_DATABASE_URL", raising=False)
    from worker.tasks import run_experiment

    assert run_experiment.apply(args=(experiment_id,)).get() == "succeeded"

    visit(f"/experiments/{experiment_id}")
    expect(page.locator("#experiment-status .badge")).to_have_text("Succeeded")
    expect(page.locator("#diff-table tr[data-layer=skip] .diff-inputs")).to_have_text("d0, d2")
    expect(page.locator("#diff-groups tr[data-group=d0]")).to_contain_text("d0, d2")
    expect(page.locator("#diff-graph")).to_have_attribute("data-loaded", "true")
    for chart in ("widths", "criterion"):
        expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-loaded", "true")
    traces = page.evaluate("document.getElementById('chart-widths').data.map((trace) => trace.name)")
    assert traces == ["d0", "d1"]  # one bar series per prunable group

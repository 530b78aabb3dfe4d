"""The kept model in Chromium: rejected cycles (the last one, and one in the middle of a back-off run) are
marked in the charts and tables, a cycle pruned again from the last kept model says so, the architecture
diff defaults to cycle 0 → the final (kept) cycle and follows a live experiment as cycles arrive, and the
list shows the final model's metric beside its size and where a running experiment stands."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboard_rows import Dashboard, lenet_spec
from sqlalchemy import select

from backend.db import session_scope
from backend.models import Cycle, Experiment, Status

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, in CI, fails) with the reason
    expect = None

Visit = Callable[[str], Any]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _reject_last(dashboard: Dashboard, experiment_id: int) -> dict[str, int]:
    """Mark the newest cycle rejected (a tolerance stop) and make the one before it the final cycle; with
    four cycles, also cycle 1 rejected and cycle 2 pruned again from cycle 0 (a back-off run).

    Returns:
        the kept cycle's trained widths.
    """
    with session_scope(dashboard.history.sessions) as session:
        cycles = list(
            session.scalars(select(Cycle).where(Cycle.experiment_id == experiment_id).order_by(Cycle.index))
        )
        rejected, kept = cycles[-1], cycles[-2]
        rejected.accepted = False
        rejected.val_metric = 0.5
        if len(cycles) == 4:
            cycles[1].accepted, cycles[1].val_metric = False, 0.5
            cycles[2].pruned_from, cycles[3].pruned_from = 0, 2
        experiment = session.get_one(Experiment, experiment_id)
        experiment.final_cycle = kept.index
        experiment.final_params, experiment.final_flops = kept.params, kept.flops
        experiment.final_widths = dict(kept.widths)
        experiment.final_metric = kept.val_metric
        experiment.stop_reason = "tolerance"
        return dict(kept.widths)


def _ticks(page: Any, chart: str) -> list[str]:
    """The x tick labels of a drawn chart (a two-line tick reads as its lines joined)."""
    texts: list[str] = page.evaluate(
        "(chart) => Array.from(document.querySelectorAll(`#${chart} .xtick text`), (t) => t.textContent)",
        chart,
    )
    return texts


def test_rejected_cycles_are_marked_and_the_diff_shows_the_kept_model(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Callable[[str], Path]
) -> None:
    experiment_id = dashboard.history.finished(lenet_spec(_unique("tolerance")), cycles=4, seed=5)
    kept = _reject_last(dashboard, experiment_id)

    visit(f"/experiments/{experiment_id}")

    for chart in ("chart-widths", "chart-costs", "chart-metric-flops"):
        expect(page.locator(f"#{chart}")).to_have_attribute("data-loaded", "true")
    for chart in ("chart-widths", "chart-costs"):
        ticks = _ticks(page, chart)
        assert any("final (kept)" in tick and tick.startswith("2") for tick in ticks), (chart, ticks)
        assert any("rejected" in tick and tick.startswith("3") for tick in ticks), (chart, ticks)
        assert any("rejected" in tick and tick.startswith("1") for tick in ticks), (chart, ticks)
    symbols = page.evaluate("document.getElementById('chart-costs').data[0].marker.symbol")
    assert symbols == ["circle", "x", "star", "x"]
    widths_layers = page.evaluate("document.getElementById('chart-widths').data.map((t) => t.name)")
    assert widths_layers == ["fc1", "fc2"]  # the output layer fc3 cannot be pruned
    expect(page.locator("#cycles-table tr[data-cycle='2']")).to_contain_text("final (kept)")
    expect(page.locator("#cycles-table tr[data-cycle='3']")).to_contain_text("rejected")
    expect(page.locator("#cycles-table tr[data-cycle='3'] .cycle-mark")).to_have_count(1)
    expect(page.locator("#cycles-table tr[data-cycle='1'] .cycle-mark")).to_have_text("rejected")
    expect(page.locator("#cycles-table tr[data-cycle='2'] .cycle-from")).to_have_text("from cycle 0")
    expect(page.locator("#cycles-table tr[data-cycle='1'] .cycle-from")).to_have_count(0)

    expect(page.locator("#diff-before")).to_have_value("0")
    expect(page.locator("#diff-after")).to_have_value("2")
    expect(page.locator("#diff-after option:checked")).to_have_text("cycle 2 · final (kept)")
    first = page.locator("#diff-table tbody tr").first
    expect(first).to_contain_text(f"300 → {kept['fc1']}")
    expect(page.locator("#kept-widths")).to_contain_text(f"fc1 {kept['fc1']}")
    expect(page.locator("#kept-widths")).to_contain_text("as trained in cycle 2, the final (kept) cycle")
    expect(page.locator("#fidelity-note")).to_contain_text("first 2,000 test examples")
    screenshot("kept-experiment")


def test_the_diff_follows_a_running_experiment_as_cycles_arrive(
    page: Any, visit: Visit, dashboard: Dashboard
) -> None:
    history = dashboard.history
    experiment_id = history.finished(
        lenet_spec(_unique("live-diff")), cycles=1, seed=6, status=Status.running, tflite=False
    )

    visit(f"/experiments/{experiment_id}")
    expect(page.locator("#diff-before")).to_have_value("0")
    expect(page.locator("#diff-after")).to_have_value("")  # one cycle: what its pruning kept

    with session_scope(history.sessions) as session:
        widths = dict(
            session.scalars(select(Cycle.widths_after).where(Cycle.experiment_id == experiment_id)).one()
        )
    after_one = history.cycle(experiment_id, 1, widths, seed=6)
    expect(page.locator("#cycles-table tbody tr")).to_have_count(2)
    expect(page.locator("#diff-after")).to_have_value("1")
    expect(page.locator("#diff-table tbody tr").first).to_contain_text(f"300 → {widths['fc1']}")

    history.cycle(experiment_id, 2, after_one, seed=6)
    expect(page.locator("#diff-after")).to_have_value("2")
    expect(page.locator("#diff-table tbody tr").first).to_contain_text(f"300 → {after_one['fc1']}")


def test_the_list_shows_the_final_metric_and_where_a_run_stands(
    page: Any, visit: Visit, dashboard: Dashboard, screenshot: Callable[[str], Path]
) -> None:
    name = _unique("kept-list")
    finished = dashboard.history.finished(lenet_spec(name), cycles=3, seed=7, tflite=False)
    dashboard.history.update(finished, final_metric=0.9123, best_metric=0.9789)
    running = dashboard.history.finished(
        lenet_spec(_unique("kept-running"), max_cycles=15),
        cycles=3,
        seed=8,
        status=Status.running,
        tflite=False,
    )

    visit(f"/?q={name}")
    head = page.locator("#experiments-head")
    expect(head).to_contain_text("Final metric")
    expect(head).to_contain_text("Best so far")
    row = page.locator(f"tr[data-id='{finished}']")
    expect(row).to_contain_text("91.23 %")
    expect(row).to_contain_text("97.89 %")

    visit("/?q=kept-running")
    expect(page.locator(f"tr[data-id='{running}'] .progress-label")).to_have_text(
        "cycle 3 (stops when nothing is removed or after 15 cycles)"
    )
    visit("/?q=kept-")
    screenshot("kept-list")

"""In Chromium with the network off: the API explorers and the dashboard work from this server alone,
charts below the first screen wait for their turn, and unknown addresses get the dashboard's 404 page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from dashboard_rows import Dashboard, lenet_spec

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, in CI, fails) with the reason
    expect = None

TIMEOUT_MS = 15_000
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
#: When each chart of the page was drawn (ms since navigation), recorded as its data-loaded appears.
RECORD_DRAWS = """
window.__drawn = {};
new MutationObserver((changes) => {
  for (const change of changes) {
    const chart = change.target;
    const first = chart.dataset.loaded === "true" && !(chart.id in window.__drawn);
    if (first) window.__drawn[chart.id] = performance.now();
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-loaded"] });
"""


@pytest.fixture
def offline(page: Any) -> Iterator[list[str]]:
    """Cut the page's browser context off every host but this machine; yields what it tried to reach."""
    tried: list[str] = []
    page.context.route("**/*", lambda route: _loopback_only(route, tried))
    yield tried


def _loopback_only(route: Any, tried: list[str]) -> None:
    """Let a request to this machine through; refuse any other as if offline, noting its URL."""
    if urlsplit(route.request.url).hostname in LOOPBACK:
        route.continue_()
    else:
        tried.append(route.request.url)
        route.abort("internetdisconnected")


def test_swagger_ui_lists_the_operations_with_the_network_off(
    page: Any, dashboard: Dashboard, offline: list[str]
) -> None:
    page.goto(f"{dashboard.url}/docs")

    operations = page.locator("#swagger-ui .opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() > 10
    expect(
        page.locator("#swagger-ui .opblock-summary-path").filter(has_text="/api/experiments").first
    ).to_be_visible()
    assert offline == []  # nothing was even tried outside this machine


def test_redoc_documents_the_api_with_the_network_off(browser: Any, dashboard: Dashboard) -> None:
    context = browser.new_context(base_url=dashboard.url)
    tried: list[str] = []
    context.route("**/*", lambda route: _loopback_only(route, tried))
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    try:
        page.goto("/redoc")

        expect(page.locator(".api-content h2").first).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator(".api-content")).to_contain_text("Follow an experiment live")
    finally:
        context.close()
    assert tried == []
    # the one thing ReDoc fetches from elsewhere, its maker's logo, is refused by the policy (and hidden)
    assert all("https://cdn.redoc.ly/" in problem for problem in problems), problems


def test_an_experiment_page_draws_every_chart_with_the_network_off(
    page: Any, dashboard: Dashboard, offline: list[str]
) -> None:
    experiment_id = dashboard.history.finished(lenet_spec("offline"), cycles=3, seed=4)

    page.goto(f"{dashboard.url}/experiments/{experiment_id}")
    page.wait_for_selector("body[data-state=ready]")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")

    for chart in ("widths", "costs", "training", "activations", "criterion", "tflite", "speedup"):
        expect(page.locator(f"#chart-{chart}")).to_have_attribute("data-loaded", "true")
    assert offline == []


def test_charts_below_the_first_screen_are_drawn_after_those_on_it(page: Any, dashboard: Dashboard) -> None:
    experiment_id = dashboard.history.finished(lenet_spec("below-the-fold"), cycles=4, seed=5)
    page.add_init_script(RECORD_DRAWS)

    page.goto(f"{dashboard.url}/experiments/{experiment_id}")
    expect(page.locator("#chart-speedup")).to_have_attribute("data-loaded", "true")  # drawn once idle
    expect(page.locator("#diff-graph")).to_have_attribute("data-loaded", "true")

    drawn = page.evaluate("window.__drawn")
    first_screen = max(drawn["chart-widths"], drawn["chart-costs"])
    asked = page.evaluate(
        "() => Object.fromEntries(performance.getEntriesByType('resource')"
        ".filter((entry) => entry.name.includes('/api/experiments/'))"
        ".map((entry) => [new URL(entry.name).pathname.split('/').slice(3).join('/'), entry.startTime]))"
    )
    asked = {path.split("/")[-1] if "/" in path else "detail": start for path, start in asked.items()}
    # the figures below the first screen are not even asked for before the first screen is drawn
    assert min(asked["tflite"], asked["speedup"], asked["activations"]) >= first_screen, (asked, drawn)
    # those on it are asked for with the experiment itself, not once it has arrived
    assert max(asked["widths"], asked["costs"]) <= asked["detail"], asked
    # the architecture diff's graph (below the first screen too) is drawn after the first screen
    assert drawn["diff-graph"] >= first_screen, drawn
    assert page.evaluate("window.scrollY") == 0  # nobody scrolled


DRAW_PROBE = """async ({ idle, observer }) => {
  if (!observer) delete window.IntersectionObserver;
  const { drawWhenVisible } = await import("/static/js/plots.js");
  const spacer = document.createElement("div");
  spacer.style.height = "5000px";
  const chart = document.createElement("div");
  chart.id = "probe";
  chart.style.height = "10px";
  document.body.append(spacer, chart);
  window.__probe = drawWhenVisible(chart, () => { chart.dataset.drawn = "yes"; return "drawn"; }, { idle });
}"""


def test_draw_when_visible_waits_for_the_scroll(page: Any, visit: Callable[[str], Any]) -> None:
    visit("/new")
    page.evaluate(DRAW_PROBE, {"idle": False, "observer": True})

    page.wait_for_timeout(600)
    assert page.get_attribute("#probe", "data-drawn") is None
    page.locator("#probe").scroll_into_view_if_needed()
    expect(page.locator("#probe")).to_have_attribute("data-drawn", "yes")
    assert page.evaluate("window.__probe") == "drawn"


def test_draw_when_visible_draws_unseen_charts_once_idle(page: Any, visit: Callable[[str], Any]) -> None:
    visit("/new")
    page.evaluate(DRAW_PROBE, {"idle": True, "observer": True})

    expect(page.locator("#probe")).to_have_attribute("data-drawn", "yes")
    assert page.evaluate("window.scrollY") == 0


def test_draw_when_visible_draws_at_once_without_intersection_observer(
    page: Any, visit: Callable[[str], Any]
) -> None:
    visit("/new")
    page.evaluate(DRAW_PROBE, {"idle": False, "observer": False})

    expect(page.locator("#probe")).to_have_attribute("data-drawn", "yes")


def test_an_unknown_address_shows_the_dashboards_404_page(
    page: Any, dashboard: Dashboard, screenshot: Callable[[str], Path]
) -> None:
    response = page.goto(f"{dashboard.url}/experiment/12?x=<b>")

    assert response.status == 404
    page.wait_for_selector("body[data-state=ready]")
    expect(page.locator("h1, .empty-title").first).to_have_text("There is no page at this address")
    expect(page.locator("#not-found-path")).to_have_text("/experiment/12")
    expect(page.locator(".nav-links a")).to_have_count(3)
    screenshot("not-found")
    page.get_by_role("link", name="All experiments").click()
    page.wait_for_selector("body[data-page=experiments][data-state=ready]")

"""In a real browser: another site's page cannot change anything, and /docs runs under its policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_rows import Dashboard, lenet_spec
from servers import live_server

from backend.db import session_scope
from backend.models import Experiment, Status

PAGE = "<!doctype html><title>a page on another site</title>"


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A browser context that never reaches the network: only the dashboard and a made-up attacker."""
    opened = browser.new_context()

    def offline(route: Any) -> None:
        route.abort()

    opened.route("https://**/*", offline)
    try:
        yield opened
    finally:
        opened.close()


def _status(dashboard: Dashboard, experiment_id: int) -> str:
    with session_scope(dashboard.history.sessions) as session:
        return session.get_one(Experiment, experiment_id).status


@pytest.fixture(scope="module")
def attacker() -> Iterator[str]:
    """Another site on this machine (another port: another origin, the same private network)."""

    async def page(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = PAGE.encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
        )
        await send({"type": "http.response.body", "body": body})

    with live_server(page) as server:
        yield server.url


def test_another_sites_page_cannot_cancel_or_rerun(context: Any, dashboard: Dashboard, attacker: str) -> None:
    experiment_id = dashboard.history.experiment(lenet_spec("target"), status=Status.queued)
    queued = len(dashboard.queue.ids)
    page = context.new_page()
    page.goto(f"{attacker}/")
    base = f"{dashboard.url}/api/experiments/{experiment_id}"

    # what a cross-site page can send without a preflight: "simple" requests whose answers it cannot read
    # (the browser then hides the JSON answers from the page: its opaque-response blocking fails them)
    page.evaluate(
        """async (base) => {
            const simple = {method: "POST", mode: "no-cors", credentials: "include"};
            await Promise.allSettled([
                fetch(`${base}/cancel`, simple),
                fetch(`${base}/rerun`, {...simple, headers: {"Content-Type": "text/plain"}, body: "{}"}),
                fetch(`${base}/cancel`, {...simple, body: new URLSearchParams({a: "1"})}),
            ]);
        }""",
        base,
    )

    assert _status(dashboard, experiment_id) == Status.queued.value
    assert len(dashboard.queue.ids) == queued


def test_the_swagger_page_runs_its_start_up_script_under_its_policy(
    context: Any, dashboard: Dashboard
) -> None:
    page = context.new_page()
    violations: list[str] = []
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{dashboard.url}/docs")
    page.wait_for_load_state("load")

    assert violations == []
    # offline all the same: the bundle comes from this server and the inline script (hash allowed) ran
    page.wait_for_selector("#swagger-ui .opblock")
    assert errors == []

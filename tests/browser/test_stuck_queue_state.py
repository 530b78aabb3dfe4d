"""The dashboard tells a queued experiment that waits for its first worker from one the sweep re-queued."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from dashboard_rows import Dashboard, lenet_spec

from backend.models import utcnow

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, in CI, fails) with the reason
    expect = None


def test_queued_experiments_say_waiting_or_requeued_in_the_list_and_on_their_page(
    page: Any, visit: Any, dashboard: Dashboard
) -> None:
    group = f"queue-{uuid.uuid4().hex[:6]}"
    waiting = dashboard.history.experiment(lenet_spec(f"{group}-waiting"))
    requeued = dashboard.history.experiment(lenet_spec(f"{group}-requeued"), age_minutes=20)
    dashboard.history.update(requeued, requeues=2, requeued_at=utcnow() - timedelta(minutes=3))

    visit(f"/?q={group}")
    states = page.locator("#experiments-body .queue-state")
    # newest first: the one just created, then the one re-queued twice
    expect(states).to_have_text(
        ["Waiting for a worker", "Re-queued 2× (last 3 min ago) · waiting for a worker"]
    )

    visit(f"/experiments/{requeued}")
    expect(page.locator("#progress-text")).to_have_text(
        "Re-queued 2× (last 3 min ago) · waiting for a worker"
    )
    visit(f"/experiments/{waiting}")
    expect(page.locator("#progress-text")).to_have_text("Waiting for a worker")

"""Browser test fixtures: Debian's Chromium driven by Playwright, and a live uvicorn server on a migrated
temporary SQLite database with a recording queue (no worker: tests write result rows themselves).

Chromium is ``/usr/bin/chromium`` (``apt-get install chromium``; never ``playwright install``). Where it
or the ``playwright`` package is missing the tests are skipped with the reason, except in CI
(``CI=true``), where they fail. Every page a test opens is watched: an uncaught script error, a
Content-Security-Policy violation or a JavaScript dialog fails the test. Screenshots go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dashboard_rows import Dashboard, History
from servers import RecordingQueue, live_server, signed_in_as_admin
from services import missing_service

from backend.app import create_app
from backend.migrate import upgrade_to_head
from backend.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
#: How long an expectation waits for the page (milliseconds).
TIMEOUT_MS = 15_000


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"Chromium is not at {CHROMIUM} (apt-get install chromium; never `playwright install`)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium for the whole session."""
    problem = _missing_browser()
    if problem is not None:
        missing_service(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory, mnist_t10k_dir: Path) -> Iterator[Dashboard]:
    """The app in uvicorn on a free loopback port, on a fresh migrated SQLite database; its data
    directory holds MNIST (a link to the shared t10k files), so MNIST experiments can be submitted."""
    data_dir = tmp_path_factory.mktemp("dashboard")
    (data_dir / "mnist").symlink_to(mnist_t10k_dir, target_is_directory=True)
    settings = Settings(data_dir=data_dir, broker_url="memory://")
    upgrade_to_head(settings)
    queue = RecordingQueue()
    # requests without credentials act as a signed-in admin (tests/browser/test_auth_*.py sign in for real)
    app = signed_in_as_admin(create_app(settings, queue, event_poll_seconds=0.1))
    with live_server(app) as server:
        yield Dashboard(server.url, queue, History(app.state.context.session_factory))


@dataclass
class Watched:
    """What a page did that no page should do."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def page(browser: Any, dashboard: Dashboard, watched: Watched) -> Iterator[Any]:
    """A fresh browser context and page; fails the test on script errors, CSP violations or dialogs."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=dashboard.url)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.on("pageerror", lambda error: watched.errors.append(f"uncaught: {error}"))
    tab.on(
        "console",
        lambda message: (
            watched.errors.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )

    def dialog(opened: Any) -> None:
        watched.dialogs.append(f"{opened.type}: {opened.message}")
        opened.dismiss()

    tab.on("dialog", dialog)
    try:
        yield tab
    finally:
        context.close()
    assert not watched.dialogs, f"a dialog opened: {watched.dialogs}"
    assert not watched.errors, f"the page reported errors: {watched.errors}"


@pytest.fixture
def visit(page: Any) -> Callable[[str], Any]:
    """``visit(path)`` opens a dashboard page and waits until it has rendered its data."""

    def go(path: str) -> Any:
        page.goto(path)
        page.wait_for_selector("body[data-state=ready]")
        return page

    return go


@pytest.fixture
def screenshot(page: Any) -> Callable[[str], Path]:
    """``screenshot(name)`` saves the whole page as ``test-artifacts/screenshots/<name>.png``."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # from the top: a full-page capture draws the sticky navigation bar where the page is scrolled
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=True)
        return path

    return take

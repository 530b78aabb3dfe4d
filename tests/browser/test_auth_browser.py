"""Signing in with the link ``prunelab serve`` prints, creating an experiment with the session (its
CSRF token sent by api.js), signing out, and pages sending a signed-out browser to sign in (issue 15)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import RecordingQueue, live_server

from backend.app import create_app
from backend.auth.bootstrap import signin_url
from backend.migrate import upgrade_to_head
from backend.settings import Settings

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import expect  # noqa: E402


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[tuple[str, str, RecordingQueue]]:
    """A server with authentication on and no users yet; yields its URL, the admin's sign-in link (as
    ``prunelab serve`` prints it, for this port) and its queue."""
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade_to_head(settings)
    queue = RecordingQueue()
    app = create_app(settings, queue)
    with live_server(app) as server:
        link = signin_url(settings, app.state.context.session_factory)
        assert link is not None
        yield server.url, server.url + link.split(str(settings.port), 1)[1], queue


def test_sign_in_with_the_printed_link_create_sign_out_and_be_sent_to_sign_in(
    browser: Any, fresh_server: tuple[str, str, RecordingQueue]
) -> None:
    url, link, queue = fresh_server
    context = browser.new_context(base_url=url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/new")
        expect(page).to_have_url(re.compile(r"/signin\?next=%2Fnew$"))
        page.wait_for_selector("body[data-state=ready]")

        page.goto(link)
        expect(page).to_have_url(f"{url}/")
        page.goto("/new")
        page.wait_for_selector("body[data-state=ready]")
        page.fill("#f-spec-name", "signed in")
        page.click("#submit")
        page.wait_for_url(re.compile(r"/experiments/\d+$"))
        experiment_id = int(page.url.rsplit("/", 1)[1])
        assert queue.ids == [experiment_id]
        page.wait_for_selector("body[data-state=ready]")
        expect(page.locator("#experiment-name")).to_have_text("signed in")

        page.goto("/signin")
        page.wait_for_selector("body[data-state=ready]")
        expect(page.locator("#signin-who")).to_contain_text("admin")
        page.click("#signout")
        expect(page.locator("#signin-message")).to_contain_text("Signed out")
        for path in ("/", f"/experiments/{experiment_id}", "/compare", "/new"):
            page.goto(path)
            expect(page).to_have_url(re.compile(r"/signin\?next="))

        page.goto(link)  # the link was for one use only
        expect(page).to_have_url(re.compile(r"/signin\?next="))
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))
    finally:
        context.close()
    assert not errors


def test_the_signin_form_takes_an_api_token_and_goes_on_to_next(
    browser: Any, fresh_server: tuple[str, str, RecordingQueue], tmp_path: Path
) -> None:
    url, _link, _queue = fresh_server
    from backend.auth.roles import Role
    from backend.auth.users import add_user
    from backend.db import make_engine, make_session_factory, session_scope

    engine = make_engine(Settings(data_dir=tmp_path, broker_url="memory://"))
    with session_scope(make_session_factory(engine)) as session:
        token = add_user(session, "alice", Role.member)
    engine.dispose()
    context = browser.new_context(base_url=url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/compare")
        page.wait_for_selector("body[data-state=ready]")
        page.fill("#signin-token", "not a token")
        page.click("#signin-submit")
        expect(page.locator("#signin-message")).to_contain_text("unknown")
        page.fill("#signin-token", token)
        page.click("#signin-submit")
        expect(page).to_have_url(f"{url}/compare")
        page.wait_for_selector("body[data-state=ready]")
    finally:
        context.close()


def test_every_page_names_the_user_and_signs_out_from_the_nav(
    browser: Any, fresh_server: tuple[str, str, RecordingQueue]
) -> None:
    url, link, _queue = fresh_server
    context = browser.new_context(base_url=url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(link)
        expect(page).to_have_url(f"{url}/")
        for path in ("/", "/compare", "/new"):
            page.goto(path)
            page.wait_for_selector("body[data-state=ready]")
            expect(page.locator("#nav-user")).to_have_text("admin · admin")
            expect(page.locator("#nav-audit")).to_be_visible()

        page.click("#nav-signout")
        page.wait_for_url(re.compile(r"/signin$"))
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))
    finally:
        context.close()
    assert not errors

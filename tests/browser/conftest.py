"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright's sync API.

Every test in tests/browser is marked ``browser``. The browser is launched once per test
process; each test gets a fresh context (cookies, storage) and page. Pages are served by the
real ASGI app (``live_gateway``: uvicorn in a thread of this process), under the site's real
Content-Security-Policy: give ``page.wait_for_function`` an arrow function ("() => ..."), as a
bare expression string is run with eval(), which the policy refuses.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveGateway, serve_asgi

# Playwright's sync API runs an event loop in this thread, so Django's async-safety check would
# refuse the ORM calls a test makes to set up its data. The test thread never runs coroutines
# of its own, so the check has nothing to protect here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("AIGATEWAY_CHROMIUM", "/usr/bin/chromium")
# Flags for a root user on a machine without a display or outside network (docs: GUIDE).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Playwright and a headless Chromium, stopped on exit.

    Playwright's sync API keeps an event loop running in this thread while it is started,
    which breaks every later test that calls asyncio.run() or async_to_sync: so the browser
    lives for one test module (a module-scoped fixture), never for the whole process.
    """
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's `chromium` package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def live_gateway(transactional_db: None) -> Iterator[LiveGateway]:
    """The real ASGI app, plus /static/ served as `make run` serves it (no collectstatic)."""
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from aigateway.asgi import application

    with serve_asgi(ASGIStaticFilesHandler(application)) as gateway:
        yield gateway


@pytest.fixture
def page(chromium, live_gateway: LiveGateway) -> Iterator[object]:
    """A fresh browser page; ``page.base_url`` is the live gateway's address."""
    context = chromium.new_context(
        base_url=live_gateway.base_url, viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(10_000)
    browser_page = context.new_page()
    console_errors: list[str] = []
    browser_page.on(
        "console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None
    )
    browser_page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    browser_page.console_errors = console_errors  # type: ignore[attr-defined]
    yield browser_page
    context.close()


def sign_in(page, username: str, password: str) -> None:
    """Sign in through the local login form (the SSO tests drive the IdP's own form)."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def add_provider_and_test_connection(page, name: str, base_url: str) -> Any:
    """On the Providers page: add an OpenAI-compatible provider at ``base_url``, open it and
    press "Test connection". Returns the result element (the caller asserts its text)."""
    from playwright.sync_api import expect

    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Kind").select_option("openai_compatible")
    page.get_by_label("Base URL").fill(base_url)
    page.get_by_role("button", name="Add provider").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    page.get_by_role("button", name="Test connection").click()
    return page.locator("#connection-result")


def save_screenshot(page, name: str) -> Path:
    """Write docs/screenshots/<name>.png (shown in the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

"""Browser fixtures: the system Chromium driven by Playwright against the real running stack, and
a stack of its own that requires API keys.

Playwright's own browser download needs the internet; the Debian ``chromium`` package works
offline (``make test`` installs it). Without it, these tests are skipped, saying so."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from fpg_audit import AuditStore, Role

from ..conftest import Stack, private_redis, running_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium); skipping browser tests")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


class Shots:
    """Screenshots of each step, kept under test-artifacts/e2e/ (git-ignored)."""

    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", test_name).strip("-")
        self.count = 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, step: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        self.page.screenshot(path=path, full_page=True)
        return path


@pytest.fixture
def locale() -> str:
    return "en-US"


@pytest.fixture
def page(browser: Browser, locale: str) -> Iterator[Page]:
    context = browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(30_000)
    opened = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A Content-Security-Policy violation or a script error shows up here.
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        yield opened
    finally:
        context.close()
    assert not problems, f"the browser console reported errors: {problems}"


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Shots:
    return Shots(page, request.node.name)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, str]]:
    """A stack of its own that requires API keys, and a submitter key's secret."""
    database = f"sqlite:///{tmp_path_factory.mktemp('audit')}/audit.db"
    audit = AuditStore.connect(database)
    _key, secret = audit.create_key("browser", Role.SUBMITTER)
    audit.close()
    with (
        private_redis() as redis_url,
        running_stack(
            redis_url,
            worker_processes=1,
            FPG_REQUIRE_API_KEYS="true",
            FPG_AUDIT_DATABASE_URL=database,
        ) as stack,
    ):
        yield stack, secret

"""Browser tests: Debian's Chromium driven by Playwright against the real `rathaus serve --demo`.

Every page a test visits can be checked with axe-core (from npm, injected into the page) and is
saved as a screenshot under test-output/screenshots/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from hub.demo import DEMO_PASSWORD, DEMO_STAFF
from tests.running_hub import REPO, Hub

CHROMIUM = Path("/usr/bin/chromium")
AXE_SCRIPT = REPO / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO / "test-output" / "screenshots"
# The screenshots the handbook in docs/ shows; refreshed from every browser run so they never go stale.
DOCS_IMAGES = REPO / "docs" / "img"
DOCS_SCREENSHOTS = (
    "inbox-list", "inbox-conversation", "inbox-canned-replies", "inbox-labels", "inbox-shortcuts",
    "broadcast-composer", "broadcast-report",
)  # fmt: skip
# The demo town's person for each role.
DEMO_USERS = {role: email for email, _name, role in DEMO_STAFF}
# The flags Chromium needs as root on a machine with no outside network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session", autouse=True)
def handbook_screenshots() -> Iterator[None]:
    """After the browser tests, copies the handbook's screenshots that this run took into docs/img/."""
    yield
    for name in DOCS_SCREENSHOTS:
        taken = SCREENSHOTS / f"{name}.png"
        if taken.exists():
            shutil.copyfile(taken, DOCS_IMAGES / taken.name)


# Per module: Playwright's sync API keeps an event loop running in the main thread while it is
# started, which would break later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Chromium is missing: .ci/run installs Debian's chromium package"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # bypass_csp lets axe-core be injected; the pages' own CSP is tested over HTTP.
    created = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900}, bypass_csp=True)
    created.set_default_timeout(15_000)
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, hub: Hub, role: str = "staff", *, next_path: str = "/app/") -> None:
    """Signs in as the demo town's person with `role`, through the sign-in form."""
    page.goto(f"{hub.url}/app/login?next={next_path}")
    page.get_by_label("E-Mail-Adresse").fill(DEMO_USERS[role])
    page.get_by_label("Passwort", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(re.compile(r".*/app/(?!login).*"))


@pytest.fixture
def signed_in(page: Page, hub: Hub) -> Callable[..., Page]:
    def as_role(role: str = "staff", next_path: str = "/app/") -> Page:
        sign_in(page, hub, role, next_path=next_path)
        return page

    return as_role


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Runs axe-core (WCAG 2.1 A and AA rules) on the page; the serious and critical findings."""
    page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [
        {"id": item["id"], "impact": item["impact"], "help": item["help"],
         "nodes": [node["html"][:200] for node in item["nodes"][:5]]}
        for item in result["violations"]
        if item["impact"] in ("serious", "critical")
    ]  # fmt: skip


def assert_accessible(page: Page, name: str) -> None:
    """Saves a screenshot named `name` and fails on any serious or critical axe finding."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    violations = axe_violations(page)
    assert not violations, f"{name}: accessibility violations {violations}"

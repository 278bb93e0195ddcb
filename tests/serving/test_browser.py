"""The web page in headless Chromium (Debian's chromium driven by Playwright): sign in, ask
for recommendations from a history and with an instruction, give every kind of feedback, and
find the rows in the store; the API docs and the favicon are served without network.

Screenshots: set INSTRUCTREC_SCREENSHOT_DIR (docs/img holds the ones the docs show)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("INSTRUCTREC_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture()
def browser_page():
    """A headless Chromium page (1200 x 800)."""
    from playwright import sync_api as playwright  # pip install instructrec[browser]

    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 800})
        finally:
            browser.close()


def shot(page, name: str) -> None:
    folder = os.environ.get("INSTRUCTREC_SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def feedback_rows(url: str):
    from instructrec.feedback.store import Store

    store = Store(url)
    fb = store.feedback_frame()
    store.close()
    return fb


def test_history_request_and_every_kind_of_feedback(
    small_run_dir, server, api_key, tmp_path, browser_page
):
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    _, base = server(small_run_dir, url)
    page = browser_page
    page.goto(f"{base}/#key={api_key}")  # the link `serve` prints signs the browser in
    assert "key=" not in page.url  # the key is taken out of the address bar
    page.wait_for_selector("#signed-in:not([hidden])")
    page.wait_for_function("document.getElementById('model').textContent.includes('trained on')")
    header = page.inner_text("#model")
    assert "model v1" in header and "trained on small (30 items)" in header
    assert "model model" not in header
    # a history from the item search, without duplicates
    page.fill("#item-search", "movie 2")
    page.locator("#search-results li").first.click()
    page.locator("#search-results li").first.click()
    assert page.locator("#history li").count() == 1
    assert "already in the history" in page.inner_text("#history-note")
    # the loading state while the request is in flight
    pending = []
    page.route("**/v1/recommendations", lambda route: pending.append(route))
    page.click("#go")
    page.wait_for_selector("#loading:not([hidden])")
    assert page.is_disabled("#go")
    while not pending:
        page.wait_for_timeout(50)
    pending[0].continue_()
    page.unroute("**/v1/recommendations")
    page.wait_for_selector("#results li")
    page.wait_for_selector("#loading", state="hidden")
    assert not page.is_disabled("#go")
    assert "from a history of 1 title" in page.inner_text("#request-info")
    rows = page.locator("#results li")
    assert rows.count() == 10
    ids = [rows.nth(i).get_attribute("data-item-id") for i in range(4)]
    first = rows.first
    # like, then dislike: one toggle, never both
    first.locator("button.fb-like").click()
    page.wait_for_selector("#results li:first-child button.fb-like[aria-pressed='true']")
    first.locator("button.fb-dislike").click()
    page.wait_for_selector("#results li:first-child button.fb-dislike[aria-pressed='true']")
    assert first.locator("button.fb-like").get_attribute("aria-pressed") == "false"
    rows.nth(1).locator("button.fb-click").click()
    page.wait_for_selector("#results li:nth-child(2) button.fb-click.done")
    rows.nth(2).locator("button.fb-skip").click()
    page.wait_for_selector("#results li.skipped")
    rows.nth(3).locator("select.fb-rating").select_option("4")
    page.wait_for_selector("#results li:nth-child(4) select.fb-rating.done")
    assert "saved: rated 4/5" in page.inner_text("#status")
    assert page.inner_text("#error") == ""
    shot(page, "page-history")
    fb = feedback_rows(url)
    got = sorted(zip(fb["item_id"], fb["signal"], strict=True))
    want = sorted(
        [
            (ids[0], "like"),
            (ids[0], "dislike"),
            (ids[1], "click"),
            (ids[2], "skip"),
            (ids[3], "rating"),
        ]
    )
    assert got == want
    assert fb.loc[fb.signal == "rating", "rating"].iloc[0] == 4


def test_sign_in_step_then_an_instruction_request(
    small_run_dir, server, api_key, tmp_path, browser_page
):
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    _, base = server(small_run_dir, url)
    page = browser_page
    page.goto(base + "/")
    assert page.is_visible("#signin")
    page.fill("#user", "u1")
    page.fill("#instruction", "something light for tonight")
    page.click("#go")  # no key yet: the sign-in step opens
    page.wait_for_selector("#signin-dialog[open]")
    page.fill("#api-key", "wrong-key")
    page.click("#signin-go")
    page.click("#go")
    page.wait_for_selector("#signin-dialog[open]")
    assert "refused" in page.inner_text("#error")
    page.fill("#api-key", api_key)
    page.click("#signin-go")
    page.wait_for_selector("#signed-in:not([hidden])")
    page.click("#go")
    page.wait_for_selector("#results li")
    info = page.inner_text("#request-info")
    assert "for user u1" in info and "something light for tonight" in info
    body = page.inner_text("body")
    assert "template" not in body.lower()  # no template ids on the page (a tooltip has it)
    page.locator("#results li").first.locator("button.fb-like").click()
    page.wait_for_selector("#results li button.fb-like[aria-pressed='true']")
    shot(page, "page-instruction")
    fb = feedback_rows(url)
    assert len(fb) == 1 and fb.loc[0, "signal"] == "like"
    assert fb.loc[0, "instruction"] == "something light for tonight"


def test_docs_and_favicon_are_served_offline(small_run_dir, server, tmp_path, browser_page):
    import httpx

    _, base = server(small_run_dir, f"sqlite:///{tmp_path / 'docs.db'}")
    page = browser_page
    outside = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.goto(base + "/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "instructrec" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector('.opblock-summary-path[data-path="/v1/recommendations"]')
    assert outside == []  # nothing fetched from a CDN
    icon = httpx.get(base + "/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_a_new_visitor_asks_with_an_instruction_only_and_sees_why(
    small_run_dir, server, api_key, tmp_path, browser_page
):
    """No user, no history: the page sends the instruction alone; every item shows its reason
    and the page says what the instruction was understood as."""
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    _, base = server(small_run_dir, url)
    page = browser_page
    page.goto(base + "/#key=" + api_key)  # the link `serve` prints signs the browser in
    page.wait_for_selector("#signed-in:not([hidden])")
    page.fill("#instruction", "something light for tonight")
    page.click("#go")
    page.wait_for_selector("#results li")
    assert "for a new visitor" in page.inner_text("#request-info")
    assert page.is_visible("#understood")
    assert page.inner_text("#understood").startswith("Understood as:")
    items = page.locator("#results li")
    reasons = page.locator("#results li .reason")
    assert items.count() > 0 and reasons.count() == items.count()
    assert all(reasons.nth(k).inner_text().strip() for k in range(reasons.count()))
    shot(page, "page-new-visitor")

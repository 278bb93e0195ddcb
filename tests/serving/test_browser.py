"""The web page in headless Chromium (Debian's chromium driven by Playwright): ask for
recommendations, click "like", and find the feedback row in the store."""

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


def test_page_recommend_and_like(small_run_dir, server, api_key, tmp_path):
    from playwright import sync_api as playwright  # pip install instructrec[browser]

    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from instructrec.feedback.store import Store

    url = f"sqlite:///{tmp_path / 'browser.db'}"
    _, base = server(small_run_dir, url)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(base + "/")
            page.fill("#api-key", api_key)
            page.fill("#user", "u1")
            # build a history from the item search as well
            page.fill("#item-search", "movie 2")
            page.locator("#search-results li").first.click()
            assert page.locator("#history li").count() == 1
            page.fill("#instruction", "something light for tonight")
            page.click("#go")
            page.wait_for_selector("#results li")
            rows = page.locator("#results li")
            assert rows.count() == 10
            first_item = rows.first.get_attribute("data-item-id")
            rows.first.locator("button.fb-like").click()
            page.wait_for_selector("#results li button.fb-like.done")
            assert "saved" in page.inner_text("#status")
            assert page.inner_text("#error") == ""
            shot = os.environ.get("INSTRUCTREC_SCREENSHOT")
            if shot:
                page.screenshot(path=shot, full_page=True)
        finally:
            browser.close()
    store = Store(url)
    fb = store.feedback_frame()
    store.close()
    assert len(fb) == 1
    assert fb.loc[0, "item_id"] == first_item and fb.loc[0, "signal"] == "like"
    assert fb.loc[0, "instruction"] == "something light for tonight"

"""Headless Chromium on the cnnvis dashboard, for the browser tests: skip where Chromium or
playwright is missing, open TensorBoard at /#cnnvis and its cnnvis iframe, and collect every
console error, page error, failed response and dialog the session saw.
"""

from __future__ import annotations

import contextlib
import os
from types import SimpleNamespace

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_browser():
    """playwright's sync API; skips the calling test module without Chromium or playwright."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def dashboard_session(url: str, width: int = 1400, height: int = 1000):
    """Yields `(page, frame, seen)` for TensorBoard at `url`: the browser page, the cnnvis
    iframe once a page section exists, and `seen.problems` / `seen.dialogs` (lists filled as
    the session goes; dialogs are dismissed)."""
    sync_api = require_browser()
    seen = SimpleNamespace(problems=[], dialogs=[])
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on(
                "console",
                lambda m: seen.problems.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: seen.problems.append(f"page error: {e}"))
            page.on(
                "response",
                lambda r: (
                    seen.problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None
                ),
            )
            page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
            page.goto(url + "/#cnnvis")
            handle = page.wait_for_selector(
                'iframe[src*="plugin_entry.html?name=cnnvis"]', timeout=30000
            )
            frame = handle.content_frame()
            frame.wait_for_selector("section.page[data-state]", timeout=30000)
            yield page, frame, seen
        finally:
            browser.close()

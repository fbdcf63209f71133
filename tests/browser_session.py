"""Headless Chromium on the cnnvis dashboard, for the browser tests: skip where Chromium or
playwright is missing, open TensorBoard at /#cnnvis and its cnnvis iframe, and collect every
console error, page error, failed response and dialog the session saw. `served_dashboard`
starts TensorBoard over a log directory and yields a `Dashboard` (open a page, wait, read).
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from types import SimpleNamespace

import pytest

import plugin_fixtures as pf

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
# Every sample of the cnnvis records and images (TensorBoard keeps 10 tensors per tag otherwise).
ALL_SAMPLES = ("--samples_per_plugin=cnnvis=0,images=0",)


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


class Dashboard:
    """The TensorBoard page with the cnnvis iframe, plus everything the browser reported.

    Args:
        page: the playwright page of TensorBoard.
        frame: the cnnvis iframe.
        seen: the session's `problems` and `dialogs` (see `dashboard_session`).
        url: TensorBoard's address.
    """

    def __init__(self, page, frame, seen, url: str):
        self.page = page
        self.frame = frame
        self.problems = seen.problems
        self.dialogs = seen.dialogs
        self.url = url

    def open(self, state: dict, expect: str = "ready"):
        """Sets the iframe's URL hash and waits until the page reaches `expect`."""
        hash_ = urllib.parse.urlencode(state)
        self.frame.evaluate(
            "h => { document.querySelector('section.page')?.remove(); location.hash = h; }",
            hash_,
        )
        selector = f'section.page[data-page="{state["page"]}"][data-state="{expect}"]'
        return self.frame.wait_for_selector(selector, timeout=20000)

    def wait(self, js: str, arg=None):
        self.frame.wait_for_function(js, arg=arg, timeout=20000)

    def data(self, key: str) -> str:
        return self.frame.evaluate("k => document.querySelector('section.page').dataset[k]", key)


@contextlib.contextmanager
def served_dashboard(logdir: str, flags=ALL_SAMPLES, width: int = 1400, height: int = 1000):
    """Yields a `Dashboard` on a real TensorBoard process over `logdir` (started with `flags`);
    on leaving, asserts that the browser saw no error and no dialog."""
    with pf.TensorBoardProcess(logdir, flags) as tb:
        tb.wait_ready()
        with dashboard_session(tb.url, width, height) as (page, frame, seen):
            yield Dashboard(page, frame, seen, tb.url)
            assert not seen.problems, seen.problems
            assert not seen.dialogs, seen.dialogs

"""The demo page's half of the browser tests: its own origin, and Debian's Chromium.

The page is served by a static server on its own port, so it always calls the
service cross-origin (real CORS). Chromium is Debian's /usr/bin/chromium; no
browser is ever downloaded. Without it the tests skip with the reason, or fail
under REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.servers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
DEMO_DIR = ROOT / "service" / "static" / "demo"


def _handler(api_origins: Sequence[str]) -> type[SimpleHTTPRequestHandler]:
    """A handler for the demo's files, plus the config.json the service would serve with them."""

    class DemoHandler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/config.json"):
                body = json.dumps({"api_origins": list(api_origins)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, *_args: Any) -> None:
            return None

    return DemoHandler


@contextmanager
def demo_origin(api_origins: Sequence[str]) -> Iterator[str]:
    """Serve service/static/demo on a free port; yield its origin.

    `api_origins` is what config.json lists as DEMO_API_ORIGINS (read at each
    request, so services started later may be appended to a list).
    """
    handler = functools.partial(_handler(api_origins), directory=str(DEMO_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def static_origin(directory: Path) -> Iterator[str]:
    """Serve a folder's files on a free port of their own; yield its origin."""

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            return None

    handler = functools.partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium(extra_args: Sequence[str] = ()) -> Iterator[Browser]:
    """Debian's headless Chromium driven by Playwright; skip (or fail) without it."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_page(browser: Browser) -> Iterator[Page]:
    """A page in its own context (no shared cache or storage), 10 s per action."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def demo_url(page_origin: str, service_url: str) -> str:
    """The demo page pointed at a service on another origin (`?api=`)."""
    return f"{page_origin}/index.html?api={service_url}"


def screenshot(page: Page, path: Path) -> None:
    """A full-page screenshot, kept in the test's tmp_path for a failing run's post-mortem."""
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 0

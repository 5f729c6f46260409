"""Chromium through Playwright (sync API) for the tests of the pages the services serve.

- ``chromium()``: the browser, while the ``with`` lasts (skips the test when there is no
  ``chromium`` on PATH, unless ``PDSERVING_REQUIRE_BROWSER=1``, as on CI: then it fails).
- ``browser_page(url)``: a fresh context and page opened at ``url``, as ``(page, log)``. Only
  requests to 127.0.0.1 go out; any other is aborted and recorded in ``log.blocked``. Console
  errors and uncaught page errors are collected in ``log.errors``.
- ``log.assert_clean(expected=...)``: no blocked request, and no console error but the expected
  ones, each of which must have happened.

Typical use::

    with chromium() as browser:
        with browser_page(service.base + "/", browser=browser) as (page, log):
            ...
            log.assert_clean()
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

# We run as root (no sandbox) and headless with no GPU; the rest keeps Chromium from talking to
# Google hosts on its own (updates, sync, field trials, QUIC probes).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1000, "height": 700}


def chromium_path() -> str:
    """The ``chromium`` executable; skips the test when there is none (fails on CI)."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("PDSERVING_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium not found: apt-get install chromium")
        pytest.skip("chromium not found (apt-get install chromium); "
                    "set PDSERVING_REQUIRE_BROWSER=1 to make this a failure")
    return path


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, closed when the ``with`` ends."""
    path = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Log:
    """What happened in a page: console errors, page errors, requests it was not allowed."""

    errors: list[str] = field(default_factory=list)    # "console: ..." and "pageerror: ..."
    messages: list[str] = field(default_factory=list)  # every console message, "type: text"
    blocked: list[str] = field(default_factory=list)   # URLs of requests off 127.0.0.1
    requests: list[str] = field(default_factory=list)  # "METHOD URL" of every request let out

    def assert_clean(self, expected: tuple[str, ...] = ()) -> None:
        """No request blocked; every error contains one of ``expected`` (substrings) and each
        of ``expected`` is in some error."""
        assert not self.blocked, f"requests to other hosts: {self.blocked}"
        unexpected = [e for e in self.errors if not any(x in e for x in expected)]
        assert not unexpected, f"errors in the page: {unexpected}"
        missing = [x for x in expected if not any(x in e for e in self.errors)]
        assert not missing, f"expected errors not seen: {missing}; errors: {self.errors}"


@contextlib.contextmanager
def browser_page(url: str, *, browser: Browser | None = None,
                 viewport: dict = VIEWPORT) -> Iterator[tuple[Page, Log]]:
    """A new page (in a new context of ``browser``, or of a Chromium of its own) opened at
    ``url``, with its ``Log``; the context is closed when the ``with`` ends."""
    if browser is None:
        with chromium() as own, browser_page(url, browser=own, viewport=viewport) as opened:
            yield opened
        return
    log = Log()
    context = browser.new_context(viewport=viewport)

    def only_local(route: Route) -> None:
        request = route.request
        if urlsplit(request.url).hostname == "127.0.0.1":
            log.requests.append(f"{request.method} {request.url}")
            route.continue_()
        else:
            log.blocked.append(request.url)
            route.abort()

    def console(message: ConsoleMessage) -> None:
        log.messages.append(f"{message.type}: {message.text}")
        if message.type == "error":
            log.errors.append(f"console: {message.text}")

    context.route("**/*", only_local)
    try:
        page = context.new_page()
        page.on("console", console)
        page.on("pageerror", lambda error: log.errors.append(f"pageerror: {error}"))
        page.goto(url)
        yield page, log
    finally:
        context.close()

"""Headless Chromium (Debian's, never Playwright's own download) driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, async_playwright

# Without the background-networking flags Chromium keeps trying hosts a closed network
# refuses. Playwright gives each launch a fresh profile of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's chromium, which `make test` installs; a clear failure when it is missing."""
    found = shutil.which("chromium")
    if found is None:
        raise RuntimeError("Debian's chromium is not installed: `make browser` installs it")
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless browser for the duration of the block."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()

"""Headless Chromium for the browser tests: Debian's package (`make browser`), driven by Playwright.

No browser is downloaded: Playwright launches /usr/bin/chromium with a fresh profile, and every request
that leaves the machine is refused and recorded (a page that needs the internet fails its test).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def chromium_path() -> str:
    """The system Chromium, or a skip saying how to install it."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("Debian's chromium is not installed: `make browser` as root installs it (.ci/run does)")
    return path


@contextmanager
def headless_chromium(viewport: dict[str, int] | None = None) -> Iterator[tuple[object, list[str]]]:
    """A Chromium context with a fresh profile; yields (context, external requests refused)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    refused: list[str] = []

    def local_only(route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")) or urlparse(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=FLAGS,
            viewport=viewport or {"width": 1400, "height": 1000},
        )
        try:
            context.route("**/*", local_only)
            yield context, refused
        finally:
            context.close()

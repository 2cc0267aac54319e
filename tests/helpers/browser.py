"""Headless Chromium (Debian package ``chromium``) for tests of rendered pages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str | None:
    """The Chromium executable, or None when none is installed."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


SKIP_REASON = "headless Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it"


def _run(args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
    exe = chromium()
    assert exe is not None, SKIP_REASON
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--no-first-run", "--disable-extensions"]  # fmt: skip
    return subprocess.run(base + args, capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 2400) -> Path:
    """Render ``page`` (an HTML file) and save a PNG screenshot of the window."""
    result = _run([f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()])
    assert png.is_file() and png.stat().st_size > 0, f"chromium made no screenshot: {result.stderr[-2000:]}"
    return png


def dump_dom(page: Path) -> str:
    """The DOM of ``page`` after Chromium parsed and laid it out (serialized)."""
    result = _run(["--dump-dom", page.resolve().as_uri()])
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout

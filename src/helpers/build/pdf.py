"""PDF: the HTML report printed by headless Chromium, replacing the old PDF only when complete."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(Exception):
    """Chromium is missing, or it did not print the report."""


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium to print with: ``explicit`` (a path or a name on PATH), else the first of
    chromium, chromium-browser, google-chrome on PATH. Raises PdfError naming what was tried."""
    if explicit:
        found = shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) and Path(explicit).is_file() else None)
        if not found:
            raise PdfError(f"--chromium {explicit}: no such executable")
        return found
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    raise PdfError("--pdf needs Chromium, and none of " + ", ".join(CHROMIUM_NAMES) + " is on PATH: install it "
                   "(Debian: apt-get install chromium) or name it with --chromium PATH")


def pdf(html_path: Path, pdf_path: Path, chromium: str, timeout: float = 300) -> None:
    """Print the HTML report to ``pdf_path`` with headless Chromium; replaced only when complete."""
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="studybook-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={tmp}", Path(html_path).resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise PdfError(f"{chromium} did not finish printing {html_path} within {timeout:.0f} s") from None
    ok = proc.returncode == 0 and tmp.exists() and tmp.read_bytes()[:5] == b"%PDF-"
    if not ok:
        tmp.unlink(missing_ok=True)
        last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no output")
        raise PdfError(f"{chromium} could not print {html_path} (exit {proc.returncode}): {last}")
    os.replace(tmp, pdf_path)

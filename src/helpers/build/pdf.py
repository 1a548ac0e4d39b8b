"""PDF: the HTML report printed by headless Chromium, replacing the old PDF only when complete.

A printed contents list gives page numbers, which the HTML cannot know: the report is printed
once, the page of each section read back from the PDF's named destinations (Chromium writes one
for every link target), and printed again from a copy whose contents list carries the numbers.
The HTML report itself stays free of page numbers."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINTS = 3  # numbering the contents never moves a section (the list keeps its page); a bound all the same
CONTENTS = re.compile(r'<nav class="contents".*?</nav>', re.S)
ENTRY = re.compile(r'(<a href="#([^"]+)"[^>]*>)(.*?)</a>', re.S)


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
    """Print the HTML report to ``pdf_path`` with headless Chromium, its contents list numbered
    with the page each section starts on; ``pdf_path`` is replaced only when complete."""
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        source = Path(html_path).read_text(encoding="utf-8")
        anchors = set(contents_anchors(source))
        with tempfile.TemporaryDirectory(prefix="studybook-print-") as work:
            _print(Path(html_path), tmp, chromium, timeout)
            shown: dict[str, int] = {}
            for _ in range(PRINTS - 1):
                pages = {a: p for a, p in section_pages(tmp).items() if a in anchors}
                if not pages or pages == shown:
                    break
                numbered = Path(work) / Path(html_path).name
                numbered.write_text(with_page_numbers(source, pages), encoding="utf-8")
                _print(numbered, tmp, chromium, timeout)
                shown = pages
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, pdf_path)


def _print(html_path: Path, out: Path, chromium: str, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="studybook-chromium-") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--no-pdf-header-footer",
               f"--print-to-pdf={out}", html_path.resolve().as_uri()]
        out.unlink(missing_ok=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"{chromium} did not finish printing {html_path} within {timeout:.0f} s") from None
    if not (proc.returncode == 0 and out.exists() and out.read_bytes()[:5] == b"%PDF-"):
        last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no output")
        raise PdfError(f"{chromium} could not print {html_path} (exit {proc.returncode}): {last}")


# ---------------------------------------------------------------- the contents' page numbers
def contents_anchors(page: str) -> list[str]:
    """The anchors the report's contents list links to, in order."""
    nav = CONTENTS.search(page)
    return [html.unescape(m.group(2)) for m in ENTRY.finditer(nav.group(0))] if nav else []


def with_page_numbers(page: str, pages: dict[str, int]) -> str:
    """The report with each contents entry followed by its page (a dotted leader between)."""
    def entry(m: re.Match) -> str:
        n = pages.get(html.unescape(m.group(2)))
        if n is None:
            return m.group(0)
        return f'{m.group(1)}{m.group(3)}<span class="sb-leader"></span><span class="sb-page">{n}</span></a>'
    return CONTENTS.sub(lambda nav: ENTRY.sub(entry, nav.group(0)), page, count=1)


def section_pages(pdf_path: Path) -> dict[str, int]:
    """Named destination -> its 1-based page: poppler's pdfinfo where installed, else read from
    the file as Chromium writes it (plain objects, a /Dests dictionary); {} when neither can."""
    if tool := shutil.which("pdfinfo"):
        proc = subprocess.run([tool, "-dests", str(pdf_path)], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            found = {m.group(2): int(m.group(1))
                     for m in re.finditer(r'^\s*(\d+)\s+\[.*\]\s+"(.*)"\s*$', proc.stdout, re.M)}
            if found:
                return found
    try:
        return _read_dests(Path(pdf_path).read_bytes())
    except (ValueError, KeyError, RecursionError):
        return {}


def _read_dests(data: bytes) -> dict[str, int]:
    objects = {int(m.group(1)): m.group(2) for m in re.finditer(rb"(?<![\d])(\d+) 0 obj\s*(.*?)endobj", data, re.S)}
    catalog = next((v for v in objects.values() if re.search(rb"/Type\s*/Catalog", v)), b"")
    root, dests = re.search(rb"/Pages (\d+) 0 R", catalog), re.search(rb"/Dests (\d+) 0 R", catalog)
    if not (root and dests):
        return {}
    order: list[int] = []

    def walk(n: int) -> None:
        kids = re.search(rb"/Kids\s*\[([^\]]*)\]", objects[n])
        if kids and b"/Type /Pages" in objects[n]:
            for k in re.findall(rb"(\d+) 0 R", kids.group(1)):
                walk(int(k))
        else:
            order.append(n)
    walk(int(root.group(1)))
    index = {n: i + 1 for i, n in enumerate(order)}
    return {_name(m.group(1)): index[int(m.group(2))]
            for m in re.finditer(rb"/([^\s/\[<>()]+)\s*\[(\d+) 0 R", objects[int(dests.group(1))])
            if int(m.group(2)) in index}


def _name(raw: bytes) -> str:
    """A PDF name as written (#xx escapes a byte) as text."""
    return re.sub(rb"#([0-9A-Fa-f]{2})", lambda h: bytes([int(h.group(1), 16)]), raw).decode()

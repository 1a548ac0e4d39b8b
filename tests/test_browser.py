"""The report as a reader gets it: one smoke build (HTML and PDF), opened in a real Chromium with
every network request blocked, and the PDF read back with poppler's tools.

Playwright drives the system's Chromium (/usr/bin/chromium, Debian's `chromium` package); its own
browser downloads (`playwright install`) are never used.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run_build

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
SCRIPT = "<script>window.__pwned = 1</script>"
PARAMS = f"""\
title: Depth and convolutions, in a browser
author: A. Student
course: Browser tests 101
introduction: |
  This report asks **how much depth matters**. {SCRIPT}

  A remote image that must not load: ![remote](http://example.com/x.png)
discussion: |
  The *reader's* own discussion.
studies:
  depth:
    introduction: Depth is the number of **hidden layers**.
  cnn_vs_baseline: {{}}
  loss: {{}}
"""
SECTIONS = ["Abstract", "Contents", "Introduction", "Methodology", "Network depth", "CNN vs dense baseline",
            "Loss function", "Summary across studies", "Discussion", "Conclusions", "Appendix"]
A4_TEXT_PX = round((210 - 2 * 16) / 25.4 * 96)  # the printed page's text width: A4 less its margins (studybook.css)


@pytest.fixture(scope="module")
def built(tmp_path_factory, default_report):
    folder = tmp_path_factory.mktemp("browser")
    params = folder / "browser.yaml"
    params.write_text(PARAMS)
    out = folder / "out"
    # Its three studies are the default report's, on the same data and profile: their runs come
    # from a copy of that build's cache (CI time); what is tested here is the page, not training.
    shutil.copytree(default_report.out / ".cache", out / ".cache")
    proc = run_build(params, "--profile", "smoke", "--out", out, "--pdf", "--chromium", CHROMIUM,
                     env={"PYTHONUNBUFFERED": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "browser.html", out / "browser.pdf"


@pytest.fixture(scope="module")
def page(built):
    html, _ = built
    blocked: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})

        def route(r):
            url = r.request.url
            if url.startswith(("file://", "data:")):
                r.continue_()
            else:
                blocked.append(url)
                r.abort()
        pg.route("**/*", route)
        requests: list[str] = []
        pg.on("request", lambda req: requests.append(req.url))
        pg.goto(html.as_uri(), wait_until="load")
        pg.blocked, pg.requests = blocked, requests
        yield pg
        browser.close()


def test_nothing_is_requested_beyond_the_file(page):
    assert page.blocked == []
    assert all(u.startswith(("file://", "data:")) for u in page.requests), page.requests
    assert page.evaluate("document.querySelectorAll('script[src], link[href^=\"http\"], iframe').length") == 0


def test_every_image_has_loaded(page):
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) >= 4
    assert all(done and width > 0 for done, width in images), images


def test_contents_and_cross_references_land_on_elements(page):
    hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href^=\"#\"]')).map(a => a.getAttribute('href'))")
    contents = page.evaluate("Array.from(document.querySelectorAll('nav.contents a')).map(a => a.getAttribute('href'))")
    xrefs = page.evaluate("Array.from(document.querySelectorAll('a.xref')).map(a => a.getAttribute('href'))")
    assert len(contents) == len(SECTIONS) - 2  # all but the abstract and the contents themselves
    assert any(h.startswith("#fig-") for h in xrefs) and any(h.startswith("#tab-") for h in xrefs)
    missing = page.evaluate("hs => hs.filter(h => !document.getElementById(decodeURIComponent(h.slice(1))))", hrefs)
    assert missing == []
    # following a link scrolls its target to the top of the window
    for href in [contents[2], xrefs[0]]:
        page.click(f'a[href="{href}"] >> nth=0')
        top = page.evaluate("h => document.getElementById(h.slice(1)).getBoundingClientRect().top", href)
        assert abs(top) < 5, (href, top)


def test_code_is_hidden_until_its_section_button_shows_it(page):
    code = page.locator('[data-section="study-depth"] .sb-code')
    other = page.locator('[data-section="study-cnn_vs_baseline"] .sb-code')
    assert code.count() >= 3 and other.count() >= 3
    visibility = "els => els.map(e => getComputedStyle(e).display !== 'none' && e.offsetHeight > 0)"
    assert not any(code.evaluate_all(visibility))
    button = page.locator('button.sb-toggle[data-section="study-depth"]')
    button.click()
    assert all(code.evaluate_all(visibility))
    assert not any(other.evaluate_all(visibility))  # only that section's code
    assert "section.table(records)" in " ".join(code.all_inner_texts())
    assert button.get_attribute("aria-expanded") == "true"
    button.click()
    assert not any(code.evaluate_all(visibility))


def test_a_script_in_the_parameters_is_shown_as_text_and_never_runs(page):
    assert page.evaluate("typeof window.__pwned") == "undefined"
    intro = page.locator("#introduction").locator("xpath=..")
    assert SCRIPT in intro.inner_text()
    assert page.get_by_text(SCRIPT).is_visible()
    assert intro.locator("strong").inner_text() == "how much depth matters"
    assert page.locator("#study-depth").locator("xpath=..").locator("strong").inner_text() == "hidden layers"
    body = page.locator("body").inner_text()
    assert body.index("The reader's own discussion.") > body.index("Discussion")


def test_figures_and_tables_are_numbered_consecutively_across_the_report(page):
    figs = page.evaluate("""Array.from(document.querySelectorAll('figure.sb-figure')).map(f =>
        [f.id, f.querySelector('figcaption .sb-num').textContent])""")
    tabs = page.evaluate("""Array.from(document.querySelectorAll('.sb-table')).map(t =>
        [t.id, t.querySelector('caption .sb-num').textContent, t.querySelector('table').id])""")
    assert figs == [[f"fig-{i}", f"Figure {i}."] for i in range(1, len(figs) + 1)] and len(figs) >= 5
    assert [t[:2] for t in tabs] == [[f"tab-{i}", f"Table {i}."] for i in range(1, len(tabs) + 1)]
    assert [t[2] for t in tabs][:2] == ["results-depth", "results-cnn_vs_baseline"]
    # figures of the second study continue the numbering of the first
    first = page.evaluate("document.querySelector('[data-section=\"study-cnn_vs_baseline\"] figure').id")
    assert int(first.split("-")[1]) > 1
    # a reference's text names the number of the element it links to
    pairs = page.evaluate("Array.from(document.querySelectorAll('a.xref')).map(a => [a.getAttribute('href'), a.textContent])")
    for href, text in pairs:
        kind, n = href[1:].split("-")
        assert text == f"{'Figure' if kind == 'fig' else 'Table'} {n}"


def test_print_hides_the_buttons_and_starts_sections_on_a_new_page(page):
    page.emulate_media(media="print")
    try:
        assert page.locator("button.sb-toggle").first.is_hidden()
        assert page.evaluate("getComputedStyle(document.getElementById('study-depth')).breakBefore") == "page"
        assert page.evaluate("getComputedStyle(document.querySelector('figure.sb-figure')).breakInside") == "avoid"
    finally:
        page.emulate_media(media="screen")


OVERFLOWING = """() => Array.from(document.querySelectorAll('.sb-table')).map(d => {
    const t = d.querySelector('table');
    return [t.id || d.dataset.label, Math.ceil(t.getBoundingClientRect().width), d.clientWidth, d.scrollWidth];
}).filter(([, width, room, scrolled]) => width > room + 1 || scrolled > room + 1)"""


def test_no_table_overflows_its_container_on_screen_or_on_the_printed_page(page):
    # the loss study's table once lost its status column at 1280 px; every table now fits
    assert page.evaluate("document.querySelectorAll('.sb-table').length") >= 6
    assert page.evaluate("document.querySelector('#results-loss thead tr').lastElementChild.textContent") == "status"
    assert page.evaluate(OVERFLOWING) == []
    page.set_viewport_size({"width": A4_TEXT_PX, "height": 900})
    page.emulate_media(media="print")
    try:
        assert page.evaluate(OVERFLOWING) == []
    finally:
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": 1280, "height": 900})


# ---------------------------------------------------------------- the PDF
def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is missing (Debian: apt-get install poppler-utils)")
    return path


def test_pdf_pages_and_section_titles(built):
    _, pdf = built
    assert pdf.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run([poppler("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    assert 8 <= pages <= 40, pages
    assert "A4" in info
    text = subprocess.run([poppler("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = re.sub(r"\s+", " ", text)
    for title in SECTIONS:
        assert title in flat, title
    assert "Figure 1." in flat and "Table 1." in flat
    assert "section.table(records)" not in flat  # code stays hidden in print


def test_pdf_first_page_is_not_blank(built, tmp_path):
    from PIL import Image
    _, pdf = built
    subprocess.run([poppler("pdftoppm"), "-f", "1", "-l", "1", "-png", "-r", "50", str(pdf), str(tmp_path / "p")],
                   check=True)
    png = next(tmp_path.glob("p*.png"))
    lo, hi = Image.open(png).convert("L").getextrema()
    histogram = Image.open(png).convert("L").histogram()
    dark = sum(histogram[:200])  # pixels clearly darker than white: the title page's text
    assert lo < 100 and dark > 100, (lo, hi, dark)


def test_pdf_contents_give_the_page_each_section_starts_on(built):
    from helpers.build import pdf as printing
    html, pdf = built
    text = subprocess.run([poppler("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    pages = text.split("\f")
    contents = next(p for p in pages if re.search(r"^\s*Contents\s*$", p, re.M))
    for title in SECTIONS[2:]:
        entry = re.search(rf"^\s*(?:\d+\s+)?{re.escape(title)}\s+(\d+)\s*$", contents, re.M)
        assert entry, (title, contents)
        first = next(line for line in pages[int(entry.group(1)) - 1].splitlines() if line.strip())
        assert title in first, (title, entry.group(1), first)  # each section starts a page
    assert 'class="sb-page"' not in html.read_text()  # the HTML report cannot know pages and shows none
    # without poppler the build reads the pages itself; both readers agree
    dests = subprocess.run([poppler("pdfinfo"), "-dests", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert printing._read_dests(pdf.read_bytes()) == {
        m.group(2): int(m.group(1)) for m in re.finditer(r'^\s*(\d+)\s+\[.*\]\s+"(.*)"\s*$', dests, re.M)}

"""--watch as a user drives it: params/digits.yaml copied to a temporary folder, watched and served
on a free loopback port, edited, broken, fixed, edited during a build, seen reloading in a real
Chromium, stopped with Ctrl-C. Its first build starts from the session's digits report (a copy):
what it trains is what the edits add."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, hears_ctrl_c, run_build
from helpers.build import serve, watch

CHROMIUM = "/usr/bin/chromium"


def get(url: str) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, dict(r.headers), r.read()


# -- the hook and the server ----------------------------------------------------------------------

def test_the_hook_is_only_in_what_is_served_and_references_nothing_outside(tmp_path):
    html = b"<!DOCTYPE html><html><body><h1>R</h1></body></html>"
    (tmp_path / "r.html").write_bytes(html)
    (tmp_path / "r.json").write_text("{}")
    state = serve.State(generation=3)
    server = serve.Server(tmp_path, "r.html", state).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        status, headers, body = get(server.url)
        assert status == 200 and headers["Cache-Control"] == "no-store"
        hook = serve.hook(3)
        assert body == html.replace(b"</body>", hook.encode() + b"</body>")
        assert "://" not in hook  # relative URLs: the served page asks its own server and nothing else
        assert (tmp_path / "r.html").read_bytes() == html
        assert json.loads(get(server.url.rsplit("/", 1)[0] + serve.ENDPOINT + "/state")[2]) == {
            "generation": 3, "error": None, "building": False}
        assert get(server.url.rsplit("/", 1)[0] + "/r.json")[2] == b"{}"  # other files as they are
        assert get(server.url.rsplit("/", 1)[0] + "/")[2] == body         # / is the report
    finally:
        server.stop()


def test_before_the_first_report_the_page_waits_for_it(tmp_path):
    server = serve.Server(tmp_path, "r.html", serve.State()).start()
    try:
        body = get(server.url)[2].decode()
        assert "No report has been built yet" in body and "studybook-watch" in body
    finally:
        server.stop()


@pytest.mark.parametrize("path, watched", [
    ("{params}", True),
    ("{root}/params/defaults.yaml", True),
    ("{root}/params/studies/depth.yaml", True),
    ("{root}/params/report.yaml", False),          # another report's file
    ("{root}/notebooks/depth.ipynb", True),
    ("{root}/notebooks/.ipynb_checkpoints/depth-checkpoint.ipynb", False),
    ("{root}/src/helpers/run/training.py", True),
    ("{root}/src/helpers/build/templates/studybook/studybook.css", True),
    ("{root}/src/helpers/run/__pycache__/training.cpython-311.pyc", False),
    ("{tmp}/other.yaml", False),
])
def test_what_a_change_to_rebuilds(tmp_path, path, watched):
    params = tmp_path / "mine.yaml"
    roots, wanted = watch.watched(params)
    path = path.format(params=params, root=ROOT, tmp=tmp_path)
    assert wanted(None, path) is watched
    if watched:
        assert any(os.path.realpath(path).startswith(r + os.sep) for r in roots)


@pytest.mark.parametrize("args, match", [
    (["--port", "8000"], r"^error: --port: only with --watch"),
    (["--open"], r"^error: --open: only with --watch"),
    (["--watch", "--port", "70000"], r"^error: --port 70000: must be a port number"),
    (["--watch", "--dry-run"], r"^error: argument --dry-run: not allowed with argument --watch"),
    (["--watch", "--jobs", "0"], r"^error: --jobs 0: must be at least 1"),
])
def test_bad_watch_flags(args, match):
    proc = run_build(ROOT / "params" / "digits.yaml", *args, timeout=60, shared=False)
    assert proc.returncode == 2 and re.search(match, proc.stderr) and proc.stderr.count("\n") == 1, proc.stderr


def test_a_missing_file_or_a_taken_port_is_bad_input(tmp_path):
    proc = run_build(tmp_path / "nope.yaml", "--watch", timeout=60, shared=False)
    assert proc.returncode == 2 and proc.stderr == f"error: {tmp_path / 'nope.yaml'}: no such file to watch\n"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_build(ROOT / "params" / "digits.yaml", "--watch", "--port", port, "--out", tmp_path / "out",
                         timeout=60, shared=False)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: --port {port}: cannot serve on 127.0.0.1"), proc.stderr
    assert not (tmp_path / "out").exists()


# -- a watch session ------------------------------------------------------------------------------

class Session:
    """build_report.py --watch in its own session, as from a terminal; its stderr in a file."""

    def __init__(self, folder: Path, copy_of: Path):
        self.params, self.out, self.log = folder / "digits.yaml", folder / "out", folder / "watch.log"
        shutil.copy(ROOT / "params" / "digits.yaml", self.params)
        shutil.copytree(copy_of, self.out)
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "build_report.py"), str(self.params), "--watch", "--profile", "smoke",
                 "--out", str(self.out), "--workers", "1"],
                cwd=ROOT, env={**os.environ, "STUDYBOOK_OFFLINE": "1", "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True, preexec_fn=hears_ctrl_c)
        self.url = re.search(r"serving (http://\S+)", self.until(r"watch: serving http://\S+", 60)).group(1)
        self.base = self.url.rsplit("/", 1)[0]

    def text(self) -> str:
        return self.log.read_text()

    def until(self, pattern: str, timeout: float = 240, start: int = 0) -> str:
        """The log, once ``pattern`` appears in it after character ``start``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if re.search(pattern, text[start:]):
                return text
            assert self.proc.poll() is None, f"the watch ended ({self.proc.returncode}):\n{text[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.text()[-3000:]}")

    def state(self) -> dict:
        return json.loads(get(self.base + serve.ENDPOINT + "/state")[2])

    def wait_state(self, timeout: float = 240, **want) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.state()
            if all(s[k] == v for k, v in want.items()):
                return s
            assert self.proc.poll() is None, self.text()[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"state {self.state()} never had {want}:\n{self.text()[-3000:]}")

    def edit(self, old: str, new: str) -> None:
        text = self.params.read_text()
        assert old in text
        self.params.write_text(text.replace(old, new))

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise
        return self.proc.returncode


@pytest.fixture(scope="module")
def session(tmp_path_factory, digits_report):
    s = Session(tmp_path_factory.mktemp("watch"), digits_report.out)
    yield s
    s.stop()


TITLE = "title: Handwritten digits (8×8) — a small offline report"


def test_edits_rebuild_and_bad_input_shows_over_the_last_good_report(session):
    s = session
    first = s.wait_state(generation=1, building=False)
    assert first["error"] is None
    assert "1 local worker, kept warm between builds" in s.text()
    served = get(s.url)[2]
    on_disk = (s.out / "digits.html").read_bytes()
    assert b"studybook-watch" in served and b"studybook-watch" not in on_disk
    assert served.replace(serve.hook(1).encode(), b"") == on_disk

    # A new title: the report is written again and the page's generation moves on.
    mark = len(s.text())
    s.edit(TITLE, "title: Digits, watched")
    s.wait_state(generation=2, building=False)
    assert "digits.yaml changed: building again" in s.text()[mark:]
    assert b"Digits, watched" in get(s.url)[2] and b"studybook-watch" not in (s.out / "digits.html").read_bytes()

    # Bad input: one line on the page, the last good report stays; a fix clears it.
    s.edit("units: 64}", "units: -4}")
    error = s.wait_state(timeout=60, building=False, generation=2)
    deadline = time.monotonic() + 60
    while not error["error"] and time.monotonic() < deadline:
        time.sleep(0.2)
        error = s.state()
    assert error["error"] == f"error: {s.params}: studies.depth.units = -4: must be greater than 0"
    assert b"Digits, watched" in get(s.url)[2] and b"Digits, watched" in (s.out / "digits.html").read_bytes()
    s.edit("units: -4}", "units: 64}")
    assert s.wait_state(timeout=60, error=None)["generation"] == 2  # nothing new to show: no reload

    # A save while a build trains stops it and starts again; both edits are in the report.
    mark = len(s.text())
    s.edit("layers: [1, 2, 3]", "layers: [1, 2, 3, 4]")
    s.until(r"Training on", start=mark)
    s.edit("title: Digits, watched", "title: Digits, watched twice")
    s.until("changed during the build", start=mark, timeout=60)
    text = s.until(r"build \d+ done", start=s.text().index("changed during the build", mark))
    assert "digits.yaml changed during the build: stopping it (finished runs stay cached) and starting again" in text
    s.wait_state(generation=3, building=False)
    report = json.loads((s.out / "digits.json").read_text())
    assert report["title"] == "Digits, watched twice"
    assert [r["label"] for r in report["runs"] if r["study"] == "depth"] == ["1 layer", "2 layers", "3 layers", "4 layers"]
    assert "Traceback" not in text[mark:] and "FAILED" not in text[mark:]


def test_a_real_browser_reloads_at_its_scroll_position_and_shows_the_banner(session):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    s = session
    s.wait_state(building=False, error=None)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            outside = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(s.base) else None)
            page.goto(s.url)
            page.evaluate("window.scrollTo(0, 1500)")
            y = page.evaluate("window.scrollY")
            assert y > 1000
            generation = s.state()["generation"]
            text = s.params.read_text()
            old = re.search(r"^title: (.*)$", text, re.M).group(1)
            s.edit(f"title: {old}", "title: Seen in a browser")
            page.wait_for_function("document.title.includes('Seen in a browser')", timeout=120_000)
            page.wait_for_timeout(300)
            assert abs(page.evaluate("window.scrollY") - y) < 5
            assert s.state()["generation"] == generation + 1
            assert re.search(rf"page reloaded with build {generation + 1}, [\d.]+ s after the save", s.text())

            banner = page.locator("#studybook-watch")
            assert not banner.is_visible()
            s.edit("units: 64}", "units: -4}")
            banner.wait_for(state="visible", timeout=60_000)
            assert "studies.depth.units = -4" in banner.inner_text()
            assert "Seen in a browser" in page.title()  # the last good report, under the banner
            s.edit("units: -4}", "units: 64}")
            banner.wait_for(state="hidden", timeout=60_000)
            assert not outside, outside
        finally:
            browser.close()


def test_ctrl_c_stops_the_watch_its_builds_and_its_server(session):
    s = session
    s.wait_state(building=False)
    port = int(s.base.rsplit(":", 1)[1])
    assert s.stop() == 0
    assert s.text().rstrip().endswith("watch: stopping")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    deadline = time.monotonic() + 15  # multiprocessing's resource tracker outlives its parent briefly
    while (children := subprocess.run(["pgrep", "-s", str(s.proc.pid)], capture_output=True, text=True).stdout.split()) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not children, subprocess.run(["ps", "-o", "pid,cmd", "-p", ",".join(children)], capture_output=True, text=True).stdout

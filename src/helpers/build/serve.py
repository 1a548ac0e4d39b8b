"""The watch mode's server: the output folder on 127.0.0.1, the report with a reload hook.

The hook (a script, and a banner it fills) exists only in what the server sends: the report on
disk stays the offline report. The page asks ``/__studybook__/state`` twice a second; when a newer
report was built it reloads at the same scroll position, and while the last build failed on bad
input it shows that build's one-line error over the last good report."""
from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ENDPOINT = "/__studybook__"

# Relative URLs only: the hook talks to the server that sent it and to nothing else.
HOOK = """
<div id="studybook-watch" role="status" style="display:none;position:fixed;top:0;left:0;right:0;
z-index:2147483647;padding:.6em 1em;font:14px/1.4 system-ui,sans-serif;white-space:pre-wrap;
background:#b00020;color:#fff;box-shadow:0 2px 6px rgba(0,0,0,.3)"></div>
<script>
(function () {
  var generation = GENERATION, key = "studybook-scroll:" + location.pathname;
  var saved = sessionStorage.getItem(key);
  if (saved) {
    sessionStorage.removeItem(key);
    var xy = JSON.parse(saved);
    window.scrollTo(xy[0], xy[1]);
    addEventListener("load", function () { window.scrollTo(xy[0], xy[1]); });
  }
  fetch("ENDPOINT/loaded?generation=" + generation, {cache: "no-store"}).catch(function () {});
  var banner = document.getElementById("studybook-watch");
  function poll() {
    fetch("ENDPOINT/state", {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (s) {
      if (s.generation !== generation) {
        sessionStorage.setItem(key, JSON.stringify([window.scrollX, window.scrollY]));
        location.reload();
        return;
      }
      if (s.error) {
        banner.textContent = s.error + "\\n(the report below is the last good build; save a fix to rebuild)";
        banner.style.display = "block";
      } else {
        banner.style.display = "none";
      }
      setTimeout(poll, 500);
    }, function () { setTimeout(poll, 1000); });  // the watch stopped or restarts: keep asking
  }
  poll();
})();
</script>
"""

PLACEHOLDER = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font:16px system-ui,sans-serif;margin:3em"><p>{text}</p></body></html>"""


def hook(generation: int) -> str:
    return HOOK.replace("GENERATION", str(generation)).replace("ENDPOINT", ENDPOINT)


def inject(html: bytes, generation: int) -> bytes:
    """``html`` with the hook before its closing body tag (at the end when there is none)."""
    at = html.rfind(b"</body>")
    at = len(html) if at < 0 else at
    return html[:at] + hook(generation).encode() + html[at:]


@dataclass
class State:
    """What the page asks for: the report's generation (one more for every build that wrote it),
    the last build's bad-input error, and the generations a page has loaded."""
    generation: int = 0
    error: str | None = None
    building: bool = False
    loaded: set = field(default_factory=set)       # generations a page has loaded (on_load: the first time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_load: object = None                         # called with (generation) at each first load

    def snapshot(self) -> dict:
        with self.lock:
            return {"generation": self.generation, "error": self.error, "building": self.building}

    def update(self, **kw) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, v)


def handler(folder: Path, report: str, state: State):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kw):
            super().__init__(*args, directory=str(folder), **kw)

        def log_message(self, *args):  # the watch prints what matters; access lines are noise
            pass

        def _send(self, body: bytes, ctype: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/":
                self.send_response(302)
                self.send_header("Location", "/" + report)
                self.end_headers()
            elif url.path == f"{ENDPOINT}/state":
                self._send(json.dumps(state.snapshot()).encode(), "application/json")
            elif url.path == f"{ENDPOINT}/loaded":
                generation = int((parse_qs(url.query).get("generation") or ["-1"])[0])
                first = False
                with state.lock:
                    if generation not in state.loaded:
                        state.loaded.add(generation)
                        first = True
                if first and state.on_load:
                    state.on_load(generation)
                self._send(b"{}", "application/json")
            elif url.path == "/" + report:
                path = folder / report
                generation = state.snapshot()["generation"]
                body = path.read_bytes() if path.is_file() else PLACEHOLDER.format(
                    title=report, text="No report has been built yet: this page shows it as soon as a "
                                       "build writes it.").encode()
                self._send(inject(body, generation), "text/html; charset=utf-8")
            else:
                super().do_GET()

        def end_headers(self):  # a reloaded page and its figures must never come from the browser's cache
            self.send_header("Cache-Control", "no-store")
            super().end_headers()
    return Handler


class Server:
    """``folder`` served on 127.0.0.1:``port`` (0: a free one) on a thread of its own."""

    def __init__(self, folder: Path, report: str, state: State, port: int = 0):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(folder, report, state))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{report}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    def start(self) -> Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

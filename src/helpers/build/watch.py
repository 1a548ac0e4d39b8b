"""``build_report.py --watch``: build, serve the report, and build again on every saved change.

Each build is a fresh ``build_report.py`` process with the same arguments, so it sees the saved
helpers and notebooks and stops the way an interrupted build does (SIGTERM: its finished runs
are cached, the last good report stays). What outlives the builds is kept here: the server
(helpers.build.serve) and, unless ``--scheduler`` names a cluster, a local Dask cluster whose
warm workers every build trains on (restarted when the training code changes: a worker keeps the
code it imported)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers.build import serve
from helpers.config.errors import ConfigError
from helpers.config.load import NOTEBOOKS, PARAMS, ROOT, in_repo

HELPERS = ROOT / "src" / "helpers"
HELPER_SUFFIXES = {".py", ".j2", ".css", ".json"}
BUILD_SCRIPT = ROOT / "build_report.py"


def _real(path) -> str:
    return os.path.realpath(path)


def watched(params_file: Path) -> tuple[list[str], object]:
    """The folders to watch and the filter of the files in them that a build reads: the
    parameter file and its layers (params/defaults.yaml, params/studies/*.yaml), the
    notebooks, and the helpers (code and report templates)."""
    params, defaults = _real(params_file), _real(PARAMS / "defaults.yaml")
    studies, notebooks, helpers = _real(PARAMS / "studies"), _real(NOTEBOOKS), _real(HELPERS)

    def wanted(change, path: str) -> bool:
        path = _real(path)
        folder, suffix = os.path.dirname(path), os.path.splitext(path)[1]
        if path in (params, defaults):
            return True
        if folder == studies:
            return suffix in (".yaml", ".yml")
        if folder == notebooks:
            return suffix == ".ipynb"
        return (path.startswith(helpers + os.sep) and suffix in HELPER_SUFFIXES
                and "__pycache__" not in path.split(os.sep))
    roots = []
    for root in (os.path.dirname(params), _real(PARAMS), notebooks, helpers):
        if not any(root == r or root.startswith(r + os.sep) for r in roots):
            roots = [r for r in roots if not r.startswith(root + os.sep)] + [root]
    return roots, wanted


def _say(line: str) -> None:
    print(f"watch: {line}", file=sys.stderr, flush=True)


def _shown(paths) -> str:
    names = sorted({str(in_repo(p)) for p in paths})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


class Watch:
    def __init__(self, build_args: list[str], params_file: Path, out: Path, name: str, *,
                 scheduler: str | None, workers: int | None, first_args: list[str] = ()):
        self.build_args, self.first_args = list(build_args), list(first_args)
        self.params_file, self.out, self.name = params_file, out, name
        self.scheduler, self.workers = scheduler, workers
        self.state = serve.State(on_load=self._loaded)
        self.changes: set[str] = set()
        self.changed = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.cluster = None
        self.saved: float | None = None        # when the change the next build shows was saved
        self.saved_at: dict[int, float] = {}   # generation -> when the save it shows happened
        self.proc: subprocess.Popen | None = None

    # -- the watcher thread -------------------------------------------------------------------
    def _watch(self) -> None:
        import watchfiles
        roots, wanted = watched(self.params_file)
        for batch in watchfiles.watch(*roots, watch_filter=wanted, debounce=200, step=50,
                                      stop_event=self.stop, raise_interrupt=False):
            with self.lock:
                self.changes.update(path for _, path in batch)
            self.changed.set()

    def _take(self) -> tuple[set[str], float]:
        """The files changed since the last take, and when the newest of them was saved."""
        with self.lock:
            paths, self.changes = self.changes, set()
            self.changed.clear()
        times = [os.stat(p).st_mtime for p in paths if os.path.exists(p)]
        return paths, max(times, default=time.time())

    # -- the page -----------------------------------------------------------------------------
    def _loaded(self, generation: int) -> None:
        saved = self.saved_at.get(generation)
        if saved is not None:
            _say(f"page reloaded with build {generation}, {time.time() - saved:.1f} s after the save")

    # -- builds -------------------------------------------------------------------------------
    def _start_cluster(self) -> None:
        if self.scheduler:
            return
        from helpers.build.cluster import Cluster
        (self.out / self.name).mkdir(parents=True, exist_ok=True)
        self.cluster = Cluster.start(workers=self.workers, log=str(self.out / self.name / "workers.log"))
        n = len(self.cluster.workers())
        _say(f"{n} local worker{'s' * (n != 1)}, kept warm between builds")

    def _restart_workers(self) -> None:
        if self.cluster is not None:
            _say("the training code changed: restarting the workers")
            self.cluster.restart()

    def _command(self, first: bool) -> list[str]:
        where = self.scheduler or self.cluster.address
        return [sys.executable, str(BUILD_SCRIPT), *self.build_args, *(self.first_args if first else []),
                "--scheduler", where]

    def _env(self) -> dict:
        from helpers.run import cache, executor, training
        # Each build is a build of its own: its id tells the runs it trained from those reused.
        return {k: v for k, v in os.environ.items()
                if k not in (training.ENV_BUILD, cache.ENV_DEVICE, executor.ENV_SCHEDULER)}

    def _build(self, first: bool) -> bool:
        """One build; False when a change stopped it (it is then started again)."""
        html = self.out / f"{self.name}.html"
        before = html.stat().st_mtime_ns if html.exists() else None
        self.state.update(building=True)
        started = time.monotonic()
        self.proc = proc = subprocess.Popen(self._command(first), stderr=subprocess.PIPE, text=True, bufsize=1,
                                            env=self._env(), start_new_session=True)  # Ctrl-C is ours to pass on
        lines: list[str] = []

        def echo() -> None:
            for line in proc.stderr:
                sys.stderr.write(line)
                sys.stderr.flush()
                lines.append(line.rstrip("\n"))
        reader = threading.Thread(target=echo, daemon=True)
        reader.start()
        try:
            while proc.poll() is None:
                if self.changed.wait(0.2):
                    _say(f"{_shown(self.changes)} changed during the build: stopping it (finished runs stay "
                         "cached) and starting again")
                    self._end(proc)
                    reader.join(5)
                    return False
        finally:
            self.state.update(building=False)
        reader.join(5)
        self.proc = None
        rc = proc.returncode
        report = any(line.startswith("Report: ") for line in lines)
        if rc in (0, 1) and report:
            after = html.stat().st_mtime_ns if html.exists() else None
            if after != before:
                if self.saved is not None:
                    self.saved_at[self.state.generation + 1] = self.saved
                self.state.update(generation=self.state.generation + 1)
            self.state.update(error=None)
            _say(f"build {self.state.generation} done in {time.monotonic() - started:.1f} s; watching for changes")
            return True
        errors = [line for line in lines if line.startswith("error: ")]
        error = (errors[-1] if errors else
                 f"error: the build stopped (exit {rc}): " + next((l for l in reversed(lines) if l.strip()), "no output"))
        self.state.update(error=error)
        _say("the build failed; the page shows the error over the last good report; watching for changes")
        return True

    @staticmethod
    def _end(proc: subprocess.Popen) -> None:
        """Stop a build as Ctrl-C would: its runs finished so far stay cached."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def run(self, server: serve.Server) -> int:
        server.start()
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        try:
            self._start_cluster()
            first = True
            while True:
                done = self._build(first)
                if done:
                    first = False
                    while not self.changed.wait(0.5):  # timed: Ctrl-C stays heard
                        pass
                paths, self.saved = self._take()
                if any(_real(p).startswith(_real(HELPERS) + os.sep) and p.endswith(".py") for p in paths):
                    self._restart_workers()
                if done:
                    _say(f"{_shown(paths)} changed: building again")
        except KeyboardInterrupt:
            _say("stopping")
            if self.proc is not None:
                self._end(self.proc)
            return 0
        finally:
            self.stop.set()
            if self.cluster is not None:
                self.cluster.close()
            server.stop()
            watcher.join(5)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def watch(build_args: list[str], params_file: Path, out: Path, name: str, *, port: int, open_browser: bool,
          scheduler: str | None, workers: int | None, first_args: list[str] = ()) -> int:
    """Serve ``out`` on 127.0.0.1:``port`` and build until Ctrl-C (or SIGTERM); exit 0.
    ConfigError: the port cannot be had."""
    w = Watch(build_args, params_file, out, name, scheduler=scheduler, workers=workers, first_args=first_args)
    try:
        server = serve.Server(out, f"{name}.html", w.state, port)
    except OSError as e:
        raise ConfigError(f"--port {port}: cannot serve on 127.0.0.1 ({e.strerror or e})") from None
    signal.signal(signal.SIGTERM, _interrupt)
    _say(f"serving {server.url} (Ctrl-C to stop); watching {params_file} and its layers, the notebooks "
         "and the helpers")
    if open_browser:
        import webbrowser
        webbrowser.open(server.url)
    return w.run(server)

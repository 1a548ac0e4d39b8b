"""Re-rendering, resuming and locking, end to end: build_report.py in subprocesses on the offline
digits report (scikit-learn's bundled 8x8 digits, smoke profile: seconds per run).

A no-op build reports "(nothing changed)" and touches no file; a changed study trains only its new
runs; a build killed with SIGKILL resumes with exactly the runs that had not finished; SIGTERM and
Ctrl-C (SIGINT) stop a build with exit code 130, leave the previous report alone and no kernel
behind; a second build on the same folder waits for the first. A study whose notebook template or
presentation code changed is executed again (helpers.build.state).

Nothing here waits on the clock: every wait polls for state (a log line, an event, a cache entry,
a process) under a generous overall timeout, and a moment "in the middle of a build" is pinned by
stopping (SIGSTOP) the process that would otherwise move on, so a loaded CI machine cannot race it.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, hears_ctrl_c, make_record, run_build, shared_scheduler
from helpers.build import state
from helpers.config import load
from helpers.run import cache

PARAMS = ROOT / "params" / "digits.yaml"
NAME = PARAMS.stem  # the report is <out>/digits.html, its notebooks and events in <out>/digits/
STUDIES = ["depth", "width"]
ENV = {**os.environ, "STUDYBOOK_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
WAIT = 300  # seconds: the overall limit of any wait below (they return as soon as the state is there)
pytestmark = pytest.mark.e2e


def command(out: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "build_report.py"), str(PARAMS), "--profile", "smoke",
            "--out", str(out), *args]


class Build:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode, self.stderr = proc.returncode, proc.stderr

    @property
    def summary(self) -> dict[str, dict]:
        return summary(self.stderr)


def build(out: Path, *args: str, timeout: int = 600, shared: bool = True) -> Build:
    return Build(run_build(PARAMS, "--profile", "smoke", "--out", out, *args,
                           env={"PYTHONUNBUFFERED": "1"}, timeout=timeout, shared=shared))


def start(out: Path, log: Path, *args: str, shared: bool = False) -> subprocess.Popen:
    """A build in the background, in its own session (so its process group can be signalled);
    ``shared``: on the session's warm workers (conftest.shared_scheduler), else on a local
    cluster of its own, as by default."""
    env = {**ENV, "STUDYBOOK_SCHEDULER": shared_scheduler()} if shared else ENV
    with open(log, "w") as err:
        return subprocess.Popen(command(out, *args), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True, preexec_fn=hears_ctrl_c)


SUMMARY_ROW = re.compile(r"^(\S+)\s+(\d+)\s+([\d.]+)\s+(ok|failed)\s+(\d+)\s+(\d+)(?:\s+(.*))?$")


def summary(stderr: str) -> dict[str, dict]:
    lines = stderr.splitlines()
    head = next(i for i, ln in enumerate(lines) if re.match(r"^study\s+runs\s+seconds\s+status\s+trained"
                                                           r"\s+reused\s+why$", ln))
    rows = {}
    for ln in lines[head + 1:]:
        m = SUMMARY_ROW.match(ln)
        if not m:
            break
        rows[m[1]] = {"runs": int(m[2]), "status": m[4], "trained": int(m[5]), "reused": int(m[6]),
                      "why": m[7] or ""}
    return rows


def done_events(out: Path, study: str) -> list[dict]:
    path = out / NAME / f"{study}.events.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    # A line still being written is not an event yet.
    return [e for e in (json.loads(ln) for ln in lines if ln.endswith("}")) if e["event"] == "done"]


def trained_done(out: Path, study: str) -> list[dict]:
    """The runs of ``study`` this build trained (not reused) and reported finished."""
    return [e for e in done_events(out, study) if not e["cached"]]


def wait_for(condition, proc: subprocess.Popen, log: Path, timeout: float = WAIT, what: str = "",
             each=None):
    """Poll ``condition`` until it holds; fail (and kill the build) if the build ends first or the
    overall timeout passes. ``each`` is called on every poll (to watch the build's processes)."""
    deadline = time.monotonic() + timeout
    while True:
        if each is not None:
            each()
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"the build ended (exit {proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            kill_all(proc)
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


# --- processes, from /proc (Linux) ------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state, ppid, pgrp, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _processes() -> dict[int, list[str]]:
    return {int(e): f for e in os.listdir("/proc") if e.isdigit() and (f := _stat(int(e))) is not None}


def descendants(pid: int) -> set[tuple[int, str]]:
    """Every live process below ``pid``, as (pid, start time) so a reused pid is not mistaken for
    it. Jupyter starts each kernel in a session of its own: killing or signalling the build's
    process group does not reach them, so they are found by parentage."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for p, f in procs.items():
        children.setdefault(int(f[1]), []).append(p)
    found, todo = set(), list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.add((p, procs[p][19]))
        todo += children.get(p, [])
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kernels_of(pid: int) -> list[int]:
    """The study kernels of the build ``pid`` (its other children are the Dask workers)."""
    return [p for p, f in _processes().items() if int(f[1]) == pid and "ipykernel" in _cmdline(p)]


def running(proc: int | tuple[int, str]) -> bool:
    pid, started = proc if isinstance(proc, tuple) else (proc, None)
    f = _stat(pid)
    return f is not None and f[0] != "Z" and (started is None or f[19] == started)


def in_group(pgid: int) -> list[int]:
    """Live processes of the process group ``pgid``."""
    return [p for p, f in _processes().items() if int(f[2]) == pgid and f[0] != "Z"]


def wait_gone(procs, timeout: float = 60) -> None:
    procs = list(procs)
    deadline = time.monotonic() + timeout
    while any(running(p) for p in procs):
        assert time.monotonic() < deadline, f"processes still running: {[p for p in procs if running(p)]}"
        time.sleep(0.05)


def stop(pids) -> None:
    """SIGSTOP ``pids`` and wait until they are stopped: from then on nothing they do can race the test."""
    pids = list(pids)
    for p in pids:
        try:
            os.kill(p, signal.SIGSTOP)
        except ProcessLookupError:  # ended on its own meanwhile: nothing left to race
            pass
    deadline = time.monotonic() + 60
    while any(_stat(p) is not None and _stat(p)[0] not in "TtZX" for p in pids):
        assert time.monotonic() < deadline, "a process did not stop"
        time.sleep(0.01)


TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())  # the syscall's number


def signal_a_thread(pid: int, signum: int) -> None:
    """Send ``signum`` to one of the process's threads other than its main one. A signal sent to a
    process goes to whichever of its threads the kernel picks, and Python runs the handler only
    when its main thread next runs: a main thread in an untimed wait would never hear it."""
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    assert tids, "the build has no thread but its main one"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(TGKILL, pid, tids[-1], int(signum)) == 0, os.strerror(ctypes.get_errno())


def kill_all(proc: subprocess.Popen) -> list[int]:
    """SIGKILL a build, its process group and every process below it; returns its kernels' pids."""
    kernels = kernels_of(proc.pid)
    below = [p for p, _ in descendants(proc.pid)]
    for kill, pid in [(os.killpg, proc.pid)] + [(os.kill, p) for p in below]:
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)
    return kernels


# --- the output folder --------------------------------------------------------------------------

def report_runs(out: Path) -> list[dict]:
    return json.loads((out / f"{NAME}.json").read_text())["runs"]


def copy_of(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    (dest / ".build.lock").unlink(missing_ok=True)
    for stale in (dest / NAME).glob("*.events.jsonl"):  # the first build's: not this one's progress
        stale.unlink()
    return dest


def files(out: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``out`` but the lock: (sha256 of its bytes, mtime in ns)."""
    return {p.relative_to(out).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".build.lock"}


def cache_entries(out: Path) -> int:
    return len(list((out / ".cache" / "runs").glob("*/meta.json")))


def is_cached(out: Path, key: str) -> bool:
    return (out / ".cache" / "runs" / key / "meta.json").exists()


def run_keys(*sets: str, studies=STUDIES) -> dict[tuple[str, str], str]:
    """(study, label) -> run key, as the build computes them (no TensorFlow needed); ``studies``
    None: all of the report's."""
    plan = load.load(PARAMS, profile="smoke", studies=None if studies is None else list(studies), sets=list(sets))
    return {(name, label): info["key"] for name, p in plan.studies.items()
            for label, info in state.study(p)["runs"].items()}


@pytest.fixture(scope="module")
def first(tmp_path_factory, digits_report):
    """A build of depth and width on a copy of the session's digits build (conftest.digits_report,
    which trained every run of the report: nothing trains again here); tests that build again work
    on a copy of it."""
    out = copy_of(digits_report.out, tmp_path_factory.mktemp("first") / "out")
    b = build(out, "--studies", ",".join(STUDIES))
    assert b.returncode == 0, b.stderr[-3000:]
    assert {s: (r["trained"], r["why"]) for s, r in b.summary.items()} == {
        "depth": (0, "unchanged"), "width": (0, "unchanged")}, b.stderr
    return out, b


# --- a: nothing changed ---------------------------------------------------------------------------

def test_an_unchanged_build_trains_nothing_and_writes_nothing(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    before = files(out)
    b = build(out, "--studies", ",".join(STUDIES))
    assert b.returncode == 0, b.stderr[-3000:]
    assert "(nothing changed)" in b.stderr
    rows = b.summary
    assert sorted(rows) == sorted(STUDIES)
    for name, row in rows.items():
        assert row["trained"] == 0 and row["reused"] == row["runs"] == 3, (name, row)
        assert row["why"] == "unchanged", (name, row)
        assert f"{name}: unchanged, 3 runs reused" in b.stderr
    # Nothing executed: no kernel started, no run reported, no study done.
    assert not re.search(r"^\s+\[\d+/\d+\] ", b.stderr, re.MULTILINE), b.stderr
    assert not re.search(r": done, \d+ runs in ", b.stderr), b.stderr
    # Nothing written: the report, its JSON, the notebooks, the study states and the cache are the
    # same files, byte for byte, with the same modification times.
    assert files(out) == before


# --- b: one value changed ---------------------------------------------------------------------------

def test_one_changed_value_trains_only_the_new_runs(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    b = build(out, "--studies", ",".join(STUDIES), "--set", "width.units=[8,16,32,64]")
    assert b.returncode == 0, b.stderr[-3000:]
    assert "(nothing changed)" not in b.stderr
    rows = b.summary
    # 8 and 32 units were built before; 64 units (2 x 64) is depth's "2 layers": the same
    # configuration, already cached; only 16 units is new.
    assert rows["width"]["runs"] == 4
    assert (rows["width"]["trained"], rows["width"]["reused"]) == (1, 3), rows["width"]
    assert "gained 16 units, 64 units" in rows["width"]["why"] and "lost 128 units" in rows["width"]["why"]
    assert rows["depth"] == {"runs": 3, "status": "ok", "trained": 0, "reused": 3, "why": "unchanged"}
    runs = {(r["study"], r["label"]): r for r in report_runs(out)}
    width = {label: r for (s, label), r in runs.items() if s == "width"}
    assert sorted(width, key=lambda lab: int(lab.split()[0])) == ["8 units", "16 units", "32 units", "64 units"]
    assert {label: r["cached"] for label, r in width.items()} == {
        "8 units": True, "16 units": False, "32 units": True, "64 units": True}
    assert width["64 units"]["key"] == runs[("depth", "2 layers")]["key"]
    assert width["64 units"]["metrics"] == runs[("depth", "2 layers")]["metrics"]
    assert width["64 units"]["axis"] == {"units": 64}


# --- c: kill -9 mid-build, then resume ------------------------------------------------------------

def test_a_killed_build_resumes_with_exactly_the_unfinished_runs(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    html, report_json = out / f"{NAME}.html", out / f"{NAME}.json"
    previous = html.read_bytes(), report_json.read_bytes()
    sets = ("depth.layers=[1,2,3,4,5,6,7,8]",)
    args = ("--studies", ",".join(STUDIES), "--jobs", "1", *[a for s in sets for a in ("--set", s)])
    keys = run_keys(*sets)
    new = {run for run, key in keys.items() if not is_cached(out, key)}
    assert new == {("depth", f"{n} layers") for n in range(4, 9)}

    log = tmp_path / "killed.log"
    proc = start(out, log, *args, shared=True)
    kernels: list[int] = []
    try:
        wait_for(lambda: len(trained_done(out, "depth")) >= 2, proc, log, what="two trained runs")
        # Pin the moment: the kernel (in a session of its own, Jupyter's doing) is stopped where it
        # is, so what it has saved and reported can be read before it is killed, as a crash would.
        kernels = kernels_of(proc.pid)
        assert kernels
        # The build and its kernel (its runs train on the session's workers, which go on): the
        # build stores what the workers finish.
        stop([proc.pid, *kernels, *(p for p, _ in descendants(proc.pid))])
        finished = {("depth", e["label"]) for e in trained_done(out, "depth") if e["status"] == "ok"}
        cached = {run for run in new if is_cached(out, keys[run])}
    finally:
        kernels = kill_all(proc) or kernels
    assert proc.returncode == -signal.SIGKILL
    wait_gone(kernels)

    unfinished = new - cached
    assert len(finished) >= 2 and unfinished, (finished, unfinished)
    # Every run reported done is cached (it is saved before it is reported); beyond those, at
    # most the runs the two workers finished that the kernel had not reported yet.
    assert finished <= cached and len(cached - finished) <= 2, (finished, cached)
    # The previous report is untouched and still whole.
    assert (html.read_bytes(), report_json.read_bytes()) == previous
    assert html.read_text().rstrip().endswith("</html>")

    b = build(out, *args)
    assert b.returncode == 0, b.stderr[-3000:]
    runs = report_runs(out)
    assert len(runs) == len(keys) == 11
    trained = {(r["study"], r["label"]) for r in runs if not r["cached"]}
    assert trained == unfinished
    assert sum(row["trained"] for row in b.summary.values()) == len(unfinished)
    assert b.summary["width"]["why"] == "unchanged"
    assert html.read_bytes() != previous[0]


# --- d: SIGTERM and Ctrl-C ---------------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_build_exits_130_keeps_the_report_and_leaves_no_kernel(first, tmp_path, signum):
    """README: 130 interrupted (Ctrl-C or SIGTERM): finished runs stay cached, the previous report
    stays as it was. SIGTERM goes to the build process only, as a service manager sends it, and is
    handed to one of its other threads than the main one (the kernel may pick any); SIGINT goes to
    its process group, as a terminal's Ctrl-C does."""
    if signum == signal.SIGTERM and TGKILL is None:
        pytest.skip(f"no tgkill syscall number for {platform.machine()}")
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    html, report_json = out / f"{NAME}.html", out / f"{NAME}.json"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (html, report_json)}
    sets = ("depth.layers=[4,5,6]",)
    args = ("--studies", "depth", "--jobs", "1", "--set", sets[0])
    keys = run_keys(*sets, studies=["depth"])
    new = {run for run, key in keys.items() if not is_cached(out, key)}
    assert len(new) == 3

    log = tmp_path / "interrupted.log"
    # Ctrl-C reaches the processes of the build's own local cluster too (its nannies must stop
    # quietly); SIGTERM goes to a build that joined a cluster (its queued runs are cancelled there).
    # (One worker: a second would only load TensorFlow once more.)
    shared = signum == signal.SIGTERM
    proc = start(out, log, *args, *(() if shared else ("--workers", "1")), shared=shared)
    seen: set[tuple[int, str]] = set()  # every process the build started, while it ran
    try:
        wait_for(lambda: len(trained_done(out, "depth")) >= 1, proc, log, what="the first trained run",
                 each=lambda: seen.update(descendants(proc.pid)))
        kernels = kernels_of(proc.pid)
        assert kernels
        seen.update(descendants(proc.pid))
        # The kernel is stopped mid-run, so the build is certainly in the middle of the study
        # when the signal arrives; the build must still end it (it kills its kernels).
        stop(kernels)
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the foreground group
        else:
            signal_a_thread(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit within {WAIT} s of {signum.name}:\n{log.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            kill_all(proc)
    stderr = log.read_text()
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted: finished runs are cached" in stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    # No kernel, nor any other process the build started, outlives it.
    wait_gone(seen)
    assert not in_group(proc.pid)
    # The previous report and its JSON are byte for byte what they were, not even rewritten.
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (html, report_json)} == before
    assert not (out / NAME / "depth.study.json").exists()  # the study is not marked reusable
    # Finished runs are cached (each is saved before it is reported; at most the run the kernel was
    # stopped in is saved but not reported).
    finished = {("depth", e["label"]) for e in trained_done(out, "depth") if e["status"] == "ok"}
    cached = {run for run in new if is_cached(out, keys[run])}
    assert finished and finished <= cached and len(cached - finished) <= 1, (finished, cached)
    unfinished = new - cached
    assert unfinished, cached

    if signum == signal.SIGINT:  # once is enough: the rebuild trains only the unfinished runs
        b = build(out, *args)
        assert b.returncode == 0, b.stderr[-3000:]
        trained = {(r["study"], r["label"]) for r in report_runs(out) if not r["cached"]}
        assert trained == unfinished
        assert b.summary["depth"]["trained"] == len(unfinished)
        assert b.summary["depth"]["reused"] == len(keys) - len(unfinished)


# --- e: two builds on one folder ----------------------------------------------------------------

def test_a_second_build_on_the_same_folder_waits(tmp_path):
    out = tmp_path / "out"
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    one = ("--studies", "depth", "--set", "depth.layers=[1]")  # one run to train (CI time)
    a, b = start(out, log_a, *one, shared=True), None
    try:
        wait_for(lambda: "Building" in log_a.read_text(), a, log_a, what="build A to take the lock")
        # A holds the lock; stopped, it cannot finish (and let go of it) before B gets there.
        stop([a.pid])
        b = start(out, log_b, *one, shared=True)
        wait_for(lambda: "waiting:" in log_b.read_text(), b, log_b, what="build B to wait")
        assert a.poll() is None
        assert re.search(rf"waiting: build_report\.py \(pid {a.pid}\) is building in ", log_b.read_text())
        assert "Building" not in log_b.read_text()  # B has started nothing of its own
        os.kill(a.pid, signal.SIGCONT)
        assert a.wait(timeout=WAIT) == 0, log_a.read_text()[-3000:]
        assert b.wait(timeout=WAIT) == 0, log_b.read_text()[-3000:]
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                kill_all(p)
    assert summary(log_a.read_text())["depth"]["trained"] == 1
    assert "(nothing changed)" in log_b.read_text()  # B found A's work done
    assert summary(log_b.read_text())["depth"]["trained"] == 0
    third = build(out, *one)
    assert third.returncode == 0 and "(nothing changed)" in third.stderr, third.stderr[-3000:]
    # The cache is whole: every entry reads back without a warning.
    store = cache.RunCache(out / ".cache")
    for key in run_keys("depth.layers=[1]", studies=["depth"]).values():
        assert store.get(key) is not None
    assert not list((out / ".cache").rglob("*.tmp"))


# --- f: --force and --clear-cache ---------------------------------------------------------------------

def test_force_one_study_retrains_only_that_study(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    b = build(out, "--studies", ",".join(STUDIES), "--force", "width")
    assert b.returncode == 0, b.stderr[-3000:]
    rows = b.summary
    assert (rows["width"]["trained"], rows["width"]["reused"], rows["width"]["why"]) == (3, 0, "forced")
    assert (rows["depth"]["trained"], rows["depth"]["why"]) == (0, "unchanged")
    assert "(nothing changed)" not in b.stderr
    bad = build(out, "--studies", ",".join(STUDIES), "--force", "widht")
    assert bad.returncode == 2 and "no study 'widht'" in bad.stderr


def test_clear_cache_reports_its_size_and_empties_it(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    entries = cache_entries(out)
    assert entries == len(set(run_keys(studies=None).values()))  # every study's: first is a copy of the whole report's
    size = sum(p.stat().st_size for p in (out / ".cache").rglob("*") if p.is_file())
    b = build(out, "--clear-cache")
    assert b.returncode == 0, b.stderr
    m = re.search(r"cleared (.+): (\d+) cached runs, ([\d.]+) MB", b.stderr)
    assert m, b.stderr
    assert Path(m[1]) == out / ".cache" and int(m[2]) == entries
    assert float(m[3]) == pytest.approx(size / 1e6, abs=0.051)
    assert not (out / ".cache").exists()
    assert (out / f"{NAME}.html").exists()  # only the cache goes
    again = build(out, "--clear-cache")
    assert again.returncode == 0 and ": 0 cached runs, 0.0 MB" in again.stderr


def test_a_build_after_clear_cache_trains_everything(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    assert build(out, "--clear-cache").returncode == 0
    b = build(out, "--studies", "depth")
    assert b.returncode == 0, b.stderr[-3000:]
    assert {s: (r["trained"], r["reused"]) for s, r in b.summary.items()} == {"depth": (3, 0)}, b.stderr


# --- what an interrupted build leaves behind ------------------------------------------------------

def test_the_build_after_an_interrupted_one_says_why(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    # What an interrupted build of depth leaves: its results removed (the old study state kept,
    # to explain the re-run), its finished runs cached.
    (out / NAME / "depth.results.json").unlink()
    b = build(out, "--studies", ",".join(STUDIES), shared=False)  # as by default: a local cluster if any
    assert b.returncode == 0, b.stderr[-3000:]
    assert (b.summary["depth"]["trained"], b.summary["width"]["why"]) == (0, "unchanged")
    assert b.summary["depth"]["why"] == "previous build did not finish"
    # Depth's notebook ran again, but with every run cached nothing trains: no local cluster is started.
    assert "depth: done, 3 runs in" in b.stderr and "Training on" not in b.stderr, b.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_giving_up_while_waiting_for_the_lock_exits_130(tmp_path, signum):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    log = tmp_path / "wait.log"
    with open(out / ".build.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another build holds the folder
        proc = start(out, log, "--studies", "depth")
        wait_for(lambda: "waiting:" in log.read_text(), proc, log, what="the build to wait")
        proc.send_signal(signum)
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            kill_all(proc)
            pytest.fail(f"no exit within {WAIT} s")
    stderr = log.read_text()
    assert not (out / NAME).exists()  # it never got the lock: nothing was started
    assert "Traceback" not in stderr, stderr[-2000:]
    assert proc.returncode == 130, stderr[-2000:]


# --- what re-executes a study: its template and the code that presents it (helpers.build.state) ----

def _reusable(plan, old: dict, out_dir: Path, cache_dir: Path) -> None:
    """What a finished execution of ``plan`` leaves: its state, records, notebook and cached runs."""
    out_dir.mkdir(parents=True)
    records = [make_record(label, study=plan.name, kind=plan.kind) | {"key": info["key"]}
               for label, info in old["runs"].items()]
    (out_dir / f"{plan.name}.results.json").write_text(json.dumps(records))
    (out_dir / f"{plan.name}.study.json").write_text(json.dumps(old))
    (out_dir / f"{plan.name}.ipynb").write_text("{}")
    for r in records:
        (cache_dir / "runs" / r["key"]).mkdir(parents=True)
        (cache_dir / "runs" / r["key"] / "meta.json").write_text("{}")


def test_a_changed_notebook_template_re_executes_the_study(digits_plan, tmp_path):
    plan = digits_plan.studies["depth"]
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(load.NOTEBOOKS / f"{plan.kind}.ipynb", notebooks)
    old = state.study(plan, notebooks)
    assert old == state.study(plan) == state.study(plan, notebooks)  # same bytes, same state
    _reusable(plan, old, tmp_path / "out", tmp_path / "cache")
    assert state.reuse(plan, tmp_path / "out", old, tmp_path / "cache") is not None

    template = notebooks / f"{plan.kind}.ipynb"
    nb = json.loads(template.read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "added", "metadata": {}, "source": "A new remark."})
    template.write_text(json.dumps(nb, indent=1))
    new = state.study(plan, notebooks)
    assert new["key"] != old["key"] and new["template"] != old["template"]
    assert new["runs"] == old["runs"] and new["presentation"] == old["presentation"]  # no run retrains
    assert state.why_changed(old, new) == "notebook template changed"
    assert state.reuse(plan, tmp_path / "out", new, tmp_path / "cache") is None  # executed again


def _helpers_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "helpers"
    shutil.copytree(cache.HELPERS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_changed_presentation_code_re_executes_the_study(digits_plan, tmp_path, monkeypatch):
    plan = digits_plan.studies["depth"]
    cache.source_hash()  # the run keys' code hash, of the real tree (cached), before HELPERS moves
    old = state.study(plan)
    old_report = state.report_key({"title": "t"}, [old["key"]])
    copy = _helpers_copy(tmp_path)
    monkeypatch.setattr(cache, "HELPERS", copy)
    assert state.study(plan) == old  # the same modules elsewhere: the same state
    _reusable(plan, old, tmp_path / "out", tmp_path / "cache")
    assert state.reuse(plan, tmp_path / "out", old, tmp_path / "cache") is not None

    with open(copy / "present" / "figures.py", "a") as f:
        f.write("\nDPI_FOR_PRINT = 300\n")
    new = state.study(plan)
    assert new["key"] != old["key"] and new["presentation"] != old["presentation"]
    assert new["runs"] == old["runs"] and new["template"] == old["template"]
    assert state.why_changed(old, new) == "report code changed"
    assert state.reuse(plan, tmp_path / "out", new, tmp_path / "cache") is None
    assert state.report_key({"title": "t"}, [new["key"]]) != old_report


def test_build_only_code_changes_the_report_but_not_the_study(digits_plan, tmp_path, monkeypatch):
    """The build's own modules run only in the build process: a change there re-renders the
    report but does not re-execute a study notebook."""
    plan = digits_plan.studies["depth"]
    cache.source_hash()
    old = state.study(plan)
    old_report = state.report_key({"title": "t"}, [old["key"]])
    copy = _helpers_copy(tmp_path)
    monkeypatch.setattr(cache, "HELPERS", copy)
    for package in state.BUILD_ONLY:
        with open(copy / package / "report.py", "a") as f:
            f.write("\n# a comment\n")
    assert state.study(plan) == old
    assert state.report_key({"title": "t"}, [old["key"]]) != old_report

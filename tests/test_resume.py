"""Re-rendering, resuming and locking, end to end: build_report.py in subprocesses on the offline
digits report (scikit-learn's bundled 8x8 digits, smoke profile: seconds per run).

A no-op build reports "(nothing changed)"; a changed study trains only its new runs; a build killed
with SIGKILL resumes with exactly the runs that had not finished; SIGTERM stops a build with exit
code 130 and leaves the previous report alone; a second build on the same folder waits for the first.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import cache, config, execute

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params" / "digits.yaml"
NAME = PARAMS.stem  # the report is <out>/digits.html, its notebooks and events in <out>/digits/
STUDIES = ["depth", "width"]
ENV = {**os.environ, "STUDYBOOK_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
pytestmark = pytest.mark.e2e


def command(out: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "build_report.py"), str(PARAMS), "--profile", "smoke",
            "--out", str(out), *args]


class Build:
    def __init__(self, proc: subprocess.CompletedProcess, seconds: float):
        self.returncode, self.stderr, self.seconds = proc.returncode, proc.stderr, seconds

    @property
    def summary(self) -> dict[str, dict]:
        return summary(self.stderr)


def build(out: Path, *args: str, timeout: int = 300) -> Build:
    start = time.perf_counter()
    proc = subprocess.run(command(out, *args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=ENV)
    return Build(proc, time.perf_counter() - start)


def start(out: Path, log: Path, *args: str) -> subprocess.Popen:
    """A build in the background, in its own session (so its process group can be killed)."""
    with open(log, "w") as err:
        return subprocess.Popen(command(out, *args), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)


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


def wait_for(condition, proc: subprocess.Popen, log: Path, timeout: float = 180, what: str = ""):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the build ended (exit {proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            kill_all(proc)
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def kill_all(proc: subprocess.Popen) -> list[int]:
    """SIGKILL a build, its process group and its kernels; returns the kernels' pids."""
    kernels = kernels_of(proc.pid)
    for kill, pid in [(os.killpg, proc.pid)] + [(os.kill, k) for k in kernels]:
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)
    return kernels


def kernels_of(pid: int) -> list[int]:
    """The child processes of ``pid`` (its study kernels). Jupyter starts each kernel in a session
    of its own, so killing the build's process group does not reach them."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while any(running(p) for p in pids):
        assert time.monotonic() < deadline, f"processes still running: {[p for p in pids if running(p)]}"
        time.sleep(0.05)


def report_runs(out: Path) -> list[dict]:
    return json.loads((out / f"{NAME}.json").read_text())["runs"]


def copy_of(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    (dest / ".build.lock").unlink(missing_ok=True)
    for stale in (dest / NAME).glob("*.events.jsonl"):  # the first build's: not this one's progress
        stale.unlink()
    return dest


def cache_entries(out: Path) -> int:
    return len(list((out / ".cache" / "runs").glob("*/meta.json")))


def run_keys(*sets: str, studies=STUDIES) -> dict[tuple[str, str], str]:
    """(study, label) -> run key, as the build computes them (no TensorFlow needed)."""
    plan = config.load(PARAMS, profile="smoke", studies=list(studies), sets=list(sets))
    return {(name, label): info["key"] for name, p in plan.studies.items()
            for label, info in execute.study_state(p)["runs"].items()}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """One full build of depth and width; tests that build again work on a copy of it."""
    out = tmp_path_factory.mktemp("first") / "out"
    b = build(out, "--studies", ",".join(STUDIES))
    assert b.returncode == 0, b.stderr[-3000:]
    assert {s: r["trained"] for s, r in b.summary.items()} == {"depth": 3, "width": 3}, b.stderr
    return out, b


# --- a: nothing changed ---------------------------------------------------------------------------

def test_an_unchanged_build_trains_nothing_and_writes_nothing(first, tmp_path):
    src, first_build = first
    out = copy_of(src, tmp_path / "out")
    html = out / f"{NAME}.html"
    before = html.read_bytes(), html.stat().st_mtime_ns, (out / f"{NAME}.json").read_bytes()
    b = build(out, "--studies", ",".join(STUDIES))
    assert b.returncode == 0, b.stderr[-3000:]
    assert "(nothing changed)" in b.stderr
    rows = b.summary
    assert sorted(rows) == sorted(STUDIES)
    for name, row in rows.items():
        assert row["trained"] == 0 and row["reused"] == row["runs"] == 3, (name, row)
        assert row["why"] == "unchanged", (name, row)
    assert (html.read_bytes(), html.stat().st_mtime_ns, (out / f"{NAME}.json").read_bytes()) == before
    assert b.seconds < first_build.seconds / 3, (b.seconds, first_build.seconds)


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
    sets = ("depth.layers=[1,2,3,4,5,6]",)
    args = ("--studies", ",".join(STUDIES), "--jobs", "1", *[a for s in sets for a in ("--set", s)])
    keys = run_keys(*sets)
    new = {run for run, key in keys.items() if not (out / ".cache" / "runs" / key / "meta.json").exists()}
    assert new == {("depth", f"{n} layers") for n in (4, 5, 6)}

    log = tmp_path / "killed.log"
    proc = start(out, log, *args)
    trained_done = lambda: [e for e in done_events(out, "depth") if not e["cached"]]  # noqa: E731
    wait_for(lambda: len(trained_done()) >= 2, proc, log, what="two trained runs")
    # The kernel is in a session of its own (Jupyter's doing): killed too, as a crash would.
    kernels = kill_all(proc)
    assert proc.returncode == -signal.SIGKILL and kernels
    wait_gone(kernels)

    finished = {("depth", e["label"]) for e in trained_done() if e["status"] == "ok"}
    unfinished = new - finished
    assert len(finished) >= 2 and unfinished, (finished, unfinished)
    # Every run reported done is cached (it is saved before it is reported); no other new one is.
    cached = {run for run in new if (out / ".cache" / "runs" / keys[run] / "meta.json").exists()}
    assert cached == finished
    # The previous report is untouched and still whole.
    assert (html.read_bytes(), report_json.read_bytes()) == previous
    assert html.read_text().rstrip().endswith("</html>")

    b = build(out, *args)
    assert b.returncode == 0, b.stderr[-3000:]
    runs = report_runs(out)
    assert len(runs) == len(keys) == 9
    trained = {(r["study"], r["label"]) for r in runs if not r["cached"]}
    assert trained == unfinished
    assert sum(row["trained"] for row in b.summary.values()) == len(unfinished)
    assert b.summary["width"]["why"] == "unchanged"
    assert html.read_bytes() != previous[0]


# --- d: SIGTERM -----------------------------------------------------------------------------------

def test_sigterm_stops_the_build_with_130_and_keeps_the_report(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    html = out / f"{NAME}.html"
    before = html.read_bytes(), html.stat().st_mtime_ns
    log = tmp_path / "term.log"
    proc = start(out, log, "--studies", "depth", "--jobs", "1", "--set", "depth.layers=[4,5,6,7]")
    wait_for(lambda: len(done_events(out, "depth")) >= 1, proc, log, what="the first finished run")
    kernels = kernels_of(proc.pid)
    assert kernels
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # the build process only, as a service manager would
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        kill_all(proc)
        pytest.fail(f"no exit within 20 s of SIGTERM:\n{log.read_text()[-3000:]}")
    stderr = log.read_text()
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr
    assert time.monotonic() - t0 < 20
    wait_gone(kernels, timeout=5)  # the build stopped its kernels
    assert (html.read_bytes(), html.stat().st_mtime_ns) == before
    assert not (out / NAME / "depth.study.json").exists()  # the study is not marked reusable


# --- e: two builds on one folder ----------------------------------------------------------------

def test_a_second_build_on_the_same_folder_waits(tmp_path):
    out = tmp_path / "out"
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a, b = start(out, log_a, "--studies", "depth"), None
    try:
        wait_for(lambda: "Building" in log_a.read_text(), a, log_a, what="build A to take the lock")
        b = start(out, log_b, "--studies", "depth")
        wait_for(lambda: "waiting:" in log_b.read_text(), b, log_b, timeout=60, what="build B to wait")
        assert a.poll() is None, "build A finished before B said it was waiting"
        assert re.search(r"waiting: build_report\.py \(pid \d+\) is building in ", log_b.read_text())
        assert a.wait(timeout=240) == 0, log_a.read_text()[-3000:]
        assert b.wait(timeout=120) == 0, log_b.read_text()[-3000:]
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                kill_all(p)
    assert summary(log_a.read_text())["depth"]["trained"] == 3
    assert "(nothing changed)" in log_b.read_text()  # B found A's work done
    assert summary(log_b.read_text())["depth"]["trained"] == 0
    third = build(out, "--studies", "depth")
    assert third.returncode == 0 and "(nothing changed)" in third.stderr, third.stderr[-3000:]
    # The cache is whole: every entry reads back without a warning.
    store = cache.RunCache(out / ".cache")
    for key in run_keys(studies=["depth"]).values():
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
    assert entries == len(set(run_keys().values())) == 6
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
    b = build(out, "--studies", ",".join(STUDIES))
    assert b.returncode == 0, b.stderr[-3000:]
    assert {s: r["trained"] for s, r in b.summary.items()} == {"depth": 3, "width": 3}, b.stderr


# --- what an interrupted build leaves behind ------------------------------------------------------

def test_the_build_after_an_interrupted_one_says_why(first, tmp_path):
    src, _ = first
    out = copy_of(src, tmp_path / "out")
    # What an interrupted build of depth leaves: its results removed (the old study state kept,
    # to explain the re-run), its finished runs cached.
    (out / NAME / "depth.results.json").unlink()
    b = build(out, "--studies", ",".join(STUDIES))
    assert b.returncode == 0, b.stderr[-3000:]
    assert (b.summary["depth"]["trained"], b.summary["width"]["why"]) == (0, "unchanged")
    assert b.summary["depth"]["why"] == "previous build did not finish"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_giving_up_while_waiting_for_the_lock_exits_130(tmp_path, signum):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    log = tmp_path / "wait.log"
    with open(out / ".build.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another build holds the folder
        proc = start(out, log, "--studies", "depth")
        wait_for(lambda: "waiting:" in log.read_text(), proc, log, timeout=60, what="the build to wait")
        proc.send_signal(signum)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_all(proc)
            pytest.fail("no exit within 20 s")
    stderr = log.read_text()
    assert not (out / NAME).exists()  # it never got the lock: nothing was started
    assert "Traceback" not in stderr, stderr[-2000:]
    assert proc.returncode == 130, stderr[-2000:]

"""What the report machinery costs, on the QUICK profile of the default report (Fashion-MNIST, 32 runs).

In a temporary output folder (removed afterwards):
 1. build_seconds: a full quick build with an empty cache (build_report.py in a subprocess);
    build_over_fit_limit = build_seconds / (the trained runs' fit seconds / the local cluster's
    workers, one per core): how far the build is from keeping every worker training (goal <= 1.20);
 2. plain_keras_seconds: benchmarks/plain_keras.py training the runs that build trained, as one
    plain Keras process with every core (the build trains on one single-threaded worker per core);
    build_over_plain_ratio = 1 / 2 (goal <= 0.73, what it was before the Dask executor);
 3. noop_rerender_seconds: the same build again, nothing changed (goal <= 3);
 4. one_change_rerender_seconds: --set width.units=[8,16,32,64,96,128,256]; minus the new run's
    own training time (metrics.seconds of "96 units") = one_change_overhead_seconds (goal <= 10);
 5. in a fresh folder, a build killed with SIGKILL (process group and kernels) once about half of
    its runs have finished, then built again: killed_unfinished_runs (configurations not cached at
    the kill) and resumed_trained_runs (configurations the second build trained) must be equal.
    Both count distinct configurations (run keys): the default report trains its 4 x 128 baseline
    once and shows it in several studies.

Takes about 8-10 minutes on 2 cores.  python benchmarks/run.py build
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# Overridable for a quick check of this script itself (e.g. BENCH_PARAMS=digits BENCH_PROFILE=smoke).
PROFILE = os.environ.get("BENCH_PROFILE", "quick")
NAME = os.environ.get("BENCH_PARAMS", "report")  # params/NAME.yaml -> <out>/NAME.html, <out>/NAME/
CHANGE = "width.units=[8,16,32,64,96,128,256]"
NEW_RUN = ("width", "96 units")
GOALS = {"build_over_fit_limit": 1.20, "build_over_plain_ratio": 0.73, "noop_rerender_seconds": 3.0, "one_change_overhead_seconds": 10.0}
ENV = {**os.environ, "STUDYBOOK_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def log(msg: str) -> None:
    print(f"# build: {msg}", file=sys.stderr, flush=True)


def build_cmd(out: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "build_report.py"), str(ROOT / "params" / f"{NAME}.yaml"),
            "--profile", PROFILE, "--out", str(out), *args]


def timed_build(out: Path, *args: str, timeout: int = 1800) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(build_cmd(out, *args), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"build_report.py {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return seconds, proc.stderr


def runs_of(out: Path) -> list[dict]:
    return json.loads((out / f"{NAME}.json").read_text())["runs"]


def _ppid_and_parent_env(pid: int) -> tuple[int | None, str | None]:
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None, None
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        parent = next((e[len(b"JPY_PARENT_PID="):].decode() for e in env if e.startswith(b"JPY_PARENT_PID=")), None)
    except OSError:
        parent = None
    return ppid, parent


def kernels_of(pid: int) -> list[int]:
    """The build's kernels: its children, or any process naming it as its Jupyter parent
    (a kernel runs in a session of its own, so killing the build's group misses it)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pid:
            ppid, parent = _ppid_and_parent_env(int(entry))
            if ppid == pid or parent == str(pid):
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_build(proc: subprocess.Popen) -> None:
    """SIGKILL the build's process group and its kernels, and wait until all of them are gone."""
    kernels = set(kernels_of(proc.pid))
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        kernels |= set(kernels_of(proc.pid))  # one being started at the moment of the kill
        for k in kernels:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
        if not any(alive(k) for k in kernels | set(kernels_of(proc.pid))) or time.monotonic() > deadline:
            return


def done_events(work: Path) -> list[dict]:
    events = []
    for path in work.glob("*.events.jsonl"):
        for line in path.read_text().splitlines():
            if line.endswith("}"):
                e = json.loads(line)
                if e.get("event") == "done":
                    events.append(e)
    return events


def cached_keys(out: Path) -> set[str]:
    runs = out / ".cache" / "runs"
    return {p.parent.name for p in runs.glob("*/meta.json")} if runs.exists() else set()


def plain_keras(report_json: Path, *extra: str) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE / "plain_keras.py"), str(report_json), *extra],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"plain_keras.py exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return seconds, json.loads(proc.stdout.strip().splitlines()[-1])


def kill_and_resume(out: Path) -> dict:
    total = sum(1 for _ in _plan_runs())
    err = out.parent / "killed.stderr"
    with open(err, "w") as f:
        proc = subprocess.Popen(build_cmd(out), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=f,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 1800
        while len(done_events(out / NAME)) < total // 2:
            if proc.poll() is not None:
                raise RuntimeError(f"the build ended before half its runs:\n{err.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for half of the runs")
            time.sleep(0.1)
    finally:
        kill_build(proc)
    finished = [e for e in done_events(out / NAME) if e.get("status") == "ok"]
    at_kill = cached_keys(out)
    log(f"killed after {len(finished)} of {total} runs finished; {len(at_kill)} configurations cached")
    seconds, stderr = timed_build(out)
    runs = runs_of(out)
    unfinished = {r["key"] for r in runs} - at_kill
    trained = {r["key"] for r in runs if not r.get("cached")}
    return {"killed_finished_runs": len(finished), "killed_unfinished_runs": len(unfinished),
            "resumed_trained_runs": len(trained), "kill_resume_match": int(unfinished == trained),
            "resume_seconds": round(seconds, 1)}


def _plan_runs():
    sys.path.insert(0, str(ROOT / "src"))
    from helpers.config import load
    plan = load.load(ROOT / "params" / f"{NAME}.yaml", profile=PROFILE)
    for study in plan.studies.values():
        yield from study.runs


def main() -> dict:
    result: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="studybook-bench-"))
    try:
        out = tmp / "out"
        log(f"1. fresh {PROFILE} build of params/{NAME}.yaml in {out}")
        seconds, stderr = timed_build(out)
        runs = runs_of(out)
        trained = [r for r in runs if not r.get("cached")]
        fit = sum(r["metrics"]["seconds"] for r in trained)
        workers = os.cpu_count() or 1  # the local cluster's, by default
        result.update(build_seconds=round(seconds, 1), build_runs=len(runs), build_trained_runs=len(trained),
                      build_fit_seconds=round(fit, 1), build_workers=workers,
                      build_over_fit_limit=round(seconds / (fit / workers), 3))

        log(f"2. plain Keras, the same {len(trained)} runs, one process, {os.cpu_count()} threads")
        plain_seconds, plain = plain_keras(out / f"{NAME}.json")
        result.update(plain_keras_seconds=round(plain_seconds, 1), plain_keras_runs=plain["runs"],
                      plain_keras_train_seconds=round(plain["seconds"], 1),
                      plain_keras_fit_seconds=round(plain["fit_seconds"], 1),
                      plain_keras_same_epochs_run=plain["same_epochs_run"],
                      build_over_plain_ratio=round(seconds / plain_seconds, 3))
        # A plain script that trains all 32 runs, shared configurations included: the runs the
        # build reused within this build take as long as their twin (same key) took.
        per_key = {r["key"]: plain["per_run_seconds"][f"{r['study']}/{r['label']}"] for r in trained}
        extra = sum(per_key.get(r["key"], 0.0) for r in runs if r.get("cached"))
        result["plain_keras_all_runs_seconds_est"] = round(plain_seconds + extra, 1)

        log("3. no-op re-render")
        noop, stderr = timed_build(out)
        if "(nothing changed)" not in stderr:
            log("WARNING: the no-op build did not say '(nothing changed)'")
        result["noop_rerender_seconds"] = round(noop, 2)

        log(f"4. one change: --set {CHANGE}")
        one, stderr = timed_build(out, "--set", CHANGE)
        new = [r for r in runs_of(out) if (r["study"], r["label"]) == NEW_RUN]
        new_seconds = new[0]["metrics"]["seconds"]
        result.update(one_change_rerender_seconds=round(one, 1), one_change_new_run_seconds=round(new_seconds, 1),
                      one_change_trained_runs=sum(1 for r in runs_of(out) if not r.get("cached")),
                      one_change_overhead_seconds=round(one - new_seconds, 1))

        log("5. kill -9 at the middle of a fresh build, then build again")
        killed = tmp / "killed"
        killed.mkdir()
        result.update(kill_and_resume(killed / "out"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, goal in GOALS.items():
        value = result.get(name)
        result[f"goal_{name}"] = f"<= {goal}" + ("" if value is None else (" met" if value <= goal else " MISSED"))
    result["goal_kill_resume_match"] = "== 1" + (" met" if result.get("kill_resume_match") == 1 else " MISSED")
    result["cores"] = os.cpu_count()
    result["load_average_1min"] = round(os.getloadavg()[0], 2)  # other work on the machine skews timings
    return result


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key}: {value}", flush=True)

"""Runs as Dask tasks (helpers.run.executor, helpers.build.cluster): a real `dask scheduler` and
`dask worker` processes on 127.0.0.1, a worker killed mid-run, a worker without the data, two
kernels asking for one run, a scheduler that does not answer, and a default build that listens on
loopback only. Every server a test starts is stopped by it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, DaskCluster, run_build
from helpers.run import executor

# Paths and wall times differ between two builds of the same runs; nothing else may.
IGNORED = ("seconds", "source", "cached")
# Two studies that share a configuration (two 64-unit layers, relu, adam).
STUDIES = ("depth", "activation")


def _comparable(value):
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in IGNORED}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _runs(data: dict) -> dict:
    return {(r["study"], r["label"], r["seed"]): _comparable(r) for r in data["runs"]}


def test_a_report_built_on_a_cluster_equals_the_local_one_though_a_worker_is_killed(tmp_path, digits_report):
    cluster = DaskCluster(tmp_path)
    try:
        cluster.worker("w1")
        cluster.worker("w2")
        watch = cluster.client(2)
        out = tmp_path / "out"
        build = subprocess.Popen(
            [sys.executable, str(ROOT / "build_report.py"), str(ROOT / "params" / "digits.yaml"), "--profile",
             "smoke", "--out", str(out), "--scheduler", str(cluster.file), "--studies", ",".join(STUDIES)],
            env={**os.environ, "STUDYBOOK_OFFLINE": "1", "PYTHONUNBUFFERED": "1"},
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        # Kill the first worker seen training a run: SIGKILL, as a machine that goes away.
        killed, deadline = None, time.time() + 300
        while killed is None and time.time() < deadline and build.poll() is None:
            for worker, keys in watch.processing().items():
                if any(str(k).startswith("run-") for k in keys):
                    pid = watch.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed = (worker, [str(k) for k in keys])
                    break
            time.sleep(0.05)
        stderr = build.communicate(timeout=600)[1]
        print(f"killed {killed}\n{stderr}")  # the note's log lines (pytest -s)
        assert killed is not None, "no worker was seen training a run"
        assert build.returncode == 0, stderr[-3000:]
        assert f"Dask scheduler {watch.scheduler.address}, 2 workers" in stderr
        here = json.loads((out / "digits.json").read_text())
        assert all(r["status"] == "ok" for r in here["runs"])
        assert _runs(here) == _runs({"runs": [r for r in digits_report.data["runs"] if r["study"] in STUDIES]})
        # A configuration two studies share trained once: its second study reused the first's run.
        by_key = {}
        for r in here["runs"]:
            by_key.setdefault(r["key"], []).append(r)
        shared = [rs for rs in by_key.values() if len({r["study"] for r in rs}) > 1]
        assert shared
        for rs in shared:
            assert len({r["metrics"]["seconds"] for r in rs}) == 1
            assert sum(not r["cached"] for r in rs) == 1
        watch.close()
    finally:
        cluster.stop()


def test_a_worker_without_the_data_stops_the_build_naming_it(tmp_path):
    from fakedata import write_mnist
    data, empty = tmp_path / "data", tmp_path / "empty"
    data.mkdir()
    empty.mkdir()
    write_mnist(data, 600, 200)
    cluster = DaskCluster(tmp_path)
    try:
        cluster.worker("bare", env={"STUDYBOOK_DATA_DIR": str(empty), "HOME": str(empty),
                                    "KERAS_HOME": str(empty)})
        cluster.client(1).close()
        out = tmp_path / "out"
        proc = run_build(ROOT / "params" / "digits.yaml", "--profile", "smoke", "--studies", "depth", "--set",
                         "dataset=mnist", "--out", out, "--scheduler", cluster.file,
                         env={"STUDYBOOK_DATA_DIR": str(data)})
        assert proc.returncode == 2, proc.stderr[-2000:]
        (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
        assert "worker tcp://127.0.0.1:" in line and "mnist.npz" in line and "missing" in line
        assert not (out / "digits.html").exists() and not list((out / ".cache").glob("runs/*"))
    finally:
        cluster.stop()


def test_an_unreachable_scheduler_is_a_one_line_error(tmp_path):
    import socket
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    proc = run_build(ROOT / "params" / "digits.yaml", "--profile", "smoke", "--studies", "depth",
                     "--out", tmp_path / "out", "--scheduler", f"tcp://127.0.0.1:{port}",
                     env={executor.ENV_CONNECT_TIMEOUT: "2s"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert time.perf_counter() - start < 60
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert f"--scheduler tcp://127.0.0.1:{port}: no Dask scheduler answered within 2s" in line
    assert not (tmp_path / "out" / "digits.html").exists()


@pytest.mark.parametrize("args, match", [
    (("--workers", "0"), "--workers 0: must be at least 1"),
    (("--workers", "2", "--scheduler", "tcp://127.0.0.1:1"), "--workers 2: a cluster given by --scheduler"),
])
def test_bad_cluster_options_are_one_line_errors(tmp_path, args, match):
    proc = run_build(ROOT / "params" / "digits.yaml", "--profile", "smoke", "--out", tmp_path, *args)
    assert proc.returncode == 2 and match in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


KERNEL = """
import json, sys
from helpers.run import training
spec, cache_dir, events = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
(record,) = training.run_all([spec], cache_dir=cache_dir, events_path=events)
print(json.dumps({"status": record["status"], "seconds": record["metrics"]["seconds"],
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def test_two_kernels_asking_for_one_run_at_once_train_it_once_and_store_it_once(tmp_path, digits_plan):
    """Two kernel processes (clients of one scheduler) ask for the same run at the same time."""
    from distributed import Client, LocalCluster, get_task_stream
    spec = digits_plan.studies["depth"].runs[0]
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      worker_dashboard_address=None) as local, Client(local, set_as_default=False) as watch:
        env = {**os.environ, "STUDYBOOK_SCHEDULER": local.scheduler_address, "PYTHONPATH": str(ROOT / "src")}
        with get_task_stream(client=watch) as stream:
            kernels = [subprocess.Popen([sys.executable, "-c", KERNEL, json.dumps(spec), str(tmp_path / "cache"),
                                         str(tmp_path / f"{i}.jsonl")], env=env, stdout=subprocess.PIPE, text=True)
                       for i in range(2)]
            answers = [json.loads(k.communicate(timeout=300)[0].strip().splitlines()[-1]) for k in kernels]
        runs = [t for t in stream.data if str(t["key"]).startswith("run-")]
    assert len(runs) == 1
    assert all(a["status"] == "ok" for a in answers) and answers[0]["seconds"] == answers[1]["seconds"]
    assert not any(a["tensorflow"] for a in answers)  # a kernel that only submits never loads TensorFlow
    stored = [json.loads(line)["stored"] for i in range(2)
              for line in (tmp_path / f"{i}.jsonl").read_text().splitlines() if '"done"' in line]
    assert sorted(stored) == [False, True]
    assert len(list((tmp_path / "cache" / "runs").iterdir())) == 1


def test_a_default_build_starts_a_local_cluster_that_listens_on_loopback_only(tmp_path):
    import psutil

    from helpers.build.cluster import Cluster
    from helpers.run import executor
    before = os.environ.get(executor.ENV_SCHEDULER)
    os.environ.pop(executor.ENV_SCHEDULER, None)
    # Dask's default HTTP port taken by something else (another Dask, a notebook server): no
    # "Port 8787 is already in use" warning in the build's output.
    import socket
    import warnings
    with socket.socket() as taken, warnings.catch_warnings(record=True) as caught:
        try:
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        except OSError:
            pass  # already taken: the same case
        warnings.simplefilter("always")
        cluster = Cluster.start(workers=1, log=str(tmp_path / "workers.log"))
    assert not [w for w in caught if "8787" in str(w.message)]
    try:
        assert len(cluster.workers()) == 1
        cluster.grow(2)  # a later phase with more runs to train than the first had
        assert cluster.address.startswith("tcp://127.0.0.1:") and len(cluster.workers()) == 2
        assert os.environ[executor.ENV_SCHEDULER] == cluster.address  # what the kernels join
        # No statistical profiler sampling the training threads (it holds the GIL).
        import dask
        assert set(cluster.client.run(lambda: dask.config.get("distributed.worker.profile.enabled")).values()) == {False}
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        listening = [c for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and all(c.laddr.ip == "127.0.0.1" for c in listening), listening
        # Nothing connects beyond loopback either.
        remote = [c for p in procs for c in p.net_connections(kind="inet") if c.raddr]
        assert all(c.raddr.ip == "127.0.0.1" for c in remote), remote
    finally:
        cluster.close()
        if before is not None:
            os.environ[executor.ENV_SCHEDULER] = before
    # Nor the build's id: a later run_all in this process would take a cache hit for its own run.
    assert executor.ENV_SCHEDULER not in os.environ and "STUDYBOOK_BUILD" not in os.environ


def test_without_a_cluster_runs_train_in_the_process(monkeypatch, digits_plan):
    """A notebook opened by hand (no STUDYBOOK_SCHEDULER): no connection is attempted."""
    from helpers.run import executor
    monkeypatch.delenv(executor.ENV_SCHEDULER, raising=False)
    executor.client.cache_clear()
    assert executor.client() is None
    calls = []
    out = list(executor.map_runs(lambda x: calls.append(x) or x * 2, [1, 2, 3], [None] * 3))
    assert out == [(0, 2), (1, 4), (2, 6)] and calls == [1, 2, 3]


def test_dasks_own_messages_go_to_the_workers_log_not_the_terminal(tmp_path, capfd):
    """A nanny whose worker a Ctrl-C killed logs a traceback while the cluster stops: the user
    must see the build's one line, not Dask's internals (found in CI: the SIGINT test saw one)."""
    import distributed  # noqa: F401 - its logging set up as in a build
    import logging
    from helpers.build import cluster
    log = tmp_path / "workers.log"
    cluster._log_to(str(log))
    logging.getLogger("distributed.nanny").error("Traceback: worker exited")
    logging.getLogger("distributed.client").warning("connection closed")
    logging.getLogger("distributed.core").info("chatter")
    assert "worker exited" not in capfd.readouterr().err
    text = log.read_text()
    assert "distributed.nanny - ERROR - Traceback: worker exited" in text
    assert "connection closed" in text and "chatter" not in text

"""The Dask executor on this machine (issue 14; issue 13's threads-or-processes question).

One grid (the default report's width study, quick profile: 6 runs on Fashion-MNIST) trained
through helpers.run.executor on a warm local cluster (workers started and TensorFlow loaded
before the clock starts; no cache):
 - grid_seconds_1x1, grid_seconds_2x1: 1 and 2 worker processes, one TensorFlow thread each;
   scaling_efficiency = (1x1 / 2x1) / 2   (goal >= 0.85);
 - grid_seconds_1x2: 1 worker process with 2 intra-op threads (the same cores, fewer processes);
   threads_over_processes = 1x2 / 2x1 (> 1: one thread per process is faster, the default);
 - task_overhead_ms: a scheduler round trip (submit, run an empty task, result), mean of 200 on
   a warm 2-worker cluster (goal <= 50).
Takes about 3 minutes on 2 cores.  python benchmarks/run.py executor
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("STUDYBOOK_OFFLINE", "1")
GOALS = {"scaling_efficiency": (">=", 0.85), "task_overhead_ms": ("<=", 50.0)}


def _grid() -> list[dict]:
    from helpers.config import load
    plan = load.load(ROOT / "params" / "report.yaml", profile="quick", studies=["width"])
    return plan.studies["width"].runs


def _threads(n: int) -> None:
    """In a worker, before TensorFlow loads: ``n`` intra-op threads instead of the pinned one."""
    from helpers.run import training
    training.INTRA_OP_THREADS = n
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)


def _noop(i: int) -> int:
    return i


def grid_seconds(workers: int, threads: int, runs: list[dict]) -> float:
    import dask
    from distributed import Client, LocalCluster

    from helpers.build.cluster import DASK_CONFIG
    from helpers.run import executor, training
    dask.config.set(DASK_CONFIG)  # as a build's workers: no statistical profiler
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      worker_dashboard_address=None) as cluster, Client(cluster, set_as_default=False) as client:
        if threads != 1:
            client.run(_threads, threads)
        client.run(training.warm)
        client.run(lambda: training.task(runs[0]))  # data loaded and the first graph traced, everywhere
        start = time.perf_counter()
        records = [r for _, r in executor.map_runs(training.task, runs, [None] * len(runs), pool=client)]
        seconds = time.perf_counter() - start
    bad = [r for r in records if r["status"] != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} runs failed: {bad[0].get('error')}")
    return seconds


def overhead_ms(n: int = 200) -> float:
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      worker_dashboard_address=None) as cluster, Client(cluster, set_as_default=False) as client:
        client.submit(_noop, -1, pure=False).result()
        start = time.perf_counter()
        for i in range(n):
            client.submit(_noop, i, pure=False).result()
        return (time.perf_counter() - start) / n * 1000


def main() -> dict:
    runs = _grid()
    one = grid_seconds(1, 1, runs)
    two = grid_seconds(2, 1, runs)
    threaded = grid_seconds(1, 2, runs)
    result = {"grid_runs": len(runs), "grid_seconds_1x1": round(one, 1), "grid_seconds_2x1": round(two, 1),
              "grid_seconds_1x2": round(threaded, 1), "scaling_efficiency": round(one / two / 2, 3),
              "threads_over_processes": round(threaded / two, 3), "task_overhead_ms": round(overhead_ms(), 2)}
    for name, (op, goal) in GOALS.items():
        met = result[name] >= goal if op == ">=" else result[name] <= goal
        result[f"goal_{name}"] = f"{op} {goal} " + ("met" if met else "MISSED")
    result["cores"] = os.cpu_count()
    return result


if __name__ == "__main__":
    for k, v in main().items():
        print(f"{k}: {v}")

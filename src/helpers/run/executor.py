"""Where runs train: as tasks of a Dask cluster when the process has one (a build's kernels: the
build starts or joins it and names it in STUDYBOOK_SCHEDULER), else here, one after another (a
notebook opened by hand, a test). A task is a pure function of its run spec (helpers.run.training.
task; the data files, code and versions are checked equal on every worker before a build trains,
helpers.build.cluster) that returns the run's record. Its Dask key is the run's cache key, so a
configuration that two studies (or two kernels) ask for at once trains once; the caller writes the
cache entry, so workers need no shared filesystem."""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, Iterator

ENV_SCHEDULER = "STUDYBOOK_SCHEDULER"
# How long a client waits for a scheduler: the build's is up when its kernels start, and a build
# given an unreachable one says so within this (longer for a cluster slow to answer).
ENV_CONNECT_TIMEOUT = "STUDYBOOK_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = "10s"


def connect_timeout() -> str:
    return os.environ.get(ENV_CONNECT_TIMEOUT, "").strip() or DEFAULT_CONNECT_TIMEOUT


@functools.lru_cache(maxsize=1)
def client():
    """This process's Dask client, connected to the scheduler named in STUDYBOOK_SCHEDULER (an
    address, or a scheduler file); None when there is none (runs then train in this process)."""
    where = os.environ.get(ENV_SCHEDULER, "").strip()
    return connect(where) if where else None


def connect(where: str):
    """A Dask client of the scheduler at ``where``: an address (tcp://host:8786) or a scheduler file."""
    from distributed import Client
    if os.path.isfile(where):
        return Client(scheduler_file=where, timeout=connect_timeout(), set_as_default=False)
    return Client(where, timeout=connect_timeout(), set_as_default=False)


def task_key(run_key: str) -> str:
    return f"run-{run_key}"


def map_runs(fn: Callable[[Any], Any], items: list, keys: list[str | None], *, pool=None, priority: int = 1,
             on_submit: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any]]:
    """(index, fn(item)) as each finishes, on ``pool`` (a Dask client; default: client()) or,
    without one, here in order. ``keys``: the items' run keys, which name their tasks (None: a
    task of its own). A worker that dies costs Dask a retry on another worker; what cannot be
    computed (its workers keep dying, the scheduler is gone) comes back as the exception."""
    if not items:  # nothing to train: no connection to a cluster
        return
    pool = client() if pool is None else pool
    if pool is None:
        for i, item in enumerate(items):
            if on_submit:
                on_submit(i)
            yield i, fn(item)
        return
    from distributed import as_completed
    futures = {}
    for i, (item, key) in enumerate(zip(items, keys)):
        kw = {"key": task_key(key)} if key else {"pure": False}
        futures[pool.submit(fn, item, priority=priority, **kw)] = i
        if on_submit:
            on_submit(i)
    try:
        for future in as_completed(futures, loop=pool.loop):
            try:
                yield futures[future], future.result()
            except Exception as e:  # noqa: BLE001 - KilledWorker, a lost scheduler: that item's failure
                yield futures[future], e
    finally:
        for future in futures:
            future.release()

"""The build's Dask cluster: every run trains as a task on it (helpers.run.executor).

By default a LocalCluster of single-threaded worker processes, on 127.0.0.1 only, kept for the
whole build; with ``--scheduler`` (or STUDYBOOK_SCHEDULER) an existing cluster, checked first: a
worker that sees other data files, code or package versions than the build would make runs whose
cache keys lie, so the build stops (exit 2) naming it. The build submits every run of the studies
it executes at once (``prefetch``), so the workers never wait for a kernel to start, and stores
each finished run in the cache itself; the kernels ask for the same tasks by key and get the same
results."""
from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass, field

from helpers.build import state as state_of
from helpers.config.plan import StudyPlan
from helpers.data.registry import DatasetMissing, content_hash
from helpers.run import cache, executor, training


class ClusterError(Exception):
    """The cluster cannot train this build's runs as their keys say; str() is one line."""


def preflight(datasets: list[str]) -> dict:
    """What a worker would train with (run there): the inputs of a run key that are not in the
    spec, and the device class its Keras sees."""
    data = {}
    for name in datasets:
        try:
            data[name] = content_hash(name)
        except DatasetMissing as e:
            data[name] = f"missing ({e})"
    return {"versions": cache.versions(), "sources": cache.source_hash(), "data": data,
            "device": training.warm()}


def cost(spec: dict) -> float:
    """A run's relative training time, roughly: multiply-adds per sample (dense layers, and conv
    layers on a 28×28 input) × samples × epochs, plus per-step overhead at small batches. Only
    its order matters: the longest runs start first, so the build does not end on one of them
    while the other workers idle."""
    m, t, d = spec["config"]["model"], spec["config"]["training"], spec["config"]["data"]
    width, area, channels, work = 784, 784.0, 1, 0.0
    if m.get("kind") == "cnn":
        for f in m.get("filters", []):
            work += area * channels * f * m.get("kernel_size", 3) ** 2
            area, channels = area / m.get("pool_size", 2) ** 2, f
        width = int(area * channels)
    for units in m.get("hidden", []):
        work += width * units
        width = units
    work += width * 10
    return work * (d.get("train_samples") or 50_000) * t["epochs"] * (1 + 32 / t["batch_size"])


def _mismatch(worker: str, mine: dict, theirs: dict) -> str | None:
    for name, value in theirs["data"].items():
        if value != mine["data"][name]:
            what = value if value.startswith("missing") else "other files (content hash differs)"
            return f"worker {worker} cannot train on {name}: {what}"
    if theirs["sources"] != mine["sources"]:
        return f"worker {worker} runs other training code (helpers/data, helpers/run differ from this checkout)"
    for k in sorted(set(mine["versions"]) | set(theirs["versions"])):
        if mine["versions"].get(k) != theirs["versions"].get(k):
            return (f"worker {worker} has {k} {theirs['versions'].get(k)}, this build "
                    f"{mine['versions'].get(k)}")
    return None


def _log_to(log: str | None) -> None:
    """Dask's own messages in the build process (a nanny whose worker died, a connection closed
    while stopping) go to the workers' log, not to the terminal: what the user needs of them is
    the run record or the one-line error the build gives."""
    handler = logging.FileHandler(log) if log else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    handler.setLevel(logging.WARNING)
    names = [n for n in list(logging.Logger.manager.loggerDict) if n == "distributed" or n.startswith("distributed.")]
    for name in names or ["distributed"]:
        logger = logging.getLogger(name)
        for h in [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]:
            logger.removeHandler(h)
        logger.propagate = True  # up to the one handler below
    root = logging.getLogger("distributed")
    root.addHandler(handler)
    root.propagate = False


def _dashboard(client) -> str | None:
    """The scheduler's dashboard link if a dashboard answers there: Dask makes up a link from its
    config, and a scheduler without bokeh serves only /health and /metrics at it."""
    import urllib.request
    link = client.dashboard_link
    try:
        with urllib.request.urlopen(link, timeout=2) as r:
            return link if r.status == 200 else None
    except (OSError, ValueError):
        return None


def wanted(plans: list[StudyPlan], states: dict, cache_dir, force, held=(), *, repair: bool = True) -> dict:
    """The runs of ``plans`` to train: those the cache does not hold (all of a forced study's),
    as key -> (spec, inputs, forced); the first study that has a run is the one it trains for.
    A search is left out: its kernel submits its trials as the oracle proposes them (helpers.run.search).
    ``repair``: as RunCache.get's."""
    store = cache.RunCache(cache_dir)
    todo = {}
    for plan in plans:
        forced = state_of.forced(force, plan.name)
        for spec, run in zip(plan.runs, states[plan.name]["runs"].values()):
            key = run["key"]
            if "search" in spec or key in todo or key in held:
                continue
            if forced or store.get(key, repair=repair) is None:
                todo[key] = (spec, run["inputs"], forced)
    return todo


# The Dask settings a build's cluster runs with (benchmarks/executor.py measures with them too).
# Workers train in their task threads for seconds at a time: said by Dask, not news. Dask's
# statistical profiler samples a task thread's Python stack every 10 ms, holding the GIL that
# tracing a Keras model needs: 7 % of a smoke run, for a dashboard no build shows.
DASK_CONFIG = {"distributed.admin.tick.limit": "1h", "logging.distributed": "error",
               "distributed.worker.profile.enabled": False}


@dataclass
class Cluster:
    client: object
    address: str
    local: object = None                 # the LocalCluster this build started, else None
    dashboard: str | None = None
    held: dict = field(default_factory=dict)   # task key -> future, released at the end of a phase
    writer: threading.Thread | None = None
    warming: list = field(default_factory=list)  # a local cluster's workers loading TensorFlow
    log: str | None = None                       # where a local cluster's workers write their output

    @classmethod
    def start(cls, *, scheduler: str | None = None, workers: int | None = None,
              datasets: tuple[str, ...] = (), log: str | None = None) -> Cluster:
        """Join ``scheduler`` (an address or a scheduler file) and check its workers, or start a
        local cluster of ``workers`` single-threaded processes (default: one per core) whose
        output (TensorFlow's C++ logging) goes to the file ``log``."""
        import dask
        from distributed import Client
        dask.config.set(DASK_CONFIG)
        _log_to(log)
        os.environ.setdefault(training.ENV_BUILD, uuid.uuid4().hex)
        if scheduler is None:
            from distributed import LocalCluster
            # Loopback only, no dashboards: nothing of a default build listens beyond this machine.
            # The scheduler serves /health on an HTTP port even without a dashboard: a free one,
            # or it takes 8787 and warns in the build's output when something else has it.
            local = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                 processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                 worker_dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(local, set_as_default=False)
            out = cls(client, local.scheduler_address, local=local, log=log)
            out.warm()
        else:
            try:
                client = executor.connect(scheduler)
            except (OSError, TimeoutError) as e:
                raise ClusterError(f"--scheduler {scheduler}: no Dask scheduler answered within "
                                   f"{executor.connect_timeout()} ({type(e).__name__})") from None
            out = cls(client, client.scheduler.address, dashboard=_dashboard(client))
            out.check(datasets)
        os.environ[executor.ENV_SCHEDULER] = out.address  # the kernels' clients
        return out

    def warm(self) -> None:
        """Each worker loads TensorFlow (or JAX) now, while the kernels start."""
        self.warming = [self.client.submit(training.warm, self.log, workers=[w], pure=False, allow_other_workers=False)
                        for w in self.workers()]

    def grow(self, n: int) -> None:
        """A local cluster started for fewer runs gets workers up to ``n``, warmed at once."""
        if self.local is None or n <= len(self.workers()):
            return
        self.local.scale(n)
        self.client.wait_for_workers(n, timeout=120)
        self.warm()

    def restart(self) -> None:
        """New worker processes for a local cluster (a worker keeps the training code it imported),
        warmed at once."""
        self.client.restart(wait_for_workers=True)
        self.warm()

    def workers(self) -> list[str]:
        return sorted(self.client.scheduler_info()["workers"])

    def check(self, datasets: tuple[str, ...]) -> None:
        """Every worker must see the data, code and versions this build keys its runs with; their
        Keras must see one device class, which then stands in the keys (a GPU worker's sums
        differ from a CPU's)."""
        names = self.workers()
        if not names:
            raise ClusterError(f"--scheduler {self.address}: the scheduler has no workers")
        futures = {w: self.client.submit(preflight, list(datasets), workers=[w], pure=False,
                                         allow_other_workers=False) for w in names}
        mine = {"versions": cache.versions(), "sources": cache.source_hash(),
                "data": {name: content_hash(name) for name in datasets}}
        devices = {}
        for w, f in futures.items():
            theirs = f.result()
            problem = _mismatch(w, mine, theirs)
            if problem:
                raise ClusterError(problem)
            devices[w] = theirs["device"]
        if len(set(devices.values())) > 1:
            raise ClusterError("workers train on different devices (" + ", ".join(
                f"{w}: {d}" for w, d in devices.items()) + "): a run's numbers would depend on where it ran")
        os.environ[cache.ENV_DEVICE] = next(iter(devices.values()))

    def prefetch(self, todo: dict, cache_dir) -> None:
        """Submit the runs ``wanted`` found, longest first (``cost``), and store each result as it
        finishes; the first study asking for a run is the one it is trained for."""
        if not todo:
            return
        store = cache.RunCache(cache_dir)
        futures = {}
        longest_first = sorted(todo, key=lambda k: -cost(todo[k][0]))
        for rank, key in enumerate(longest_first):
            # Below a kernel's own submissions (executor.map_runs: priority 1 and up).
            priority = -1 - rank
            futures[self.client.submit(training.task, todo[key][0], key=executor.task_key(key), priority=priority)] = key
        self.held.update({key: f for f, key in futures.items()})

        def write() -> None:
            from distributed import as_completed
            for future in as_completed(futures, loop=self.client.loop):
                key = futures[future]
                spec, inputs, forced = todo[key]
                try:
                    record = future.result()
                except Exception:  # noqa: BLE001 - the kernel that asks for it reports it
                    continue
                training.keep(store, key, record, inputs, replace=forced, trained_for=spec["study"])
        self.writer = threading.Thread(target=write, daemon=True)
        self.writer.start()

    def release(self) -> None:
        """End of a phase: every kernel has its results; the workers may forget them."""
        if self.writer is not None:
            self.writer.join()
        for f in self.held.values():
            f.release()
        self.held.clear()

    def close(self) -> None:
        """Cancel what is queued (a remote cluster keeps running; a local one is stopped)."""
        for name in (executor.ENV_SCHEDULER, training.ENV_BUILD, cache.ENV_DEVICE):  # nothing outlives the build's cluster
            os.environ.pop(name, None)
        try:
            if self.held:
                self.client.cancel(list(self.held.values()))
            self.client.close(timeout=5)
        finally:
            if self.local is not None:
                self.local.close(timeout=10)

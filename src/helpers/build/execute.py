"""Execution: each study notebook runs under papermill in its own kernel; a failure is captured,
never raised, so the other studies go on. Progress comes back through per-study event files."""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from helpers.config.load import NOTEBOOKS, ROOT
from helpers.config.plan import StudyPlan, expand_robustness, phases
from helpers.config.record import RESULTS, RunRecord, Status
from helpers.build import state as state_of
from helpers.run import cache



@dataclass
class Outcome:
    name: str
    status: Status = Status.OK         # ok | failed
    executed: bool = True              # False: the notebook and its results were reused as they were
    why: str = ""                      # why the study was executed again (or "unchanged")
    state_key: str = ""                # the study's state key (helpers.build.state.study)
    error: str | None = None           # why the study failed (notebook error or failed runs)
    traceback: str = ""
    seconds: float = 0.0
    records: list[RunRecord] = field(default_factory=list)
    notebook: Path | None = None


def kernel_env(threads: int) -> None:
    """What every kernel inherits: the helpers importable, quiet TensorFlow, bounded threads."""
    src = str(ROOT / "src")
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([src, *[p for p in paths if p != src]])
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["OMP_NUM_THREADS"] = str(threads)


_KERNELS: set = set()  # processes of the kernels running now, to stop them on an interrupt


def stop_kernels() -> None:
    import signal
    for proc in list(_KERNELS):
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, AttributeError):
            pass


def _kernel_manager(log_path: Path):
    """A kernel manager whose kernel writes its own stdout/stderr (TensorFlow's C++ start-up
    logging, kernel warnings) to a log file beside the notebook, not over our progress lines."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            log = open(log_path, "ab")  # noqa: SIM115 - the kernel process owns it from here
            kw.update(stdout=log, stderr=log)
            try:
                result = await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                log.close()  # the child holds its own descriptor
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                _KERNELS.add(process)
            return result

        async def _async_shutdown_kernel(self, *args, **kw):
            _KERNELS.discard(getattr(self.provisioner, "process", None))
            return await super()._async_shutdown_kernel(*args, **kw)
    return LoggedKernelManager


def run_study(plan: StudyPlan, out_dir: Path, *, threads: int, notebooks: Path = NOTEBOOKS,
              cache_dir: Path | None = None, force: bool = False, state: dict | None = None) -> Outcome:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / f"{plan.name}.results.json"
    events = out_dir / f"{plan.name}.events.jsonl"
    notebook = out_dir / f"{plan.name}.ipynb"
    state_path = out_dir / f"{plan.name}.study.json"
    old_state = state_of.previous(out_dir, plan.name)
    # The old state stays until this execution ends: it explains the next build's re-run even if
    # this one is interrupted; without results.json it can no longer mark the study reusable.
    for stale in (results, events, out_dir / f"{plan.name}.kernel.log"):
        stale.unlink(missing_ok=True)
    outcome = Outcome(plan.name, notebook=notebook)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(notebooks / f"{plan.kind}.ipynb"), str(notebook),
            parameters={"study": plan.name, "title": plan.title, "question": plan.question,
                        "runs": plan.runs, "results_path": str(results), "events_path": str(events),
                        "threads": threads, "cache_dir": str(cache_dir) if cache_dir else None,
                        "force": force},
            kernel_name="python3", progress_bar=False, log_output=False, cwd=str(out_dir),
            # Every output is in the notebook and every result on disk by then: a graceful
            # shutdown would only wait about a second for TensorFlow to tear down.
            shutdown_kernel="immediate",
            kernel_manager_class=_kernel_manager(out_dir / f"{plan.name}.kernel.log"))
    except PapermillExecutionError as e:
        outcome.status = Status.FAILED
        outcome.error = f"{e.ename}: {e.evalue}".strip()
        outcome.traceback = "\n".join(e.traceback)
    except Exception as e:  # noqa: BLE001 - a kernel that dies is one study's failure, not the build's
        outcome.status = Status.FAILED
        outcome.error = f"{type(e).__name__}: {e}"
    outcome.seconds = time.perf_counter() - start
    if results.exists():
        outcome.records = json.loads(results.read_text())
    failed = [r for r in outcome.records if r.get("status") not in RESULTS]  # diverged: a result
    if failed and outcome.status == Status.OK:
        outcome.status = Status.FAILED
        outcome.error = f"{len(failed)} of {len(outcome.records)} runs failed; first: {failed[0]['label']}: {failed[0].get('error')}"
    if state is not None:
        outcome.state_key = state["key"]
        outcome.why = state_of.why_changed(old_state, state, forced=force)
        if outcome.status == Status.OK:  # written last, only after success: the marker of a reusable study
            cache.write_atomic(state_path, json.dumps(state))
        else:
            state_path.unlink(missing_ok=True)
    return outcome


class EventWatcher(threading.Thread):
    """Tails the studies' event files and hands each new event to a callback."""

    def __init__(self, paths: list[Path], callback: Callable[[dict], None], every: float = 0.25):
        super().__init__(daemon=True)
        self.paths, self.callback, self.every = paths, callback, every
        self.offsets = {p: 0 for p in paths}
        self.done = threading.Event()
        self.lock = threading.Lock()

    def poll(self) -> None:
        with self.lock:
            self._poll()

    def _poll(self) -> None:
        for p in self.paths:
            if not p.exists():
                continue
            with open(p) as f:
                f.seek(self.offsets[p])
                chunk = f.read()
            complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits
            self.offsets[p] += len(complete)
            for line in complete.splitlines():
                if line.strip():
                    self.callback(json.loads(line))

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.poll()
        self.poll()


def run_studies(plans: list[StudyPlan], out_dir: Path, *, jobs: int, on_event: Callable[[dict], None],
                on_study: Callable[[Outcome], None], notebooks: Path = NOTEBOOKS,
                cache_dir: Path | None = None, force: set[str] | bool = False,
                on_execute: Callable[[], None] | None = None,
                cluster: Callable[[list[StudyPlan], dict], object] | None = None) -> list[Outcome]:
    """Run the studies that changed, ``jobs`` kernels at a time; reuse the others. ``force``: True
    for all studies, or a set of study names. ``on_execute`` is called before the first kernel
    starts, when some study is to be executed (once per phase: a robustness study runs in a second
    one); then ``cluster(plans, states)`` submits the runs those studies will train to the Dask
    cluster (helpers.build.cluster) and gives it, or None when they train none."""
    first, later = phases(plans)
    if later:
        return _robustness_last(plans, first, later, out_dir, jobs=jobs, on_event=on_event, on_study=on_study,
                                notebooks=notebooks, cache_dir=cache_dir, force=force, on_execute=on_execute,
                                cluster=cluster)
    states = {p.name: state_of.study(p, notebooks) for p in plans} if cache_dir else {}
    reused = {}
    for plan in plans:
        kept = None if state_of.forced(force, plan.name) or not cache_dir else state_of.reuse(plan, out_dir, states[plan.name], cache_dir)
        if kept is not None:
            old = Outcome(plan.name, executed=False, why="unchanged", records=kept,
                          notebook=out_dir / f"{plan.name}.ipynb", state_key=states[plan.name]["key"])
            reused[plan.name] = old
            on_study(old)
    todo = [p for p in plans if p.name not in reused]
    if todo:
        # Imported here, before any thread: starting a kernel imports IPython.paths (jupyter_client's
        # kernel specs) while on_execute's preload may be importing IPython itself, and two threads
        # importing a package and its submodule at once deadlock in importlib (KeyError: 'IPython')
        # or see it half-initialised (ImportError: AsyncKernelManager from jupyter_client.manager).
        import IPython  # noqa: F401
        import jupyter_client.manager  # noqa: F401
        import papermill  # noqa: F401
    if todo and on_execute is not None:
        on_execute()
    dask = cluster(todo, states) if todo and cluster is not None and cache_dir else None
    threads = max(1, (os.cpu_count() or 1) // max(1, min(jobs, len(todo) or 1)))
    kernel_env(threads)
    for plan in todo:  # stale events from an earlier build must not be replayed
        (out_dir / f"{plan.name}.events.jsonl").unlink(missing_ok=True)
    watcher = EventWatcher([out_dir / f"{p.name}.events.jsonl" for p in todo], on_event)
    watcher.start()
    interrupted = threading.Event()

    def one(plan: StudyPlan) -> Outcome:
        outcome = run_study(plan, out_dir, threads=threads, notebooks=notebooks, cache_dir=cache_dir,
                            force=state_of.forced(force, plan.name), state=states.get(plan.name))
        if not interrupted.is_set():  # a kernel stopped by the interrupt is not a failed study
            watcher.poll()  # this study's last runs are reported before the study itself
            on_study(outcome)
        return outcome
    threads_pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = [threads_pool.submit(one, plan) for plan in todo]
        pending = set(futures)
        while pending:
            # A timed wait: the kernel may hand Ctrl-C or SIGTERM to any of the build's threads, and
            # Python runs its handler only when the main thread wakes; an untimed wait would never.
            _, pending = wait(pending, timeout=0.5)
        done = {plan.name: f.result() for plan, f in zip(todo, futures)}
    except KeyboardInterrupt:
        interrupted.set()
        logging.getLogger("papermill").setLevel(logging.CRITICAL)  # "Kernel died": we stopped it
        # Kernels are stopped first: a thread waiting on a kernel ends only when its kernel does.
        stop_kernels()
        threads_pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        watcher.done.set()
        watcher.join()
    threads_pool.shutdown()
    if dask is not None:
        dask.release()
    return [reused.get(p.name) or done[p.name] for p in plans]


def _robustness_last(plans: list[StudyPlan], first: list[StudyPlan], later: list[StudyPlan], out_dir: Path,
                     **kw) -> list[Outcome]:
    """Robustness studies re-train the other studies' best configurations, so they run second,
    their runs filled in from the first phase's records (then cached and reused like any study)."""
    done = {o.name: o for o in run_studies(first, out_dir, **kw)}
    records = [r for o in done.values() for r in o.records]
    ready = []
    for plan in later:
        plan.runs = expand_robustness(plan, records)
        if plan.runs:
            ready.append(plan)
        else:  # papermill would fall back to the parameter files: say why instead
            done[plan.name] = Outcome(plan.name, status=Status.FAILED, why="no candidates",
                                      error="no successful run in the other studies to re-train")
            kw["on_study"](done[plan.name])
    done.update({o.name: o for o in (run_studies(ready, out_dir, **kw) if ready else [])})
    return [done[p.name] for p in plans]

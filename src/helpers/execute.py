"""Execution: each study notebook runs under papermill in its own kernel; a failure is captured,
never raised, so the other studies go on. Progress comes back through per-study event files."""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from helpers.config import NOTEBOOKS, ROOT, StudyPlan


@dataclass
class Outcome:
    name: str
    status: str = "ok"                 # ok | failed
    error: str | None = None           # why the study failed (notebook error or failed runs)
    traceback: str = ""
    seconds: float = 0.0
    records: list[dict] = field(default_factory=list)
    notebook: Path | None = None


def kernel_env(threads: int) -> None:
    """What every kernel inherits: the helpers importable, quiet TensorFlow, bounded threads."""
    src = str(ROOT / "src")
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([src, *[p for p in paths if p != src]])
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _kernel_manager(log_path: Path):
    """A kernel manager whose kernel writes its own stdout/stderr (TensorFlow's C++ start-up
    logging, kernel warnings) to a log file beside the notebook, not over our progress lines."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            log = open(log_path, "ab")  # noqa: SIM115 - the kernel process owns it from here
            kw.update(stdout=log, stderr=log)
            try:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                log.close()  # the child holds its own descriptor
    return LoggedKernelManager


def run_study(plan: StudyPlan, out_dir: Path, *, threads: int, notebooks: Path = NOTEBOOKS) -> Outcome:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / f"{plan.name}.results.json"
    events = out_dir / f"{plan.name}.events.jsonl"
    notebook = out_dir / f"{plan.name}.ipynb"
    for stale in (results, events, out_dir / f"{plan.name}.kernel.log"):
        stale.unlink(missing_ok=True)
    outcome = Outcome(plan.name, notebook=notebook)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(notebooks / f"{plan.kind}.ipynb"), str(notebook),
            parameters={"study": plan.name, "title": plan.title, "question": plan.question,
                        "runs": plan.runs, "results_path": str(results), "events_path": str(events),
                        "threads": threads},
            kernel_name="python3", progress_bar=False, log_output=False, cwd=str(out_dir),
            kernel_manager_class=_kernel_manager(out_dir / f"{plan.name}.kernel.log"))
    except PapermillExecutionError as e:
        outcome.status = "failed"
        outcome.error = f"{e.ename}: {e.evalue}".strip()
        outcome.traceback = "\n".join(e.traceback)
    except Exception as e:  # noqa: BLE001 - a kernel that dies is one study's failure, not the build's
        outcome.status = "failed"
        outcome.error = f"{type(e).__name__}: {e}"
    outcome.seconds = time.perf_counter() - start
    if results.exists():
        outcome.records = json.loads(results.read_text())
    failed = [r for r in outcome.records if r.get("status") != "ok"]
    if failed and outcome.status == "ok":
        outcome.status = "failed"
        outcome.error = f"{len(failed)} of {len(outcome.records)} runs failed; first: {failed[0]['label']}: {failed[0].get('error')}"
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
                on_study: Callable[[Outcome], None], notebooks: Path = NOTEBOOKS) -> list[Outcome]:
    """Run the studies, ``jobs`` at a time; threads per kernel share the machine's cores."""
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    kernel_env(threads)
    for plan in plans:  # stale events from an earlier build must not be replayed
        (out_dir / f"{plan.name}.events.jsonl").unlink(missing_ok=True)
    watcher = EventWatcher([out_dir / f"{p.name}.events.jsonl" for p in plans], on_event)
    watcher.start()

    def one(plan: StudyPlan) -> Outcome:
        outcome = run_study(plan, out_dir, threads=threads, notebooks=notebooks)
        watcher.poll()  # this study's last runs are reported before the study itself
        on_study(outcome)
        return outcome
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            outcomes = list(pool.map(one, plans))
    finally:
        watcher.done.set()
        watcher.join()
    return outcomes

#!/usr/bin/env python3
"""Build a hyperparameter-study report: params/NAME.yaml -> reports/NAME.html (+ NAME.json, and
NAME.pdf with --pdf).

Exit codes: 0 every study succeeded; 1 the report was built but some study failed (or, with --pdf,
Chromium could not print it);
2 bad input (nothing trained, nothing overwritten); 130 interrupted (finished runs are cached).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# jsonschema imports rfc3987_syntax eagerly, which compiles ~35 Lark grammars (over a second, on
# the path of every papermill and nbformat import) for the iri formats, which notebook schemas never
# use; marked absent, jsonschema skips that format checker (python-jsonschema/jsonschema#1428).
sys.modules.setdefault("rfc3987_syntax", None)

from helpers.config import load as config  # noqa: E402
from helpers.config.errors import ConfigError  # noqa: E402
from helpers.config.record import RESULTS, Status  # noqa: E402
from helpers.data import registry as data  # noqa: E402
from helpers.run import backend, executor  # noqa: E402


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as every other bad input (argparse adds its usage)
        self.exit(2, f"error: {message} (see --help)\n")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(
        prog="build_report.py",
        description="Train the studies of a parameter file and write one HTML report (and a JSON of "
                    "every run) to the output folder, with the executed study notebooks beside them.",
        epilog="Runs are cached in DIR/.cache: an unchanged study is not executed again and a changed "
               "one trains only its changed runs. Exit codes: 0 all studies succeeded, 1 the report was "
               "built but some study failed (or the PDF could not be printed), 2 bad input (nothing "
               "trained, nothing overwritten; also --pdf without Chromium), "
               "130 interrupted (finished runs stay cached). Each build that writes the report keeps its "
               "runs' metrics, parameters and findings in DIR/NAME.history/ (the newest few; older ones are "
               "deleted), and the report says after its abstract what changed since the previous build "
               "(see --compare).  Example: "
               "python build_report.py --profile smoke --studies depth,width --set width.units=[8,16]")
    p.add_argument("params_file", nargs="?", default=str(config.PARAMS / "report.yaml"),
                   help="the report's parameter file (default: params/report.yaml)")
    p.add_argument("--profile", choices=["smoke", "quick", "full"],
                   help="data size and epochs: smoke (seconds), quick (minutes), full (the reference "
                        "settings); default: the file's 'profile', else quick")
    p.add_argument("--studies", help="comma-separated studies to run (default: all in the file)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter by its dotted path, value parsed as YAML "
                        "(e.g. --set width.units=[8,16] --set base.epochs=3); repeatable")
    p.add_argument("--out", default=str(config.ROOT / "reports"), metavar="DIR",
                   help="output folder (default: reports/)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="study notebooks executed at once (default: min(2, cores)); their runs train "
                        "on the cluster's workers")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="the local Dask cluster's worker processes, one TensorFlow thread each "
                        "(default: one per core, fewer when fewer runs are to train); not with --scheduler")
    p.add_argument("--scheduler", default=os.environ.get(executor.ENV_SCHEDULER) or None, metavar="ADDRESS",
                   help="train on an existing Dask cluster: its scheduler's address (tcp://host:8786) or "
                        f"scheduler file (default: ${executor.ENV_SCHEDULER}; unset: a local cluster "
                        "on 127.0.0.1, started for the build)")
    p.add_argument("--force", nargs="?", const="*", default=None, metavar="STUDIES",
                   help="train again instead of reusing cached runs: every study, or the "
                        "comma-separated ones named (--force width)")
    p.add_argument("--pdf", action="store_true",
                   help="also write DIR/NAME.pdf: the same report printed by headless Chromium (found on "
                        "PATH as chromium, chromium-browser or google-chrome; see --chromium)")
    p.add_argument("--chromium", metavar="PATH",
                   help="the Chromium (or Chrome) executable that prints the PDF; implies --pdf")
    mode = p.add_mutually_exclusive_group()  # each does something other than a build
    mode.add_argument("--watch", action="store_true",
                      help="build, serve the output folder on 127.0.0.1 and build again whenever the "
                           "parameter file, its layers (params/defaults.yaml, params/studies/), a notebook "
                           "or a helper is saved: only what the change touched trains, the open page "
                           "reloads at its scroll position, bad input shows as a banner over the last good "
                           "report, and a save during a build restarts it; runs train on local workers kept "
                           "warm between builds (or on --scheduler); --force applies to the first build; "
                           "Ctrl-C stops, exit 0")
    mode.add_argument("--dry-run", action="store_true",
                      help="check the input as a build does, then print per study whether it would be "
                           "executed again and why, which runs would train and which be reused, and the "
                           "training time estimated from cached runs of the same model and batch size "
                           "on the same data (else scaled from other cached runs, or none); trains, "
                           "writes and downloads nothing (a dataset still to download is an error)")
    mode.add_argument("--show-config", nargs="?", const="*", metavar="STUDY",
                      help="print the merged parameters of STUDY (default: of every study) as YAML, each "
                           "value commented with the layer that set it: params/defaults.yaml, the study file "
                           "params/studies/KIND.yaml, the report file, --set or --profile; trains and writes "
                           "nothing")
    mode.add_argument("--clear-cache", action="store_true",
                      help="delete the run cache (DIR/.cache), report its size, and exit")
    mode.add_argument("--compare", nargs="*", metavar="BUILD",
                      help="print what changed between two kept builds of the report (DIR/NAME.history/: "
                           "parameters, runs added and removed, validation accuracies that moved beyond the "
                           "noise floor, reworded findings) and exit; BUILD is a kept build's name or its number "
                           "(1 = the oldest); default: the last two builds, one BUILD: it and the last. "
                           "Put the parameter file before --compare")
    mode.add_argument("--gc", action="store_true",
                      help="delete the cached runs and search states (DIR/.cache) that no kept build of any "
                           "report in DIR refers to, print what was freed, and exit")
    p.add_argument("--port", type=int, default=None, metavar="N",
                   help="with --watch: serve on 127.0.0.1:N (default: a free port, printed)")
    p.add_argument("--open", action="store_true", help="with --watch: open the report in the system's browser")
    args = p.parse_args(argv)
    if not args.watch and (args.port is not None or args.open):
        p.error(f"{'--port' if args.port is not None else '--open'}: only with --watch")
    if args.port is not None and not 0 <= args.port <= 65535:
        p.error(f"--port {args.port}: must be a port number, 0 to 65535 (0: a free one)")
    return args


def build_args(args: argparse.Namespace) -> list[str]:
    """The arguments that make the same build again (--watch's builds, less what it handles)."""
    out = [args.params_file, "--out", args.out, "--jobs", str(args.jobs)]
    out += ["--profile", args.profile] if args.profile else []
    out += ["--studies", args.studies] if args.studies is not None else []
    for s in args.sets:
        out += ["--set", s]
    out += ["--pdf"] if args.pdf else []
    out += ["--chromium", args.chromium] if args.chromium else []
    return out


class Progress:
    """Per run on a terminal (a bar); one line per finished run otherwise, so CI logs stay readable."""

    def __init__(self, total: int, stream=sys.stderr):
        self.stream, self.total, self.done = stream, total, 0
        self.tty = stream.isatty()
        self.bar = None
        if self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="run", file=stream, dynamic_ncols=True)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def event(self, ev: dict) -> None:
        if ev.get("event") == "start":
            if self.bar is not None:
                self.bar.set_description(f"{ev['study']} {ev['index']}/{ev['total']} {ev['label']}")
            return
        self.done += 1
        if ev.get("status") in RESULTS:  # diverged: a result, said so on its line
            # a cross-validation fold has no test score, its refit no validation score
            what = "".join(f"{name} {ev[k]:.4f}  " for name, k in (("val", "val_accuracy"), ("test", "test_accuracy"))
                           if ev.get(k) is not None) + ("reused from cache" if ev.get("cached") else f"{ev['seconds']:.1f} s")
            if ev.get("status") == Status.DIVERGED:
                what += f"  DIVERGED: {ev.get('reason')}"
        else:
            what = f"FAILED: {ev.get('error')}"
        line = f"  [{self.done}/{self.total}] {ev['study']} {ev['index']}/{ev['total']} {ev['label']}: {what}"
        if self.bar is not None:
            self.bar.update(1)
            if ev.get("status") != Status.OK:  # failures and divergences stay on screen above the bar
                self.write(line)
        else:
            self.write(line)

    def study(self, outcome) -> None:
        if not outcome.executed:
            self.done += len(outcome.records)
            if self.bar is not None:
                self.bar.update(len(outcome.records))
            self.write(f"{outcome.name}: unchanged, {len(outcome.records)} runs reused")
            return
        mark = "done" if outcome.status == Status.OK else "FAILED"
        extra = f" — {outcome.error}" if outcome.error else ""
        self.write(f"{outcome.name}: {mark}, {len(outcome.records)} runs in {outcome.seconds:.1f} s{extra}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def summary_table(outcomes) -> str:
    rows = [("study", "runs", "seconds", "status", "trained", "reused", "why")]
    for o in outcomes:
        trained = sum(1 for r in o.records if not r.get("cached"))
        rows.append((o.name, str(len(o.records)), f"{o.seconds:.1f}", o.status, str(trained),
                     str(len(o.records) - trained), o.why))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i in (0, 3, 6) else c.rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths))).rstrip() for r in rows)


class BuildLock:
    """One build per output folder at a time: a second one waits, saying for whom."""

    def __init__(self, folder: Path):
        self.path = folder / ".build.lock"

    def __enter__(self):
        import fcntl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another build"
            print(f"waiting: {holder} is building in {self.path.parent} (Ctrl-C to give up)",
                  file=sys.stderr, flush=True)
            fcntl.flock(self.file, fcntl.LOCK_EX)
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"build_report.py (pid {os.getpid()})")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.close()  # closing releases the lock, also when the process is killed


class Preload:
    """Imports what the report needs (nbconvert, pandas, matplotlib: about two seconds) on a
    thread while kernels run, so that a one-study re-render does not wait for it afterwards."""

    def __init__(self) -> None:
        self.thread = threading.Thread(target=self._load, daemon=True)

    @staticmethod
    def _load() -> None:
        from helpers.build import render
        render.preload()

    def start(self) -> None:  # idempotent: a build with a robustness study executes in two phases
        if self.thread.ident is None:
            self.thread.start()

    def join(self) -> None:
        while self.thread.is_alive():  # timed, as in execute.run_studies: Ctrl-C stays heard
            self.thread.join(0.5)


def check_out(out: Path, name: str) -> None:
    """The output folder can be made and written, checked before anything is built or touched."""
    for folder in (out / name, out / ".cache", out / f"{name}.history"):  # the build makes them
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--out {out}: {folder} is a file, where the build keeps a folder")
    nearest = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not nearest.is_dir():
        raise ConfigError(f"--out {out}: " + ("is" if nearest == out else f"{nearest} is") + " a file, not a folder")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: {nearest} is not writable")


def check_flags(args: argparse.Namespace) -> None:
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    if args.workers is not None and args.scheduler:
        raise ConfigError(f"--workers {args.workers}: a cluster given by --scheduler (or "
                          f"${executor.ENV_SCHEDULER}) has its own workers")


def fail(error: Exception | str) -> int:
    """Bad input: its one line, and the exit code that says so."""
    print(f"error: {error}", file=sys.stderr)
    return 2


def compare(out: Path, name: str, builds: list[str]) -> int:
    """--compare [A] [B]: the table of what changed between two kept builds."""
    from helpers.build import history
    from helpers.present.changes import text_table
    if len(builds) > 2:
        return fail(ConfigError(f"--compare takes at most two builds, not {len(builds)}"))
    try:
        old, new = history.pick(history.folder(out, name), *builds)
    except history.HistoryError as e:
        return fail(e)
    print(text_table(history.diff(old, new)))
    return 0


def watch(args: argparse.Namespace, out: Path, name: str) -> int:
    """--watch: what a build would reject before reading the parameter file is rejected here
    (exit 2); the parameter file's own errors show on the served page until a save fixes them."""
    from helpers.build import watch as watching
    params_file = Path(args.params_file)
    try:
        if not params_file.is_file():
            raise ConfigError(f"{params_file}: no such file to watch")
        check_flags(args)
        return watching.watch(build_args(args), params_file, out, name, port=args.port or 0, open_browser=args.open,
                              scheduler=args.scheduler, workers=args.workers,
                              first_args=["--force", args.force] if args.force else [])
    except ConfigError as e:
        return fail(e)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    out = Path(args.out)
    name = Path(args.params_file).stem
    try:
        check_out(out, name)
    except ConfigError as e:
        return fail(e)
    if args.compare is not None:
        return compare(out, name, args.compare)
    if args.gc:
        from helpers.build import history
        with BuildLock(out):
            freed = history.gc(out, out / ".cache")
        print(f"freed {out / '.cache'}: {freed['runs']} cached runs and {freed['search']} search states that no "
              f"kept build refers to, {freed['bytes'] / 1e6:.1f} MB", file=sys.stderr)
        return 0
    if args.watch:
        return watch(args, out, name)
    if args.clear_cache:
        from helpers.run.cache import RunCache
        with BuildLock(out):
            entries, size = RunCache(out / ".cache").clear()
        print(f"cleared {out / '.cache'}: {entries} cached runs, {size / 1e6:.1f} MB", file=sys.stderr)
        return 0
    try:
        check_flags(args)
        wanted = [s.strip() for s in args.studies.split(",") if s.strip()] if args.studies is not None else None
        plan = config.load(args.params_file, profile=args.profile, studies=wanted, sets=args.sets)
        if args.show_config is not None:
            from helpers.config.show import show
            print(show(plan, None if args.show_config == "*" else args.show_config), end="")
            return 0
        data.locate(plan.report.dataset, download=not args.dry_run)
        backend.use(plan.report.backend)  # before any run key or kernel: both read KERAS_BACKEND
        force: set[str] | bool = False
        if args.force == "*":
            force = True
        elif args.force is not None:
            force = {s.strip() for s in args.force.split(",") if s.strip()}
            unknown = sorted(force - set(plan.studies))
            if not force:
                raise ConfigError(f"--force {args.force!r}: names no study; studies: {', '.join(plan.studies)}")
            if unknown:
                raise ConfigError(f"--force {args.force}: no study {unknown[0]!r} in this build; "
                                  f"studies: {', '.join(plan.studies)}")
        chromium = None
        if args.pdf or args.chromium:
            from helpers.build.pdf import PdfError, find_chromium
            try:
                chromium = find_chromium(args.chromium)
            except PdfError as e:
                raise ConfigError(str(e)) from None
    except data.DatasetMissing as e:
        return fail(f"{e} (a dry run downloads nothing)" if args.dry_run else e)
    except ConfigError as e:
        return fail(e)
    if args.dry_run:
        from helpers.build import dryrun
        print(dryrun.text(plan, out, name, force), end="")
        return 0

    # Imported after validation: bad input fails fast, without loading papermill or nbconvert.
    from helpers.build import execute, state
    from helpers.build.cluster import Cluster, ClusterError, wanted

    work = out / name
    plans = list(plan.studies.values())
    total = sum(p.expected for p in plans)
    start = time.perf_counter()
    # SIGTERM ends a build the way Ctrl-C does: finished runs stay cached, the old report stays.
    signal.signal(signal.SIGTERM, _interrupt)
    progress, preload, dask = None, Preload(), None
    datasets = tuple(sorted({s["config"]["data"]["dataset"] for p in plans for s in p.runs}))

    def start_cluster(workers: int | None = None):
        nonlocal dask
        dask = Cluster.start(scheduler=args.scheduler, workers=args.workers or workers, datasets=datasets,
                             log=str(work / "workers.log"))
        where = (f"Dask scheduler {dask.address}, {len(dask.workers())} workers"
                 + (f", dashboard {dask.dashboard}" if dask.dashboard else "")) if args.scheduler else \
            f"{len(dask.workers())} local worker{'s' * (len(dask.workers()) != 1)}"
        progress.write(f"Training on {where}")

    def on_cluster(todo, states):
        """The cluster with the runs of ``todo`` submitted; a local one is started when a run is
        first to be trained (a re-render that trains nothing starts none)."""
        runs = wanted(todo, states, out / ".cache", force, held=dask.held if dask else ())
        # A search's trials are tasks too (helpers.run.search).
        searching = any("search" in s for p in todo for s in p.runs)
        if not runs and not searching and dask is None:
            return None
        # No more local workers than runs to train, up to one per core: a re-render that trains
        # one run does not load TensorFlow in workers that would idle, on the cores its notebook
        # needs. A search proposes its trials as it goes: every core.
        cores = os.cpu_count() or 1
        needed = cores if searching else min(cores, len(runs))
        if dask is None:
            start_cluster(needed)
        elif not args.workers:
            dask.grow(needed)  # a later phase (robustness) may train more
        dask.prefetch(runs, out / ".cache")
        return dask
    try:
        with BuildLock(out):
            work.mkdir(parents=True, exist_ok=True)
            print(f"Building {out / (name + '.html')}: {len(plans)} studies, {total} runs, profile "
                  f"{plan.report.profile}, {args.jobs} at a time", file=sys.stderr, flush=True)
            progress = Progress(total)
            if args.scheduler:
                # Now, before any run key is made: its workers' device class stands in the keys,
                # and a worker that cannot train this build stops it before anything runs.
                start_cluster()
            outcomes = execute.run_studies(plans, work, jobs=args.jobs, on_event=progress.event,
                                           on_study=progress.study, cache_dir=out / ".cache", force=force,
                                           on_execute=preload.start, cluster=on_cluster)
            progress.close()
            if dask is not None:
                dask.close()
                dask = None
            html_path, json_path, key_path = out / f"{name}.html", out / f"{name}.json", work / "report.key"
            key = state.report_key(plan.report.model_dump(mode="json") | {"source": plan.source},
                                   [o.state_key for o in outcomes])
            unchanged = (all(not o.executed for o in outcomes) and html_path.exists() and json_path.exists()
                         and key_path.exists() and key_path.read_text() == key)
            if not unchanged:
                key_path.unlink(missing_ok=True)
                preload.join()
                from helpers.build import history, report  # nbconvert takes a second to import
                kept, build = history.folder(out, name), history.entry(plan, outcomes)
                previous = history.latest(kept)
                report.build(plan, outcomes, html_path, json_path,
                             changes=history.diff(previous, build) if previous else None)
                key_path.write_text(key)
                # Only now: an interrupted build must never become "the previous build".
                history.record(kept, build)
            pdf_path, pdf_error = out / f"{name}.pdf", None
            if chromium and (not unchanged or not pdf_path.exists()
                             or pdf_path.stat().st_mtime < html_path.stat().st_mtime):
                from helpers.build import pdf
                try:
                    pdf.pdf(html_path, pdf_path, chromium)
                except pdf.PdfError as e:
                    pdf_error = str(e)
    except ClusterError as e:
        if progress is not None:
            progress.close()
        return fail(e)
    except KeyboardInterrupt:  # also while waiting for another build's lock
        if progress is not None:
            progress.close()
        print(f"\ninterrupted: finished runs are cached; no report written, "
              f"{out / (name + '.html')} is as it was", file=sys.stderr)
        return 130
    finally:
        if dask is not None:  # queued runs are cancelled; what finished is cached
            dask.close()
    print("\n" + summary_table(outcomes), file=sys.stderr)
    failed = [o.name for o in outcomes if o.status != Status.OK]
    print(f"\nReport: {html_path}" + (f" and {pdf_path}" if chromium and not pdf_error else "")
          + (" (nothing changed)" if unchanged else "")
          + f" ({time.perf_counter() - start:.1f} s)"
          + (f"; failed studies: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    if pdf_error:
        print(f"error: no PDF written: {pdf_error}", file=sys.stderr)
    return 1 if failed or pdf_error else 0


if __name__ == "__main__":
    sys.exit(main())

"""What a build would do, told without doing it (build_report.py --dry-run): per study, whether it is
executed again and why, which of its runs train and which come from the cache, and about how long
the training takes, judged from the cached timings of comparable runs.

Every decision is the build's own: the study states, their reuse and the reasons come from
helpers.build.state, the runs to train from helpers.build.cluster.wanted, the order of phases from
execute.run_studies. Nothing is written: no lock, no cache entry repaired, no cluster, no kernel."""
from __future__ import annotations

import dataclasses
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from helpers.build import state as state_of
from helpers.build.cluster import cost, wanted
from helpers.config.load import NOTEBOOKS
from helpers.config.plan import Plan, StudyPlan, expand_robustness, phases, run_ids

TRAIN, REUSE, SEARCH = "train", "reuse", "search"
UNCHANGED = "unchanged"  # why a study is reused, in the build summary's words (execute.run_studies)


@dataclass
class Guess:
    """A run's training time: ``seconds`` (None: no estimate) and how it was made."""
    seconds: float | None
    how: str


@dataclass
class Run:
    id: str
    action: str                  # TRAIN, REUSE, or SEARCH (trials the study's kernel trains)
    note: str = ""               # where a reused run comes from, or how its time was guessed
    guess: Guess | None = None   # for a run to train


@dataclass
class Forecast:
    """One study as the build would handle it; ``executed`` None: not known before the other studies ran."""
    name: str
    executed: bool | None
    why: str
    runs: list[Run] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)  # a reused study's, which the robustness study ranks
    chosen: int = 0              # runs its own results choose, so known only as it runs (a cross-validation's refit)


def duration(seconds: float) -> str:
    """How every time in the dry run's text is written."""
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


class Timings:
    """The finished runs in the cache, read once: what they trained on and how long it took."""

    def __init__(self, cache_dir: Path):
        self.entries = []
        for meta_path in sorted((Path(cache_dir) / "runs").glob("*/meta.json")):
            if meta_path.parent.name.startswith("."):  # an entry still being written or replaced
                continue
            try:
                inputs = json.loads(meta_path.read_text())["inputs"]
                metrics = json.loads((meta_path.parent / "record.json").read_text())["metrics"]
                per_epoch = metrics["seconds"] / max(1, metrics.get("epochs_run") or inputs["training"]["epochs"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            self.entries.append((inputs, per_epoch))

    def guess(self, spec: dict, inputs: dict) -> Guess:
        """Seconds per epoch of cached runs of the same model size and batch size on the same data and
        device, times this run's epochs; failing those, read off the cached runs on that data and
        device by work per epoch (cluster.cost: multiply-adds and steps)."""
        epochs = spec["config"]["training"]["epochs"]
        alike = [(i, s) for i, s in self.entries if _setting(i) == _setting(inputs)]
        same = [s for i, s in alike if _size(i) == _size(inputs)]
        if same:
            return Guess(statistics.median(same) * epochs,
                         f"{len(same)} cached run{'s' * (len(same) != 1)} of this size and batch size")
        if not alike:
            return Guess(None, "no estimate: no cached run on this data")
        per_epoch, how = _by_work(alike, _cost(inputs))
        return Guess(per_epoch * epochs, f"rough: {how}")


def _by_work(runs: list[tuple[dict, float]], work: float) -> tuple[float, str]:
    """Seconds per epoch at ``work`` from (inputs, seconds per epoch) of other sizes, and how it was read.
    Between two sizes, interpolated on a log scale of work; below the smallest, the smallest's time, since
    small models cost mostly per-step overhead; above the largest, the largest's scaled by work, since
    large ones cost mostly multiply-adds."""
    by_cost: dict[float, list[float]] = {}
    for inputs, seconds in runs:
        by_cost.setdefault(_cost(inputs), []).append(seconds)
    points = sorted((c, statistics.median(s)) for c, s in by_cost.items())
    (low, at_low), (high, at_high) = points[0], points[-1]
    if work <= low:
        return at_low, "as the smallest cached run on this data"
    if work >= high:
        return at_high * work / high, "the largest cached run on this data, scaled by multiply-adds"
    (a, ta), (b, tb) = next((p, q) for p, q in zip(points, points[1:]) if p[0] <= work <= q[0])
    return ta + (tb - ta) * math.log(work / a) / math.log(b / a), "interpolated between cached runs of the sizes around it"


def _size(inputs: dict) -> tuple:
    """What fixes the work of an epoch on given data: the model's parameter count (its kind and
    layer sizes) and the number of steps (the batch size)."""
    model = inputs["model"]
    return (*(json.dumps(model.get(k)) for k in ("kind", "hidden", "filters", "kernel_size", "pool_size")),
            inputs["training"].get("batch_size"))


def _setting(inputs: dict) -> tuple:
    """Where a run's time is comparable: as much training data of the same set, on the same device
    class (which samples, the seed and a cross-validation fold choose, and the test set do not count)."""
    data = {k: v for k, v in inputs["data"].items() if k not in ("seed", "fold", "test_samples")}
    return json.dumps(data, sort_keys=True), inputs.get("device", {}).get("class")


def _cost(inputs: dict) -> float:
    """cluster.cost of one epoch."""
    return cost({"config": {"model": inputs["model"], "data": inputs["data"],
                            "training": {**inputs["training"], "epochs": 1}}})


def forecast(plan: Plan, work: Path, cache_dir: Path, force: set[str] | bool,
             notebooks: Path = NOTEBOOKS) -> list[Forecast]:
    """Every study of ``plan`` as a build into ``work`` with ``cache_dir`` would handle it, in its order."""
    plans = list(plan.studies.values())
    timings = Timings(cache_dir)
    first, later = phases(plans)
    if not later:
        return _phase(plans, work, cache_dir, force, timings, notebooks)
    first = {f.name: f for f in _phase(first, work, cache_dir, force, timings, notebooks)}
    again = [f.name for f in first.values() if f.executed]
    if again:  # their records are known only once they ran
        why = f"depends on the other studies' results ({', '.join(again)} executed again)"
        first.update({p.name: Forecast(p.name, None, why, chosen=p.expected) for p in later})
    else:
        records = [r for f in first.values() for r in f.records]
        ready = [dataclasses.replace(p, runs=expand_robustness(p, records)) for p in later]
        first.update({p.name: Forecast(p.name, False, "no candidates: it fails, no other study has a successful run")
                      for p in ready if not p.runs})
        first.update({f.name: f for f in _phase([p for p in ready if p.runs], work, cache_dir, force,
                                                timings, notebooks)})
    return [first[p.name] for p in plans]


def _phase(plans: list[StudyPlan], work: Path, cache_dir: Path, force, timings: Timings,
           notebooks: Path) -> list[Forecast]:
    """As execute.run_studies decides: a study is reused if state.reuse keeps it, else executed,
    training what cluster.wanted finds missing from the cache."""
    states = {p.name: state_of.study(p, notebooks) for p in plans}
    out, todo = {}, []
    for plan in plans:
        kept = None if state_of.forced(force, plan.name) else state_of.reuse(plan, work, states[plan.name], cache_dir)
        if kept is None:
            todo.append(plan)
        else:
            out[plan.name] = Forecast(plan.name, False, UNCHANGED, [Run(i, REUSE, "cached") for i in run_ids(kept)],
                                      records=kept)
    missing = wanted(todo, states, cache_dir, force, repair=False)
    for plan in todo:
        why = state_of.why_changed(state_of.previous(work, plan.name), states[plan.name],
                                   forced=state_of.forced(force, plan.name))
        runs = [_run(spec, run_id, run, plan.name, missing, timings)
                for spec, (run_id, run) in zip(plan.runs, states[plan.name]["runs"].items())]
        out[plan.name] = Forecast(plan.name, True, why, runs, chosen=max(0, plan.expected - len(plan.runs)))
    return [out[p.name] for p in plans]


def _run(spec: dict, run_id: str, run: dict, study: str, missing: dict, timings: Timings) -> Run:
    if "search" in spec:
        return Run(run_id, SEARCH, "its trials train in the study's kernel; no estimate")
    if run["key"] not in missing:
        return Run(run_id, REUSE, "cached")
    owner = missing[run["key"]][0]["study"]
    if owner != study:  # the same configuration in an earlier study: trained once, for that one
        return Run(run_id, REUSE, f"trained for {owner} in this build")
    guess = timings.guess(spec, run["inputs"])
    return Run(run_id, TRAIN, guess.how, guess)


def _total(runs: list[Run], chosen: int) -> str:
    """The training time of ``runs``, summed over those with an estimate."""
    guesses = [r.guess for r in runs if r.action == TRAIN]
    known = [g.seconds for g in guesses if g.seconds is not None]
    if not guesses and not chosen and all(r.action == REUSE for r in runs):
        return "nothing to train"
    text = f"≈ {duration(sum(known))} of training, summed over runs" if known else "no estimate"
    unknown = len(guesses) - len(known) if known else 0
    return text + (f" (+{unknown} run{'s' * (unknown != 1)} with no estimate)" if unknown else "")


def _counts(runs: list[Run], chosen: int) -> str:
    train = sum(r.action == TRAIN for r in runs)
    reuse = sum(r.action == REUSE for r in runs)
    search = sum(r.action == SEARCH for r in runs)
    return (f"{train} to train, {reuse} reused" + (f", {search} search" if search else "")
            + (f", {chosen} chosen by results as it runs (not estimated)" if chosen else ""))


def _line(run: Run) -> str:
    time = f"  ≈ {duration(run.guess.seconds)}" if run.guess and run.guess.seconds is not None else ""
    return f"  {run.action:<6}  {run.id}{time}  ({run.note})"


def text(plan: Plan, out: Path, name: str, force: set[str] | bool) -> str:
    """What ``build_report.py --dry-run`` prints for a build of ``plan`` named ``name`` into ``out``."""
    header = (f"Dry run of {out / (name + '.html')}: {len(plan.studies)} studies, "
              f"{sum(p.expected for p in plan.studies.values())} runs, profile {plan.report.profile}; "
              "nothing is trained or written")
    return render(forecast(plan, out / name, out / ".cache", force), header)


def render(forecasts: list[Forecast], header: str) -> str:
    """A study per line, then each run it would execute."""
    lines = [header]
    for f in forecasts:
        if f.executed is None:
            lines.append(f"{f.name}: {f.why}; {f.chosen} runs")
        elif not f.executed and f.why != UNCHANGED:
            lines.append(f"{f.name}: {f.why}")
        elif not f.executed:
            lines.append(f"{f.name}: unchanged, {len(f.runs)} runs reused")
        else:
            lines.append(f"{f.name}: executed ({f.why}): {_counts(f.runs, f.chosen)}, {_total(f.runs, f.chosen)}")
            lines += [_line(r) for r in f.runs]
    runs = [r for f in forecasts for r in f.runs]
    chosen = sum(f.chosen for f in forecasts)
    lines.append(f"Total: {_counts(runs, chosen)}, {_total(runs, chosen)}")
    return "\n".join(lines) + "\n"

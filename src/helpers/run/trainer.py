"""What a study notebook's training cell calls: train the study's runs, then what depends on their
results (a cross-validation study's refit), and save the records for the build.

A build injects the runs. A notebook run by hand (Jupyter's Run All, papermill without parameters)
has none: its study comes from a parameter file (helpers.config.load.by_hand: the default report,
or a built-in example where that has no study of the kind), its runs from the default build's run
cache where that has them (helpers.run.cache.default_root), and it writes nothing else."""
from __future__ import annotations

from pathlib import Path

from helpers.config.record import RunRecord, RunSpec, is_fold
from helpers.run import backend, crossval, search, training


def train(study: str, runs: list[RunSpec] | None = None, *, params_file: str | None = None,
          profile: str = "smoke", results_path: str | None = None, events_path: str | None = None,
          threads: int | None = None, cache_dir: str | None = None, force: bool = False) -> list[RunRecord]:
    """Train the study's runs (all runs go through training.run_all) and save their records."""
    how = dict(events_path=events_path, threads=threads, cache_dir=cache_dir, force=force)
    if runs:
        records = _train(runs, **how)
    else:
        records = _by_hand(study, params_file, profile, how)
    if results_path:
        training.save(records, results_path)
    return records


def _train(runs: list[RunSpec], **how) -> list[RunRecord]:
    if "search" in runs[0]:  # a search study: tune, then retrain the best trial
        records = search.train(runs, **how)
    else:
        records = training.run_all(runs, **how)
    if any(is_fold(r) for r in records):  # the refit's configuration depends on the folds' scores
        records += crossval.refit(records, **how)
    return records


def _by_hand(study: str, params_file: str | None, profile: str, how: dict) -> list[RunRecord]:
    from helpers.config import kinds, load
    from helpers.config.plan import expand_robustness
    from helpers.run import cache

    plan = load.by_hand(study, params_file, profile)
    backend.use(plan.report.backend)  # a build's kernel inherits it; a hand-run one chooses here
    how["cache_dir"] = how["cache_dir"] or str(cache.default_root())
    own = plan.studies[study]
    source, shown = Path(plan.source).resolve(), load.in_repo(plan.source)
    print(f"Run by hand: study {study!r} of {shown}, {profile or plan.report.profile} profile"
          + (", a small built-in example: its numbers illustrate this notebook and answer nothing"
             if source == load.EXAMPLES else "")
          + f"; runs cached in {how['cache_dir']}.")
    runs = own.runs
    if kinds.after_others(own.kind):  # its runs are the other studies' best: those train (or are reused) first
        sources = [r for p in plan.studies.values() if not kinds.after_others(p.kind)
                   for r in _train(p.runs, **dict(how, events_path=None, force=False))]
        runs = expand_robustness(own, sources)
        if not runs:
            raise RuntimeError(f"no successful run in the other studies of {shown} to re-train")
    records = _train(runs, **how)
    reused = sum(bool(r.get("cached")) for r in records)
    print(f"{len(records)} run{'s' * (len(records) != 1)}: {len(records) - reused} trained, {reused} from the cache.")
    return records

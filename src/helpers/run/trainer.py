"""What a study notebook's training cell calls: train the study's runs, then what depends on their
results (a cross-validation study's refit), and save the records for the build."""
from __future__ import annotations

from helpers.config.record import RunRecord, RunSpec, is_fold
from helpers.run import backend, crossval, search, training


def train(study: str, runs: list[RunSpec] | None = None, *, params_file: str | None = None,
          profile: str = "smoke", results_path: str | None = None, events_path: str | None = None,
          threads: int | None = None, cache_dir: str | None = None, force: bool = False) -> list[RunRecord]:
    """Train the study's runs (all runs go through training.run_all) and save their records."""
    if not runs:  # opened by hand in Jupyter: take the study from the parameter files
        from helpers.config import load
        plan = load.load(params_file or load.PARAMS / "report.yaml", profile=profile, studies=[study])
        runs = plan.studies[study].runs
        backend.use(plan.report.backend)  # a build's kernel inherits it; a hand-opened one chooses here
    how = dict(events_path=events_path, threads=threads, cache_dir=cache_dir, force=force)
    if runs and "search" in runs[0]:  # a search study: tune, then retrain the best trial
        records = search.train(runs, **how)
    else:
        records = training.run_all(runs, **how)
    if any(is_fold(r) for r in records):  # the refit's configuration depends on the folds' scores
        records += crossval.refit(records, **how)
    if results_path:
        training.save(records, results_path)
    return records

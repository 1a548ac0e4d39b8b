"""Cross-validation runs: the fold scores, the selected configuration (highest mean score over the
folds every candidate finished, never the test set) and its refit, trained on all of
train+validation and evaluated once on the test split. The folds themselves are data
(helpers.data.splits); the paired tests across folds are analysis (helpers.analysis.cv).

The refit's configuration depends on the fold results, so it is not in the plan: ``refit`` trains
it (through training.run_all, cached like any run) after the folds.
"""
from __future__ import annotations

import math

import numpy as np

from helpers.config.record import RunRecord, Status, is_fold
from helpers.run import training


def method(records: list[RunRecord]) -> str:
    """The paired test a cv study's section reports ("t" or "wilcoxon")."""
    return next((r["axis"].get("test", "t") for r in records if is_fold(r)), "t")


def _ok_folds(records: list[RunRecord]) -> list[RunRecord]:
    return [r for r in records if is_fold(r) and r.get("status") == Status.OK
            and (r.get("metrics") or {}).get("val_accuracy") is not None]


def variants(records: list[RunRecord]) -> list[str]:
    """Every variant, in the order of the study's parameters (failed ones included)."""
    return list(dict.fromkeys(r["axis"]["variant"] for r in records if is_fold(r)))


def scores(records: list[RunRecord]) -> dict[str, dict[int, float]]:
    """variant -> {fold: validation accuracy of that fold} (one seed per fold: config.CVStudy).
    Failed folds are left out."""
    out: dict[str, dict[int, float]] = {v: {} for v in variants(records)}
    for r in sorted(_ok_folds(records), key=lambda r: r["axis"]["fold"]):
        out[r["axis"]["variant"]][r["axis"]["fold"]] = float(r["metrics"]["val_accuracy"])
    return out


def selection(records: list[RunRecord]) -> dict:
    """How the variant is chosen: {"selected", "folds", "means", "left_out"}. Means are compared
    over the same folds — those every candidate finished — since a variant that failed a hard
    fold would otherwise be averaged over the easier ones only. While the candidates share fewer
    than two folds, the variants that finished the fewest folds stop being candidates
    (``left_out``); the first variant, in the study's order, wins a tie."""
    s = {v: f for v, f in scores(records).items() if f}
    candidates, left_out = list(s), []
    while len(candidates) > 1 and len(set.intersection(*(set(s[v]) for v in candidates))) < 2:
        fewest = min(len(s[v]) for v in candidates)
        if fewest == max(len(s[v]) for v in candidates):
            break  # as many folds each, and still too few shared: nothing fairer to drop
        left_out += [v for v in candidates if len(s[v]) == fewest]
        candidates = [v for v in candidates if len(s[v]) > fewest]
    folds = sorted(set.intersection(*(set(s[v]) for v in candidates))) if candidates else []
    means = {v: float(np.mean([s[v][k] for k in folds])) for v in candidates} if folds else {}
    return {"selected": max(means, key=means.get) if means else None, "folds": folds, "means": means,
            "left_out": left_out}


def selected(records: list[RunRecord]) -> str | None:
    """The variant with the highest mean score over the folds every candidate finished (``selection``)."""
    return selection(records)["selected"]


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def refit_spec(records: list[RunRecord]) -> dict | None:
    """The selected configuration, to be trained on all of train+validation. With early stopping
    (which needs a validation split it no longer has) it trains for a fixed number of epochs:
    the rounded mean best epoch of its folds."""
    best = selected(records)
    if best is None:
        return None
    folds = [r for r in _ok_folds(records) if r["axis"]["variant"] == best]
    first = folds[0]
    training = dict(first["config"]["training"])
    if training.get("early_stopping"):
        training.update(epochs=max(1, _round_half_up(float(np.mean([r["metrics"]["best_epoch"] for r in folds])))),
                        early_stopping=None)
    data = {k: v for k, v in first["config"]["data"].items() if k not in ("fold", "folds")}
    return {"study": first["study"], "kind": first["kind"], "label": best,
            "axis": {"variant": best, "refit": True, "test": method(records)},
            "baseline": first["baseline"], "seed": first["seed"], "reference": first.get("reference"),
            "config": {"model": dict(first["config"]["model"]), "training": training,
                       "data": {**data, "refit": True}}}


def refit(records: list[RunRecord], **run_all) -> list[dict]:
    """Train the selected configuration on all of train+validation (cached like any run); its
    record carries the cross-validated estimate as its validation accuracy (there is no
    validation split left), so the report's summaries treat it like any best run."""
    spec = refit_spec(records)
    if spec is None:
        return []
    out = training.run_all([spec], **run_all)
    folds = list(scores(records)[spec["label"]].values())
    mean = float(np.mean(folds))
    std = float(np.std(folds, ddof=1)) if len(folds) > 1 else math.nan
    for r in out:
        m = r.get("metrics")
        if r.get("status") == Status.OK and m:
            m.update(cv_mean=mean, cv_std=std, cv_folds=len(folds), val_accuracy=mean,
                     gap=m["train_accuracy"] - mean)
    return out

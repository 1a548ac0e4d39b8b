"""Composite ranking across studies (R1): a weighted sum of min–max-normalised test accuracy,
ROC AUC, low overfitting gap, few parameters and short training time.

It describes the finished configurations; it selects nothing (it weighs test accuracy, and the
report's choices are made on validation accuracy). Each component is normalised over the ranked
configurations: 1 for the best of them, 0 for the worst. A component that is the same for every
configuration tells them apart by nothing and gives each 1; a configuration missing a value (an
AUC that could not be computed) gets 0 on it. AUC only exists for binary tasks; elsewhere it is left
out and the other weights are rescaled to sum to 1, and the report says so.

A cross-validation refit has no validation split: its validation accuracy is the cross-validated
mean and its training accuracy is on all of train+validation, so its gap is no train−validation
gap of one split. Beside single-split runs it is not normalised with theirs: the refit is scored
on its other components, their weights rescaled to sum to 1 for it.
"""
from __future__ import annotations

import math

import pandas as pd

from helpers.config import kinds
from helpers.config.record import RunRecord, Status, is_fold, is_refit

# weight key -> (metric in a record, column heading, higher is better)
COMPONENTS = {
    "test_accuracy": ("test_accuracy", "test acc", True),
    "auc": ("roc_auc", "ROC AUC", True),
    "gap": ("gap", "low gap", False),
    "params": ("params", "few params", False),
    "seconds": ("seconds", "short time", False),
}

def _ranked(r: RunRecord) -> bool:
    return not is_fold(r) and not kinds.after_others(r.get("kind"))


def candidates(records: list[RunRecord]) -> pd.DataFrame:
    """One row per configuration (study, label) among the successful runs with a test score;
    a configuration trained with several seeds is the mean over those that finished (``runs``),
    out of ``of`` trained. Cross-validation folds have no test score and are not configurations
    of their own: left out; so are the robustness study's re-runs, whose configurations are
    ranked under the studies they come from. ``refit``: a cross-validation refit; its gap is
    blanked when single-split runs are ranked beside it (module docstring)."""
    columns = ["study", "configuration", "runs", "of", "refit", *(m for m, _, _ in COMPONENTS.values())]
    rows = [{"study": r.get("study"), "configuration": r.get("label"), "key": r.get("key"), "refit": is_refit(r),
             **{metric: (r.get("metrics") or {}).get(metric) for metric, _, _ in COMPONENTS.values()}}
            for r in records if r.get("status") == Status.OK and _ranked(r)
            and (r.get("metrics") or {}).get("test_accuracy") is not None]
    if not rows:
        return pd.DataFrame(columns=columns)
    trained: dict = {}
    for r in records:
        if _ranked(r):
            trained[(r.get("study"), r.get("label"))] = trained.get((r.get("study"), r.get("label")), 0) + 1
    df = pd.DataFrame(rows)
    metrics = [m for m, _, _ in COMPONENTS.values()]
    df[metrics] = df[metrics].astype(float)
    grouped = df.groupby(["study", "configuration"], sort=False)
    out = grouped[metrics].mean()
    out.insert(0, "runs", grouped.size())
    out.insert(1, "of", [trained[k] for k in out.index])
    out.insert(2, "refit", grouped["refit"].any())
    if out["refit"].any() and not out["refit"].all():
        out.loc[out["refit"], "gap"] = float("nan")
    runs = grouped["key"].agg(lambda k: tuple(sorted(k)) if k.notna().all() else None).tolist()
    return _merge_shared(out.reset_index(), runs)[columns]


def _merge_shared(frame: pd.DataFrame, runs: list) -> pd.DataFrame:
    """One row for a configuration that several studies share (the same cached runs, e.g. the base
    configuration of the depth, activation and optimizer studies): its studies and labels joined
    with " / ", instead of identical rows that tie with each other."""
    first: dict = {}
    for i, ident in enumerate(runs):
        first.setdefault(ident if ident else ("row", i), []).append(i)
    keep = [rows[0] for rows in first.values()]
    out = frame.loc[keep].copy()
    for ident, rows in first.items():
        if len(rows) > 1:
            for col in ("study", "configuration"):
                out.loc[rows[0], col] = " / ".join(dict.fromkeys(str(frame.loc[i, col]) for i in rows))
    return out.reset_index(drop=True)


def normalise(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """Min–max over the present values, oriented so 1 is best; constant -> 1, missing -> 0."""
    v = values.astype(float)
    present = v.dropna()
    if present.empty:
        return pd.Series(0.0, index=v.index)
    lo, hi = present.min(), present.max()
    if math.isclose(lo, hi, rel_tol=0, abs_tol=1e-12):
        n = pd.Series(1.0, index=v.index)
    else:
        n = (v - lo) / (hi - lo) if higher_is_better else (hi - v) / (hi - lo)
    return n.where(v.notna(), 0.0)


def weights_used(weights: dict[str, float], frame: pd.DataFrame) -> tuple[dict[str, float], list[str]]:
    """The weights applied (summing to 1) and notes on what was left out or rescaled."""
    w = {k: float(weights.get(k, 0.0)) for k in COMPONENTS}
    notes = []
    if w["auc"] > 0 and (frame.empty or frame["roc_auc"].isna().all()):
        notes.append(f"ROC AUC (weight {w['auc']:g}) is left out: it is only measured for binary tasks")
        w["auc"] = 0.0
    total = sum(w.values())
    if total <= 0:  # every positive weight was on a component that is not measured
        return {k: 0.0 for k in w}, notes + ["no weighted component is measured, so nothing is ranked"]
    if not math.isclose(total, 1.0):
        notes.append("the weights are rescaled to sum to 1")
    return {k: v / total for k, v in w.items()}, notes


def rank(records: list[RunRecord], weights: dict[str, float]) -> tuple[pd.DataFrame, dict[str, float], list[str]]:
    """Every configuration with its normalised components and score, best first. Equal scores
    share a rank (1, 2, 2, 4) and keep the report's order."""
    frame = candidates(records)
    used, notes = weights_used(weights, frame)
    # a refit's gap blanked beside single-split runs is not comparable, not missing: it does not
    # score 0 on it; its other weights are rescaled instead
    apart = frame["refit"].astype(bool) & frame["gap"].isna() if len(frame) else pd.Series(dtype=bool)
    for key, (metric, _, higher) in COMPONENTS.items():
        frame[f"n_{key}"] = normalise(frame[metric], higher) if len(frame) else []
        missing = int(frame[metric].isna().sum() - (apart.sum() if key == "gap" else 0)) if used[key] > 0 else 0
        if missing:
            notes.append(f"{missing} configuration{'s' * (missing != 1)} without {COMPONENTS[key][1]} "
                         f"score{'' if missing != 1 else 's'} 0 on it")
    if len(frame):
        total = sum(used[k] * frame[f"n_{k}"] for k in COMPONENTS)
        rest = 1.0 - used["gap"]
        frame["score"] = total.where(~apart, total / rest if rest > 0 else 0.0)
        frame.loc[apart, "n_gap"] = float("nan")
        if apart.any() and used["gap"] > 0:
            names = ", ".join(f"*{s}*" for s in frame.loc[apart, "study"])
            notes.append(f"the cross-validation refit of {names} is scored without the gap, its other weights "
                         "rescaled to sum to 1: its validation accuracy is the cross-validated mean and its training "
                         "accuracy is on all training data, so its gap is not comparable with a single split's")
    else:
        frame["score"] = []
    frame = frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    # rounded: equal configurations can differ in the last bits of a float sum
    frame.insert(0, "rank", frame["score"].astype(float).round(12).rank(method="min", ascending=False).astype(int))
    return frame, used, notes

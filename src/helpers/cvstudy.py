"""A cross-validation study's results: fold scores, the paired comparison across folds, the
selected configuration (highest mean fold score, never the test set) and its refit, which is
trained on all of train+validation and evaluated once on the test split.

The refit's configuration depends on the fold results, so it is not in the plan: ``refit`` trains
it (through training.run_all, cached like any run) after the folds.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from helpers import stats
from helpers.crossval import is_fold, is_refit


def _ok_folds(records: list[dict]) -> list[dict]:
    return [r for r in records if is_fold(r) and r.get("status") == "ok"
            and (r.get("metrics") or {}).get("val_accuracy") is not None]


def variants(records: list[dict]) -> list[str]:
    """Every variant, in the order of the study's parameters (failed ones included)."""
    return list(dict.fromkeys(r["axis"]["variant"] for r in records if is_fold(r)))


def scores(records: list[dict]) -> dict[str, dict[int, float]]:
    """variant -> {fold: validation accuracy of that fold} (one seed per fold: config.CVStudy).
    Failed folds are left out."""
    out: dict[str, dict[int, float]] = {v: {} for v in variants(records)}
    for r in sorted(_ok_folds(records), key=lambda r: r["axis"]["fold"]):
        out[r["axis"]["variant"]][r["axis"]["fold"]] = float(r["metrics"]["val_accuracy"])
    return out


def method(records: list[dict]) -> str:
    return next((r["axis"].get("test", "t") for r in records if is_fold(r)), "t")


def n_folds(records: list[dict]) -> int:
    return next((int(r["config"]["data"]["folds"]) for r in records if is_fold(r)), 0)


def summary(records: list[dict]) -> pd.DataFrame:
    """One row per variant: each fold's score, then mean, standard deviation and folds counted."""
    k = n_folds(records)
    rows = []
    for v, s in scores(records).items():
        st = stats.summarize(list(s.values()))
        rows.append({"variant": v, **{f"fold {i}": s.get(i, math.nan) for i in range(1, k + 1)},
                     "mean": st["mean"], "std": st["std"], "folds": st["n"]})
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()


def comparison(records: list[dict]) -> dict:
    """The variant with the highest mean fold score against each other one, paired over folds,
    Holm-corrected (stats.against_best); its "best" is the selected configuration."""
    return stats.against_best({v: s for v, s in scores(records).items() if s}, method=method(records))


def selected(records: list[dict]) -> str | None:
    return comparison(records)["best"]


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def refit_spec(records: list[dict]) -> dict | None:
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
            "baseline": first["baseline"], "seed": first["seed"],
            "config": {"model": dict(first["config"]["model"]), "training": training,
                       "data": {**data, "refit": True}}}


def refit(records: list[dict], **run_all) -> list[dict]:
    """Train the selected configuration on all of train+validation (cached like any run); its
    record carries the cross-validated estimate as its validation accuracy (there is no
    validation split left), so the report's summaries treat it like any best run."""
    spec = refit_spec(records)
    if spec is None:
        return []
    from helpers import training
    out = training.run_all([spec], **run_all)
    st = stats.summarize(list(scores(records)[spec["label"]].values()))
    for r in out:
        m = r.get("metrics")
        if r.get("status") == "ok" and m:
            m.update(cv_mean=st["mean"], cv_std=st["std"], cv_folds=st["n"], val_accuracy=st["mean"],
                     gap=m["train_accuracy"] - st["mean"])
    return out


def refit_record(records: list[dict]) -> dict | None:
    return next((r for r in records if is_refit(r)), None)


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value an exact signed-rank test on n pairs can give."""
    return min(1.0, 2 / 2 ** n) if n > 0 else 1.0


def abstract_note(records: list[dict]) -> str:
    """A sentence for the abstract, whose counts leave folds out (a fold is no configuration)."""
    folds = [r for r in records if is_fold(r)]
    if not folds:
        return ""
    studies = list(dict.fromkeys(r.get("study") for r in folds))
    failed = sum(r.get("status") != "ok" for r in folds)
    return (f" Cross-validation ({', '.join(f'*{s}*' for s in studies)}) adds {len(folds)} fold runs, not counted "
            "above: they score configurations on folds of the training data and never touch the test set"
            + (f"; {failed} of them failed." if failed else "."))

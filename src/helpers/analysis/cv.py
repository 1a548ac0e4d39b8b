"""A cross-validation study's numbers: fold scores per variant with mean ± std, and the selected
variant (helpers.run.crossval) against each other one, paired over the folds, Holm-corrected."""
from __future__ import annotations

import math

import pandas as pd

from helpers.analysis import stats
from helpers.config.record import RunRecord, is_fold, is_refit
from helpers.run.crossval import method, scores, selected


def n_folds(records: list[RunRecord]) -> int:
    return next((int(r["config"]["data"]["folds"]) for r in records if is_fold(r)), 0)


def summary(records: list[RunRecord]) -> pd.DataFrame:
    """One row per variant: each fold's score, then mean, standard deviation and folds counted."""
    k = n_folds(records)
    rows = []
    for v, s in scores(records).items():
        st = stats.summarize(list(s.values()))
        rows.append({"variant": v, **{f"fold {i}": s.get(i, math.nan) for i in range(1, k + 1)},
                     "mean": st["mean"], "std": st["std"], "folds": st["n"]})
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()


def comparison(records: list[RunRecord]) -> dict:
    """The selected variant (highest mean fold score) against each other one, paired over folds,
    Holm-corrected (stats.against_best)."""
    return stats.against_best({v: s for v, s in scores(records).items() if s}, method=method(records),
                              best=selected(records))


def refit_record(records: list[RunRecord]) -> RunRecord | None:
    return next((r for r in records if is_refit(r)), None)


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value an exact signed-rank test on n pairs can give."""
    return min(1.0, 2 / 2 ** n) if n > 0 else 1.0

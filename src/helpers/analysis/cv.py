"""A cross-validation study's numbers: fold scores per variant with mean ± std, and the selected
variant (helpers.run.crossval) against each other one, paired over the folds both finished,
Holm-corrected; a variant sharing too few folds with it is "not tested", never "within noise"."""
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
    """The selected variant against each other one, paired over the folds both finished,
    Holm-corrected (stats.against_best): ``comparisons`` the tested ones, ``untested`` those
    sharing fewer folds with it than the test needs (two at the least) or with a difference
    that is the same on every fold."""
    best = selected(records)
    if best is None:
        return {"best": None, "test": method(records), "comparisons": [], "untested": []}
    return stats.against_best(scores(records), method=method(records), best=best)


def refit_record(records: list[RunRecord]) -> RunRecord | None:
    return next((r for r in records if is_refit(r)), None)


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p-value an exact signed-rank test on n pairs can give."""
    return stats.min_p(n)

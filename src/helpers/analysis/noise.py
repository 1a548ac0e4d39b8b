"""The noise floor under a comparison of accuracies, in numbers (the words: helpers.present).

A difference between two validation accuracies is only a finding when it exceeds what chance
alone would produce. Two sources are measured here: the validation sample itself (an accuracy
on n samples has a binomial standard error of sqrt(p(1 − p) / n)) and, when a study trains its
configurations over several seeds, the seed-to-seed spread (the standard error of a mean over
k seeds is std / sqrt(k)). The floor is ``Z`` times the larger of the two. With one seed only the
first is known, so the floor is a lower bound on the real run-to-run noise.

Rank correlations get a significance test here too: on few points a large |rho| is cheap.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats as st

from helpers.analysis.records import ok as successful
from helpers.analysis.repeats import groups
from helpers.config.record import RunRecord, is_refit

Z = 2.0               # differences below Z standard errors are not claimed
FALLBACK = 0.01       # the floor when no record says how many validation samples there were
ALPHA = 0.05          # a rank correlation counts when its two-sided p is below this...
MIN_POINTS = 5        # ...and it rests on at least this many points
EXACT_UP_TO = 8       # exact permutation p-values up to this many points (8! orderings)


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n samples; p is kept one sample away from 0
    and 1 so that a perfect score still carries the uncertainty of its sample size."""
    p = min(max(p, 1 / n), 1 - 1 / n)
    return math.sqrt(p * (1 - p) / n)


def validation_size(records: Iterable[RunRecord]) -> int | None:
    """The fewest validation samples any successful run was scored on (the conservative n): what
    was loaded (``data_info["val"]``), else what the configuration asks for. A cv refit has no
    validation split of its own (its figure is a mean over folds) and is left out."""
    sizes = []
    for r in successful(records):
        if is_refit(r):
            continue
        info = r.get("data_info") or {}
        if isinstance(info.get("val"), int) and info["val"] > 0:
            sizes.append(info["val"])
            continue
        data = (r.get("config") or {}).get("data") or {}
        if data.get("train_samples") and data.get("validation_split"):
            sizes.append(int(data["train_samples"] * data["validation_split"]))
    return min(sizes) if sizes else None


def level(records: Iterable[RunRecord]) -> float | None:
    """The accuracy the standard error is taken at: the median validation accuracy of the
    successful runs (a run stuck at chance should not inflate the floor of the others)."""
    vals = [r["metrics"]["val_accuracy"] for r in successful(records) if not is_refit(r)]
    return float(np.median(vals)) if vals else None


def seed_se(records: Iterable[RunRecord]) -> float | None:
    """The standard error of one configuration's mean validation accuracy from the seed-to-seed
    spread: the median over configurations of std / sqrt(k), k its successful seeds. Records
    already collapsed over seeds (``spread`` and ``runs_ok``) are read as they are. None
    without repeats."""
    records = list(records)
    ses = []
    for r in successful(records):
        sd, k = (r.get("spread") or {}).get("val_accuracy"), r.get("runs_ok", 0)
        if sd is not None and k > 1:
            ses.append(sd / math.sqrt(k))
    for rs in groups(records).values():
        vals = [r["metrics"]["val_accuracy"] for r in successful(rs)]
        if len(vals) > 1:
            ses.append(float(np.std(vals, ddof=1)) / math.sqrt(len(vals)))
    return float(np.median(ses)) if ses else None


def floor(records: Iterable[RunRecord]) -> float:
    """The smallest difference of validation accuracies the records can support: Z times the
    larger of the binomial and the seed-to-seed standard error (FALLBACK when neither is known)."""
    records = list(records)
    n, p, seeds = validation_size(records), level(records), seed_se(records)
    ses = ([binomial_se(p, n)] if n and p is not None else []) + ([seeds] if seeds is not None else [])
    return Z * max(ses) if ses else FALLBACK


def describe(records: Iterable[RunRecord]) -> dict:
    """What ``floor`` rests on, for the sentence that states it: floor, n, level, seed_se."""
    records = list(records)
    return {"floor": floor(records), "n": validation_size(records), "level": level(records),
            "seed_se": seed_se(records), "z": Z}


def rank_test(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """(Spearman's rho, its two-sided p): exact over every ordering for few points, else
    scipy's t approximation. NaN, NaN when either side is constant or there are under 3 points."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    n = len(x)
    if n < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan, math.nan
    rx, ry = st.rankdata(x), st.rankdata(y)
    rho = float(np.corrcoef(rx, ry)[0, 1])
    if n > EXACT_UP_TO:
        return rho, float(st.spearmanr(x, y).pvalue)
    perms = np.array(list(itertools.permutations(ry)))
    centred = perms - perms.mean(axis=1, keepdims=True)
    cx = rx - rx.mean()
    rhos = centred @ cx / (np.linalg.norm(centred, axis=1) * np.linalg.norm(cx))
    return rho, float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))


def correlated(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, bool]:
    """(rho, p, significant): significant when there are MIN_POINTS points or more and p < ALPHA."""
    rho, p = rank_test(xs, ys)
    return rho, p, len(xs) >= MIN_POINTS and not math.isnan(p) and p < ALPHA

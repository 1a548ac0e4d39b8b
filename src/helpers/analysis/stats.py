"""Repeats over seeds: means, spreads, confidence intervals, paired tests (which refuse to test what
they cannot: too few pairs, a constant difference) with Holm's correction, and rank correlation.

Everything here is plain numbers in, plain numbers out, so it is tested against scipy directly.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

ALPHA = 0.05


def summarize(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean, sample standard deviation and a t-based confidence interval of the mean."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    mean = float(x.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = float(x.std(ddof=1))
    half = float(st.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def min_p(n: int) -> float:
    """The smallest two-sided p-value an exact paired test (sign-flip or signed-rank) can give
    on n pairs: every difference on one side, 2 / 2**n. A constant difference reaches exactly this."""
    return min(1.0, 2 / 2 ** n) if n > 0 else 1.0


# A paired t-test on fewer pairs rests on a spread estimated from one or two differences: two
# near-equal differences give an arbitrarily small p. Three is the least we test.
MIN_PAIRS = {"t": 3, "wilcoxon": 2}
TOO_FEW, CONSTANT = "too few pairs", "constant difference"


def paired(a: Sequence[float], b: Sequence[float], method: str = "t") -> dict:
    """A paired comparison (same seeds or folds on both sides): {"n", "diff" (mean of a − b),
    "p", "untested", "min_p"}. ``untested`` says why no test was made (p is then NaN): fewer pairs
    than ``MIN_PAIRS``, or a difference that is the same for every pair — its spread is zero, a
    t statistic is infinite and p would print as 0, though with n pairs an exact test could not go
    below ``min_p(n)``. ``t``: paired t-test; ``wilcoxon``: signed-rank test."""
    if method not in MIN_PAIRS:
        raise ValueError(f"unknown test {method!r}; use 't' or 'wilcoxon'")
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
    d = a - b
    n = len(d)
    out = {"n": n, "diff": float(d.mean()) if n else math.nan, "p": math.nan, "untested": None, "min_p": min_p(n)}
    if n < MIN_PAIRS[method]:
        return {**out, "untested": TOO_FEW}
    if np.allclose(d, d.mean(), rtol=0, atol=1e-12):
        return {**out, "untested": CONSTANT}
    p = st.wilcoxon(a, b).pvalue if method == "wilcoxon" else st.ttest_rel(a, b).pvalue
    return {**out, "p": float(p)}


def paired_test(a: Sequence[float], b: Sequence[float], method: str = "t") -> float:
    """The two-sided p-value of ``paired``; NaN when no test can be made (never 0)."""
    return paired(a, b, method)["p"]


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def against_best(scores: dict[str, dict[int, float]], method: str = "t", alpha: float = ALPHA,
                 best: str | None = None) -> dict:
    """The best configuration (highest mean) against each other one, paired over shared seeds.

    ``scores``: label -> {seed: score}. ``best``: the label to compare against when it was chosen
    on other data (validation accuracy, while ``scores`` are test accuracies). Returns {"best",
    "test", "comparisons", "untested"}: each comparison {label, n, shared, diff, mean_best, mean,
    p, p_holm, significant} over the seeds both share (``diff`` and the means over those seeds
    only, so a configuration that lost its hard seeds is not flattered), Holm-corrected across the
    comparisons; ``untested`` the configurations no test could be made against (``paired``), left
    out of Holm's correction and never called within noise.
    """
    means = {label: float(np.mean(list(s.values()))) for label, s in scores.items() if s}
    if not means:
        return {"best": None, "test": method, "comparisons": [], "untested": []}
    best = best if best in means else max(means, key=means.get)
    rows, untested = [], []
    for label, s in scores.items():
        if label == best:
            continue
        shared = sorted(set(s) & set(scores[best]))
        x, y = [scores[best][k] for k in shared], [s[k] for k in shared]
        r = paired(x, y, method)
        row = {"label": label, "n": r["n"], "shared": shared, "diff": r["diff"], "p": r["p"],
               "mean_best": float(np.mean(x)) if x else math.nan, "mean": float(np.mean(y)) if y else math.nan,
               "min_p": r["min_p"], "untested": r["untested"]}
        (untested if r["untested"] else rows).append(row)
    for row, adj in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = adj
        row["significant"] = adj < alpha
    return {"best": best, "test": method, "comparisons": rows, "untested": untested}


def rank_corr(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation (NaN when either side is constant)."""
    a, b = pd.Series(list(xs)).rank(), pd.Series(list(ys)).rank()
    return float(a.corr(b)) if a.nunique() > 1 and b.nunique() > 1 else float("nan")


def rank_corr_test(xs: Sequence[float], ys: Sequence[float]) -> dict:
    """Spearman's rank correlation with its two-sided p-value (scipy's t approximation, which
    handles ties): {"rho", "p", "n"}; both NaN with fewer than four points or a constant side."""
    n = len(xs)
    rho = rank_corr(xs, ys) if n >= 4 else math.nan
    if math.isnan(rho):
        return {"rho": math.nan, "p": math.nan, "n": n}
    return {"rho": rho, "p": float(st.spearmanr(xs, ys).pvalue), "n": n}

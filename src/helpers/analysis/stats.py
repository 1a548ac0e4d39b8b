"""Repeats over seeds: means, spreads, confidence intervals and paired tests with Holm's correction.

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


def paired_test(a: Sequence[float], b: Sequence[float], method: str = "t") -> float:
    """Two-sided p-value of a paired comparison (same seeds or folds on both sides).

    ``t``: paired t-test; ``wilcoxon``: signed-rank test. Fewer than two pairs, or pairs that
    never differ, cannot show a difference: p = 1.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
    d = a - b
    if len(d) < 2 or np.allclose(d, 0):
        return 1.0
    if method == "wilcoxon":
        return float(st.wilcoxon(a, b).pvalue)
    if method == "t":
        if np.allclose(d, d[0]):  # a constant non-zero difference: no spread, t is infinite
            return 0.0
        return float(st.ttest_rel(a, b).pvalue)
    raise ValueError(f"unknown test {method!r}; use 't' or 'wilcoxon'")


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
    on other data (validation accuracy, while ``scores`` are test accuracies). Returns {"best":
    label, "comparisons": [{label, diff, p, p_holm, significant}]} with Holm's correction across
    the comparisons.
    """
    means = {label: float(np.mean(list(s.values()))) for label, s in scores.items() if s}
    if not means:
        return {"best": None, "comparisons": []}
    best = best if best in means else max(means, key=means.get)
    rows = []
    for label, s in scores.items():
        if label == best or not s:
            continue
        seeds = sorted(set(s) & set(scores[best]))
        p = paired_test([scores[best][k] for k in seeds], [s[k] for k in seeds], method)
        rows.append({"label": label, "diff": means[best] - means[label], "n": len(seeds), "p": p})
    for row, adj in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = adj
        row["significant"] = adj < alpha
    return {"best": best, "test": method, "comparisons": rows}


def rank_corr(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation (NaN when either side is constant)."""
    a, b = pd.Series(list(xs)).rank(), pd.Series(list(ys)).rank()
    return float(a.corr(b)) if a.nunique() > 1 and b.nunique() > 1 else float("nan")

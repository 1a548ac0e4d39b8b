"""helpers.analysis.stats against scipy and hand-computed values on known samples."""
import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from helpers.analysis import stats

SAMPLES = [
    [0.80, 0.82, 0.81, 0.79, 0.83],
    [0.5, 0.7],
    [0.9, 0.9, 0.9],
]


@pytest.mark.parametrize("xs", SAMPLES)
def test_confidence_interval_matches_scipy(xs):
    s = stats.summarize(xs)
    lo, hi = st.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=st.sem(xs)) if np.std(xs) else (np.mean(xs),) * 2
    assert s["n"] == len(xs) and s["mean"] == pytest.approx(np.mean(xs))
    assert s["std"] == pytest.approx(np.std(xs, ddof=1))
    assert s["ci_low"] == pytest.approx(lo) and s["ci_high"] == pytest.approx(hi)


@pytest.mark.parametrize("xs, n", [([], 0), ([0.7], 1), ([0.7, float("nan")], 1)])
def test_too_few_values_give_no_interval(xs, n):
    s = stats.summarize(xs)
    assert s["n"] == n and math.isnan(s["ci_low"]) and math.isnan(s["std"])


@pytest.mark.parametrize("a, b", [
    ([0.81, 0.83, 0.80, 0.84, 0.82], [0.79, 0.80, 0.80, 0.81, 0.78]),
    ([0.5, 0.6, 0.7], [0.55, 0.58, 0.71]),
])
def test_paired_tests_match_scipy(a, b):
    assert stats.paired_test(a, b, "t") == pytest.approx(st.ttest_rel(a, b).pvalue)
    assert stats.paired_test(a, b, "wilcoxon") == pytest.approx(st.wilcoxon(a, b).pvalue)


@pytest.mark.parametrize("a, b", [
    ([0.8, 0.8, 0.8], [0.8, 0.8, 0.8]),   # identical: no evidence of a difference
    ([0.8], [0.7]),                        # one pair cannot show anything
    ([0.8, 0.9], [0.7, 0.8]),              # a constant non-zero difference: not evidence either (issue 12)
])
def test_paired_test_edge_cases(a, b):
    # Untestable, never p = 0 or a made-up 1.0: the caller says "not tested" and why.
    assert math.isnan(stats.paired_test(a, b))


def test_paired_test_rejects_unpaired_and_unknown_method():
    with pytest.raises(ValueError, match="same length"):
        stats.paired_test([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="unknown test"):
        stats.paired_test([1, 2], [2, 3], "anova")


@pytest.mark.parametrize("p, expected", [
    ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06]),   # sorted 0.01*3, 0.03*2, 0.04*1 -> monotone max
    ([0.5, 0.001], [0.5, 0.002]),
    ([0.4, 0.4], [0.8, 0.8]),
    ([0.9, 0.6, 0.7], [1.0, 1.0, 1.0]),          # capped at 1
])
def test_holm(p, expected):
    assert stats.holm(p) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
def test_holm_agrees_with_statsmodels_definition_on_random_values(seed):
    rng = np.random.default_rng(seed)
    p = rng.random(7) / 5
    p[seed % 7] = p[(seed + 1) % 7]  # a tie: both tied p-values get the same adjusted value
    _, expected, _, _ = multipletests(p, method="holm")
    assert stats.holm(p) == pytest.approx(expected.tolist())


def test_against_best_separated_and_overlapping():
    rng = np.random.default_rng(1)
    seeds = range(6)
    scores = {
        "good": {s: 0.85 + rng.normal(0, 0.002) for s in seeds},
        "twin": {s: 0.85 + rng.normal(0, 0.002) for s in seeds},   # same distribution
        "bad": {s: 0.80 + rng.normal(0, 0.002) for s in seeds},    # clearly worse
    }
    out = stats.against_best(scores)
    rows = {r["label"]: r for r in out["comparisons"]}
    assert out["best"] in ("good", "twin")
    assert rows["bad"]["significant"] and rows["bad"]["p_holm"] < 0.01
    other = "twin" if out["best"] == "good" else "good"
    assert not rows[other]["significant"]
    assert rows["bad"]["p_holm"] >= rows["bad"]["p"]

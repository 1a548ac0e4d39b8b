"""Issue 12, items 3–6: what the statistics may claim. A constant paired difference over few seeds
is not tested (never p = 0); a trend through a study's configurations needs its own test; a
configuration that lost seeds cannot be best; cross-validation compares variants over the folds
they share, and a refit's gap is not ranked beside single-split gaps."""
import math

import numpy as np
import pytest
from conftest import make_record
from scipy import stats as st

from helpers.analysis import cv as cv_scores, ranking, repeats, stats
from helpers.present import repeats as repeat_words
from helpers.present.views import cv as cv_view
from helpers.run import crossval


def seeded(label, vals, tests=None, study="s", axis=None, first_seed=42):
    tests = vals if tests is None else tests
    return [make_record(label, v, test=t, seed=first_seed + i, study=study, axis=axis)
            for i, (v, t) in enumerate(zip(vals, tests))]


# ---------------------------------------------------------------- item 4: p = 0 from a constant difference
def test_constant_difference_is_not_significant():
    # accuracies live on a 1/n grid: over three seeds B trails A by exactly 5 points every time
    recs = seeded("A", [0.90, 0.91, 0.92]) + seeded("B", [0.85, 0.86, 0.87])
    assert stats.paired_test([0.90, 0.91, 0.92], [0.85, 0.86, 0.87]) != 0  # NaN: untested
    assert math.isnan(stats.paired_test([0.90, 0.91, 0.92], [0.85, 0.86, 0.87]))
    result = repeats.comparisons(recs)
    assert result["comparisons"] == [] and [c["label"] for c in result["untested"]] == ["B"]
    text = repeat_words.findings(recs)
    assert "significantly" not in text and "< 0.001" not in text and "within noise" not in text
    assert "the same (5.0 points) on each of the 3 seeds" in text
    assert f"cannot give p below {0.25:.3f}" in text  # 2 / 2**3, through format.p
    table = repeat_words.comparison_table(recs)
    assert table.loc["B", "p"] == "—" and table.loc["B", "seeds paired"] == 3
    assert table.loc["B", "significant (α = 0.05)"].startswith("not tested")


@pytest.mark.parametrize("a, b", [([0.8, 0.9], [0.7, 0.8]), ([0.8, 0.9], [0.7, 0.85]), ([0.8], [0.7])])
def test_a_t_test_on_fewer_than_three_pairs_is_not_made(a, b):
    # two near-equal differences would give an arbitrarily small p
    assert math.isnan(stats.paired_test(a, b, "t"))
    r = stats.paired(a, b, "t")
    assert r["untested"] == stats.TOO_FEW and math.isnan(r["p"]) and r["min_p"] == pytest.approx(2 / 2 ** len(a))


def test_varying_differences_are_tested_as_before_and_the_seeds_are_named():
    a, b = [0.90, 0.92, 0.95, 0.91], [0.80, 0.83, 0.84, 0.82]
    assert stats.paired_test(a, b) == pytest.approx(st.ttest_rel(a, b).pvalue)
    text = repeat_words.findings(seeded("A", a) + seeded("B", b))
    assert "significantly better than **B** (by 9.8 points over 4 seeds" in text
    assert "(4 seeds)" in text and "an exact test on 4 seeds could not give p below 0.125" in text


# ---------------------------------------------------------------- item 3: a trend needs its own test
def _axis(units, vals):
    return seeded(f"{units} units", vals, axis={"units": units})


def test_a_trend_is_not_told_because_the_best_beats_every_other_one():
    # 64 units beats each of the others (paired, Holm), but 8, 16 and 32 are in no order: the
    # means 0.800, 0.799, 0.797 only make the curve look like a rise
    recs = (_axis(8, [0.80, 0.81, 0.79]) + _axis(16, [0.81, 0.79, 0.797]) + _axis(32, [0.79, 0.81, 0.791])
            + _axis(64, [0.95, 0.96, 0.97]))
    text = repeat_words.findings(recs)
    assert "rises" not in text and "No trend through the configurations is claimed" in text
    assert all(c["significant"] for c in repeats.comparisons(recs)["comparisons"])  # the old gate opened
    t = repeats.trend_test(recs)
    assert t["n"] == 12 and t["p"] >= stats.ALPHA
    assert t["rho"] == pytest.approx(st.spearmanr([r["axis"]["units"] for r in recs],
                                                  [r["metrics"]["val_accuracy"] for r in recs]).statistic)
    shape, sentence = repeat_words.trend(recs)
    assert shape is None and sentence.startswith("No trend through the configurations is claimed")


def test_a_trend_through_all_configurations_is_told_with_its_test():
    recs = (_axis(8, [0.70, 0.72, 0.71]) + _axis(16, [0.78, 0.80, 0.79]) + _axis(32, [0.85, 0.86, 0.84])
            + _axis(64, [0.91, 0.93, 0.92]))
    shape, sentence = repeat_words.trend(recs)
    assert shape == "rises" and "Spearman's rank correlation" in sentence and "over all 12 runs" in sentence


# ---------------------------------------------------------------- item 5: survivorship
def test_a_configuration_that_lost_seeds_cannot_be_best():
    lucky = seeded("lucky", [0.97, 0.70, 0.70])
    lucky[1]["status"] = "diverged"
    lucky[2] = make_record("lucky", seed=44, study="s", status="failed")
    recs = seeded("steady", [0.90, 0.91, 0.92]) + lucky
    assert repeats.best_label(recs) == "steady" and repeats.best_run(recs)["label"] == "steady"
    assert repeats.leader(recs)["label"] == "lucky"  # the highest mean, over its one surviving seed
    text = repeat_words.headline(recs)[0]
    assert "**lucky** has the highest mean validation accuracy" in text and "only 1 of its 3 seeds finished" in text
    assert "is **steady**" in text
    assert repeat_words.table(recs).loc["lucky", "seeds"] == "1/3"
    assert [c["label"] for c in repeats.comparisons(recs)["untested"]] == ["lucky"]
    frame = ranking.candidates(recs).set_index("configuration")
    assert (frame.loc["lucky", "runs"], frame.loc["lucky", "of"]) == (1, 3)


def test_no_configuration_with_all_seeds_is_no_best():
    a, b = seeded("a", [0.9, 0.9]), seeded("b", [0.8, 0.8])
    a[1]["status"] = b[0]["status"] = "diverged"
    assert repeats.best_label(a + b) is None
    assert "none is named best" in repeat_words.headline(a + b)[0]


# ---------------------------------------------------------------- item 6: cross-validation with failed folds
def fold(variant, i, val, status="ok", folds=5):
    cfg = {"model": {"hidden": [8]}, "training": {"epochs": 5, "early_stopping": None},
           "data": {"dataset": "digits", "seed": 42, "fold": i, "folds": folds}}
    rec = make_record(f"{variant} · fold {i}", val, study="cv", kind="cv", status=status, cfg=cfg,
                      axis={"variant": variant, "fold": i, "test": "t"})
    for key in ("test_accuracy", "f1_macro"):
        rec.get("metrics", {}).pop(key, None)
    return rec


def variant(name, vals, failed=()):
    return [fold(name, i, v, status="failed" if i in failed else "ok") for i, v in enumerate(vals, start=1)]


def test_selection_compares_means_over_the_same_folds():
    # B failed fold 1, the hardest; over its own folds its mean (0.8725) beats A's (0.86), over the
    # folds both finished A is ahead (0.8725 against 0.8625)
    recs = variant("A", [0.81, 0.87, 0.88, 0.86, 0.88]) + variant("B", [0.0, 0.86, 0.87, 0.86, 0.86], failed=(1,))
    assert np.mean(list(crossval.scores(recs)["B"].values())) > np.mean(list(crossval.scores(recs)["A"].values()))
    assert crossval.selected(recs) == "A"
    sel = crossval.selection(recs)
    assert sel["selected"] == "A" and sel["folds"] == [2, 3, 4, 5]
    assert crossval.refit_spec(recs)["label"] == "A"
    assert "means over folds 2, 3, 4, 5, the folds every candidate finished" in cv_view.findings(recs).data


def test_a_variant_sharing_too_few_folds_is_not_tested_nor_within_noise():
    recs = (variant("A", [0.90, 0.92, 0.91, 0.93, 0.89]) + variant("B", [0.80, 0.83, 0.81, 0.82, 0.80])
            + variant("C", [0.89, 0.5, 0.5, 0.5, 0.5], failed=(2, 3, 4, 5)))
    c = cv_scores.comparison(recs)
    assert c["best"] == "A" and [r["label"] for r in c["comparisons"]] == ["B"]
    assert [(r["label"], r["n"]) for r in c["untested"]] == [("C", 1)]
    assert c["comparisons"][0]["p_holm"] == pytest.approx(c["comparisons"][0]["p"])  # C is no comparison in Holm
    text = cv_view.findings(recs).data
    assert "**C** could not be tested against **A**: it shares only 1 fold" in text
    assert "**C** is also within noise" not in text and "**C**, " not in text
    table = cv_view.tests(recs).data
    assert "not tested: it shares only 1 fold with the selected configuration" in table


# ---------------------------------------------------------------- item 6: the refit's gap in the ranking
def test_the_refit_gap_is_not_pooled_with_single_split_gaps():
    single = [make_record("a", 0.90, test=0.90, train=0.92, study="width"),
              make_record("b", 0.88, test=0.88, train=0.89, study="width")]
    refit = make_record("wide", 0.91, test=0.91, train=0.99, study="cv", kind="cv",
                        cfg={**single[0]["config"], "data": {"dataset": "digits", "seed": 42, "refit": True}})
    weights = {"test_accuracy": 0.5, "gap": 0.5, "auc": 0, "params": 0, "seconds": 0}
    frame, _, notes = ranking.rank(single + [refit], weights)
    by = frame.set_index("configuration")
    assert math.isnan(by.loc["wide", "gap"]) and math.isnan(by.loc["wide", "n_gap"])
    # the single-split gaps are normalised among themselves: b's 0.01 is the best, a's 0.02 the worst
    assert by.loc["b", "n_gap"] == 1.0 and by.loc["a", "n_gap"] == 0.0
    assert by.loc["wide", "score"] == pytest.approx(by.loc["wide", "n_test_accuracy"])  # its weight rescaled
    assert any("refit of *cv* is scored without the gap" in n for n in notes)
    assert not any("without low gap" in n for n in notes)  # not called missing: it is not comparable
    # refits alone are comparable with each other
    alone, _, _ = ranking.rank([refit, {**refit, "study": "cv2", "label": "narrow"}], weights)
    assert alone["gap"].notna().all()

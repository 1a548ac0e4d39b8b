"""The noise floor (helpers.analysis.noise) and the words it gates: trends that go the way the data
go, no comparative sentence below the floor derived from the validation size (and the seed spread
when there are repeats), significance for rank correlations, the cv refit kept out of the
abstract's "best overall", and a Methodology that states the floor, the epochs that ran and
which model the metrics were measured on."""
import copy
import math

import pytest
from scipy import stats as st

from conftest import ROOT, config, make_record
from helpers.analysis import noise
from helpers.config import load
from helpers.present import format as fmt, trends
from helpers.present.discussion import discussion
from helpers.present.findings import findings
from helpers.present.methodology import methodology
from helpers.present.overview import abstract, conclusions


def info(val: int) -> dict:
    return {"dataset": "digits", "classes": 10, "shape": [64], "source": "sklearn", "preprocessing": "none",
            "train": 4 * val, "val": val, "test": val}


def rec(label, val, n_val, study="s", axis=None, **kw):
    r = make_record(label, val, study=study, axis=axis, **kw)
    r["data_info"] = info(n_val)
    return r


def series(vals, n_val, key="width", xs=(64, 128, 256, 512, 1024), study="s"):
    return [rec(f"{key}={x}", v, n_val, study=study, axis={key: x}, params=1000 * (i + 1))
            for i, (x, v) in enumerate(zip(xs, vals))]


# ---------------------------------------------------------------- the floor in numbers
def test_floor_is_twice_the_binomial_standard_error_on_the_validation_size():
    recs = [rec("a", 0.955, 200), rec("b", 0.955, 200)]
    assert noise.floor(recs) == pytest.approx(2 * math.sqrt(0.955 * 0.045 / 200))
    assert fmt.pp(noise.floor(recs)) == "2.9"
    # more validation samples, a lower floor; the smallest split decides
    assert noise.floor([rec("a", 0.955, 20000)]) < noise.floor(recs)
    assert noise.validation_size([rec("a", 0.9, 200), rec("b", 0.9, 900)]) == 200
    # no data_info: the configuration's own split (train_samples × validation_split)
    cfg = config()
    cfg["data"].update(train_samples=1000, validation_split=0.2)
    assert noise.validation_size([make_record("c", 0.9, cfg=cfg)]) == 200
    assert noise.floor([make_record("d", 0.9)]) == noise.FALLBACK  # nothing says how many samples


def test_floor_takes_the_seed_spread_when_repeats_exist():
    vals = {"A": [0.80, 0.86, 0.92], "B": [0.70, 0.76, 0.82]}  # std 0.06 over 3 seeds
    recs = [rec(label, v, 100000, seed=s) for label, vs in vals.items() for s, v in zip((1, 2, 3), vs)]
    assert noise.seed_se(recs) == pytest.approx(0.06 / math.sqrt(3))
    assert noise.floor(recs) == pytest.approx(2 * 0.06 / math.sqrt(3))


def test_rank_test_is_exact_on_few_points_and_matches_scipy_on_many():
    rho, p = noise.rank_test([1, 2, 3, 4, 5], [1, 2, 3, 5, 4])
    assert rho == pytest.approx(0.9) and p == pytest.approx(10 / 120)  # 5 orderings as extreme, both signs
    assert noise.rank_test([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])[1] == pytest.approx(2 / 120)
    xs, ys = list(range(12)), [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]
    ref = st.spearmanr(xs, ys)
    assert noise.rank_test(xs, ys) == pytest.approx((ref.statistic, ref.pvalue))
    assert all(math.isnan(v) for v in noise.rank_test([1, 2, 3], [4, 4, 4]))
    assert not noise.correlated([1, 2, 3, 4], [1, 2, 3, 4])[2]  # too few points to count


# ---------------------------------------------------------------- item 1
def test_falling_series_is_called_falling():
    vals = [0.862, 0.858, 0.854, 0.850]
    # on 60,000 validation samples the floor is under half a point: a fall of 1.2 points is real
    recs = series(vals, 60000)
    text = findings(recs)
    assert "validation accuracy falls" in text and "rises" not in text
    out = conclusions(recs)
    assert "validation accuracy falls" in out and "rises" not in out and "range above" not in out
    # on 200 samples the same fall is inside the floor: no trend and no advice to extend the range
    recs = series(vals, 200)
    text = findings(recs)
    assert "accuracy rises" not in text and "accuracy falls" not in text
    assert "cannot tell whether it rises or falls" in text and "`repeats:`" in text
    assert "extend the range" not in conclusions(recs)
    # small steps that add up to a loss are never a gradual rise, whatever the floor
    assert trends.shape([0.862, 0.858, 0.854, 0.850], 0.005)[0] == "falls"
    assert trends.shape([0.850, 0.854, 0.858, 0.862], 0.005)[0] == "rises gradually"


# ---------------------------------------------------------------- item 2
def _one_seed_report(n_val=200):
    # every difference below is at most 2 points: inside the floor of ~4 points on 200 samples
    width = series([0.90, 0.92, 0.91], n_val, study="width")
    depth = [rec(f"depth {i}", v, n_val, study="depth", axis={"layers": i}, params=500 * i)
             for i, v in enumerate([0.905, 0.90, 0.902], start=1)]
    plain = config()
    dropout = config(dropout=0.3)
    reg = [rec("none", 0.91, n_val, study="regularization", kind="regularization", cfg=plain, train=0.93),
           rec("dropout", 0.91, n_val, study="regularization", kind="regularization", cfg=dropout, train=0.92)]
    # parameter count against gap: rho = 0.9 on five points, the old rule's "larger models overfit more"
    for r, g in zip(width + depth[:2], [0.01, 0.02, 0.03, 0.05, 0.04]):
        r["metrics"]["train_accuracy"] = r["metrics"]["val_accuracy"] + g
        r["metrics"]["gap"] = g
    return width + depth + reg


def test_single_seed_noise_floor_blocks_claims():
    recs = _one_seed_report()
    floor = noise.floor(recs)
    assert floor > 0.03  # the smoke profile's 200 validation samples
    width = findings([r for r in recs if r["study"] == "width"])
    assert "peaks" not in width and "cannot tell" in width and "`repeats:`" in width
    assert "points (twice the binomial standard error" in width  # the floor with its value, where it is applied
    summary = abstract(recs)
    assert "largest effect" not in summary and "matters least" not in summary
    assert "cannot tell which factor matters" in summary
    words = discussion(recs)
    assert "largest effect" not in words and "matters least" not in words
    assert "regularization narrows the gap" not in words and "cannot tell whether regularization" in words
    assert "Larger models overfit more" not in words and "cannot tell whether model size" in words
    assert "about 1 point" not in words and fmt.pp(floor) in words
    # the same report on 60,000 validation samples: the same 2-point differences are findings again
    big = _one_seed_report(60000)
    assert "peaks at width = 128" in findings([r for r in big if r["study"] == "width"])
    assert "largest effect" in abstract(big)


def test_methodology_states_the_floor_once_with_its_value(digits_plan):
    recs = _one_seed_report()
    text = methodology(digits_plan, recs)
    value = fmt.pp(noise.floor(recs))
    assert f"Differences below the noise floor of {value} points (twice the binomial standard error" in text
    assert f"on {fmt.count(200)} validation samples)" in text
    assert text.count("noise floor") == 1


# ---------------------------------------------------------------- item 6 (the abstract)
def test_abstract_does_not_pool_the_cv_refit_with_single_split_runs():
    single = [rec("wide", 0.86, 60000, study="width", axis={"width": 256}),
              rec("narrow", 0.85, 60000, study="width", axis={"width": 64})]
    refit = rec("cv choice", 0.95, 60000, study="cv", kind="cv", test=0.87)
    refit["config"] = copy.deepcopy(refit["config"])
    refit["config"]["data"]["refit"] = True
    refit["data_info"]["val"] = 0
    text = abstract(single + [refit])
    assert "best configuration overall, selected by validation accuracy, is **wide**" in text
    assert "**cv choice**" in text and "mean over folds" in text and "not ranked" in text
    assert "ranges from 0.8450 to 0.8550" in text  # the refit's test accuracy is told apart, not pooled


# ---------------------------------------------------------------- items 8 and 9 (the Methodology)
def test_methodology_states_the_epochs_that_ran():
    plan = load.load(ROOT / "params" / "report.yaml", profile="quick")
    assert plan.report.base.training.epochs > plan.report.profiles["quick"].epochs  # the cap binds
    text = methodology(plan, [rec("a", 0.85, 2400)])
    cap = plan.report.profiles["quick"].epochs
    assert f"at most {cap} epochs per run" in text and f"up to {cap} epochs" in text
    assert f"{plan.report.base.training.epochs} epochs" not in text


def test_methodology_without_early_stopping_says_the_last_epochs_model(digits_plan):
    plain = [rec("a", 0.85, 300), rec("b", 0.84, 300)]  # make_record: early_stopping None
    measured = methodology(digits_plan, plain).split("Measurements")[1]
    assert "the restored model" not in measured and "after its last epoch" in measured
    stopping = config()
    stopping["training"]["early_stopping"] = {"monitor": "val_loss", "patience": 3}
    stopped = [rec("a", 0.85, 300, cfg=stopping), rec("b", 0.84, 300, cfg=stopping)]
    assert "the restored model" in methodology(digits_plan, stopped).split("Measurements")[1]
    mixed = [rec("a", 0.85, 300, study="depth"), rec("b", 0.84, 300, study="reg", cfg=stopping)]
    measured = methodology(digits_plan, mixed).split("Measurements")[1]
    assert "after its last epoch, except in the *reg* study" in measured

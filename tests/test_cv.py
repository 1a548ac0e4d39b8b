"""Cross-validation studies: folds of train+validation only (never the test split), a fresh model
per fold, fold scores and their mean ± std, selection by mean fold score, the refit, the schema."""
import copy
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from conftest import ROOT, make_record, run_build  # noqa: E402

from helpers.analysis import cv as cvstudy  # noqa: E402
from helpers.analysis import stats
from helpers.config import load  # noqa: E402
from helpers.config.errors import ConfigError  # noqa: E402
from helpers.config.record import is_fold, is_refit  # noqa: E402
from helpers.data import splits as data_splits  # noqa: E402
from helpers.data.splits import Splits  # noqa: E402
from helpers.present.views import cv as cvsection  # noqa: E402
from helpers.run import crossval  # noqa: E402

K = 3  # classes


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def id_splits(sparse: bool = False) -> Splits:
    """Every sample's first feature is its id: train 0..59, validation 100..129, test 500..539."""
    rng = np.random.default_rng(0)
    parts = {}
    for name, start, n in (("train", 0, 60), ("val", 100, 30), ("test", 500, 40)):
        x = rng.random((n, 4)).astype(np.float32)
        x[:, 0] = np.arange(start, start + n)
        parts[name] = (sp.csr_matrix(x) if sparse else x, np.arange(n) % K)
    return Splits(x_train=parts["train"][0], y_train=parts["train"][1], x_val=parts["val"][0],
                  y_val=parts["val"][1], x_test=parts["test"][0], y_test=parts["test"][1],
                  class_names=["a", "b", "c"], fingerprint="f", info={"train": 60, "val": 30, "test": 40})


def ids(x) -> set[int]:
    col = x[:, 0].toarray().ravel() if sp.issparse(x) else x[:, 0]
    return set(col.astype(int).tolist())


# ---------------------------------------------------------------- folds never touch the test split
def test_fold_indices_partition_and_stratify():
    y = np.array([0] * 20 + [1] * 15 + [2] * 10)
    folds = data_splits.fold_indices(y, 5, seed=7)
    assert len(folds) == 5
    vals = np.concatenate([va for _, va in folds])
    assert sorted(vals.tolist()) == list(range(len(y)))  # every sample validates exactly once
    for tr, va in folds:
        assert set(tr).isdisjoint(va) and len(tr) + len(va) == len(y)
        assert np.bincount(y[va], minlength=3).tolist() == [4, 3, 2]  # each class split evenly
    again = data_splits.fold_indices(y, 5, seed=7)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))  # seeded: the same folds
    other = data_splits.fold_indices(y, 5, seed=8)
    assert any((a[1] != b[1]).any() for a, b in zip(folds, other))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_folds_use_train_and_validation_only(sparse):
    splits = id_splits(sparse)
    pool, test = ids(splits.x_train) | ids(splits.x_val), ids(splits.x_test)
    seen_val = []
    for i in range(1, 6):
        fold = data_splits.split(splits, {"dataset": "x", "seed": 3, "fold": i, "folds": 5})
        tr, va = ids(fold.x_train), ids(fold.x_val)
        assert fold.x_test is None and fold.y_test is None  # nothing of the test split is passed on
        assert tr | va == pool and not tr & va
        assert not (tr | va) & test
        assert fold.info["test"] == 0 and fold.info["cv"] == {"fold": i, "folds": 5}
        # labels travel with their rows
        assert (np.asarray(fold.y_train) == np.array([j % K if j < 100 else (j - 100) % K for j in
                                                       (fold.x_train[:, 0].toarray().ravel() if sparse
                                                        else fold.x_train[:, 0]).astype(int)])).all()
        seen_val.append(va)
    assert set().union(*seen_val) == pool and sum(map(len, seen_val)) == len(pool)
    refit = data_splits.split(splits, {"dataset": "x", "seed": 3, "refit": True})
    assert ids(refit.x_train) == pool and refit.x_val is None
    assert refit.x_test is splits.x_test and refit.info["test"] == 40


def test_an_ordinary_run_keeps_its_split():
    splits = id_splits()
    assert data_splits.split(splits, {"dataset": "x", "seed": 3}) is splits


def test_too_few_samples_per_class_for_the_folds():
    with pytest.raises(ValueError, match=r"6 folds need at least 6 samples of every class.*class 2 has 5"):
        data_splits.fold_indices(np.array([0] * 10 + [1] * 10 + [2] * 5), 6, seed=0)


# ---------------------------------------------------------------- plan
def write(tmp_path: Path, study: str) -> Path:
    path = tmp_path / "cv.yaml"
    path.write_text("title: t\ndataset: digits\nstudies:\n" + study)
    return path


def test_a_cv_study_expands_into_one_run_per_variant_and_fold(tmp_path):
    plan = load.load(write(tmp_path, "  cv:\n    folds: 4\n    test: wilcoxon\n    variants:\n"
                                       "      a: {hidden: [8]}\n      b: {hidden: [16]}\n"), profile="smoke")
    runs = plan.studies["cv"].runs
    assert [r["label"] for r in runs] == [f"{v} · fold {i}" for v in "ab" for i in range(1, 5)]
    assert [(r["config"]["data"]["fold"], r["config"]["data"]["folds"]) for r in runs] == \
        [(i, 4) for _ in "ab" for i in range(1, 5)]
    assert {r["axis"]["test"] for r in runs} == {"wilcoxon"}
    assert [r["config"]["model"]["hidden"] for r in runs] == [[8]] * 4 + [[16]] * 4
    assert [r["baseline"] for r in runs] == [True] * 4 + [False] * 4
    assert not any("refit" in r["config"]["data"] for r in runs)  # the refit follows from the folds


BAD = [
    ("  cv: {folds: 1}\n", r"studies\.cv\.folds = 1: must be greater than or equal to 2"),
    ("  cv: {folds: 21}\n", r"studies\.cv\.folds = 21: must be less than or equal to 20"),
    ("  cv: {folds: 2.5}\n", r"studies\.cv\.folds = 2\.5: must be a valid integer"),
    ("  cv: {test: ttest}\n", r"studies\.cv\.test = 'ttest': must be one of t, wilcoxon"),
    ("  cv: {fold: 3}\n", r"studies\.cv\.fold: unknown key 'fold' \(did you mean 'folds'\?\)"),
    ("  cv: {variants: {}}\n", r"studies\.cv\.variants = \{\}: .*at least 1 item"),
    ("  cv: {variants: {a: {hiden: [3]}}}\n", r"studies\.cv\.variants\.a\.hiden: unknown key 'hiden' \(did you mean 'hidden'\?\)"),
    ("  cv: {variants: {a: {dropout: 1.5}}}\n", r"studies\.cv\.variants\.a\.dropout = 1\.5: must be less than 1"),
    ("  cv: {repeats: 3}\n", r"studies\.cv\.repeats = 3: a cv study repeats over its folds"),
    ("  cv: {seeds: [1, 2]}\n", r"studies\.cv\.seeds = \[1, 2\]: a cv study repeats over its folds"),
]


@pytest.mark.parametrize("study, match", BAD, ids=[b[0].strip() for b in BAD])
def test_bad_cv_parameters(tmp_path, study, match):
    with pytest.raises(ConfigError, match=r"cv\.yaml: " + match) as info:
        load.load(write(tmp_path, study))
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- scores, selection, refit
def fold_record(variant: str, fold: int, val: float, *, best_epoch: int = 3, status: str = "ok",
                folds: int = 5, test: str = "t", **metrics) -> dict:
    """A fold's record (conftest.make_record): no test metric, as no fold computes one."""
    cfg = {"model": {"hidden": [8]}, "training": {"epochs": 20, "early_stopping": {"monitor": "val_loss",
                                                                                  "patience": 3}},
           "data": {"dataset": "digits", "seed": 42, "fold": fold, "folds": folds}}
    rec = make_record(f"{variant} · fold {fold}", val, study="cv", kind="cv", baseline=variant == "A",
                      axis={"variant": variant, "fold": fold, "test": test}, status=status, cfg=cfg,
                      best_epoch=best_epoch, **metrics)
    for key in ("test_accuracy", "f1_macro"):
        rec.get("metrics", {}).pop(key, None)
    return rec


def records(a, b, **kw):
    return [fold_record("A", i + 1, v, **kw) for i, v in enumerate(a)] + \
           [fold_record("B", i + 1, v, **kw) for i, v in enumerate(b)]


def test_fold_scores_mean_and_std():
    a, b = [0.90, 0.92, 0.91, 0.93, 0.89], [0.85, 0.88, 0.86, 0.87, 0.84]
    df = cvstudy.summary(records(a, b))
    assert list(df.columns) == ["fold 1", "fold 2", "fold 3", "fold 4", "fold 5", "mean", "std", "folds"]
    assert df.loc["A", "mean"] == pytest.approx(np.mean(a))
    assert df.loc["B", "std"] == pytest.approx(np.std(b, ddof=1))
    assert df.loc["A", "fold 3"] == 0.91 and df.loc["A", "folds"] == 5


def test_failed_and_diverged_folds_are_left_out():
    rs = records([0.9, 0.9, 0.9], [0.8, 0.8, 0.8], folds=3)
    rs[1]["status"] = "failed"
    rs[4]["status"] = "diverged"
    s = crossval.scores(rs)
    assert s == {"A": {1: 0.9, 3: 0.9}, "B": {1: 0.8, 3: 0.8}}


def test_selection_is_by_mean_fold_score_never_by_test():
    # B has the single best fold and (were it ever there) the better test accuracy; A the better mean.
    rs = records([0.90, 0.90, 0.90], [0.95, 0.80, 0.80], folds=3)
    for r in rs:
        r["metrics"]["test_accuracy"] = 0.99 if r["axis"]["variant"] == "B" else 0.50
    assert crossval.selected(rs) == "A"
    spec = crossval.refit_spec(rs)
    assert spec["label"] == "A" and spec["config"]["model"] == {"hidden": [8]}


@pytest.mark.parametrize("best_epochs, epochs", [([3, 4, 4], 4), ([2, 3, 2, 3], 3), ([1, 1, 2], 1)])
def test_refit_trains_on_everything_for_the_mean_best_epoch(best_epochs, epochs):
    rs = [fold_record("A", i + 1, 0.9, best_epoch=e, folds=len(best_epochs)) for i, e in enumerate(best_epochs)]
    spec = crossval.refit_spec(rs)
    assert spec["config"]["training"]["epochs"] == epochs  # rounded half up: 2.5 -> 3
    assert spec["config"]["training"]["early_stopping"] is None
    assert spec["config"]["data"] == {"dataset": "digits", "seed": 42, "refit": True}


def test_refit_without_early_stopping_keeps_its_epochs():
    rs = records([0.9, 0.91], [0.8, 0.81], folds=2)
    for r in rs:
        r["config"]["training"]["early_stopping"] = None
    assert crossval.refit_spec(rs)["config"]["training"]["epochs"] == 20


def test_comparison_is_paired_over_folds_and_holm_corrected():
    a, b, c = [0.90, 0.92, 0.91, 0.93, 0.89], [0.85, 0.91, 0.86, 0.92, 0.84], [0.89, 0.90, 0.92, 0.91, 0.90]
    rs = records(a, b) + [fold_record("C", i + 1, v) for i, v in enumerate(c)]
    result = cvstudy.comparison(rs)
    assert result["best"] == "A" and result["test"] == "t"
    rows = {r["label"]: r for r in result["comparisons"]}
    assert rows["B"]["p"] == pytest.approx(stats.paired_test(a, b, "t"))
    assert rows["C"]["p"] == pytest.approx(stats.paired_test(a, c, "t"))
    assert [rows["B"]["p_holm"], rows["C"]["p_holm"]] == pytest.approx(stats.holm([rows["B"]["p"], rows["C"]["p"]]))


def test_findings_say_within_noise_when_the_difference_is_not_significant():
    close = records([0.90, 0.88, 0.91, 0.87, 0.90], [0.89, 0.89, 0.90, 0.88, 0.89])
    text = cvsection.findings(close).data
    assert "within noise" in text and "no ranking is claimed" in text and "beats" not in text
    far = records([0.90, 0.92, 0.91, 0.93, 0.89], [0.80, 0.83, 0.81, 0.82, 0.80])
    text = cvsection.findings(far).data
    assert "beats the runner-up **B**" in text and "within noise" not in text


def test_findings_warn_that_five_fold_wilcoxon_cannot_be_significant():
    far = records([0.90, 0.92, 0.91, 0.93, 0.89], [0.80, 0.83, 0.81, 0.82, 0.80], test="wilcoxon")
    text = cvsection.findings(far).data
    assert "within noise" in text and "cannot give p below 0.062" in text


def test_refit_record_carries_the_cross_validated_estimate(monkeypatch):
    from helpers.run import training
    rs = records([0.90, 0.92, 0.91], [0.80, 0.83, 0.81], folds=3)
    trained = []

    def fake_run_all(specs, **kw):
        trained.extend(specs)
        return [{**specs[0], "status": "ok", "metrics": {"train_accuracy": 0.95, "test_accuracy": 0.9}}]
    monkeypatch.setattr(training, "run_all", fake_run_all)
    out = crossval.refit(rs, cache_dir=None)
    assert len(trained) == 1 and trained[0]["config"]["data"]["refit"] is True
    m = out[0]["metrics"]
    assert m["cv_mean"] == pytest.approx(0.91) and m["val_accuracy"] == pytest.approx(0.91)
    assert m["cv_folds"] == 3 and m["gap"] == pytest.approx(0.95 - 0.91)


def test_no_successful_fold_selects_nothing():
    rs = records([0.9], [0.8], folds=1)
    for r in rs:
        r["status"] = "failed"
    assert crossval.selected(rs) is None and crossval.refit_spec(rs) is None
    assert "no findings" in cvsection.findings(rs).data


# ---------------------------------------------------------------- training: fresh model per fold, no test
@pytest.fixture(scope="module")
def digits_cv_runs(tmp_path_factory):
    """A cv plan's fold runs: one configuration, 3 folds of 240 digits (train+validation)."""
    params = tmp_path_factory.mktemp("params") / "cv.yaml"
    params.write_text("title: cv\ndataset: digits\ndata: {validation_split: 0.25}\n"
                      "profiles: {smoke: {train_samples: 240, test_samples: 60, epochs: 2}}\n"
                      "base: {model: {hidden: [32]}, training: {epochs: 2, early_stopping: null}}\n"
                      "studies:\n  cv:\n    folds: 3\n    variants:\n      base: {}\n")
    runs = load.load(params, profile="smoke").studies["cv"].runs
    assert [(r["config"]["data"]["fold"], r["config"]["data"]["folds"]) for r in runs] == [(1, 3), (2, 3), (3, 3)]
    return runs


def test_each_fold_trains_a_freshly_initialised_model_and_never_sees_the_test_split(monkeypatch, digits_cv_runs):
    import keras

    from helpers.run import training
    fits, predicted = [], []
    fit, predict = keras.Model.fit, keras.Model.predict

    def spy_fit(self, *args, **kwargs):
        start = [w.copy() for w in self.get_weights()]
        history = fit(self, *args, **kwargs)
        fits.append((id(self), start, [w.copy() for w in self.get_weights()]))
        return history

    def spy_predict(self, *args, **kwargs):
        predicted.append(id(self))
        return predict(self, *args, **kwargs)
    monkeypatch.setattr(keras.Model, "fit", spy_fit)
    monkeypatch.setattr(keras.Model, "predict", spy_predict)
    recs = training.run_all(copy.deepcopy(digits_cv_runs), threads=2)
    assert [r["status"] for r in recs] == ["ok"] * 3, [r.get("error") for r in recs]
    assert len(fits) == 3 and len({model for model, _, _ in fits}) == 3  # a new model object per fold
    for (_, start, _), (_, _, previous_end) in zip(fits[1:], fits):
        # the same seed gives every fold the same fresh initial weights; none starts from the
        # weights the fold before it trained
        assert all(np.array_equal(a, b) for a, b in zip(start, fits[0][1]))
        assert not all(np.array_equal(a, b) for a, b in zip(start, previous_end))
    assert predicted == []  # no fold predicts anything: in particular not the test split
    for r in recs:
        assert not {k for k in r["metrics"] if k.startswith("test_")} and "confusion" not in r
        assert r["data_info"]["test"] == 0
        assert r["data_info"]["train"] + r["data_info"]["val"] == 240
    assert sum(r["data_info"]["val"] for r in recs) == 240


def test_the_refit_trains_on_all_of_train_and_validation_and_tests_once(digits_cv_runs):
    from helpers.run import training
    recs = training.run_all(copy.deepcopy(digits_cv_runs), threads=2)
    out = crossval.refit(recs, threads=2)
    assert len(out) == 1 and out[0]["status"] == "ok", out[0].get("error")
    r = out[0]
    assert r["data_info"]["train"] == 240 and r["data_info"]["val"] == 0 and r["data_info"]["test"] == 60
    assert 0 <= r["metrics"]["test_accuracy"] <= 1
    assert r["metrics"]["cv_mean"] == pytest.approx(np.mean([x["metrics"]["val_accuracy"] for x in recs]))
    assert "val_loss" not in r["history"]


# ---------------------------------------------------------------- a small build
@pytest.mark.e2e
def test_cv_report_on_digits(tmp_path):
    from bs4 import BeautifulSoup
    params = tmp_path / "cv.yaml"
    params.write_text("title: cv\ndataset: digits\n"
                      "profiles: {smoke: {train_samples: 400, test_samples: 120, epochs: 3}}\n"
                      "base: {model: {hidden: [16]}, training: {batch_size: 32}}\n"
                      "studies:\n  cv:\n    folds: 3\n    variants:\n      narrow: {hidden: [4]}\n"
                      "      wide: {hidden: [32]}\n")
    proc = run_build(params, "--profile", "smoke", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "out" / "cv.json").read_text())
    folds = [r for r in data["runs"] if is_fold(r)]
    refit = [r for r in data["runs"] if is_refit(r)]
    assert len(folds) == 6 and len(refit) == 1
    assert all("test_accuracy" not in r["metrics"] for r in folds)
    means = {v: np.mean([r["metrics"]["val_accuracy"] for r in folds if r["axis"]["variant"] == v])
             for v in ("narrow", "wide")}
    assert refit[0]["label"] == max(means, key=means.get)
    soup = BeautifulSoup((tmp_path / "out" / "cv.html").read_text(), "html.parser")
    text = soup.get_text(" ")
    assert soup.find("table", id="results-cv") is not None
    assert f"test accuracy {refit[0]['metrics']['test_accuracy']:.4f}" in " ".join(text.split())
    summary = soup.find("table", id="summary-table").find("tbody").get_text(" ")  # rows, not the caption
    assert "fold" not in summary and refit[0]["label"] in summary  # the refit, not a fold, is the cv's best
    assert soup.find(attrs={"data-label": "fig:cv:folds"}) is not None


def test_r5_design_selection_parameters():
    plan = load.load(ROOT / "params" / "fashion_mnist_cv.yaml", profile="full")
    runs = plan.studies["designs"].runs
    assert len(runs) == 3 * 5
    designs = {r["axis"]["variant"]: (r["config"]["model"]["hidden"], r["config"]["model"]["activation"],
                                      r["config"]["training"]["optimizer"]) for r in runs}
    assert list(designs.values()) == [([64, 32], "relu", "sgd"), ([128, 64, 32], "tanh", "adam"),
                                      ([256, 128], "relu", "rmsprop")]
    assert {(r["config"]["training"]["learning_rate"], r["config"]["training"]["epochs"],
             r["config"]["training"]["early_stopping"]) for r in runs} == {(1e-2, 10, None)}


def test_report_repeats_do_not_multiply_the_folds(tmp_path):
    plan = load.load(write(tmp_path, "  cv: {folds: 3}\n"), sets=["repeats=3"])
    assert {r["seed"] for r in plan.studies["cv"].runs} == {plan.report.seed}
    labels = [r["label"] for r in plan.studies["cv"].runs]
    assert len(labels) == len(set(labels)) and all("seed" not in label for label in labels)


def test_selected_says_how_many_epochs_in_one_readable_sentence():
    rs = records([0.90, 0.92, 0.91], [0.80, 0.83, 0.81], folds=3, best_epoch=4)
    refit = make_record("A", 0.91, test=0.9, train=0.95, study="cv", kind="cv", params=100, seconds=1.0,
                        axis={"variant": "A", "refit": True, "test": "t"},
                        cfg={"model": {"hidden": [8]}, "training": {"epochs": 4, "early_stopping": None},
                             "data": {"dataset": "digits", "seed": 42, "refit": True}})
    refit["data_info"] = {"train": 1437, "val": 0, "test": 360}
    text = cvsection.selected(rs + [refit]).data
    assert "for **4** epochs (the rounded mean best epoch of its folds: 4, 4, 4; early stopping needs a " \
           "validation split, and none is left), then evaluated **once**" in text

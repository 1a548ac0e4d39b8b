"""The report's words: best run, findings, design, summary, abstract, conclusions, and the one
place numbers are formatted (helpers.present.format)."""
import math

import pandas as pd
import pytest

from conftest import config, make_record
from helpers.analysis.records import best
from helpers.analysis.summary import summary
from helpers.present import format as fmt
from helpers.present.design import design
from helpers.present.discussion import discussion
from helpers.present.findings import findings
from helpers.present.overview import abstract, conclusions


def fashion(hidden=(64,), kind="mlp"):
    """A Fashion-MNIST configuration of the quick profile, with early stopping."""
    cfg = config(hidden=hidden, kind=kind, dataset="fashion_mnist")
    cfg["training"].update(batch_size=128, early_stopping={"monitor": "val_loss", "patience": 3})
    cfg["data"].update(train_samples=12000, test_samples=5000)
    return cfg


def record(label, val, **kw):
    """make_record on the Fashion-MNIST configuration unless a test gives its own."""
    kw.setdefault("cfg", fashion())
    return make_record(label, val, **kw)


def series(key, xs, vals, study="s", **kw):
    return [record(f"{key}={x}", v, axis={key: x}, study=study, cfg=fashion(hidden=[x] if key == "width" else (64,)),
                   params=1000 * (i + 1), **kw)
            for i, (x, v) in enumerate(zip(xs, vals))]


# ---------------------------------------------------------------- best
def test_best_selects_by_validation_not_test():
    recs = [record("a", 0.88, test=0.90), record("b", 0.89, test=0.85)]
    assert best(recs)["label"] == "b"


def test_best_ties_go_to_fewer_params_and_failed_runs_ignored():
    recs = [record("big", 0.88, params=5000), record("small", 0.88, params=100),
            record("broken", 0.99, status="failed")]
    assert best(recs)["label"] == "small"
    assert best([record("x", 0.5, status="failed")]) is None


# ---------------------------------------------------------------- findings
@pytest.mark.parametrize("runner_up, within", [(0.878, True), (0.83, False)])
def test_findings_noise_wording(runner_up, within):
    text = findings([record("A", 0.880), record("B", runner_up)])
    assert ("within the likely run-to-run noise" in text) is within
    if not within:
        assert "best configuration by validation accuracy is **A**" in text
        assert "0.8800" in text and "0.8750" in text  # val and test accuracy of A


def test_findings_baseline_difference_in_points():
    recs = [record("base", 0.85, baseline=True), record("wide", 0.88)]
    text = findings(recs)
    assert "baseline (**base**)" in text
    assert "3.0 percentage points" in text


@pytest.mark.parametrize("vals, wording", [
    ([0.80, 0.85, 0.87, 0.872, 0.873], "plateaus after width = 256"),
    ([0.80, 0.86, 0.83], "peaks at width = 128"),
    ([0.80, 0.83, 0.86, 0.89], "rises steadily"),
    # small steps that add up to more than the noise floor (1.4 points on 2,400 validation samples)
    ([0.850, 0.854, 0.858, 0.862, 0.866], "rises gradually"),
    ([0.89, 0.86, 0.83], "falls"),
    ([0.850, 0.852, 0.851], "barely changes"),
    ([0.80, 0.86, 0.82, 0.88], "no simple monotonic trend"),
])
def test_trend_wording(vals, wording):
    xs = [64, 128, 256, 512, 1024][:len(vals)]
    assert wording in findings(series("width", xs, vals))


def test_no_trend_for_named_variants():
    text = findings([record("adam", 0.88, axis={}), record("sgd", 0.84), record("rmsprop", 0.86)])
    assert "As `" not in text


def test_findings_counts_failures():
    recs = [record("a", 0.85), record("b", 0.84), record("dead", 0, status="failed")]
    assert "1 of 3 runs failed (dead) and is excluded" in findings(recs)
    recs.append(record("gone", 0, status="failed"))
    assert "2 of 4 runs failed (dead, gone) and are excluded" in findings(recs)


@pytest.mark.parametrize("train, verdict, points", [
    (0.95, "Overfitting is clear", "10.0"),
    (0.88, "Overfitting is mild", "3.0"),
    (0.855, "No configuration overfits noticeably", "0.50"),
])
def test_findings_overfitting_gap(train, verdict, points):
    text = findings([record("wide", 0.85, train=train), record("narrow", 0.84, train=0.845)])
    assert f"{verdict}: the largest train–validation gap is {points} percentage points (**wide**)" in text


def test_findings_cost_tradeoff_names_cheaper_close_config():
    recs = [record("huge", 0.880, params=900_000, seconds=60.0), record("tiny", 0.875, params=20_000, seconds=4.0)]
    text = findings(recs)
    assert "**tiny** stays within the noise floor" in text
    assert "20,000 parameters" in text and "4.0 s" in text and "900,000" in text


def test_findings_all_failed():
    assert "No run finished" in findings([record("x", 0, status="failed")])


# ---------------------------------------------------------------- design
def test_design_lists_varied_and_fixed():
    recs = [record(f"{n} layers", 0.8, cfg=fashion(hidden=[128] * n)) for n in (1, 2, 3)]
    text = design(recs)
    varied, fixed = text.split("**Held fixed**")
    assert "`model.hidden`: [128], [128, 128], [128, 128, 128]" in varied
    assert "learning_rate" not in varied
    assert "learning_rate=0.001" in fixed and "early_stopping.patience=3" in fixed
    assert "*model*" in fixed and "*training*" in fixed and "*data*" in fixed
    assert "kernel_size" not in fixed  # CNN-only keys hidden for dense-only studies
    assert "12,000 training samples" in text and "5,000 test samples" in text


def test_design_of_cross_validation_folds_does_not_claim_a_validation_split():
    recs = []
    for fold in (1, 2, 3):
        cfg = fashion()
        cfg["data"].update(fold=fold, folds=3)
        recs.append(record(f"a · fold {fold}", 0.8, cfg=cfg))
    fixed = design(recs).split("**Held fixed**")[1]
    assert "folds=3" in fixed and "validation_split" not in fixed
    assert "validation_split=0.2" in design([record("a", 0.8)])


def test_design_nothing_varied():
    text = design([record("a", 0.8), record("b", 0.8)])
    assert "nothing" in text.split("**Held fixed**")[0]


# ---------------------------------------------------------------- summary / abstract / conclusions
def test_summary_one_row_per_study_in_order():
    recs = (series("width", [64, 128, 256], [0.80, 0.86, 0.83], study="width")
            + [record("adam", 0.87, test=0.86, study="optimizer"), record("sgd", 0.88, test=0.80, study="optimizer"),
               record("bad", 0, study="optimizer", status="failed")])
    table = summary(recs)
    assert isinstance(table, pd.DataFrame)
    assert list(table["study"]) == ["width", "optimizer"]
    row = table.set_index("study").loc["optimizer"]
    assert row["best"] == "sgd" and math.isclose(row["test_accuracy"], 0.80) and row["runs"] == "2/3"
    assert table.set_index("study").loc["width", "best"] == "width=128"


def test_abstract_headline_numbers():
    recs = (series("width", [64, 128, 256], [0.80, 0.86, 0.83], study="width")
            + [record("adam", 0.87, study="optimizer"), record("lr=10", 0.10, test=0.10, study="optimizer")])
    text = abstract(recs)
    assert "2 studies" in text and "5 training runs" in text and "`fashion_mnist`" in text
    assert "**adam**" in text and "0.8650" in text  # best by val with its test accuracy
    assert "0.7950 to 0.8650" in text and "near chance" in text  # diverged run excluded from range
    # the largest effect is measured on sensible runs only, so the diverged run cannot dominate it
    assert "*width* study" in text and "6.0 percentage points" in text and "77" not in text


def test_conclusions_bullets_and_future_work():
    dense = series("width", [64, 128, 256, 512], [0.80, 0.85, 0.852, 0.853], study="width")
    cnn = record("cnn", 0.91, study="model", cfg=fashion(kind="cnn"), train=0.99)
    text = conclusions(dense + [cnn])
    assert "- **width**:" in text and "- **model**:" in text
    assert "convolutional model **cnn** beats" in text
    assert "regularization" in text and "single seed" in text


def test_conclusions_plateau_suggests_cnn_without_one():
    text = conclusions(series("width", [64, 128, 256, 512], [0.80, 0.85, 0.852, 0.853]))
    assert "convolutional network or data augmentation" in text
    assert "regularization" not in text


@pytest.mark.parametrize("fn, says", [
    (design, ""),  # no study, so no design and no findings to write
    (findings, ""),
    (abstract, "No runs to report."),
    (conclusions, "- No runs to report."),
    (discussion, "No run finished successfully, so there is nothing to discuss."),
])
def test_text_functions_accept_empty_input(fn, says):
    assert fn([]) == says


def test_empty_summary_and_best():
    assert best([]) is None
    assert summary([]).empty


def test_design_full_profile_sizes_come_from_what_was_loaded():
    # The full profile takes all the data: the config says None, the loaded splits say how many.
    recs = [record("a", 0.8), record("b", 0.7)]
    for r in recs:
        r["config"]["data"].update(train_samples=None, test_samples=None)
    assert "Data" not in design(recs) or "None" not in design(recs)
    for r in recs:
        r["data_info"] = {"train": 48000, "val": 12000, "test": 10000}
    assert "48,000 training, 12,000 validation and 10,000 test samples" in design(recs)


# ---------------------------------------------------------------- numbers (one format for the whole report)
@pytest.mark.parametrize("fn, value, text", [
    (fmt.p, 0.0004, "< 0.001"),
    (fmt.p, 0.001, "0.001"),
    (fmt.p, 0.0123, "0.012"),
    (fmt.p, 0.5, "0.500"),
    (fmt.p, 1.0, "1.000"),
    (fmt.p, None, "—"),
    (fmt.p, float("nan"), "—"),
    (fmt.p_is, 0.0123, "Holm-adjusted p = 0.012"),
    (fmt.p_is, 0.00001, "Holm-adjusted p < 0.001"),
    (fmt.pp, 0.03, "3.0"),
    (fmt.pp, -0.0084, "0.84"),
    (fmt.pp, 0.005, "0.50"),
    (fmt.pp, 0.1234, "12.3"),
    (fmt.signed, -0.523, "−0.52"),
    (fmt.signed, 0.5, "0.50"),
    (fmt.compact, 0.001, "0.001"),
    (fmt.compact, [128, 64], "[128, 64]"),
    (fmt.compact, [], "none"),
    (fmt.compact, None, "none"),
    (fmt.compact, True, "yes"),
    (fmt.compact, False, "no"),
    (fmt.compact, "relu", "relu"),
    (fmt.count, 118282, "118,282"),
    (fmt.count, 12000.0, "12,000"),
])
def test_format(fn, value, text):
    assert fn(value) == text


def test_p_is_names_the_test():
    assert fmt.p_is(0.2, "p") == "p = 0.200"
    assert fmt.p_is(0.0001, "Wilcoxon p") == "Wilcoxon p < 0.001"

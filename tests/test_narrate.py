import math

import pandas as pd
import pytest

from helpers import narrate


def config(hidden=(64,), lr=0.001, batch=128, kind="mlp", dataset="fashion_mnist"):
    return {
        "model": {"kind": kind, "hidden": list(hidden), "activation": "relu", "dropout": 0.0,
                  "filters": [], "kernel_size": 3, "pool_size": 2, "conv_dropout": 0.0},
        "training": {"optimizer": "adam", "learning_rate": lr, "batch_size": batch, "epochs": 10,
                     "early_stopping": {"monitor": "val_loss", "patience": 3}},
        "data": {"dataset": dataset, "validation_split": 0.2, "train_samples": 12000,
                 "test_samples": 5000, "seed": 42},
    }


def record(label, val, test=None, train=None, axis=None, study="depth", baseline=False,
           params=1000, seconds=5.0, status="ok", cfg=None, seed=42):
    """A run record as in docs/records.md; metrics default to plausible values around `val`."""
    train = val + 0.01 if train is None else train
    test = val - 0.005 if test is None else test
    rec = {"study": study, "kind": study, "label": label, "axis": axis if axis is not None else {},
           "baseline": baseline, "seed": seed, "config": cfg or config(), "status": status, "error": None,
           "class_names": [str(i) for i in range(10)]}
    if status == "ok":
        rec["metrics"] = {"train_accuracy": train, "val_accuracy": val, "test_accuracy": test,
                          "f1_macro": test - 0.001, "gap": train - val, "params": params,
                          "seconds": seconds, "epochs_run": 10, "best_epoch": 8}
    else:
        rec["error"] = "boom"
    return rec


def series(key, xs, vals, study="s", **kw):
    return [record(f"{key}={x}", v, axis={key: x}, study=study, cfg=config(hidden=[x] if key == "width" else (64,)),
                   params=1000 * (i + 1), **kw)
            for i, (x, v) in enumerate(zip(xs, vals))]


# ---------------------------------------------------------------- best
def test_best_selects_by_validation_not_test():
    recs = [record("a", val=0.88, test=0.90), record("b", val=0.89, test=0.85)]
    assert narrate.best(recs)["label"] == "b"


def test_best_ties_go_to_fewer_params_and_failed_runs_ignored():
    recs = [record("big", 0.88, params=5000), record("small", 0.88, params=100),
            record("broken", 0.99, status="failed")]
    assert narrate.best(recs)["label"] == "small"
    assert narrate.best([record("x", 0.5, status="failed")]) is None


# ---------------------------------------------------------------- findings
@pytest.mark.parametrize("runner_up, within", [(0.878, True), (0.83, False)])
def test_findings_noise_wording(runner_up, within):
    text = narrate.findings([record("A", 0.880), record("B", runner_up)])
    assert ("within the likely run-to-run noise" in text) is within
    if not within:
        assert "best configuration by validation accuracy is **A**" in text
        assert "0.8800" in text and "0.8750" in text  # val and test accuracy of A


def test_findings_baseline_difference_in_points():
    recs = [record("base", 0.85, baseline=True), record("wide", 0.88)]
    text = narrate.findings(recs)
    assert "baseline (**base**)" in text
    assert "3.0 percentage points" in text


@pytest.mark.parametrize("vals, wording", [
    ([0.80, 0.85, 0.87, 0.872, 0.873], "plateaus after width = 256"),
    ([0.80, 0.86, 0.83], "peaks at width = 128"),
    ([0.80, 0.83, 0.86, 0.89], "rises steadily"),
    ([0.850, 0.854, 0.858, 0.862], "rises gradually"),
    ([0.89, 0.86, 0.83], "falls"),
    ([0.850, 0.852, 0.851], "barely changes"),
    ([0.80, 0.86, 0.82, 0.88], "no simple monotonic trend"),
])
def test_trend_wording(vals, wording):
    xs = [64, 128, 256, 512, 1024][:len(vals)]
    assert wording in narrate.findings(series("width", xs, vals))


def test_no_trend_for_named_variants():
    text = narrate.findings([record("adam", 0.88, axis={}), record("sgd", 0.84), record("rmsprop", 0.86)])
    assert "As `" not in text


def test_findings_counts_failures():
    recs = [record("a", 0.85), record("b", 0.84), record("dead", 0, status="failed")]
    assert "1 of 3 runs failed (dead) and is excluded" in narrate.findings(recs)
    recs.append(record("gone", 0, status="failed"))
    assert "2 of 4 runs failed (dead, gone) and are excluded" in narrate.findings(recs)


@pytest.mark.parametrize("train, verdict, points", [
    (0.95, "Overfitting is clear", "10.0"),
    (0.88, "Overfitting is mild", "3.0"),
    (0.855, "No configuration overfits noticeably", "0.50"),
])
def test_findings_overfitting_gap(train, verdict, points):
    text = narrate.findings([record("wide", 0.85, train=train), record("narrow", 0.84, train=0.845)])
    assert f"{verdict}: the largest train–validation gap is {points} percentage points (**wide**)" in text


def test_findings_cost_tradeoff_names_cheaper_close_config():
    recs = [record("huge", 0.880, params=900_000, seconds=60.0), record("tiny", 0.875, params=20_000, seconds=4.0)]
    text = narrate.findings(recs)
    assert "**tiny** stays within 1 point" in text
    assert "20,000 parameters" in text and "4.0 s" in text and "900,000" in text


def test_findings_all_failed():
    assert "No run finished" in narrate.findings([record("x", 0, status="failed")])


# ---------------------------------------------------------------- design
def test_design_lists_varied_and_fixed():
    recs = [record(f"{n} layers", 0.8, cfg=config(hidden=[128] * n)) for n in (1, 2, 3)]
    text = narrate.design(recs)
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
        cfg = config()
        cfg["data"].update(fold=fold, folds=3)
        recs.append(record(f"a · fold {fold}", 0.8, cfg=cfg))
    fixed = narrate.design(recs).split("**Held fixed**")[1]
    assert "folds=3" in fixed and "validation_split" not in fixed
    assert "validation_split=0.2" in narrate.design([record("a", 0.8)])


def test_design_nothing_varied():
    text = narrate.design([record("a", 0.8), record("b", 0.8)])
    assert "nothing" in text.split("**Held fixed**")[0]


# ---------------------------------------------------------------- summary / abstract / conclusions
def test_summary_one_row_per_study_in_order():
    recs = (series("width", [64, 128, 256], [0.80, 0.86, 0.83], study="width")
            + [record("adam", 0.87, test=0.86, study="optimizer"), record("sgd", 0.88, test=0.80, study="optimizer"),
               record("bad", 0, study="optimizer", status="failed")])
    table = narrate.summary(recs)
    assert isinstance(table, pd.DataFrame)
    assert list(table["study"]) == ["width", "optimizer"]
    row = table.set_index("study").loc["optimizer"]
    assert row["best"] == "sgd" and math.isclose(row["test_accuracy"], 0.80) and row["runs"] == "2/3"
    assert table.set_index("study").loc["width", "best"] == "width=128"


def test_abstract_headline_numbers():
    recs = (series("width", [64, 128, 256], [0.80, 0.86, 0.83], study="width")
            + [record("adam", 0.87, study="optimizer"), record("lr=10", 0.10, test=0.10, study="optimizer")])
    text = narrate.abstract(recs)
    assert "2 studies" in text and "5 training runs" in text and "`fashion_mnist`" in text
    assert "**adam**" in text and "0.8650" in text  # best by val with its test accuracy
    assert "0.7950 to 0.8650" in text and "near chance" in text  # diverged run excluded from range
    # the largest effect is measured on sensible runs only, so the diverged run cannot dominate it
    assert "*width* study" in text and "6.0 percentage points" in text and "77" not in text


def test_conclusions_bullets_and_future_work():
    dense = series("width", [64, 128, 256, 512], [0.80, 0.85, 0.852, 0.853], study="width")
    cnn = record("cnn", 0.91, study="model", cfg=config(kind="cnn"), train=0.99)
    text = narrate.conclusions(dense + [cnn])
    assert "- **width**:" in text and "- **model**:" in text
    assert "convolutional model **cnn** beats" in text
    assert "regularization" in text and "single seed" in text


def test_conclusions_plateau_suggests_cnn_without_one():
    text = narrate.conclusions(series("width", [64, 128, 256, 512], [0.80, 0.85, 0.852, 0.853]))
    assert "convolutional network or data augmentation" in text
    assert "regularization" not in text


@pytest.mark.parametrize("fn", [narrate.design, narrate.findings, narrate.abstract, narrate.conclusions])
def test_text_functions_accept_empty_input(fn):
    assert isinstance(fn([]), str)


def test_empty_summary_and_best():
    assert narrate.best([]) is None
    assert narrate.summary([]).empty


def test_design_full_profile_sizes_come_from_what_was_loaded():
    # The full profile takes all the data: the config says None, the loaded splits say how many.
    recs = [record("a", 0.8), record("b", 0.7)]
    for r in recs:
        r["config"]["data"].update(train_samples=None, test_samples=None)
    assert "Data" not in narrate.design(recs) or "None" not in narrate.design(recs)
    for r in recs:
        r["data_info"] = {"train": 48000, "val": 12000, "test": 10000}
    assert "48,000 training, 12,000 validation and 10,000 test samples" in narrate.design(recs)

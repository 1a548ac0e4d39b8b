"""Divergence is a result, not a crash: a run whose loss becomes NaN, or whose validation accuracy
stays at chance while its loss stops falling, is stopped, recorded as "diverged" (with its measured
metrics and a reason), cached, shown, named in the findings and never chosen as best. Also the
initializer and learning-rate studies that produce such runs (R3)."""
from __future__ import annotations

import copy
import json
import math
import os
import re
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import ROOT  # noqa: E402

from helpers.analysis import records as runs  # noqa: E402
from helpers.analysis.summary import summary  # noqa: E402
from helpers.build import execute  # noqa: E402
from helpers.config import load  # noqa: E402
from helpers.config.errors import ConfigError  # noqa: E402
from helpers.config.plan import StudyPlan  # noqa: E402
from helpers.config.specs import ModelSpec  # noqa: E402
from helpers.present import findings, overview, section, tables  # noqa: E402
from helpers.run import models, training  # noqa: E402


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def digits():
    from helpers.data import splits as data
    return data.load("digits", train_samples=None, test_samples=None, validation_split=0.2, seed=42)


@pytest.fixture(scope="module")
def base_spec() -> dict:
    spec = copy.deepcopy(load.load(load.PARAMS / "digits.yaml", profile="smoke").studies["depth"].runs[0])
    spec["config"]["model"]["hidden"] = [32]
    spec["config"]["training"].update(epochs=6, batch_size=64, early_stopping=None)
    return spec


def with_training(spec: dict, label: str, **training) -> dict:
    spec = copy.deepcopy(spec)
    spec["label"] = label
    spec["config"]["training"].update(training)
    return spec


# ---------------------------------------------------------------- the callback, on logged epochs
def epochs(callback, logs: list[dict]) -> int:
    """Feed epoch-end logs to the callback the way fit does; returns the epochs run before it stopped."""
    class Model:
        stop_training = False
    callback.set_model(Model())
    for i, log in enumerate(logs):
        callback.on_epoch_end(i, log)
        if callback.model.stop_training:
            return i + 1
    return len(logs)


CASES = [
    # (epoch logs, epochs before the stop, reason pattern or None)
    ([{"loss": 2.3, "val_accuracy": 0.5}, {"loss": float("nan"), "val_accuracy": 0.1}], 2,
     r"^loss became NaN at epoch 2$"),
    ([{"loss": 2.3, "val_loss": float("inf"), "val_accuracy": 0.4}], 1, r"^validation loss became infinite at epoch 1$"),
    # at chance and the loss stuck: collapsed
    ([{"loss": 6.7, "val_accuracy": 0.10}, {"loss": 2.38, "val_accuracy": 0.10}, {"loss": 2.38, "val_accuracy": 0.10},
      {"loss": 2.38, "val_accuracy": 0.10}], 3,
     r"^validation accuracy stayed at chance level \(0\.100; majority class 0\.100\) for 3 epochs and the training "
     r"loss stopped falling \(2\.380 → 2\.380\) at epoch 3$"),
    # at chance but the loss falls: a slow learner keeps training
    ([{"loss": 2.45, "val_accuracy": 0.09}, {"loss": 2.38, "val_accuracy": 0.09}, {"loss": 2.33, "val_accuracy": 0.10},
      {"loss": 2.28, "val_accuracy": 0.16}], 4, None),
    # the loss stalls above chance: a plateau, not divergence
    ([{"loss": 0.5, "val_accuracy": 0.8}, {"loss": 0.5, "val_accuracy": 0.8}, {"loss": 0.5, "val_accuracy": 0.8}], 3, None),
    # one epoch at chance, then learning: the count restarts
    ([{"loss": 2.3, "val_accuracy": 0.1}, {"loss": 2.3, "val_accuracy": 0.5}, {"loss": 2.3, "val_accuracy": 0.1}], 3, None),
]


@pytest.mark.parametrize("logs, stopped_after, reason", CASES)
def test_divergence_callback(logs, stopped_after, reason):
    callback = training.divergence_callback(chance=0.1)
    assert epochs(callback, logs) == stopped_after
    if reason is None:
        assert callback.reason is None
    else:
        assert callback.reason is not None and re.match(reason, callback.reason), callback.reason


def test_chance_rate_is_the_majority_class():
    assert training.chance_rate(np.array([0, 1, 1, 2])) == 0.5
    assert training.chance_rate(np.arange(10)) == 0.1


# ---------------------------------------------------------------- real runs on digits
@pytest.fixture(scope="module")
def lr_records(base_spec, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    specs = [with_training(base_spec, "learning rate 10", optimizer="sgd", learning_rate=10.0),
             with_training(base_spec, "learning rate 0.1", optimizer="sgd", learning_rate=0.1)]
    for s in specs:
        s["study"] = s["kind"] = "learning_rate"
        s["axis"] = {"learning_rate": s["config"]["training"]["learning_rate"]}
    return specs, training.run_all(specs, cache_dir=str(cache)), cache


def test_a_learning_rate_of_10_diverges_and_is_measured(lr_records):
    _, (bad, good), _ = lr_records
    assert bad["status"] == "diverged" and good["status"] == "ok" and good["reason"] is None
    assert bad["reason"] and ("NaN" in bad["reason"] or "chance level" in bad["reason"])
    m = bad["metrics"]
    assert m["epochs_run"] < 6  # stopped early
    assert m["test_accuracy"] < 0.2  # measured, not made up: about chance on ten classes
    assert json.loads(json.dumps(bad, allow_nan=False)) == bad  # no NaN reaches the record


def test_diverged_runs_are_cached_as_results(lr_records):
    specs, first, cache = lr_records
    again = training.run_all(specs, cache_dir=str(cache))
    assert [r["cached"] for r in again] == [True, True]
    assert again[0]["status"] == "diverged" and again[0]["reason"] == first[0]["reason"]


def test_diverged_is_never_best_and_is_named(lr_records):
    _, records, _ = lr_records
    bad, good = records
    # Even with a better validation score, a diverged run is not a candidate.
    rigged = [copy.deepcopy(bad), good]
    rigged[0]["metrics"]["val_accuracy"] = 0.999
    assert runs.best(rigged) is good
    text = findings.findings(records)
    assert f"**learning rate 10** diverged: {bad['reason']}" in text
    assert "It is left out of every ranking." in text
    assert "failed" not in text  # a result, not a failure
    assert "of which 1 diverged." in overview.abstract(records)
    assert "1 run diverged (learning rate 10 in *learning_rate*)" in overview.conclusions(records)
    assert summary(records).loc[0, "best"] == "learning rate 0.1"


def test_tables_show_diverged_and_the_study_does_not_fail(lr_records, tmp_path, monkeypatch):
    _, records, _ = lr_records
    assert tables.results(records).loc["learning rate 10", "status"] == "diverged"
    assert section.failures(records).data == ""  # not listed as a failure
    import papermill

    def execute_notebook(template, output, parameters, **kwargs):
        Path(parameters["results_path"]).write_text(json.dumps(records))  # what the notebook saves
    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    plan = StudyPlan("learning_rate", "learning_rate", "Learning rate", "", [])
    outcome = execute.run_study(plan, tmp_path, threads=1)
    assert [r["status"] for r in outcome.records] == ["diverged", "ok"]
    assert outcome.status == "ok" and outcome.error is None


# ---------------------------------------------------------------- R3's studies
def test_initializer_study_runs(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("title: t\ndataset: digits\nprofiles: {smoke: {epochs: 1}}\nbase: {model: {hidden: [8]}}\n"
                    "studies:\n  initializer: {}\n  learning_rate: {}\n")
    plan = load.load(path, profile="smoke")
    init = plan.studies["initializer"].runs
    assert [r["label"] for r in init] == ["glorot_uniform", "he_normal", "truncated_normal (std 1)"]
    assert [r["config"]["model"]["init_stddev"] for r in init] == [None, None, 1.0]
    assert [r["axis"] for r in init] == [{"initializer": v} for v in ("glorot_uniform", "he_normal", "truncated_normal")]
    lr = plan.studies["learning_rate"].runs
    assert [r["config"]["training"]["learning_rate"] for r in lr] == [0.1, 0.01, 0.001]
    assert [r["label"] for r in lr] == ["learning rate 0.1", "learning rate 0.01", "learning rate 0.001"]


BAD = [
    (["initializer.initializers=[glorot, he_normal]"], r"^--set: studies\.initializer\.initializers\[0\] = 'glorot': "
                                                       r"must be one of auto, glorot_uniform, "),
    (["initializer.initializers=[]"], r"studies\.initializer\.initializers = \[\]: .*at least 1 item"),
    (["initializer.stddev=0"], r"studies\.initializer\.stddev = 0: must be greater than 0"),
    (["learning_rate.learning_rates=[0.1, 0]"], r"^--set: studies\.learning_rate\.learning_rates\[1\] = 0: must be greater than 0"),
    (["learning_rate.learning_rates=[0.1, 0.1]"], r"studies\.learning_rate: learning_rates lists 0\.1 twice"),
    (["learning_rate.learning_rates=[fast]"], r"learning_rates\[0\] = 'fast': must be a valid number"),
    (["base.init_stddev=1.0"], r"^--set: base\.model\.init_stddev = 1\.0: init_stddev applies only to initializer truncated_normal"),
]


@pytest.mark.parametrize("sets, match", BAD, ids=[s[0] for s, _ in BAD])
def test_bad_parameters(tmp_path, sets, match):
    path = tmp_path / "r.yaml"
    path.write_text("title: t\ndataset: digits\nprofiles: {smoke: {epochs: 1}}\nbase: {model: {hidden: [8]}}\n"
                    "studies:\n  initializer: {}\n  learning_rate: {}\n")
    with pytest.raises(ConfigError, match=match) as info:
        load.load(path, profile="smoke", sets=sets)
    assert "\n" not in str(info.value)


def test_truncated_normal_stddev_reaches_the_layers():
    spec = ModelSpec(hidden=[16, 16], activation="relu", initializer="truncated_normal", init_stddev=1.0).model_dump()
    model = models.build(spec, (8, 8), 10)
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"][:-1]
    assert all(type(d.kernel_initializer).__name__ == "TruncatedNormal" for d in dense)
    assert all(d.kernel_initializer.stddev == 1.0 for d in dense)
    std = float(np.std(dense[1].kernel.numpy()))
    assert math.isclose(std, 0.88, abs_tol=0.1)  # a normal truncated at 2 sigma has std 0.88 sigma
    default = models.build(ModelSpec(hidden=[16], activation="relu", initializer="truncated_normal").model_dump(),
                           (8, 8), 10)
    assert dense[0].kernel_initializer is not dense[1].kernel_initializer  # each layer draws its own
    first = next(layer for layer in default.layers if type(layer).__name__ == "Dense")
    assert type(first.kernel_initializer).__name__ == "TruncatedNormal" and first.kernel_initializer.stddev == 0.05


def test_reference_parameter_files_validate():
    r3 = load.load(load.PARAMS / "fashion_cnn.yaml", profile="smoke")
    assert list(r3.studies) == ["architecture", "learning_rate", "initializer", "regularization"]
    assert all(r["config"]["model"]["kind"] == "cnn" for r in r3.studies["learning_rate"].runs)
    assert all(r["config"]["model"]["kind"] == "cnn" for r in r3.studies["initializer"].runs)
    r4 = load.load(load.PARAMS / "cifar10.yaml", profile="smoke")
    searches = [r4.studies[f"search_{i}"].runs[0]["search"] for i in (1, 2, 3)]
    assert [s["algorithm"] for s in searches] == ["hyperband"] * 3
    assert all(s["max_epochs"] == 2 for s in searches)  # smoke caps R4's 50 epochs
    lr = [(s["space"]["learning_rate"]["min"], s["space"]["learning_rate"]["max"]) for s in searches]
    assert lr[0][0] <= lr[1][0] <= lr[2][0] and lr[0][1] >= lr[1][1] >= lr[2][1]  # successively narrower

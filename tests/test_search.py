"""Tests for the search study: the space's validation, the run specs that carry it, Keras Tuner on
digits (validation data only, resumable), the report section, and one small end-to-end build."""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import ROOT, run_build  # noqa: E402

from helpers.build import state as build_state  # noqa: E402
from helpers.config import load  # noqa: E402
from helpers.config.errors import ConfigError  # noqa: E402

REPORT = """\
title: digits search
dataset: digits
profiles:
  smoke: {train_samples: null, test_samples: null, epochs: 3}
base:
  model: {hidden: [32]}
  training: {epochs: 3, batch_size: 64, early_stopping: null}
studies:
  search:
    algorithm: random
    max_trials: 2
    space:
      layers: {min: 1, max: 2}
      units: {min: 8, max: 64, step: 8}
      learning_rate: {min: 1.0e-3, max: 1.0e-1, sampling: log}
      activation: {values: [relu, tanh]}
"""


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # error messages name files relative to the working directory


@pytest.fixture
def report(tmp_path) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(REPORT)
    return path


def plan(report: Path, *sets: str, profile: str = "smoke"):
    return load.load(report, profile=profile, sets=list(sets)).studies["search"]


# ---------------------------------------------------------------- bad spaces: one line each
BAD = [
    (["search.space.unitz={min: 8, max: 16}"],
     r"^--set: studies\.search\.space: unknown hyperparameter 'unitz' \(did you mean 'units'\?\); allowed: layers, units, "),
    (["search.space.hidden={values: [8, 16]}"], r"unknown hyperparameter 'hidden' \(hidden is searched as layers and units\)"),
    (["search.space.units={min: 64, max: 8}"], r"^--set: studies\.search\.space\.units: min \(64\) must be less than max \(8\)"),
    (["search.space.batch_size={min: 8}"], r"space\.batch_size: give min and max \(a range\) or values \(a list of choices\)"),
    (["search.space.units={min: 8, max: 16, values: [8]}"], r"space\.units: give either values .* or min and max .*, not both"),
    (["search.space.units={min: 1.5, max: 16}"], r"space: units: min = 1\.5: must be a valid integer"),
    (["search.space.units={min: 0, max: 16}"], r"space: units: min = 0: must be greater than 0"),
    (["search.space.units={min: 8, max: 64, step: 0.5}"], r"space: units: step = 0\.5: must be a whole number"),
    (["search.space.units={min: 8, max: 64, mxa: 3}"],
     r"space\.units\.mxa: unknown key 'mxa' \(did you mean 'max'\?\); allowed: max, min, sampling, step, values"),
    (["search.space.dropout={min: 0.0, max: 1.0}"], r"space: dropout: max = 1\.0: must be less than 1"),
    (["search.space.l2={min: 0, max: 1.0e-3, sampling: log}"], r"space\.l2: log sampling needs min > 0 \(got 0\)"),
    (["search.space.l2={min: 1.0e-6, max: 1.0e-3, sampling: cubic}"], r"space\.l2\.sampling = 'cubic': must be one of linear, log"),
    (["search.space.batch_size={values: [32, -1]}"], r"space: batch_size: values = -1: must be greater than 0"),
    (["search.space.optimizer={min: 1, max: 2}"], r"space: optimizer: takes values \(a list of choices\), not a range"),
    (["search.space.activation={values: [relu, rleu]}"], r"space: activation: values = 'rleu': must be 'relu', "),
    (["search.space.activation={values: [relu, relu]}"], r"space\.activation: values lists 'relu' twice"),
    (["search.space.units={values: []}"], r"space\.units\.values = \[\]: .*at least 1 item"),
    (["search.algorithm=hyperbnd"], r"studies\.search\.algorithm = 'hyperbnd': must be one of hyperband, random, bayesian "
                                    r"\(did you mean 'hyperband'\?\)"),
    (["search.objective=test_accuracy"], r"studies\.search\.objective = 'test_accuracy': must be one of val_accuracy, val_loss"),
    (["search.max_trials=null"], r"studies\.search: algorithm random needs max_trials"),
    (["search.algorithm=bayesian", "search.max_trials=null"], r"algorithm bayesian needs max_trials"),
    (["search.factor=1"], r"studies\.search\.factor = 1: must be greater than or equal to 2"),
    (["search.max_trials=0"], r"studies\.search\.max_trials = 0: must be greater than 0"),
    (["search.concurrency=0"], r"studies\.search\.concurrency = 0: must be greater than 0"),
]


@pytest.mark.parametrize("sets, match", BAD, ids=[s[0] for s, _ in BAD])
def test_bad_search_parameters(report, sets, match):
    with pytest.raises(ConfigError, match=match) as info:
        plan(report, *sets)
    assert "\n" not in str(info.value)


def test_an_empty_space(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(REPORT.split("    space:")[0] + "    space: {}\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: studies\.search\.space = \{\}: .*at least 1 item"):
        load.load(path, profile="smoke")


def test_yaml_string_numbers_are_numbers(report):
    # PyYAML reads 1e-3 (no dot) as a string; the schema reads it as the number it means.
    p = plan(report, "search.space.learning_rate={min: 1e-4, max: 1e-2, sampling: log}")
    assert p.runs[0]["search"]["space"]["learning_rate"] == {"min": 1e-4, "max": 1e-2, "sampling": "log"}


# ---------------------------------------------------------------- what the plan carries
def test_runs_carry_the_search_and_the_profile_caps_epochs(report):
    p = plan(report, "search.algorithm=hyperband", "search.max_epochs=20")
    (run,) = p.runs
    assert run["search"]["algorithm"] == "hyperband" and run["search"]["max_epochs"] == 3  # smoke: 3 epochs
    assert run["config"]["training"]["epochs"] == 3
    assert run["search"]["space"]["units"] == {"min": 8, "max": 64, "step": 8}


def test_a_report_space_replaces_the_study_files_space(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(REPORT.replace("    algorithm: random\n    max_trials: 2\n", "    max_trials: 2\n")
                    .split("    space:")[0] + "    space:\n      dropout: {min: 0.0, max: 0.5}\n")
    p = load.load(path, profile="smoke").studies["search"]
    assert list(p.runs[0]["search"]["space"]) == ["dropout"]  # not merged with params/studies/search.yaml's
    assert p.runs[0]["search"]["algorithm"] == "hyperband"  # the study file's default


def test_study_state_follows_the_space_and_not_the_title(report):
    base = build_state.study(plan(report))
    wider = build_state.study(plan(report, "search.space.units.max=128"))
    retitled = build_state.study(plan(report, "search.title=Another title"))
    assert wider["key"] != base["key"]
    assert retitled["parameters"] != base["parameters"]  # a title shows in the notebook, so it re-renders
    assert retitled["runs"] == base["runs"]  # ... but trains nothing again


def test_tuner_state_key_ignores_the_budget_but_not_the_space(report):
    from helpers.run import search
    key = lambda p: search.state_key(p.runs[0], "data")  # noqa: E731
    assert key(plan(report)) == key(plan(report, "search.max_trials=5", "search.top=3"))
    assert key(plan(report)) != key(plan(report, "search.space.units.max=128"))
    assert key(plan(report)) != key(plan(report, "base.training.batch_size=32"))


# ---------------------------------------------------------------- space -> configuration
def test_layers_and_units_become_hidden(report):
    import keras_tuner as kt

    from helpers.run import search
    run = plan(report).runs[0]
    space, cfg = run["search"]["space"], run["config"]
    hp = kt.HyperParameters()
    values = search.declare(hp, space, base_layers=1)
    assert set(values) == {"layers", "learning_rate", "activation", "units_0", "units_1"}
    model, training = search.configure({"layers": 2, "units_0": 16, "units_1": 40, "learning_rate": 0.01,
                                        "activation": "tanh"}, space, cfg["model"], cfg["training"])
    assert model["hidden"] == [16, 40] and model["activation"] == "tanh"
    assert training["learning_rate"] == 0.01 and training["batch_size"] == 64
    model, _ = search.configure({"layers": 1, "units_0": 24, "units_1": 40}, space, cfg["model"], cfg["training"])
    assert model["hidden"] == [24]  # the second layer's units are inactive in a one-layer trial
    assert search.shown({"layers": 1, "units_0": 24, "learning_rate": 0.01}, space, model) == {
        "hidden": [24], "learning_rate": 0.01}


# ---------------------------------------------------------------- Keras Tuner on digits
@pytest.fixture(scope="module")
def digits():
    from helpers.data import splits as data
    return data.load("digits", train_samples=None, test_samples=None, validation_split=0.2, seed=42)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("params") / "search.yaml"
    path.write_text(REPORT)
    return path


def _spec(report_file: Path, max_trials: int) -> dict:
    return load.load(report_file, profile="smoke", sets=[f"search.max_trials={max_trials}"]).studies["search"].runs[0]


def test_search_sees_training_and_validation_data_only(digits, report_file, tmp_path, monkeypatch):
    import keras

    from helpers.run import search
    seen = []
    for name in ("fit", "evaluate", "predict"):
        original = getattr(keras.Model, name)

        def spy(self, *args, _original=original, **kwargs):
            seen.extend(a for a in (*args, *kwargs.values(), *(kwargs.get("validation_data") or ()))
                        if isinstance(a, np.ndarray))
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(keras.Model, name, spy)
    summary = search.tune(_spec(report_file, 2), (digits.x_train, digits.y_train), (digits.x_val, digits.y_val),
                          list(digits.class_names), tmp_path / "tuner")
    assert len(summary["trials"]) == 2 and summary["new_trials"] == 2
    assert seen, "the spy saw no arrays"
    for a in seen:
        assert not np.shares_memory(a, digits.x_test) and not np.shares_memory(a, digits.y_test)
        assert len(a) in (len(digits.x_train), len(digits.x_val))
    assert len(digits.x_test) not in (len(digits.x_train), len(digits.x_val))  # so the length check can tell


def test_an_interrupted_search_resumes_and_a_larger_budget_continues(digits, report_file, tmp_path):
    from helpers.run import search
    folder = tmp_path / "tuner"
    args = ((digits.x_train, digits.y_train), (digits.x_val, digits.y_val), list(digits.class_names), folder)

    def interrupt(trial):
        if trial.trial_id == "1":
            raise KeyboardInterrupt  # as if the build were stopped while trial 1 trained
    with pytest.raises(KeyboardInterrupt):
        search.tune(_spec(report_file, 2), *args, on_trial=interrupt)
    first = json.loads((folder / "tuner" / "times.json").read_text())
    assert list(first) == ["0"]  # trial 0 finished before the interruption

    resumed = search.tune(_spec(report_file, 2), *args)
    assert resumed["new_trials"] == 1 and [t["id"] for t in resumed["trials"]] == ["0", "1"]
    assert json.loads((folder / "tuner" / "times.json").read_text())["0"] == first["0"]  # not trained again

    more = search.tune(_spec(report_file, 3), *args)
    assert more["new_trials"] == 1 and len(more["trials"]) == 3
    old = {t["id"]: t["score"] for t in resumed["trials"]}
    assert all(t["score"] == old[t["id"]] for t in more["trials"] if t["id"] in old)


def test_smoke_search_retrains_the_best_trial_and_tests_it_once(report_file, tmp_path):
    from helpers.data.registry import content_hash
    from helpers.present.views import search as searchview
    from helpers.run import search
    spec = _spec(report_file, 2)
    records = search.train([spec], cache_dir=str(tmp_path))
    # what the search did: both trials of its budget completed, and the tuner's state is on disk
    # in the run cache, under the state key (so a re-render resumes rather than starts over)
    assert [t["status"] for t in records[0]["search"]["trials"]] == ["COMPLETED"] * 2
    assert records[0]["search"]["new_trials"] == 2
    state = tmp_path / "search" / search.state_key(spec, content_hash("digits"))[:24]
    assert records[0]["search"]["directory"] == state.name
    assert sorted(json.loads((state / search.PROJECT / "times.json").read_text())) == ["0", "1"]
    trials = [json.loads(f.read_text()) for f in sorted((state / search.PROJECT).glob("trial_*/trial.json"))]
    assert [(t["trial_id"], t["status"]) for t in trials] == [("0", "COMPLETED"), ("1", "COMPLETED")]
    (rec,) = records
    s = rec["search"]
    done = [t for t in s["trials"] if t["score"] is not None]
    best = max(done, key=lambda t: t["score"])
    assert s["best"] == best["id"]  # chosen by validation score
    assert rec["config"]["model"] == best["model"] and rec["status"] in ("ok", "diverged")
    assert rec["metrics"]["val_accuracy"] == pytest.approx(best["score"], abs=1e-6)  # same seed, same run
    assert 0 <= rec["metrics"]["test_accuracy"] <= 1 and not rec["cached"]
    again = search.train([_spec(report_file, 2)], cache_dir=str(tmp_path))  # re-rendering: nothing trains
    assert again[0]["cached"] and again[0]["search"]["new_trials"] == 0
    assert again[0]["metrics"] == rec["metrics"]

    space = searchview.space(records).data
    assert 'data-label="tab:search:space"' in space and "2 trials (2 trained in this build)" in space
    trials = searchview.trials(records).data
    assert 'data-label="tab:search:trials"' in trials and f"{best['score']:.4f}" in trials
    assert 'data-label="fig:search:scores"' in searchview.scores(records).data
    text = searchview.findings(records).data
    assert f"trial {int(best['id'])}" in text and f"{rec['metrics']['test_accuracy']:.4f}" in text


# ---------------------------------------------------------------- the notebook, end to end
@pytest.mark.e2e
def test_build_with_a_search_and_a_diverging_learning_rate(tmp_path):
    path = tmp_path / "digits-search.yaml"
    path.write_text(REPORT + """\
  learning_rate:
    training: {optimizer: sgd}
    learning_rates: [10, 0.1]
""")
    out = tmp_path / "out"
    # Its two trials train at once, as tasks of the build's cluster.
    proc = run_build(path, "--profile", "smoke", "--set", "profiles.smoke.epochs=5", "--set", "base.epochs=5",
                     "--set", "search.concurrency=2", "--out", out, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((out / "digits-search.json").read_text())
    assert {s["name"]: s["status"] for s in data["studies"]} == {"search": "ok", "learning_rate": "ok"}
    (searched,) = [r["search"] for r in data["runs"] if r["study"] == "search"]
    assert [t["status"] for t in searched["trials"]] == ["COMPLETED"] * 2 and searched["concurrency"] == 2
    html = (out / "digits-search.html").read_text()
    for label in ("tab:search:space", "tab:search:trials", "fig:search:scores", "tab:search:results"):
        assert f'data-label="{label}"' in html, label
    results = json.loads((out / "digits-search" / "learning_rate.results.json").read_text())
    status = {r["label"]: r["status"] for r in results}
    assert status == {"learning rate 10": "diverged", "learning rate 0.1": "ok"}
    assert "diverged</td>" in html and "<strong>learning rate 10</strong> diverged: " in html


# ---------------------------------------------------------------- trials as Dask tasks
def test_concurrent_trials_train_as_tasks_and_equal_the_sequential_search(digits, report_file, tmp_path, monkeypatch):
    """concurrency 2: Hyperband's trials train two at a time on the cluster's workers (the oracle
    stays here), a trial that continues another gets its weights shipped, and the trials, their
    scores and the best equal those of the search that trains them one at a time (concurrency 1)."""
    from distributed import Client, get_task_stream

    from conftest import shared_scheduler
    from helpers.run import executor, search
    spec = load.load(report_file, profile="smoke", sets=[
        "search.algorithm=hyperband", "search.max_epochs=2", "search.factor=2",
        "search.max_trials=null", "search.concurrency=2"]).studies["search"].runs[0]
    args = ((digits.x_train, digits.y_train), (digits.x_val, digits.y_val), list(digits.class_names))

    pool = Client(scheduler_file=shared_scheduler(), timeout="30s", set_as_default=False)
    try:
        monkeypatch.setattr(executor, "client", lambda: pool)
        here = search.tune(dict(spec, search=dict(spec["search"], concurrency=1)), *args, tmp_path / "here")
        with get_task_stream(pool) as stream:
            there = search.tune(spec, *args, tmp_path / "there")
        tasks = [t for t in stream.data if str(t["key"]).startswith("search-trial-")]
    finally:
        pool.close()
    assert any(t["continues"] for t in there["trials"]), there["trials"]  # a trial that needed another's weights
    assert len(tasks) == len(there["trials"]) >= 4
    assert len({t["worker"] for t in tasks}) == 2  # both workers trained trials
    # Two at a time, Hyperband starts the next bracket while a round finishes, so the trials come in
    # another order (other ids); the trials themselves, continued ones included, are the same.
    shown = lambda s: sorted((json.dumps(t["values"], sort_keys=True), t["epochs"], t["status"], t["score"],  # noqa: E731
                              bool(t["continues"])) for t in s["trials"])
    assert shown(there) == shown(here)
    best = lambda s: next(t for t in s["trials"] if t["id"] == s["best"])["values"]  # noqa: E731
    assert best(there) == best(here)

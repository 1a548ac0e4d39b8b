"""What changes a run's results is in its key, and nothing else (issue 12, items 7 and 11): the
thread count TensorFlow is given (pinned by training, so not in the key), the versions of the
libraries that draw the splits, the device class; and a search's executions per trial, each from
its own seed."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from helpers.config import load as config
from helpers.data import splits as data_splits
from helpers.run import cache

ROOT = Path(__file__).resolve().parents[1]
HASH = "0" * 64


@pytest.fixture(scope="module")
def plan():
    return config.load(ROOT / "params" / "digits.yaml", profile="smoke")


@pytest.fixture
def spec(plan) -> dict:
    return copy.deepcopy(plan.studies["depth"].runs[0])


# ---------------------------------------------------------------- threads
TRAIN_ONE = textwrap.dedent("""
    import copy, json, sys
    sys.path.insert(0, {src!r})
    from helpers.config import load
    from helpers.run import training
    plan = load.load({params!r}, profile="smoke")
    spec = copy.deepcopy(plan.studies["cnn_vs_baseline"].runs[1])  # the CNN: convolutions split their sums by thread
    spec["config"]["training"]["epochs"] = 2
    spec["config"]["data"]["train_samples"] = 600
    (record,) = training.run_all([spec], threads=int(sys.argv[1]))
    import tensorflow as tf
    print(json.dumps({{"history": record.get("history"), "error": record.get("error"),
                      "intra": tf.config.threading.get_intra_op_parallelism_threads()}}))
""")


def _train_in_fresh_processes(*threads: int) -> list[dict]:
    # A fresh process each (TensorFlow takes its thread counts once, before its first op), side by side.
    script = TRAIN_ONE.format(src=str(ROOT / "src"), params=str(ROOT / "params" / "digits.yaml"))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}) for n in threads]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_the_thread_count_given_to_tensorflow_does_not_change_a_history():
    # Unpinned, the same CNN's histories with 1 and 2 intra-op threads differ in their last bits
    # (TensorFlow 2.21 on CPU); training pins the intra-op count, so a build's --jobs cannot
    # change a result and the thread count needs no place in the run key.
    from helpers.run import training

    one, two = _train_in_fresh_processes(1, 2)
    assert one["error"] is None and two["error"] is None, (one["error"], two["error"])
    assert one["intra"] == two["intra"] == training.INTRA_OP_THREADS
    assert one["history"] == two["history"]  # bit for bit: floats compared exactly


def test_a_run_started_after_tensorflow_was_unpinned_is_not_cached(plan, tmp_path, monkeypatch):
    from helpers.run import training

    monkeypatch.setattr(training, "pinned", lambda: False)
    run = copy.deepcopy(plan.studies["depth"].runs[0])
    run["config"]["training"]["epochs"] = 1
    with pytest.warns(UserWarning, match="intra-op"):
        (record,) = training.run_all([run], cache_dir=str(tmp_path / "cache"))
    assert record["status"] == "ok" and record["key"] is None and record["cached"] is False
    assert cache.RunCache(tmp_path / "cache").size()[0] == 0


# ---------------------------------------------------------------- the key's inputs
def test_the_key_inputs_are_exactly_what_changes_a_result(spec):
    inputs = cache.key_inputs(spec, HASH)
    assert set(inputs) == {"format", "model", "training", "data", "seed", "data_files", "sources",
                           "versions", "device"}
    assert inputs["format"] == cache.FORMAT == 3  # the key's shape changed: every old entry is a miss


def test_the_split_libraries_versions_are_in_the_key(spec, monkeypatch):
    assert data_splits.SPLIT_LIBRARIES == ("numpy", "scipy", "scikit-learn")
    got = cache.key_inputs(spec, HASH)["versions"]
    for dist in data_splits.SPLIT_LIBRARIES:
        assert got[dist] == metadata.version(dist)
    before = cache.run_key(spec, HASH)
    for dist in data_splits.SPLIT_LIBRARIES:
        real = data_splits.split_versions()
        monkeypatch.setattr(cache, "split_versions", lambda d=dist, r=real: {**r, d: r[d] + ".post1"})
        cache.versions.cache_clear()
        try:
            assert cache.run_key(spec, HASH) != before, dist
        finally:
            monkeypatch.undo()
            cache.versions.cache_clear()
    assert cache.run_key(spec, HASH) == before


def test_the_split_libraries_versions_are_in_the_splits_fingerprint(monkeypatch):
    load = lambda: data_splits.load("digits", train_samples=None, test_samples=None,  # noqa: E731
                                    validation_split=0.2, seed=42)
    before = load().fingerprint
    real = data_splits.split_versions()
    monkeypatch.setattr(data_splits, "split_versions", lambda: {**real, "scikit-learn": "0.0.1"})
    assert load().fingerprint != before


def test_the_device_class_is_in_the_key(spec, monkeypatch):
    import tensorflow as tf

    device = cache.key_inputs(spec, HASH)["device"]
    assert device["class"] == ("gpu" if tf.config.list_physical_devices("GPU") else "cpu")
    before = cache.run_key(spec, HASH)
    other = "cpu" if device["class"] == "gpu" else "gpu"
    monkeypatch.setattr(cache, "_device_class", lambda loaded: other)
    assert cache.run_key(spec, HASH) != before
    monkeypatch.undo()
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0" else "1")
    assert cache.run_key(spec, HASH) != before


def test_the_build_and_the_training_kernel_key_the_same_device(monkeypatch):
    # The build's state check tells the device without loading TensorFlow; the kernel asks
    # TensorFlow. They must agree, or every study would look changed.
    import tensorflow  # noqa: F401

    assert cache._device_class.__wrapped__(False) == cache._device_class.__wrapped__(True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert cache._device_class.__wrapped__(False) == "cpu"


# ---------------------------------------------------------------- search: executions per trial
REPORT = """\
title: digits search
dataset: digits
profiles:
  smoke: {train_samples: 400, test_samples: 100, epochs: 1}
base:
  model: {hidden: [16]}
  training: {epochs: 1, batch_size: 64, early_stopping: null}
studies:
  search:
    algorithm: random
    max_trials: 1
    executions_per_trial: 2
    space:
      units: {values: [16]}
"""


def test_each_execution_of_a_trial_has_its_own_derived_seed(tmp_path, monkeypatch):
    import keras

    from helpers.run import search

    path = tmp_path / "search.yaml"
    path.write_text(REPORT)
    run = config.load(path, profile="smoke").studies["search"].runs[0]
    assert run["search"]["executions_per_trial"] == 2
    data = data_splits.load("digits", train_samples=400, test_samples=100, validation_split=0.2, seed=42)
    current, fitted = [None], []
    real_seed, real_fit = keras.utils.set_random_seed, keras.Model.fit

    def set_seed(seed):
        current[0] = seed
        return real_seed(seed)

    def fit(self, *args, **kwargs):
        fitted.append(current[0])  # the seed the model being fitted was built from
        return real_fit(self, *args, **kwargs)
    monkeypatch.setattr(keras.utils, "set_random_seed", set_seed)
    monkeypatch.setattr(keras.Model, "fit", fit)

    def tune(folder):
        fitted.clear()
        summary = search.tune(run, (data.x_train, data.y_train), (data.x_val, data.y_val),
                              list(data.class_names), tmp_path / folder)
        return list(fitted), summary
    seeds, summary = tune("first")
    assert len(seeds) == 2 and seeds[0] == run["seed"] and seeds[1] != seeds[0], seeds
    assert seeds == [search.execution_seed(run["seed"], n) for n in range(2)] == summary["execution_seeds"]
    again, _ = tune("second")
    assert again == seeds  # derived deterministically: a rebuild trains the same executions
    assert search.execution_seed(run["seed"] + 1, 1) != seeds[1]

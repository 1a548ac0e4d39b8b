"""How the training steps run (issue 13): XLA-compiled, several steps per call, chosen by the tool;
the same metrics as Keras's plain loop; bit-identical from one fresh process to the next with
determinism on; a model XLA cannot compile trains with plain steps and the methodology says so;
Keras's backend is a report parameter, in every run key, and checked before anything runs."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, run_build

from helpers.config import load as config
from helpers.config.errors import ConfigError
from helpers.data import splits as data_splits
from helpers.present import methodology
from helpers.run import cache, training

DIGITS = ROOT / "params" / "digits.yaml"
HASH = "0" * 64


@pytest.fixture(scope="module")
def plan():
    return config.load(DIGITS, profile="smoke")


@pytest.fixture(scope="module")
def splits(plan):
    d = plan.studies["depth"].runs[0]["config"]["data"]
    return data_splits.split(data_splits.load(d["dataset"], **{k: v for k, v in d.items() if k != "dataset"}), d)


def spec_with(plan, **training_cfg) -> dict:
    spec = copy.deepcopy(plan.studies["depth"].runs[-1])  # 3 x 32 relu
    spec["config"]["training"].update(training_cfg)
    return spec


@pytest.mark.parametrize("cfg, n_train, backend, expected", [
    # TensorFlow: XLA for runs long enough to pay its compile back (the full profile's)
    ({"epochs": 10}, 48000, "tensorflow", {"jit_compile": True, "steps_per_execution": training.STEPS_PER_EXECUTION}),
    ({"epochs": 2}, 1440, "tensorflow", {"jit_compile": False, "steps_per_execution": training.STEPS_PER_EXECUTION}),
    ({"epochs": 2}, 1440, "jax", {"jit_compile": True, "steps_per_execution": training.STEPS_PER_EXECUTION}),
    ({"epochs": 2}, 100, "jax", {"jit_compile": True, "steps_per_execution": 4}),  # never more than an epoch has
    ({"jit_compile": False, "steps_per_execution": 1}, 48000, "tensorflow", {"jit_compile": False, "steps_per_execution": 1}),
    ({"jit_compile": True, "steps_per_execution": 8}, 1440, "tensorflow", {"jit_compile": True, "steps_per_execution": 8}),
])
def test_auto_execution_is_resolved(cfg, n_train, backend, expected):
    assert training.execution({"batch_size": 32, "epochs": 10, "jit_compile": "auto", "steps_per_execution": "auto",
                               **cfg}, n_train, backend) == expected


@pytest.mark.parametrize("value, match", [
    ("steps_per_execution=0", r"training\.steps_per_execution.*0"),
    ("jit_compile=maybe", r"training\.jit_compile.*maybe"),
])
def test_bad_execution_settings_are_one_line_errors(value, match):
    with pytest.raises(ConfigError, match=match) as e:
        config.load(DIGITS, profile="smoke", sets=[f"base.training.{value}"])
    assert "\n" not in str(e.value) and "--set" in str(e.value)


def test_compiled_steps_reach_the_plain_loops_metrics(plan, splits):
    plain = training.run(spec_with(plan, jit_compile=False, steps_per_execution=1), splits)
    compiled = training.run(spec_with(plan, jit_compile=True), splits)  # a smoke run: "auto" would skip XLA
    assert plain["execution"] == {"jit_compile": False, "steps_per_execution": 1, "xla_fallback": None}
    # XLA on TensorFlow although deterministic ops are on (Keras alone would decline it)
    assert compiled["execution"] == {"jit_compile": True, "steps_per_execution": training.STEPS_PER_EXECUTION,
                                     "xla_fallback": None}
    assert plain["metrics"]["epochs_run"] == compiled["metrics"]["epochs_run"]
    for key in ("train_accuracy", "val_accuracy", "test_accuracy", "val_loss", "test_loss", "f1_macro"):
        assert compiled["metrics"][key] == pytest.approx(plain["metrics"][key], abs=1e-4), key
    for key, values in plain["history"].items():  # epoch by epoch, early stopping's view included
        assert compiled["history"][key] == pytest.approx(values, abs=1e-4), key


def test_a_model_xla_cannot_compile_trains_without_it_and_is_said_so(plan, splits, monkeypatch):
    real = training.compile_model

    def no_xla(*args, **kw):
        model = real(*args, **kw)
        if (args[4] if len(args) > 4 else kw.get("how") or {}).get("jit_compile"):
            def fit(*a, **k):
                raise RuntimeError("XLA compilation failed: op ImaginaryOp is not supported\nmore detail")
            model.fit = fit
        return model
    monkeypatch.setattr(training, "compile_model", no_xla)
    record = training.run(spec_with(plan, jit_compile=True), splits)
    assert record["status"] == "ok" and record["metrics"]["epochs_run"] >= 1
    assert record["execution"]["jit_compile"] is False
    assert record["execution"]["xla_fallback"] == "RuntimeError: XLA compilation failed: op ImaginaryOp is not supported"
    words = methodology.execution("tensorflow", [record])
    assert "1 run asked for XLA and trained without it" in words and "ImaginaryOp" in words


def test_a_plain_failure_is_still_a_failure(plan, splits, monkeypatch):
    # Only XLA gets a second chance: a run that fails without XLA too raises (run_all records it as failed).
    real = training.compile_model

    def broken(*args, **kw):
        model = real(*args, **kw)

        def fit(*a, **k):
            raise ValueError("the data does not fit the model")
        model.fit = fit
        return model
    monkeypatch.setattr(training, "compile_model", broken)
    with pytest.raises(ValueError, match="does not fit"):
        training.run(spec_with(plan), splits)


TRAIN_ONE = textwrap.dedent("""
    import copy, json, sys
    sys.path.insert(0, {src!r})
    from helpers.config import load
    from helpers.data import splits as ds
    from helpers.run import training
    plan = load.load({params!r}, profile="smoke")
    spec = copy.deepcopy(plan.studies["depth"].runs[-1])
    d = spec["config"]["data"]
    s = ds.split(ds.load(d["dataset"], **{{k: v for k, v in d.items() if k != "dataset"}}), d)
    record = training.run(spec, s)  # run() itself, as a notebook opened by hand may call it
    from tensorflow.python.framework import config as tf_config
    print(json.dumps({{"history": record["history"], "metrics": record["metrics"],
                      "determinism": tf_config.is_op_determinism_enabled()}}))
""")


@pytest.mark.e2e
def test_two_fresh_processes_train_bit_identical_histories_with_determinism_on():
    script = TRAIN_ONE.format(src=str(ROOT / "src"), params=str(DIGITS))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                              "KERAS_BACKEND": "tensorflow"}) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    a, b = results
    assert a["determinism"] is True and b["determinism"] is True
    assert a["history"] == b["history"]  # floats compared exactly
    assert {k: v for k, v in a["metrics"].items() if k != "seconds"} == \
        {k: v for k, v in b["metrics"].items() if k != "seconds"}


# ---------------------------------------------------------------- the backend
def test_the_backend_and_the_execution_settings_are_in_the_run_key(plan, monkeypatch):
    spec = spec_with(plan)
    keys = {}
    for backend in ("tensorflow", "jax"):
        monkeypatch.setenv("KERAS_BACKEND", backend)
        monkeypatch.setattr(cache, "keras_backend", lambda b=backend: b)
        cache.versions.cache_clear()
        keys[backend] = cache.run_key(spec, HASH)
        assert cache.key_inputs(spec, HASH)["versions"]["backend"] == backend
    cache.versions.cache_clear()
    assert keys["tensorflow"] != keys["jax"]
    monkeypatch.undo()
    cache.versions.cache_clear()
    base = cache.run_key(spec, HASH)
    assert cache.run_key(spec_with(plan, steps_per_execution=1), HASH) != base
    assert cache.run_key(spec_with(plan, jit_compile=False), HASH) != base


def test_a_backend_that_is_not_installed_is_a_one_line_error(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    with pytest.raises(ConfigError) as e:
        config.load(DIGITS, profile="smoke", sets=["backend=jax"])
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--set: backend: 'jax'") and "make setup BACKEND=jax" in msg


def test_an_unknown_backend_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"backend.*torch.*tensorflow.*jax") as e:
        config.load(DIGITS, profile="smoke", sets=["backend=torch"])
    assert "\n" not in str(e.value)


@pytest.mark.e2e
def test_the_digits_report_builds_on_jax(tmp_path):
    pytest.importorskip("jax", reason="`make test` installs the JAX backend (requirements-jax.txt)")
    # A dense and a convolutional study (CI time): every other kind shares their training path.
    proc = run_build(DIGITS, "--profile", "smoke", "--out", tmp_path, "--set", "backend=jax",
                     "--studies", "depth,cnn_vs_baseline", env={"PYTHONUNBUFFERED": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "digits.json").read_text())
    assert data["runs"] and all(r["status"] == "ok" for r in data["runs"])
    assert all(r["execution"]["jit_compile"] for r in data["runs"])
    keys = json.loads((tmp_path / ".cache" / "runs" / data["runs"][0]["key"] / "meta.json").read_text())
    assert keys["inputs"]["versions"]["backend"] == "jax" and "jax" in keys["inputs"]["versions"]
    html = (tmp_path / "digits.html").read_text()
    assert "Keras ran on JAX: XLA-compiled steps, " in html

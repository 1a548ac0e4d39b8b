"""Training speed of the default report's base run (R5's 4x128 relu network, Adam, batch 32, on
the full Fashion-MNIST split: 48,000 training images): seconds per epoch with Keras's plain loop
on TensorFlow (as before issue 13) and with the tool's "auto" execution (XLA-compiled steps, 32 per
call) on TensorFlow and on JAX. Each in a fresh process; the first epoch (tracing, compiling) is
left out of the per-epoch time and given separately.

 fit_speedup_tf  = plain TF per-epoch time / compiled TF per-epoch time   (goal >= 2.0)
 fit_speedup_jax = plain TF per-epoch time / JAX per-epoch time           (goal >= 3.5)

BENCH_EPOCHS (default 3: one to compile, two timed).  python benchmarks/run.py fit_speed
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = int(os.environ.get("BENCH_EPOCHS", "3"))
GOALS = {"fit_speedup_tf": 2.0, "fit_speedup_jax": 3.5}
SETTINGS = {  # name: (backend, training overrides)
    "tf_plain": ("tensorflow", {"jit_compile": False, "steps_per_execution": 1}),
    "tf_auto": ("tensorflow", {}),
    "jax_auto": ("jax", {}),
}


def child(backend: str, overrides: dict) -> dict:
    """One measurement, in this (fresh) process: KERAS_BACKEND is already set by the parent."""
    sys.path.insert(0, str(ROOT / "src"))
    import keras

    from helpers.config import load
    from helpers.data import splits as data_splits
    from helpers.run import training

    training.configure()
    plan = load.load(ROOT / "params" / "report.yaml", profile="full", studies=["depth"])
    spec = next(r for r in plan.studies["depth"].runs if r["config"]["model"]["hidden"] == [128] * 4)
    cfg = {**spec["config"]["training"], **overrides, "epochs": EPOCHS, "early_stopping": None}
    d = spec["config"]["data"]
    s = data_splits.split(data_splits.load(d["dataset"], **{k: v for k, v in d.items() if k != "dataset"}), d)
    keras.utils.set_random_seed(spec["seed"])
    n = len(s.class_names)
    how = training.execution(cfg, len(s.y_train))
    model = training.compile_model(spec["config"]["model"], cfg, s.x_train.shape[1:], n, how)
    ends = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())
    y = keras.utils.to_categorical(s.y_train, n)
    start = time.perf_counter()
    hist = model.fit(**training.feed_args(s.x_train, y, cfg["batch_size"], shuffle=True, seed=spec["seed"]),
                     epochs=EPOCHS, callbacks=[Clock()], verbose=0)
    steady = [b - a for a, b in zip(ends, ends[1:])]
    return {"backend": keras.backend.backend(), "execution": how, "first_epoch_s": ends[0] - start,
            "epoch_s": sum(steady) / len(steady), "loss": hist.history["loss"]}


def measure(name: str) -> dict | None:
    backend, overrides = SETTINGS[name]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, __file__, json.dumps([backend, overrides])], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"# fit_speed {name}: failed: {last}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> dict:
    if EPOCHS < 2:
        raise SystemExit("BENCH_EPOCHS must be at least 2 (the first epoch compiles)")
    got = {name: measure(name) for name in SETTINGS}
    out = {}
    for name, r in got.items():
        if r is not None:
            out[f"{name}_epoch_seconds"] = round(r["epoch_s"], 3)
            out[f"{name}_first_epoch_seconds"] = round(r["first_epoch_s"], 3)
    plain = got["tf_plain"]
    for key, other in (("fit_speedup_tf", "tf_auto"), ("fit_speedup_jax", "jax_auto")):
        if plain and got[other]:
            ratio = plain["epoch_s"] / got[other]["epoch_s"]
            out[key] = round(ratio, 2)
            out[f"{key}_goal_met"] = ratio >= GOALS[key]
        else:
            out[key] = "not measured (see the line above)"
    return out


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1].startswith("["):
        print(json.dumps(child(*json.loads(sys.argv[1]))))
    else:
        print(json.dumps(main(), indent=1))

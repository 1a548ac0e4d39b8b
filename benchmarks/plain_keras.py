"""The yardstick for benchmarks/build.py: the same runs as a build, trained by a plain Keras script.

No papermill, no notebooks, no report, no run cache, none of helpers.run.training or helpers.build: the
run specs are read from the JSON report a build wrote, the arrays come from helpers.data.splits.load (so
the data, its subsample and its split are the very same), and the models are built inline with
Keras layers the way helpers/run/models.py builds them. Each run is fitted with the same optimizer,
learning rate, batch size, epochs, loss and early stopping, then evaluated on train, validation
and test, as helpers.run.training.run does. TensorFlow gets the build's settings (deterministic ops)
and, as one sequential process, every core.

    python benchmarks/plain_keras.py reports/report.json [--threads N] [--all]

prints one JSON line: {"seconds": ..., "runs": ..., ...}. By default it trains the runs the build
trained (its records with "cached": false): the same work. --all trains every run in the file,
including the configurations the build trained once and reused in another study.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}
RELU_LIKE = ("relu", "elu", "selu", "gelu", "swish")


def configure(threads: int | None = None) -> None:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.config.experimental.enable_op_determinism()  # as the build does: same ops, same cost
    n = threads or os.cpu_count() or 1
    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, n))


def build_model(m: dict, input_shape, n_classes: int):
    import keras
    from keras import layers, regularizers

    init = m["initializer"] if m["initializer"] != "auto" else (
        "he_normal" if m["activation"] in RELU_LIKE else "glorot_uniform")
    inputs = keras.Input(shape=input_shape)
    x = inputs
    if m["kind"] == "cnn":
        if len(input_shape) == 2:
            x = layers.Reshape((*input_shape, 1))(x)
        for f in m["filters"]:
            x = layers.Conv2D(f, m["kernel_size"], padding="same", activation=m["activation"],
                              kernel_initializer=init)(x)
            x = layers.MaxPooling2D(m["pool_size"])(x)
            if m["conv_dropout"] > 0:
                x = layers.SpatialDropout2D(m["conv_dropout"])(x)
    x = layers.Flatten()(x)
    penalty = regularizers.L1L2(l1=m["l1"], l2=m["l2"]) if m["l1"] or m["l2"] else None
    for units in m["hidden"]:
        if m["batch_norm"]:
            x = layers.Dense(units, use_bias=False, kernel_initializer=init, kernel_regularizer=penalty)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation(m["activation"])(x)
        else:
            x = layers.Dense(units, activation=m["activation"], kernel_initializer=init,
                             kernel_regularizer=penalty)(x)
        if m["dropout"] > 0:
            x = (layers.GaussianDropout if m["dropout_kind"] == "gaussian" else layers.Dropout)(m["dropout"])(x)
    out = (layers.Dense(1, activation="sigmoid") if n_classes == 2
           else layers.Dense(n_classes, activation="softmax"))(x)
    return keras.Model(inputs, out)


def train_one(spec: dict, s) -> dict:
    import keras
    import numpy as np

    m, t = spec["config"]["model"], spec["config"]["training"]
    keras.utils.set_random_seed(spec["seed"])
    k = len(s.class_names)
    binary = k == 2
    model = build_model(m, s.x_train.shape[1:], k)
    loss = (("binary_crossentropy" if binary else "categorical_crossentropy")
            if t["loss"] in ("crossentropy", "categorical_crossentropy", "binary_crossentropy")
            else "mean_squared_error")
    accuracy = (keras.metrics.BinaryAccuracy if binary else keras.metrics.CategoricalAccuracy)(name="accuracy")
    model.compile(optimizer=getattr(keras.optimizers, OPTIMIZERS[t["optimizer"]])(learning_rate=t["learning_rate"]),
                  loss=loss, metrics=[accuracy])

    def target(y):
        return y.astype("float32").reshape(-1, 1) if binary else keras.utils.to_categorical(y, k)
    y_train, y_val, y_test = target(s.y_train), target(s.y_val), target(s.y_test)
    stop = t.get("early_stopping")
    callbacks = [keras.callbacks.EarlyStopping(monitor=stop["monitor"], patience=stop["patience"],
                                               restore_best_weights=True)] if stop else []
    start = time.perf_counter()
    fit = model.fit(s.x_train, y_train, batch_size=t["batch_size"], epochs=t["epochs"],
                    validation_data=(s.x_val, y_val), callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - start
    _, train_acc = model.evaluate(s.x_train, y_train, batch_size=1024, verbose=0)
    _, val_acc = model.evaluate(s.x_val, y_val, batch_size=1024, verbose=0)
    model.evaluate(s.x_test, y_test, batch_size=1024, verbose=0)
    proba = model.predict(s.x_test, batch_size=1024, verbose=0)
    pred = (proba.reshape(-1) > 0.5).astype(int) if binary else proba.argmax(axis=1)
    return {"train_accuracy": float(train_acc), "val_accuracy": float(val_acc),
            "test_accuracy": float(np.mean(pred == s.y_test)), "epochs_run": len(fit.history["loss"]),
            "seconds": seconds}


def train_all(specs: list[dict], results: list | None = None) -> float:
    """Train and evaluate every spec in order; wall seconds for all of it (data loading included).
    Per-run measurements are appended to ``results`` when given."""
    sys.path.insert(0, str(ROOT / "src"))
    from helpers.data import splits  # only to get the same arrays as the build

    start = time.perf_counter()
    loaded = {}
    for spec in specs:
        d = spec["config"]["data"]
        key = json.dumps(d, sort_keys=True)
        if key not in loaded:
            loaded[key] = splits.load(d["dataset"], **{k: v for k, v in d.items() if k != "dataset"})
        measured = train_one(spec, loaded[key])
        if results is not None:
            results.append(measured)
    return time.perf_counter() - start


def cli(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="plain_keras.py")
    p.add_argument("report_json", help="a build's NAME.json")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: all cores)")
    p.add_argument("--all", action="store_true", help="every run in the file, not only those the build trained")
    args = p.parse_args(argv)
    runs = [r for r in json.loads(Path(args.report_json).read_text())["runs"] if r.get("status") == "ok"]
    specs = runs if args.all else [r for r in runs if not r.get("cached")]
    configure(args.threads)
    results: list = []
    seconds = train_all(specs, results)
    same_epochs = sum(r["metrics"]["epochs_run"] == m["epochs_run"] for r, m in zip(specs, results))
    same_val = sum(abs(r["metrics"]["val_accuracy"] - m["val_accuracy"]) < 1e-6 for r, m in zip(specs, results))
    return {"seconds": seconds, "runs": len(specs), "fit_seconds": sum(m["seconds"] for m in results),
            "build_fit_seconds": sum(r["metrics"]["seconds"] for r in specs),
            "same_epochs_run": same_epochs, "same_val_accuracy": same_val,
            "per_run_seconds": {f"{r['study']}/{r['label']}": m["seconds"] for r, m in zip(specs, results)}}


def main() -> dict:
    """benchmarks/run.py finds every module here; this one is measured by build.py (it needs a
    build's JSON), so on its own it reports nothing."""
    return {}


if __name__ == "__main__":
    print(json.dumps(cli(sys.argv[1:])), flush=True)

"""Training: ``run`` trains and measures one configuration; ``run_all`` is the one place runs happen."""
from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

# Before TensorFlow is imported: keep its C++ start-up chatter out of notebooks and CI logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's intra-op thread count splits a kernel's sums into per-thread parts, so it changes the
# numbers: a CNN on digits trained with 1 and with 2 intra-op threads gives histories that differ
# in the last bits, which then grow over epochs (tests/test_run_key.py). A build's thread count
# follows --jobs and how many studies re-run, so it is pinned here rather than put in the run key:
# results stay the same whatever the build's parallelism, and the cache keeps every hit. The
# inter-op count (how many independent ops run at once) changes no number and follows ``threads``.
# The environment variable holds even where a TensorFlow op ran before ``configure`` could set it.
INTRA_OP_THREADS = 1
os.environ["TF_NUM_INTRAOP_THREADS"] = str(INTRA_OP_THREADS)
# The same for XLA's CPU client under JAX (read when JAX starts): one thread per op.
if "--xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                               f" intra_op_parallelism_threads={INTRA_OP_THREADS}").strip()

import numpy as np  # noqa: E402

from helpers.config.record import RunRecord, RunSpec, Status  # noqa: E402
from helpers.data import (
    feed as feeding,  # noqa: E402
    splits as data_splits,
)
from helpers.data.registry import content_hash  # noqa: E402
from helpers.data.splits import CV_KEYS, Splits  # noqa: E402
from helpers.run import (
    cache as run_cache,  # noqa: E402
    executor,
    metrics,
    models,
)

OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}
CROSSENTROPY = {"crossentropy", "categorical_crossentropy", "binary_crossentropy"}


def feed_args(x, y, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> dict:
    """Keyword arguments for fit/evaluate/predict: dense arrays go to Keras as they are; sparse
    ones (IMDB's multi-hot rows) are densified one batch at a time by data.feed."""
    if isinstance(x, np.ndarray):
        return {"x": x, "y": y, "batch_size": batch_size} if y is not None else {"x": x, "batch_size": batch_size}
    return {"x": feeding.feed(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)}


# Rows per step when measuring (validation during fit, then train, validation and test): more than
# training's batch, fewer steps, and the same numbers.
EVAL_BATCH = 1024


def validation_args(x, y) -> dict:
    """fit()'s validation keywords, measured in EVAL_BATCH rows a step like every evaluate after it:
    at the training batch size, a validation split that divides evenly has a fixed batch shape, so
    the first evaluate after fit traced Keras's test step again (0.3-0.5 s of a 3 s smoke run)."""
    val = feed_args(x, y, EVAL_BATCH)
    if "y" not in val:  # batches made by data.feed
        return {"validation_data": val["x"]}
    return {"validation_data": (val["x"], val["y"]), "validation_batch_size": val["batch_size"]}


def configure(threads: int | None = None) -> None:
    """Thread counts must be set before TensorFlow runs its first op; later calls are no-ops. JAX
    needs nothing here: its CPU client is single-threaded per op (XLA_FLAGS above) and
    deterministic."""
    if run_cache.keras_backend() != "tensorflow":
        return
    import tensorflow as tf
    # Each run builds a fresh model, which TensorFlow reports as "retracing": expected, not news.
    tf.get_logger().setLevel("ERROR")
    # Same parameters and seed, same metrics, build after build (and cache hits stay honest).
    tf.config.experimental.enable_op_determinism()
    n = threads or os.cpu_count() or 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(INTRA_OP_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, n))
    except RuntimeError:
        pass  # already initialised in this process (e.g. a second call from a notebook re-run)


def pinned() -> bool:
    """Whether TensorFlow runs with the pinned intra-op thread count; not when a TensorFlow op ran
    before this module was imported (then its results are not those the run key stands for)."""
    if run_cache.keras_backend() != "tensorflow" or "tensorflow" not in sys.modules:
        return True  # not loaded yet: configure pins it before its first op
    import tensorflow as tf
    n = tf.config.threading.get_intra_op_parallelism_threads()  # 0: TensorFlow's own, from the environment
    return n == INTRA_OP_THREADS or (n == 0 and os.environ.get("TF_NUM_INTRAOP_THREADS") == str(INTRA_OP_THREADS))


def _clean(x):
    """JSON has no NaN: a metric that could not be computed is null, not a made-up number."""
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


# Steps per compiled call when the configuration says "auto": on this project's models (issue 13's
# measurements, benchmarks/fit_speed.py) the per-step overhead is gone by 32; more gains nothing.
STEPS_PER_EXECUTION = 32
# On TensorFlow, XLA's compile (seconds per model) pays back only over many steps: about 2 ms saved
# per step of the default base run. "auto" compiles runs of at least this many training steps (the
# full profile's runs); shorter ones (smoke, quick, the tests) run as TensorFlow graphs. JAX
# always compiles: without jit it would run eagerly.
XLA_MIN_STEPS = 2000


def execution(train_cfg: dict, n_train: int | None = None, backend_name: str | None = None) -> dict:
    """How Keras is asked to run the training steps: ``jit_compile`` (XLA) and
    ``steps_per_execution`` (steps per call of the compiled function), "auto" resolved for the
    backend and the run's length; never more steps per call than an epoch has. No callback of ours
    needs per-batch granularity (early stopping and divergence act per epoch)."""
    jit, steps = train_cfg.get("jit_compile", "auto"), train_cfg.get("steps_per_execution", "auto")
    per_epoch = math.ceil(n_train / train_cfg["batch_size"]) if n_train else None
    if jit == "auto":
        jit = ((backend_name or run_cache.keras_backend()) != "tensorflow"
               or (per_epoch is not None and per_epoch * train_cfg["epochs"] >= XLA_MIN_STEPS))
    if steps == "auto":
        steps = min(STEPS_PER_EXECUTION, per_epoch or STEPS_PER_EXECUTION)
    return {"jit_compile": bool(jit), "steps_per_execution": max(1, int(steps))}


def compile_model(model_cfg: dict, train_cfg: dict, input_shape: tuple, n_classes: int,
                  how: dict | None = None, seed: int = 0):
    """The model of a configuration, compiled as every run trains it (helpers.search uses it too);
    ``how``: execution()'s settings (default: plain, one step per call); ``seed``: its layers'."""
    import keras

    binary = n_classes == 2
    model = models.build(model_cfg, input_shape, n_classes, seed)
    optimizer = getattr(keras.optimizers, OPTIMIZERS[train_cfg["optimizer"]])(
        learning_rate=train_cfg["learning_rate"])
    if train_cfg["loss"] in CROSSENTROPY:  # the cross-entropy that matches the output layer
        loss = "binary_crossentropy" if binary else "categorical_crossentropy"
    else:
        loss = "mean_squared_error"
    # An explicit metric: the string "accuracy" would mean exact match under an MSE loss.
    accuracy = (keras.metrics.BinaryAccuracy if binary else keras.metrics.CategoricalAccuracy)(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy], **(how or {}))
    return model


# Divergence: a loss that is no longer finite, or validation accuracy at chance level (at most the
# majority-class rate plus CHANCE_MARGIN) for CHANCE_EPOCHS epochs in a row while the training loss
# has stopped falling (less than LOSS_PROGRESS relative gain in the last epoch). A slow learner, at
# chance but with a falling loss, is left to train.
CHANCE_EPOCHS = 2
CHANCE_MARGIN = 0.02
LOSS_PROGRESS = 0.01


def chance_rate(y) -> float:
    """The accuracy of always guessing the most frequent class."""
    counts = np.bincount(np.asarray(y).astype(int).ravel())
    return float(counts.max() / counts.sum()) if counts.sum() else 0.0


def divergence_callback(chance: float):
    """A Keras callback that stops a diverging run; afterwards ``reason`` says why (None: it did not)."""
    import keras

    class Divergence(keras.callbacks.Callback):
        reason: str | None = None
        at_chance = 0
        last_loss: float | None = None

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            bad = [k for k in ("loss", "val_loss") if k in logs and not math.isfinite(float(logs[k]))]
            acc, loss, prev = logs.get("val_accuracy"), logs.get("loss"), self.last_loss
            self.last_loss = loss
            self.at_chance = self.at_chance + 1 if acc is not None and acc <= chance + CHANCE_MARGIN else 0
            stalled = loss is not None and prev is not None and loss >= (1 - LOSS_PROGRESS) * prev
            if bad:
                word = "NaN" if math.isnan(float(logs[bad[0]])) else "infinite"
                self.reason = f"{'loss' if bad[0] == 'loss' else 'validation loss'} became {word} at epoch {epoch + 1}"
            elif self.at_chance >= CHANCE_EPOCHS and stalled:
                self.reason = (f"validation accuracy stayed at chance level ({acc:.3f}; majority class {chance:.3f}) "
                               f"for {self.at_chance} epochs and the training loss stopped falling "
                               f"({prev:.3f} → {loss:.3f}) at epoch {epoch + 1}")
            if self.reason:
                self.model.stop_training = True
    return Divergence()


def _finite(proba: np.ndarray) -> np.ndarray:
    """A diverged model predicts NaN: such rows become a uniform guess, so its test metrics are
    those of a constant prediction rather than an error."""
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        proba = proba.copy()
        proba[bad] = 1.0 / max(proba.shape[1], 2)
    return proba


def run(spec: RunSpec, splits: Splits) -> RunRecord:
    """Train one configuration and measure it on train, validation and (once, at the end) test."""
    import keras
    configure()  # determinism and the pinned thread count hold also when run() is called directly

    model_cfg, train_cfg = spec["config"]["model"], spec["config"]["training"]
    n_classes = len(splits.class_names)
    binary = n_classes == 2

    def target(y):
        if y is None:  # a cross-validation fold has no test split; a refit has no validation split
            return None
        return y.astype("float32").reshape(-1, 1) if binary else keras.utils.to_categorical(y, n_classes)
    y_train, y_val, y_test = target(splits.y_train), target(splits.y_val), target(splits.y_test)
    batch = train_cfg["batch_size"]
    stop = train_cfg.get("early_stopping")
    val = validation_args(splits.x_val, y_val) if y_val is not None else {}

    def fit_model(how: dict):
        # Nothing of an earlier run's (or attempt's) graph reaches this one. Without a full garbage
        # collection: with TensorFlow loaded it takes a third of a second, a tenth of a smoke run;
        # Python's own collector frees the old models.
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(spec["seed"])
        model = compile_model(model_cfg, train_cfg, splits.x_train.shape[1:], n_classes, how, spec["seed"])
        if how["jit_compile"] and not model.jit_compile and run_cache.keras_backend() == "tensorflow":
            # Keras declines XLA on TensorFlow whenever deterministic ops are on, since a few XLA
            # kernels (GPU scatters) have no deterministic form; such a kernel raises and the run
            # falls back below. These models compile on the CPU and stay bit-identical from process
            # to process (tests/test_execution.py), at twice the speed (benchmarks/fit_speed.py).
            model._jit_compile = True
        ran = {**how, "jit_compile": bool(model.jit_compile)}  # what Keras does, not what it was asked
        callbacks = []
        if stop:
            # Monitors validation data only; the test split never influences training.
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor=stop["monitor"], patience=stop["patience"], restore_best_weights=True))
        diverge = divergence_callback(chance_rate(splits.y_val if splits.y_val is not None else splits.y_train))
        callbacks.append(diverge)
        start = time.perf_counter()
        fit = model.fit(**feed_args(splits.x_train, y_train, batch, shuffle=True, seed=spec["seed"]),
                        **val, epochs=train_cfg["epochs"], callbacks=callbacks, verbose=0)
        return model, fit, diverge, time.perf_counter() - start, ran

    how = execution(train_cfg, len(splits.y_train))
    fallback = None
    try:
        with warnings.catch_warnings():  # Keras's own "Proceeding with jit_compile=False": said below
            warnings.filterwarnings("ignore", message="Model doesn't support `jit_compile=True`")
            model, fit, diverge, seconds, ran = fit_model(how)
    except Exception as e:  # noqa: BLE001 - XLA cannot compile every layer: steps without it then, never a failed run
        if not how["jit_compile"]:
            raise
        fallback = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"[:300]
        how = {**how, "jit_compile": False}
        model, fit, diverge, seconds, ran = fit_model(how)
    if how["jit_compile"] and not ran["jit_compile"]:
        fallback = "Keras declined XLA for this model"
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}

    # The model measured below is the one that was trained (restored best weights, if any).
    ev = lambda x, y: model.evaluate(**feed_args(x, y, EVAL_BATCH), verbose=0)  # noqa: E731
    train_loss, train_acc = ev(splits.x_train, y_train)
    m = {"train_accuracy": float(train_acc), "train_loss": float(train_loss), "params": int(model.count_params()),
         "epochs_run": len(history.get("loss", [])), "seconds": seconds}
    if y_val is not None:  # a refit has none: no validation score, gap or best epoch
        val_loss, val_acc = ev(splits.x_val, y_val)
        m.update(val_accuracy=float(val_acc), val_loss=float(val_loss), gap=float(train_acc - val_acc),
                 best_epoch=metrics.best_epoch(history, stop["monitor"] if stop else "val_loss"))
    extra = {}
    if y_test is not None:  # a cross-validation fold never predicts, nor evaluates, the test split
        test, extra = _test_metrics(model, splits, y_test, binary)
        m.update(test)
    # A diverged run is a result (cached, shown, never "best"), not a failure.
    return _clean({**spec, "status": Status.DIVERGED if diverge.reason else Status.OK, "error": None,
                   "reason": diverge.reason, "metrics": m, "execution": {**ran, "xla_fallback": fallback},
                   "class_names": list(splits.class_names), "history": history, **extra,
                   "data_info": splits.info, "fingerprint": splits.fingerprint})


def _test_metrics(model, splits: Splits, y_test, binary: bool) -> tuple[dict, dict]:
    """Test metrics, and the record's confusion matrix (and binary curves), from one prediction."""
    test_loss, _ = model.evaluate(**feed_args(splits.x_test, y_test, EVAL_BATCH), verbose=0)
    proba = _finite(model.predict(**feed_args(splits.x_test, None, EVAL_BATCH), verbose=0))
    if binary:
        p = proba.reshape(-1)
        proba = np.column_stack([1 - p, p])
    cls = metrics.classification(splits.y_test, proba)
    m = {"test_accuracy": float((proba.argmax(axis=1) == splits.y_test).mean()),
         "test_loss": float(test_loss), "f1_macro": cls["f1_macro"]}
    extra = {"confusion": cls["confusion"]}
    if binary:
        b = metrics.binary(splits.y_test, p)
        m.update(roc_auc=b["roc_auc"], average_precision=b["average_precision"], brier=b["brier"])
        extra["curves"] = b["curves"]
    else:
        m["auc_ovr"] = cls["auc_ovr"]
    return m, extra


def emit(events_path, **event) -> None:
    if events_path:
        with open(events_path, "a") as f:
            f.write(json.dumps(_clean(event)) + "\n")


def failed(spec: RunSpec, error: BaseException, tb: str = "") -> RunRecord:
    """A run that raised: shown in its study with the first line of the error, never cached."""
    first = (str(error).strip().splitlines() or [""])[0]
    return {**spec, "status": Status.FAILED, "error": f"{type(error).__name__}: {first}"[:500],
            "traceback": tb or traceback.format_exc(limit=8), "cached": False}


def task(spec: RunSpec) -> RunRecord:
    """Train one run where this is called (a Dask worker, or this process) and return its record;
    a run that raises becomes a failed record, so Dask retries only runs whose worker died."""
    try:
        d = spec["config"]["data"]
        # A cross-validation run loads the report's split, then re-splits it (data.splits.split).
        options = {k: v for k, v in d.items() if k not in ("dataset", *CV_KEYS)}
        # (The raw files are decoded once per process: data.registry.read_raw.)
        return run(spec, data_splits.split(data_splits.load(d["dataset"], **options), d))
    except Exception as e:  # noqa: BLE001 - any failure is shown in the report, not raised
        return failed(spec, e)


def warm(log: str | None = None) -> str:
    """Load the training stack (TensorFlow or JAX: seconds) before a worker's first task needs it;
    returns the device class training sees there (part of every run key). ``log``: a file this
    process's output goes to from now on (a local worker's: TensorFlow's C++ logging writes to the
    descriptors themselves, over the build's progress lines)."""
    if log:
        with open(log, "ab") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
    configure()
    import keras  # noqa: F401
    return run_cache.device()["class"]


IDENTITY = ("study", "kind", "label", "axis", "baseline", "reference")  # how a run is shown; not what it computes
# A build's id, set for its kernels: a run it trained and stored (helpers.build.cluster) before the
# kernel asked is still "trained" for the study it was trained for, not "reused".
ENV_BUILD = "STUDYBOOK_BUILD"


def keep(cache: run_cache.RunCache, key: str, record: RunRecord, inputs: dict, *, replace: bool = False,
          trained_for: str | None = None) -> bool:
    """Cache a finished run (a result: failures never are) without how it is shown; True when this
    call stored it (the build and a kernel may both be handed the same task's result)."""
    if record["status"] not in (Status.OK, Status.DIVERGED):
        return False
    return cache.put(key, {k: v for k, v in record.items() if k not in IDENTITY + ("key", "cached")}, inputs,
                     replace=replace, origin={"build": os.environ.get(ENV_BUILD), "study": trained_for})


def _trained_here(origin: dict, study: str) -> bool:
    build = os.environ.get(ENV_BUILD)
    return bool(build) and origin.get("build") == build and origin.get("study") == study


def run_all(specs: list[RunSpec], *, events_path: str | None = None, threads: int | None = None,
            cache_dir: str | None = None, force: bool = False) -> list[RunRecord]:
    """Train every spec not already in the cache (helpers.run.executor: on the build's cluster, or
    here); a run that raises becomes a failed record (never cached) and the others go on. Each
    finished run is cached at once, so a crash loses only the runs in progress."""
    store = run_cache.RunCache(cache_dir) if cache_dir else None
    if store is not None and not pinned() and executor.client() is None:
        warnings.warn(f"TensorFlow was started before helpers.run.training.configure, with other than "
                      f"{INTRA_OP_THREADS} intra-op thread(s): these runs are trained, not cached or "
                      "taken from the cache (restart the kernel to use the cache)", stacklevel=2)
        store = None
    records: list[RunRecord | None] = [None] * len(specs)
    keys: list[str | None] = [None] * len(specs)
    inputs: list[dict | None] = [None] * len(specs)

    def done(i: int, record: RunRecord, stored: bool = False) -> None:
        records[i] = record
        m = record.get("metrics", {})
        emit(events_path, event="done", study=specs[i]["study"], label=specs[i]["label"], index=i + 1,
             total=len(specs), status=record["status"], error=record.get("error"), reason=record.get("reason"),
             cached=record.get("cached", False), stored=stored,
             val_accuracy=m.get("val_accuracy"), test_accuracy=m.get("test_accuracy"), seconds=m.get("seconds"))

    def started(i: int) -> None:
        emit(events_path, event="start", study=specs[i]["study"], label=specs[i]["label"], index=i + 1,
             total=len(specs))

    def keyed(i: int) -> bool:
        """The run's key (its cache entry's, its task's); False when it cannot be made, the run failed."""
        try:
            if keys[i] is None:
                inputs[i] = run_cache.key_inputs(specs[i], content_hash(specs[i]["config"]["data"]["dataset"]))
                keys[i] = run_cache.run_key(specs[i], inputs[i]["data_files"])
            return True
        except Exception as e:  # noqa: BLE001 - any failure is shown in the report, not raised
            started(i)
            done(i, {**failed(specs[i], e), "key": keys[i]})
            return False

    todo = []
    for i, spec in enumerate(specs):
        if store is None or force:
            todo.append(i)
        elif keyed(i):
            hit = store.get(keys[i])
            if hit is None:
                todo.append(i)
            else:
                started(i)
                done(i, {**hit, **{k: spec[k] for k in IDENTITY}, "key": keys[i],
                         "cached": not _trained_here(store.origin(keys[i]), spec["study"])})
    # Neither a cluster nor TensorFlow for runs all cached (a re-rendered study's kernel): seconds each.
    if todo and executor.client() is None:
        configure(threads)
    if todo and (store is not None or executor.client() is not None):  # a task's name is its run key
        todo = [i for i in todo if keyed(i)]
    for j, record in executor.map_runs(task, [specs[i] for i in todo], [keys[i] for i in todo],
                                       on_submit=lambda j: started(todo[j])):
        i = todo[j]
        if isinstance(record, BaseException):
            record = failed(specs[i], record, f"{type(record).__name__}: {record}")
        # The task may have been another study's, of the same key: the record is this spec's, and
        # a run trained for another study is reused here.
        owner = record.get("study")
        record = {**record, **specs[i], "key": keys[i], "cached": owner != specs[i]["study"]}
        stored = store is not None and keep(store, keys[i], record, inputs[i], replace=force, trained_for=owner)
        done(i, record, stored)
    return records


def save(records: list[RunRecord], path: str | Path) -> None:
    """Write a study's records atomically: a reader never sees half a file."""
    run_cache.write_atomic(path, json.dumps(_clean(records), indent=1))

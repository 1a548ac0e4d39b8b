"""Hyperparameter search with Keras Tuner (R4): a search study's space (helpers.config.space)
becomes tuner hyperparameters; every trial is a configuration built, compiled and fed exactly as
``training.run`` does it, and scored on validation data only. The best trial is then retrained
through ``training.run_all`` (so it is cached like any run) and measured once on the test set.

The tuner's state lives in the run cache under ``search/<key>``. The key hashes the space, the
algorithm and its schedule, the base configuration, the data, the seed and the code, but not
``max_trials``: a larger budget continues a finished search, and an interrupted search resumes
(``overwrite=False``), re-running only the trial it was in.

With ``executions_per_trial`` above 1 the tuner trains each trial that many times and averages the
scores; each execution then starts from its own seed (``execution_seed``), so that the average is
over different initialisations and batch orders rather than one run repeated.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from helpers.config import space as searchspace
from helpers.config.specs import MODEL_KEYS, ModelSpec, TrainingSpec
from helpers.data import splits as data_splits
from helpers.data.registry import content_hash
from helpers.run import cache, executor, training

# What a trial's result depends on besides the run-key inputs; max_trials and top only say how many.
STATE_KEYS = ("algorithm", "objective", "space", "max_epochs", "factor", "hyperband_iterations",
              "executions_per_trial")
PROJECT = "tuner"


@functools.lru_cache(maxsize=1)
def _code_hash() -> str:
    """The space's reading on top of the run key's sources (which hold this module)."""
    return cache.code_hash(cache.HELPERS, ("config/space",))


def state_key(spec: dict, data_hash: str) -> str:
    """The folder name of a search's tuner state (see the module docstring)."""
    inputs = cache.key_inputs(spec, data_hash)
    inputs["search"] = {k: spec["search"][k] for k in STATE_KEYS}
    inputs["search_code"] = _code_hash()
    inputs["keras_tuner"] = metadata.version("keras-tuner")
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------- space -> configuration
def _layer_counts(space: dict, base_layers: int) -> list[int]:
    p = space.get("layers")
    if p is None:
        return [base_layers]
    return list(p["values"]) if "values" in p else list(range(p["min"], p["max"] + 1, p["step"]))


def declare(hp, space: dict, base_layers: int) -> dict:
    """Register the space's hyperparameters on ``hp``; a layer's units only exist (are "active")
    in trials with enough layers."""
    values = {}
    for key, p in space.items():
        if key != "units":
            values[key] = _one(hp, key, p)
    if "units" in space:
        counts = _layer_counts(space, base_layers)
        for i in range(max(counts)):
            deeper = [n for n in counts if n > i]
            scope = (hp.conditional_scope("layers", deeper) if "layers" in space and len(deeper) < len(counts)
                     else contextlib.nullcontext())
            with scope:
                values[f"units_{i}"] = _one(hp, f"units_{i}", space["units"])
    return values


def _one(hp, name: str, p: dict):
    if "values" in p:
        return hp.Choice(name, p["values"])
    kind = hp.Int if ("units" if name.startswith("units_") else name) in searchspace.INTS else hp.Float
    return kind(name, p["min"], p["max"], step=p.get("step"), sampling=p.get("sampling", "linear"))


def configure(values: dict, space: dict, model: dict, train: dict) -> tuple[dict, dict]:
    """A trial's hyperparameter values over the base configuration: a full, validated
    (model, training) pair; ``layers``/``units_<i>`` become ``hidden``."""
    model, train = dict(model), dict(train)
    if "layers" in space or "units" in space:
        n = int(values.get("layers", len(model["hidden"])))
        base = model["hidden"]
        if "units" not in space and not base and n:
            raise ValueError("searching layers without units needs hidden layers in the base model")
        model["hidden"] = [int(values[f"units_{i}"]) if "units" in space else base[min(i, len(base) - 1)]
                           for i in range(n)]
    for key, v in values.items():
        if key in ("layers",) or key.startswith("units_") or key.startswith("tuner/"):
            continue
        # A float stepped range gives 0.30000000000000004: store (and key, and show) 0.3.
        (model if key in MODEL_KEYS else train)[key] = float(f"{v:.12g}") if isinstance(v, float) else v
    return ModelSpec(**model).model_dump(), TrainingSpec(**train).model_dump()


def shown(values: dict, space: dict, model: dict) -> dict:
    """The searched values as a reader wants them: ``hidden`` instead of layers and units_<i>."""
    out = {k: v for k, v in values.items() if k in space and k not in ("layers", "units")}
    if "layers" in space or "units" in space:
        out = {"hidden": model["hidden"], **out}
    return out


# ---------------------------------------------------------------- the tuner
def execution_seed(seed: int, execution: int) -> int:
    """The seed of a trial's ``execution``-th training (from 0): the first is the study's seed, as
    a run's; each later one is derived from the seed and its number (a hash, so that it does not
    coincide with the seeds of a study's repeats, which are often consecutive)."""
    if execution == 0:
        return seed
    digest = hashlib.sha256(f"{seed}/execution {execution}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


def _hypermodel(spec: dict, input_shape: tuple, n_classes: int, chance: float):
    import keras
    import keras_tuner as kt

    space, base = spec["search"]["space"], spec["config"]
    base_layers = len(base["model"]["hidden"])

    class HyperModel(kt.HyperModel):
        seed = spec["seed"]  # the current execution's (set by the tuner before each build)

        def build(self, hp):
            model_cfg, train_cfg = configure(declare(hp, space, base_layers), space, base["model"], base["training"])
            keras.utils.set_random_seed(self.seed)  # every trial's first execution starts as a run does
            return training.compile_model(model_cfg, train_cfg, input_shape, n_classes, seed=self.seed)

        def fit(self, hp, model, x, y, validation_data, callbacks=(), **kwargs):
            _, train_cfg = configure(hp.values, space, base["model"], base["training"])
            extra = [training.divergence_callback(chance)]
            stop = train_cfg.get("early_stopping")
            if stop:  # validation data only, as in every run
                extra.append(keras.callbacks.EarlyStopping(monitor=stop["monitor"], patience=stop["patience"]))
            return model.fit(**training.feed_args(x, y, train_cfg["batch_size"], shuffle=True, seed=self.seed),
                             **training.validation_args(*validation_data),
                             callbacks=[*callbacks, *extra], **{**kwargs, "verbose": 0})
    return HyperModel()


def _tuner(spec: dict, hypermodel, directory: Path, overwrite: bool, on_trial=None):
    import keras_tuner as kt

    s = spec["search"]
    cls = {"hyperband": kt.Hyperband, "random": kt.RandomSearch, "bayesian": kt.BayesianOptimization}[s["algorithm"]]
    times_path = directory / PROJECT / "times.json"
    started: dict[str, float] = {}

    class Timed(cls):
        """Records each trial's wall time beside the tuner's own files (Keras Tuner keeps none),
        and, given a Dask client, trains each trial as a task (``run_trial``)."""
        pool = None
        lock = threading.Lock()  # trials of a concurrent search end on several threads

        def on_trial_begin(self, trial):
            started[trial.trial_id] = time.perf_counter()
            if on_trial:
                on_trial(trial)
            super().on_trial_begin(trial)

        def run_trial(self, trial, *args, **kwargs):
            if self.pool is None:
                self._execution = 0
                return super().run_trial(trial, *args, **kwargs)
            return _remote_trial(self, trial, spec)

        def _build_and_fit_model(self, trial, *args, **kwargs):
            # Called once per execution of a trial (Keras Tuner's run_trial loop), before the build.
            self.hypermodel.seed = execution_seed(spec["seed"], self._execution)
            self._execution += 1
            return super()._build_and_fit_model(trial, *args, **kwargs)

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            pass  # only for TensorBoard callbacks, which trials never get; and tensorboard is not installed

        def on_trial_end(self, trial):
            with self.lock:
                times = json.loads(times_path.read_text()) if times_path.exists() else {}
                times[trial.trial_id] = time.perf_counter() - started.pop(trial.trial_id)
                cache.write_atomic(times_path, json.dumps(times))
                super().on_trial_end(trial)

    budget = ({"max_epochs": s["max_epochs"], "factor": s["factor"], "hyperband_iterations": s["hyperband_iterations"]}
              if s["algorithm"] == "hyperband" else {"max_trials": s["max_trials"]})
    objective = kt.Objective(s["objective"], "max" if s["objective"].endswith("accuracy") else "min")
    with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..." is not report text
        tuner = Timed(hypermodel=hypermodel, objective=objective, seed=spec["seed"], directory=str(directory),
                      project_name=PROJECT, overwrite=overwrite, executions_per_trial=s["executions_per_trial"],
                      **budget)
    if s["algorithm"] == "hyperband" and s.get("max_trials"):
        tuner.oracle.max_trials = s["max_trials"]  # a cap on Hyperband's own schedule
    return tuner, times_path


def tune(spec: dict, train: tuple, val: tuple, class_names: list[str], directory: Path, *,
         force: bool = False, on_trial=None) -> dict:
    """Run (or resume) the search on the training and validation arrays only: the test split is
    not an argument, so it cannot reach a trial. Returns the trials and the budget spent."""
    directory.mkdir(parents=True, exist_ok=True)
    before = set() if force else _finished(directory)  # force: the tuner starts over (overwrite)
    hypermodel = _hypermodel(spec, train[0].shape[1:], len(class_names), training.chance_rate(val[1]))
    tuner, times_path = _tuner(spec, hypermodel, directory, overwrite=force, on_trial=on_trial)
    start = time.perf_counter()
    fit = dict(validation_data=(val[0], _target(val[1], len(class_names))), epochs=spec["config"]["training"]["epochs"])
    pool = executor.client()
    if pool is not None:  # trials train as the cluster's tasks, one at a time unless concurrency says more
        tuner.pool, tuner.oracle.verbose = pool, 0
        _search_at_once(tuner, spec["search"]["concurrency"], train[0], _target(train[1], len(class_names)), **fit)
    else:
        tuner.search(train[0], _target(train[1], len(class_names)), verbose=0, **fit)
    seconds = time.perf_counter() - start
    times = json.loads(times_path.read_text()) if times_path.exists() else {}
    space, base = spec["search"]["space"], spec["config"]
    rows = []
    for t in sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id)):
        values = dict(t.hyperparameters.values)
        model_cfg, train_cfg = configure(values, space, base["model"], base["training"])
        rows.append({"id": t.trial_id, "status": str(t.status), "score": None if t.score is None else float(t.score),
                     "values": shown(values, space, model_cfg),
                     "epochs": values.get("tuner/epochs", train_cfg["epochs"]),
                     "continues": values.get("tuner/trial_id"), "seconds": times.get(t.trial_id),
                     "model": model_cfg, "training": train_cfg})
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].score is None:
        raise RuntimeError(f"the search finished no trial ({len(rows)} started); see the kernel log")
    seeds = [execution_seed(spec["seed"], n) for n in range(spec["search"]["executions_per_trial"])]
    return {**{k: v for k, v in spec["search"].items()}, "trials": rows, "best": best[0].trial_id,
            "execution_seeds": seeds,
            "seconds": seconds, "new_trials": len(rows) - len(before & {r["id"] for r in rows}),
            "directory": directory.name}


def _search_at_once(tuner, concurrency: int, *fit_args, **fit_kwargs) -> None:
    """Keras Tuner's search loop (BaseTuner.search) on ``concurrency`` threads, each asking the
    oracle for trials under a tuner id of its own (the oracle is synchronized for this: Keras
    Tuner's distributed mode does the same over gRPC). Each trial trains as a Dask task
    (``trial_task``), so the oracle stays here and the trials run on the cluster's workers; with
    one thread the trials come in the order BaseTuner.search gives them."""
    from concurrent.futures import ThreadPoolExecutor

    from keras_tuner.src.engine import trial as trial_module

    def loop(tuner_id: str) -> None:
        while True:
            trial = tuner.oracle.create_trial(tuner_id)
            if trial.status == trial_module.TrialStatus.STOPPED:
                return
            if trial.status == trial_module.TrialStatus.IDLE:  # Hyperband: the round's other trials first
                time.sleep(0.2)
                continue
            tuner.on_trial_begin(trial)
            tuner._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
            tuner.on_trial_end(trial)
    tuner.on_search_begin()
    with ThreadPoolExecutor(concurrency) as threads:
        for done in [threads.submit(loop, f"tuner{i}") for i in range(concurrency)]:
            done.result()
    tuner.on_search_end()


def _remote_trial(tuner, trial, spec: dict) -> list:
    """Train ``trial`` as a task and keep what Keras Tuner keeps of it here: its best epoch's
    weights (a Hyperband trial that continues it loads them) and its build config. Returns its
    histories, one per execution, as run_trial would."""
    import keras

    past = trial.hyperparameters.values.get("tuner/trial_id")
    files = {}
    if past is not None:  # the trial this one continues: its weights travel with the task
        for path in (tuner._get_checkpoint_fname(past), tuner._get_build_config_fname(past)):
            if os.path.exists(path):
                files[os.path.basename(path)] = Path(path).read_bytes()
    # A key of its own: two searches (or a resumed one) may both have a trial "3".
    future = tuner.pool.submit(trial_task, spec, trial.get_state(), files,
                               key=f"search-trial-{trial.trial_id}-{os.urandom(6).hex()}")
    out = future.result()
    future.release()
    for name, data in out["files"].items():
        target = Path(tuner.get_trial_dir(trial.trial_id)) / name
        target.write_bytes(data)
    histories = []
    for h in out["histories"]:
        history = keras.callbacks.History()
        history.history, history.epoch = h, list(range(len(next(iter(h.values()), []))))
        histories.append(history)
    return histories


def trial_task(spec: dict, trial_state: dict, files: dict[str, bytes]) -> dict:
    """One trial of a search, trained where the task runs: the tuner's own run_trial (executions,
    Hyperband's epochs and the weights of the trial it continues, the best-epoch checkpoint) in a
    scratch folder. Returns the histories and the files Keras Tuner wrote for the trial."""
    from keras_tuner.src.engine import trial as trial_module

    d = spec["config"]["data"]
    splits = data_splits.load(d["dataset"], **{k: v for k, v in d.items() if k != "dataset"})
    n_classes = len(splits.class_names)
    trial = trial_module.Trial.from_state(trial_state)
    with tempfile.TemporaryDirectory() as scratch:
        hypermodel = _hypermodel(spec, splits.x_train.shape[1:], n_classes, training.chance_rate(splits.y_val))
        tuner, _ = _tuner(spec, hypermodel, Path(scratch), overwrite=True)
        past = trial.hyperparameters.values.get("tuner/trial_id")
        if past is not None:
            for name, data in files.items():
                (Path(tuner.get_trial_dir(past)) / name).write_bytes(data)
        histories = tuner.run_trial(trial, splits.x_train, _target(splits.y_train, n_classes),
                                    validation_data=(splits.x_val, _target(splits.y_val, n_classes)),
                                    epochs=spec["config"]["training"]["epochs"])
        folder = Path(tuner.get_trial_dir(trial.trial_id))
        kept = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return {"histories": [{k: [float(v) for v in vs] for k, vs in h.history.items()} for h in histories],
            "files": kept}


def _target(y, n_classes: int):
    """Labels as training.run feeds them: one sigmoid target, or one-hot over the softmax."""
    import keras
    return y.astype("float32").reshape(-1, 1) if n_classes == 2 else keras.utils.to_categorical(y, n_classes)


def _finished(directory: Path) -> set[str]:
    """Trials already complete on disk (before this search call)."""
    out = set()
    for path in (directory / PROJECT).glob("trial_*/trial.json"):
        try:
            t = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if t.get("status") == "COMPLETED":
            out.add(t["trial_id"])
    return out


def train(runs: list[dict], *, events_path=None, threads=None, cache_dir=None, force: bool = False) -> list[dict]:
    """A search study's records: tune on the first run's seed, then retrain the best trial (once per
    seed of the study's runs) through training.run_all; each record carries the search summary."""
    training.configure(threads)
    spec = runs[0]
    d = spec["config"]["data"]
    splits = data_splits.load(d["dataset"], **{k: v for k, v in d.items() if k != "dataset"})
    progress = lambda t: training.emit(events_path, event="start", study=spec["study"],  # noqa: E731
                                        label=f"search trial {int(t.trial_id)}", index=1, total=len(runs))
    with contextlib.ExitStack() as stack:  # no cache: a throwaway tuner folder, so everything trains
        root = Path(cache_dir) if cache_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        directory = root / "search" / state_key(spec, content_hash(d["dataset"]))[:24]
        summary = tune(spec, (splits.x_train, splits.y_train), (splits.x_val, splits.y_val),
                       list(splits.class_names), directory, force=force, on_trial=progress)
    best = next(t for t in summary["trials"] if t["id"] == summary["best"])
    train_cfg = dict(best["training"], epochs=best["epochs"])  # Hyperband: the epochs the trial had
    label = ", ".join(f"{k} {searchspace.shown_value(v)}" for k, v in best["values"].items())
    specs = [{**{k: v for k, v in r.items() if k != "search"}, "label": label, "axis": {}, "baseline": True,
              "config": {"model": best["model"], "training": train_cfg, "data": r["config"]["data"]}} for r in runs]
    records = training.run_all(specs, events_path=events_path, threads=threads, cache_dir=cache_dir, force=force)
    for r in records:
        r["search"] = summary
    return records

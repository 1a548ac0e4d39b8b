"""Splits: a dataset's train/validation/test arrays for one configuration, drawn from the
training files only (the test files are never used for validation), and the cross-validation
folds of train+validation (the test split never enters one)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import scipy.sparse as sp

from helpers.data import readers
from helpers.data.registry import DatasetSpec, dataset_spec, locate, read_raw, stat_key

VALIDATION_METHODS = ("stratified", "head")
CV_KEYS = ("fold", "folds", "refit")  # data keys of a cross-validation run, never passed to load
# The libraries that draw (and stack) the splits and folds: another version may draw other samples
# from the same seed, so their versions are part of a split's fingerprint and of every run key.
SPLIT_LIBRARIES = ("numpy", "scipy", "scikit-learn")


def split_versions() -> dict[str, str]:
    """The installed versions of SPLIT_LIBRARIES (each is a dependency: a missing one is an error)."""
    return {dist: metadata.version(dist) for dist in SPLIT_LIBRARIES}


@dataclass
class Splits:
    x_train: np.ndarray | sp.csr_matrix
    y_train: np.ndarray
    x_val: np.ndarray | sp.csr_matrix
    y_val: np.ndarray
    x_test: np.ndarray | sp.csr_matrix
    y_test: np.ndarray
    class_names: list[str]
    fingerprint: str
    info: dict
    task: str = ""  # "binary" (two classes) or "multiclass"; derived when not given

    def __post_init__(self):
        if not self.task:
            self.task = "binary" if len(self.class_names) == 2 else "multiclass"


def _check_per_class(part: str, y: np.ndarray, n_classes: int) -> None:
    counts = np.bincount(y, minlength=n_classes)
    if counts.min() < 2:
        raise ValueError(f"{part} set has only {counts.min()} sample(s) of class "
                         f"{int(counts.argmin())}; need at least 2 per class — use more samples")


def _subsample(y: np.ndarray, n: int | None, what: str, seed: int, n_classes: int) -> np.ndarray:
    """Indices of a stratified subsample of size n (None = all), in a seed-determined order."""
    total = len(y)
    if n is None or n == total:
        return np.arange(total)
    if n < 1 or n > total:
        raise ValueError(f"{what}={n} is out of range: 1..{total} available")
    if n < 2 * n_classes:
        raise ValueError(f"{what}={n} is too small to stratify: need at least "
                         f"{2 * n_classes} (2 per class for {n_classes} classes)")
    from sklearn.model_selection import train_test_split  # imported late: slow, and only loads need it
    idx, _ = train_test_split(np.arange(total), train_size=n, stratify=y, random_state=seed)
    return idx


def _options(spec: DatasetSpec, num_words) -> dict:
    if "num_words" not in spec.options:
        return {}
    if num_words is not None and (isinstance(num_words, bool) or not isinstance(num_words, (int, np.integer))
                                  or num_words < readers.INDEX_FROM + 1):
        raise ValueError(f"num_words must be an integer >= {readers.INDEX_FROM + 1} (or None), got {num_words!r}")
    return {"num_words": None if num_words is None else int(num_words)}


def load(name: str, *, train_samples: int | None, test_samples: int | None, validation_split: float,
         seed: int, validation_method: str = "stratified", num_words: int | None = 10000) -> Splits:
    """Train/val drawn from the training files only; the test files are never used for validation.

    validation_method "stratified": a seeded stratified share of the (subsampled) training set;
    "head": its first round(validation_split * n) samples in file order (IMDB: Keras's order).
    num_words only applies to datasets with a vocabulary (IMDB)."""
    spec = dataset_spec(name)
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be strictly between 0 and 1, got {validation_split}")
    if validation_method not in VALIDATION_METHODS:
        raise ValueError(f"validation_method must be one of {', '.join(VALIDATION_METHODS)}, "
                         f"got {validation_method!r}")
    options = _options(spec, num_words)
    folder = locate(name)
    raw, content = read_raw(name, folder, stat_key(folder, spec.files + spec.optional_files),
                             tuple(sorted(options.items())))
    class_names = list(raw.class_names or spec.class_names)
    k = len(class_names)

    pool = _subsample(raw.y_train, train_samples, "train_samples", seed, k)
    if validation_method == "head":
        pool = np.sort(pool)  # file order, so "head" means the first samples
        n_val = int(round(validation_split * len(pool)))
    else:
        n_val = math.ceil(validation_split * len(pool))  # sklearn rounds the test share up
    if min(n_val, len(pool) - n_val) < 2 * k:
        raise ValueError(
            f"train_samples={len(pool)} with validation_split={validation_split} gives "
            f"{len(pool) - n_val} train / {n_val} val; need at least {2 * k} in each (2 per class)")
    if validation_method == "head":
        va, tr = pool[:n_val], pool[n_val:]
    else:
        from sklearn.model_selection import train_test_split
        tr, va = train_test_split(pool, test_size=n_val, stratify=raw.y_train[pool], random_state=seed)
    te = _subsample(raw.y_test, test_samples, "test_samples", seed, k)
    for part, y in (("train", raw.y_train[tr]), ("validation", raw.y_train[va]), ("test", raw.y_test[te])):
        _check_per_class(part, y, k)

    opts = {key: raw.info.get(key, value) for key, value in options.items()}  # num_words=None -> the vocabulary size
    params = {"dataset": name, "train_samples": train_samples, "test_samples": test_samples,
              "validation_split": validation_split, "seed": seed, "validation_method": validation_method,
              "num_words": opts.get("num_words"), "content_sha256": content, "drawn_by": split_versions()}
    if spec.bundled_with:
        params[f"{spec.bundled_with}_version"] = metadata.version(spec.bundled_with)
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    shape = list(raw.x_train.shape[1:])
    info = {"dataset": name, "source": str(folder), "train": len(tr), "val": len(va),
            "test": len(te), "shape": shape, "classes": k,
            "preprocessing": spec.preprocessing.format(**opts),
            "input_shape": shape, "storage": spec.storage}
    if "example" in raw.info:
        info["example"] = raw.info["example"]
    return Splits(
        x_train=spec.preprocess(raw.x_train[tr]), y_train=raw.y_train[tr],
        x_val=spec.preprocess(raw.x_train[va]), y_val=raw.y_train[va],
        x_test=spec.preprocess(raw.x_test[te]), y_test=raw.y_test[te],
        class_names=class_names, fingerprint=fingerprint, info=info)



# --- cross-validation ---------------------------------------------------------------------------


def fold_indices(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) positions into ``y`` for each fold: stratified, shuffled by ``seed``;
    the validation parts partition ``range(len(y))``."""
    from sklearn.model_selection import StratifiedKFold
    counts = np.bincount(np.asarray(y, dtype=int))
    smallest = int(counts[counts > 0].min()) if len(counts) else 0
    if smallest < folds:
        raise ValueError(f"{folds} folds need at least {folds} samples of every class in train+validation; "
                         f"class {int(np.flatnonzero(counts == smallest)[0])} has {smallest}: use fewer folds "
                         "or more training samples")
    kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(kfold.split(np.zeros(len(y)), y))


def split(splits, data: dict):
    """The split a run trains on: ``splits`` itself, unless ``data`` names a fold or a refit.

    A fold trains on k−1 folds of train+validation and validates on the k-th; it has no test
    split at all (x_test and y_test are None). A refit trains on all of train+validation, has no
    validation split, and keeps the test split for its one final evaluation."""
    if not any(k in data for k in CV_KEYS):
        return splits
    pool_x = (sp.vstack([splits.x_train, splits.x_val], format="csr") if sp.issparse(splits.x_train)
              else np.concatenate([splits.x_train, splits.x_val]))
    pool_y = np.concatenate([splits.y_train, splits.y_val])
    if data.get("refit"):
        parts = {"x_train": pool_x, "y_train": pool_y, "x_val": None, "y_val": None,
                 "x_test": splits.x_test, "y_test": splits.y_test}
        cv = {"refit": True}
    else:
        fold, folds = int(data["fold"]), int(data["folds"])
        if not 1 <= fold <= folds:
            raise ValueError(f"fold {fold} is out of range 1..{folds}")
        tr, va = fold_indices(pool_y, folds, int(data["seed"]))[fold - 1]
        parts = {"x_train": pool_x[tr], "y_train": pool_y[tr], "x_val": pool_x[va],
                 "y_val": pool_y[va], "x_test": None, "y_test": None}
        cv = {"fold": fold, "folds": folds}
    info = {**splits.info, "train": len(parts["y_train"]),
            "val": 0 if parts["y_val"] is None else len(parts["y_val"]),
            "test": 0 if parts["y_test"] is None else len(parts["y_test"]), "cv": cv}
    fingerprint = hashlib.sha256(json.dumps([splits.fingerprint, cv], sort_keys=True).encode()).hexdigest()
    return Splits(**parts, class_names=list(splits.class_names), fingerprint=fingerprint, info=info,
                  task=splits.task)

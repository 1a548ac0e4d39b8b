"""Cross-validation splits: k stratified folds of train+validation; the test split never enters one.

A ``cv`` study's runs carry ``fold`` and ``folds`` in their data configuration (so each fold is a run
of its own, cached and resumed like any other); the selected configuration's final run carries
``refit``. ``split`` turns the report's usual split into the split such a run trains on. Only what
decides a run's data lives here: this file is part of every run's cache key (cache.TRAINING_SOURCES).
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import scipy.sparse as sp

KEYS = ("fold", "folds", "refit")  # data keys of a cross-validation run, never passed to data.load


def fold_runs(runs: list[dict], folds: int, test: str = "t") -> list[dict]:
    """Each configuration's run becomes ``folds`` runs, one per fold (numbered from 1). The axis
    names the variant, the fold and the paired test the section reports (how runs are shown,
    not what they compute: not part of the cache key)."""
    out = []
    for r in runs:
        for i in range(1, folds + 1):
            data = dict(r["config"]["data"], fold=i, folds=folds)
            out.append({**r, "label": f"{r['label']} · fold {i}",
                        "axis": {**(r.get("axis") or {}), "variant": r["label"], "fold": i, "test": test},
                        "config": {**r["config"], "data": data}})
    return out


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
    if not any(k in data for k in KEYS):
        return splits
    from helpers.data import Splits
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


def is_fold(record: dict) -> bool:
    return "fold" in ((record.get("config") or {}).get("data") or {})


def is_refit(record: dict) -> bool:
    return bool(((record.get("config") or {}).get("data") or {}).get("refit"))

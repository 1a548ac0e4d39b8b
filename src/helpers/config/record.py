"""The run record, the one shape every layer shares (docs/records.md): what a plan's run holds
(``RunSpec``, made here by the plan) and what training returns for it (``RunRecord``, made by
helpers.run). Records stay plain JSON-able dicts; these types say which keys they carry."""
from __future__ import annotations

from enum import StrEnum
from typing import Any, TypedDict


class Status(StrEnum):
    """A finished run's status; equal to the plain strings stored in records and JSON."""
    OK = "ok"
    FAILED = "failed"        # raised: ``error`` and ``traceback`` say why; no metrics, never cached
    DIVERGED = "diverged"    # a result: stopped early (``reason``), metrics as measured, never "best"


# Statuses with metrics: a diverged run is a result, shown and named, not a failure.
RESULTS = (Status.OK, Status.DIVERGED)


class Config(TypedDict):
    model: dict[str, Any]
    training: dict[str, Any]
    data: dict[str, Any]       # + fold/folds for a cross-validation fold, refit for its refit


class RunSpec(TypedDict, total=False):
    study: str                 # the study's name (section id: study-<name>)
    kind: str                  # the study kind (helpers.config.kinds)
    label: str                 # the configuration's label, unique within a study (with the seed)
    axis: dict[str, Any]       # the value(s) the study varies for this run ({} for named variants)
    baseline: bool             # the study's reference configuration
    seed: int
    config: Config
    search: dict[str, Any]     # search studies: the space and budget (helpers.run.search)


class Metrics(TypedDict, total=False):
    train_accuracy: float
    val_accuracy: float        # a cv refit: the cross-validated mean (cv_mean)
    test_accuracy: float       # absent for a cross-validation fold
    train_loss: float
    val_loss: float
    test_loss: float
    f1_macro: float
    auc_ovr: float             # multi-class; roc_auc, average_precision and brier for two classes
    roc_auc: float
    average_precision: float
    brier: float
    gap: float                 # train_accuracy − val_accuracy
    params: int
    epochs_run: int
    best_epoch: int            # 1-based
    seconds: float             # fit wall time
    cv_mean: float
    cv_std: float
    cv_folds: int


class RunRecord(RunSpec, total=False):
    status: Status
    error: str | None          # one line, when failed
    traceback: str
    reason: str | None         # why a diverged run was stopped
    metrics: Metrics           # absent when failed
    execution: dict[str, Any]  # jit_compile, steps_per_execution, xla_fallback (helpers.run.training.execution)
    confusion: list[list[int]]
    class_names: list[str]
    history: dict[str, list[float]]
    curves: dict[str, Any]     # two classes: ROC, precision–recall and reliability points
    data_info: dict[str, Any]
    fingerprint: str
    key: str | None            # the run cache key (None without a cache)
    cached: bool


def is_fold(record: RunSpec) -> bool:
    """A cross-validation fold: trains on k−1 folds of train+validation, has no test split."""
    return "fold" in ((record.get("config") or {}).get("data") or {})


def is_refit(record: RunSpec) -> bool:
    """A cross-validation study's selected configuration, retrained on train+validation."""
    return bool(((record.get("config") or {}).get("data") or {}).get("refit"))


def succeeded(record: RunRecord) -> bool:
    """A run that finished with metrics to compare (ok and with a validation score)."""
    return record.get("status") == Status.OK and "val_accuracy" in (record.get("metrics") or {})

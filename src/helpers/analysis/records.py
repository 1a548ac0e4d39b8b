"""Reading run records (helpers.config.record): successful runs, a metric, the gap, grouping by
study, the best configuration by validation accuracy, and the flat table plots and tables use.

Model selection rule: the "best" configuration is always chosen by validation accuracy; test
accuracy is only reported beside it, never used to rank, so the test set stays an unbiased
estimate. Failed runs are ignored (and counted where shown).
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from helpers.config.record import RunRecord, Status, succeeded


def ok(records: Iterable[RunRecord]) -> list[RunRecord]:
    """The runs that finished with a validation score (diverged and failed runs left out)."""
    return [r for r in records if succeeded(r)]


def diverged(records: Iterable[RunRecord]) -> list[RunRecord]:
    return [r for r in records if r.get("status") == Status.DIVERGED]


def by_study(records: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """study -> its records, in order of first appearance."""
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        groups.setdefault(r.get("study", ""), []).append(r)
    return groups


def metric(rec: RunRecord, key: str, default=float("nan")):
    return rec.get("metrics", {}).get(key, default)


def gap(rec: RunRecord) -> float:
    """Train − validation accuracy (overfitting)."""
    return metric(rec, "gap", metric(rec, "train_accuracy") - metric(rec, "val_accuracy"))


def ranked(records: Iterable[RunRecord]) -> list[RunRecord]:
    """Successful runs by validation accuracy, best first; ties go to the smaller model."""
    return sorted(ok(records), key=lambda r: (-metric(r, "val_accuracy"), metric(r, "params", 0)))


def best(records: Iterable[RunRecord]) -> RunRecord | None:
    """The ok record with the highest validation accuracy (ties: fewer params), or None."""
    order = ranked(records)
    return order[0] if order else None


def chance(records: list[RunRecord]) -> float:
    """Accuracy of a uniform guess over the task's classes (0 when unknown)."""
    n = next((len(c) for r in records if (c := r.get("class_names") or r.get("confusion"))), 0)
    return 1.0 / n if n else 0.0


def frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run: identity columns, every metric, and one column per swept axis key."""
    rows = []
    for r in records:
        row = {k: r.get(k) for k in ("study", "kind", "label", "baseline", "seed", "status")}
        row.update(r.get("axis") or {})
        row.update(r.get("metrics") or {})
        row["error"] = r.get("error")
        rows.append(row)
    return pd.DataFrame(rows)



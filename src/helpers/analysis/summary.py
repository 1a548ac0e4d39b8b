"""The summary across studies in numbers: each study's best configuration by validation accuracy."""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from helpers.analysis.records import by_study, metric, ok
from helpers.analysis.repeats import best_config
from helpers.config.record import RunRecord


def summary(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per study (first-appearance order) describing its best run by validation accuracy."""
    keys = ["val_accuracy", "test_accuracy", "f1_macro", "params", "seconds"]
    rows = []
    for study, rs in by_study(records).items():
        b = best_config(rs)  # several seeds: means over them, among configurations whose seeds all finished
        rows.append([study, b["label"] if b else None, *(metric(b, k) if b else float("nan") for k in keys),
                     f"{len(ok(rs))}/{len(rs)}"])
    return pd.DataFrame(rows, columns=["study", "best", *keys, "runs"])

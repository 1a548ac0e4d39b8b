"""Studies trained over several seeds, in numbers: runs grouped per configuration, means over
seeds (``collapse``), the best configuration (highest MEAN validation accuracy, never test), and
the best against each other one by a paired t-test over the seeds on test accuracy, Holm-corrected.

A study whose configurations each ran once never reaches these: callers check ``repeated`` first.
Their words and tables are helpers.present.repeats.
"""
from __future__ import annotations

import math

import numpy as np

from helpers.analysis import stats
from helpers.analysis.records import best, by_study, ok as _ok
from helpers.config.record import Status

TEST = "t"  # paired t-test: with 3 seeds a signed-rank test can never reach p < 0.05
PER_RUN = ("history", "curves", "key", "cached", "error", "traceback", "seed")


def groups(records) -> dict[tuple, list[dict]]:
    """(study, label) -> its runs, in order of first appearance."""
    out: dict[tuple, list[dict]] = {}
    for r in records:
        out.setdefault((r.get("study"), r.get("label")), []).append(r)
    return out


def repeated(records) -> bool:
    """True when some configuration of some study ran more than once (several seeds)."""
    return any(len(rs) > 1 for rs in groups(records).values())


def seeds(records) -> list:
    return sorted({r.get("seed") for r in records if r.get("seed") is not None})


def repeated_studies(records) -> dict[str, list]:
    """study -> its seeds, for the studies that train some configuration more than once."""
    return {study: seeds(rs) for study, rs in by_study(records).items() if repeated(rs)}


def values(rs: list[dict], key: str) -> list[float]:
    return [v for r in rs if isinstance(v := (r.get("metrics") or {}).get(key), (int, float))
            and not isinstance(v, bool) and not math.isnan(v)]


def collapse(records) -> list[dict]:
    """One record per configuration whose metrics are the means over its successful seeds (and
    ``spread``: their standard deviations); confusion matrices are summed. Records of studies
    without repeats come back as they are."""
    records = list(records)
    if not repeated(records):
        return records
    out = []
    for rs in groups(records).values():
        ok = _ok(rs)
        rec = {k: v for k, v in rs[0].items() if k not in PER_RUN}
        rec.update(seeds=[r.get("seed") for r in rs], runs=len(rs), runs_ok=len(ok))
        if not ok:
            out.append({**rec, "status": rs[0].get("status", Status.FAILED), "error": rs[0].get("error")})
            continue
        keys = dict.fromkeys(k for r in ok for k in r["metrics"])
        rec["metrics"] = {k: float(np.mean(v)) for k in keys if (v := values(ok, k))}
        rec["spread"] = {k: float(np.std(v, ddof=1)) for k in keys if len(v := values(ok, k)) > 1}
        rec.update(status=Status.OK, **{k: ok[0][k] for k in ("class_names", "data_info") if k in ok[0]})
        if all(r.get("confusion") for r in ok):
            rec["confusion"] = np.sum([r["confusion"] for r in ok], axis=0).tolist()
        out.append(rec)
    return out


def best_label(records) -> str | None:
    """The configuration with the highest mean validation accuracy (ties: fewer parameters)."""
    b = best(collapse(records))
    return b["label"] if b else None


def best_run(records) -> dict | None:
    """A real run of the best configuration (its first successful seed), for figures that need
    one run's predictions (ROC, precision–recall, calibration)."""
    label = best_label(records)
    return next((r for r in _ok(records) if r.get("label") == label), None)



def comparisons(records, alpha: float = stats.ALPHA) -> dict:
    """The best configuration (by mean validation accuracy) against each other one: a paired
    t-test over shared seeds on test accuracy, Holm-corrected across the comparisons."""
    scores: dict[str, dict] = {}
    for (_, label), rs in groups(records).items():
        scores[label] = {r["seed"]: r["metrics"]["test_accuracy"] for r in _ok(rs)
                         if r["metrics"].get("test_accuracy") is not None}
    best = best_label(records)
    # Fewer than two shared seeds give no test at all (not "within noise"): reported apart, and
    # not counted in Holm's correction.
    shared = {label: len(set(s) & set(scores.get(best, {}))) for label, s in scores.items()}
    untested = [label for label in scores if label != best and shared[label] < 2]
    result = stats.against_best({k: v for k, v in scores.items() if k not in untested}, TEST, alpha, best=best)
    return {**result, "untested": untested}

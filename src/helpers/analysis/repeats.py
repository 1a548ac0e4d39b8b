"""Studies trained over several seeds, in numbers: runs grouped per configuration, means over
seeds (``collapse``), the best configuration (highest MEAN validation accuracy, never test, among
the configurations all of whose seeds finished), the best against each other one by a paired
t-test over the seeds on test accuracy, Holm-corrected, and the tests a trend along an axis needs.

A study whose configurations each ran once never reaches these: callers check ``repeated`` first.
Their words and tables are helpers.present.repeats.
"""
from __future__ import annotations

import math
import numbers

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
        rec.update(seeds=[r.get("seed") for r in rs], runs=len(rs), runs_ok=len(ok), complete=len(ok) == len(rs))
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


def complete(rec: dict) -> bool:
    """True unless ``rec`` is a configuration (from ``collapse``) some of whose seeds failed or diverged."""
    return rec.get("complete", True)


def eligible(collapsed) -> list[dict]:
    """The configurations that may be named best: successful, and every seed finished. A mean over
    the seeds that survived leaves out the ones it failed on, and can stand on a single seed."""
    return [r for r in _ok(collapsed) if complete(r)]


def best_config(records) -> dict | None:
    """The collapsed record of the best configuration (highest mean validation accuracy, ties:
    fewer parameters) among those all of whose seeds finished."""
    return best(eligible(collapse(records)))


def leader(records) -> dict | None:
    """The configuration with the highest mean validation accuracy, finished or not."""
    return best(collapse(records))


def best_label(records) -> str | None:
    b = best_config(records)
    return b["label"] if b else None


def best_run(records) -> dict | None:
    """A real run of the best configuration (its first successful seed), for figures that need
    one run's predictions (ROC, precision–recall, calibration)."""
    label = best_label(records)
    return next((r for r in _ok(records) if r.get("label") == label), None)


def _scores(records, key: str) -> dict[str, dict]:
    return {label: {r["seed"]: r["metrics"][key] for r in _ok(rs) if r["metrics"].get(key) is not None}
            for (_, label), rs in groups(records).items()}


def comparisons(records, alpha: float = stats.ALPHA) -> dict:
    """The best configuration (by mean validation accuracy) against each other one: a paired
    t-test over shared seeds on test accuracy, Holm-corrected across the comparisons; those no
    test can be made against (too few shared seeds, a difference identical on every seed) are
    ``untested`` (stats.against_best)."""
    best = best_label(records)
    if best is None:
        return {"best": None, "test": TEST, "comparisons": [], "untested": []}
    return stats.against_best(_scores(records, "test_accuracy"), TEST, alpha, best=best)


def numeric_axis(records) -> str | None:
    """The key of the study's one numeric axis, when it has exactly one."""
    axes = [r.get("axis") or {} for r in records]
    if not axes or any(len(a) != 1 for a in axes) or len({next(iter(a)) for a in axes}) != 1:
        return None
    key = next(iter(axes[0]))
    numeric = all(isinstance(a[key], numbers.Real) and not isinstance(a[key], bool) for a in axes)
    return key if numeric else None


def trend_test(records, metric: str = "val_accuracy") -> dict | None:
    """A test through all configurations of a numeric axis (three values or more): Spearman's rank
    correlation between the axis value and ``metric`` over every successful run (all seeds of all
    configurations). Whether the best configuration beats each other one says nothing about the
    order of the others. {"key", "rho", "p", "n", "values"}; None without such an axis."""
    ok = _ok(records)
    key = numeric_axis(ok)
    if key is None or len({r["axis"][key] for r in ok}) < 3:
        return None
    pairs = [(r["axis"][key], r["metrics"][metric]) for r in ok if r["metrics"].get(metric) is not None]
    return {"key": key, "values": len({x for x, _ in pairs}),
            **stats.rank_corr_test([x for x, _ in pairs], [y for _, y in pairs])}


def peak_test(records, at, metric: str = "val_accuracy", alpha: float = stats.ALPHA) -> dict | None:
    """A peak inside a numeric axis: the configuration at ``at`` against the axis' two ends, paired
    over shared seeds on ``metric``, Holm-corrected over the two (stats.against_best)."""
    ok = _ok(records)
    key = numeric_axis(ok)
    if key is None:
        return None
    by_x: dict = {}
    for r in ok:
        if r["metrics"].get(metric) is not None:
            by_x.setdefault(r["axis"][key], {})[r["seed"]] = r["metrics"][metric]
    xs = sorted(by_x)
    if len(xs) < 3 or at not in by_x or at in (xs[0], xs[-1]):
        return None
    return stats.against_best({x: by_x[x] for x in (at, xs[0], xs[-1])}, TEST, alpha, best=at)

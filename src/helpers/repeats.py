"""Studies trained over several seeds: one row per configuration (mean ± std and a 95 % confidence
interval), the best configuration (highest MEAN validation accuracy, never test) against each other
one with a paired t-test over the seeds on test accuracy, Holm-corrected, and findings that call a
difference "within noise" when that test does not find it and never order such configurations.

A study whose configurations each ran once never reaches this module's tables or wording: the
callers check ``repeated`` first, and its output stays as it was.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from helpers import narrate, stats

TEST = "t"  # paired t-test: with 3 seeds a signed-rank test can never reach p < 0.05
TEST_NAME = "paired t-test over seeds"
SUMMARISED = {"val_accuracy": "val acc", "test_accuracy": "test acc", "roc_auc": "ROC AUC"}
PER_RUN = ("history", "curves", "key", "cached", "error", "traceback", "seed")


_ok = narrate._ok  # successful runs with a validation score


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
    return {study: seeds(rs) for study, rs in narrate._by_study(records).items() if repeated(rs)}


def _values(rs: list[dict], key: str) -> list[float]:
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
            out.append({**rec, "status": rs[0].get("status", "failed"), "error": rs[0].get("error")})
            continue
        keys = dict.fromkeys(k for r in ok for k in r["metrics"])
        rec["metrics"] = {k: float(np.mean(v)) for k in keys if (v := _values(ok, k))}
        rec["spread"] = {k: float(np.std(v, ddof=1)) for k in keys if len(v := _values(ok, k)) > 1}
        rec.update(status="ok", **{k: ok[0][k] for k in ("class_names", "data_info") if k in ok[0]})
        if all(r.get("confusion") for r in ok):
            rec["confusion"] = np.sum([r["confusion"] for r in ok], axis=0).tolist()
        out.append(rec)
    return out


def best_label(records) -> str | None:
    """The configuration with the highest mean validation accuracy (ties: fewer parameters)."""
    b = narrate.best(collapse(records))
    return b["label"] if b else None


def best_run(records) -> dict | None:
    """A real run of the best configuration (its first successful seed), for figures that need
    one run's predictions (ROC, precision–recall, calibration)."""
    label = best_label(records)
    return next((r for r in _ok(records) if r.get("label") == label), None)


def _pm(values: list[float]) -> tuple[str, str]:
    s = stats.summarize(values)
    if s["n"] == 0:
        return "—", "—"
    if s["n"] == 1:
        return f"{s['mean']:.4f}", "—"
    # accuracies and AUC lie in [0, 1]; a t interval over two or three seeds can reach past either end
    low, high = max(s["ci_low"], 0.0), min(s["ci_high"], 1.0)
    return f"{s['mean']:.4f} ± {s['std']:.4f}", f"[{low:.4f}, {high:.4f}]"


def table(records) -> pd.DataFrame:
    """Per configuration: successful seeds, mean ± std and a 95 % CI of validation and test
    accuracy (and ROC AUC for binary tasks), mean gap, parameters and mean training time."""
    rows = []
    for (_, label), rs in groups(records).items():
        ok = _ok(rs)
        row = {"configuration": label, "seeds": f"{len(ok)}/{len(rs)}"}
        for key, name in SUMMARISED.items():
            if any(_values([r], key) for r in _ok(records)):  # ROC AUC: binary tasks only
                row[f"{name} (mean ± std)"], row[f"{name} 95 % CI"] = _pm(_values(ok, key))
        gap, params, secs = _values(ok, "gap"), _values(ok, "params"), _values(ok, "seconds")
        row["gap (train−val)"] = round(float(np.mean(gap)), 4) if gap else None
        row["parameters"] = int(params[0]) if params else None
        row["time (s, mean)"] = round(float(np.mean(secs)), 1) if secs else None
        diverged = sum(r.get("status") == "diverged" for r in rs)
        failed = len(rs) - len(ok) - diverged
        row["status"] = ", ".join([f"{diverged} diverged"] * bool(diverged) + [f"{failed} failed"] * bool(failed)) or "ok"
        rows.append(row)
    return pd.DataFrame(rows).set_index("configuration")


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


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _p_is(p: float) -> str:
    """'Holm-adjusted p = 0.012' or 'Holm-adjusted p < 0.001'."""
    return "Holm-adjusted p " + ("< 0.001" if p < 0.001 else f"= {p:.3f}")


def comparison_table(records) -> pd.DataFrame:
    result = comparisons(records)
    rows = [{"configuration": c["label"], "difference in test acc (points)": round(c["diff"] * 100, 2),
             "seeds paired": c["n"], "p": _p(c["p"]), "Holm-adjusted p": _p(c["p_holm"]),
             "significant (α = 0.05)": "yes" if c["significant"] else "no — within noise"}
            for c in result["comparisons"]]
    rows += [{"configuration": label, "difference in test acc (points)": None, "seeds paired": None, "p": "—",
              "Holm-adjusted p": "—", "significant (α = 0.05)": "not tested: fewer than two seeds succeeded"}
             for label in result["untested"]]
    return pd.DataFrame(rows).astype({"seeds paired": "Int64"}).set_index("configuration") if rows else pd.DataFrame()


def _names(rows: list[dict]) -> str:
    names = [f"**{r['label']}**" for r in rows]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def headline(records) -> tuple[str, bool]:
    """The best configuration and what the paired tests say; True when some other configuration
    is within noise of it (so nothing is ranked between them)."""
    ok = _ok(records)
    if not ok:
        return "No run finished successfully.", False
    b = narrate.best(collapse(ok))
    label = b["label"]
    spread = lambda k: (f" ± {b['spread'][k]:.4f}" if k in b.get("spread", {}) else "")  # noqa: E731
    text = [f"The best configuration by mean validation accuracy is **{label}** (validation "
            f"{b['metrics']['val_accuracy']:.4f}{spread('val_accuracy')}, test "
            f"{b['metrics'].get('test_accuracy', float('nan')):.4f}{spread('test_accuracy')}, over "
            f"{(n := b.get('runs_ok', 1))} seed{'s' * (n != 1)})."]
    result = comparisons(records)
    rows, untested = result["comparisons"], result["untested"]
    better = [r for r in rows if r["significant"] and r["diff"] > 0]
    worse = [r for r in rows if r["significant"] and r["diff"] <= 0]
    noise = [r for r in rows if not r["significant"]]  # kept in study order: no ranking implied
    if better:
        named = [f"**{r['label']}** (by {narrate._pp(r['diff'])} points, {_p_is(r['p_holm'])})" for r in better]
        text.append("On test accuracy it is significantly better than "
                    + (", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]) + ".")
    if worse:
        text.append(" ".join(f"**{r['label']}** has significantly higher test accuracy ({narrate._pp(r['diff'])} "
                             f"points, {_p_is(r['p_holm'])}), although **{label}** leads on "
                             "validation accuracy." for r in worse))
    if len(rows) == 1 and noise:  # one comparison: "every difference ... (smallest p)" would be odd
        text.append(f"The difference to **{noise[0]['label']}** is within noise ({_p_is(noise[0]['p_holm'])}), "
                    "so the study does not rank the two.")
    elif noise and len(noise) == len(rows):
        text.append(f"Every difference from it is within noise (smallest {_p_is(min(r['p_holm'] for r in noise))}), "
                    "so the study does not rank its configurations.")
    elif len(noise) == 1:
        text.append(f"The difference to **{noise[0]['label']}** is within noise ({_p_is(noise[0]['p_holm'])}), "
                    "so the two are not ranked.")
    elif noise:
        text.append(f"The differences to {_names(noise)} are within noise (Holm-adjusted p ≥ {stats.ALPHA:g}), "
                    f"so no ranking is claimed among them and **{label}**.")
    if untested:
        text.append(f"{_names([{'label': u} for u in untested])} could not be tested against it: fewer than two "
                    "of {} seeds succeeded.".format("its" if len(untested) == 1 else "their"))
    return " ".join(text), bool(noise or untested)


def findings(records, links: bool = False) -> str:
    """Markdown findings of one study trained over several seeds."""
    records = list(records)
    ok = _ok(records)
    if not ok:
        return f"No run finished successfully ({len(records)} failed), so there are no findings."
    study = records[0].get("study", "")
    used = seeds(ok)
    parts = [(f"{narrate.ref(f'tab:{study}:results')} lists each configuration's mean ± standard deviation "
              f"over {len(used)} seeds ({', '.join(map(str, used))}) with a 95 % confidence interval of the mean.")
             if links else "", headline(records)[0]]
    rows = comparisons(records)["comparisons"]
    if rows:
        where = f" in {narrate.ref(f'tab:{study}:comparisons')}" if links else ""
        parts.append(f"The comparisons{where} use a two-sided {TEST_NAME} on test accuracy, corrected for the {len(rows)} "
                     f"comparison{'s' * (len(rows) != 1)} with Holm's method; a difference counts only when "
                     f"the adjusted p is below {stats.ALPHA:g}.")
    means = _ok(collapse(ok))
    if rows and all(r["significant"] for r in rows):
        trend = narrate._trend(means)[1]
        parts.append(f"Averaged over seeds: {trend[0].lower()}{trend[1:]}" if trend else "")
    worst = max(means, key=narrate._gap)
    gap = narrate._gap(worst)
    verdict = ("Overfitting is clear" if gap >= narrate.GAP_CLEAR else "Overfitting is mild"
               if gap >= narrate.GAP_MILD else "No configuration overfits noticeably")
    parts.append(f"{verdict}: the largest mean train–validation gap is {narrate._pp(gap)} percentage points "
                 f"(**{worst['label']}**).")
    ok_ids = {id(r) for r in ok}
    for word in ("diverged", "failed"):
        bad = [r for r in records if id(r) not in ok_ids and (r.get("status") == "diverged") == (word == "diverged")]
        if bad:
            names = ", ".join(f"{r.get('label')} · seed {r.get('seed')}"
                              + (f": {r['reason']}" if r.get("reason") else "") for r in bad)
            parts.append(f"{len(bad)} of {len(records)} runs {word} ({names}) and "
                         f"{'is' if len(bad) == 1 else 'are'} excluded from the comparisons.")
    return " ".join(p for p in parts if p)


def methodology(records, seed: int) -> str:
    """The Methodology's sentence on seeds: which studies repeat their runs, and how they compare."""
    several = repeated_studies(records)
    if not several:
        return f"Seed {seed}; one run per configuration."
    single = [study for study in narrate._by_study(records) if study not in several]
    used = sorted({s for ss in several.values() for s in ss})
    which = "Every configuration" if not single else (
        "In the " + ", ".join(f"*{s}*" for s in several) + f" stud{'y' if len(several) == 1 else 'ies'}, each configuration")
    return (f"{which} is trained once per seed (seeds {', '.join(map(str, used))}); the data split always uses seed "
            f"{seed}, so only initial weights, batch order and dropout change between repeats. Their tables give "
            "mean ± standard deviation and a 95 % confidence interval of the mean (t distribution); the best "
            f"configuration (highest mean validation accuracy) is compared with each other one by a two-sided "
            f"{TEST_NAME} on test accuracy, with Holm's correction for the number of comparisons."
            + (f" Other studies: seed {seed}, one run per configuration." if single else ""))

"""Studies trained over several seeds, in words and tables: per configuration mean ± std and a
95 % confidence interval, the paired comparisons with the best configuration, and findings that
call a difference "within noise" when that test does not find it and never order such
configurations. The numbers are helpers.analysis.repeats."""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.analysis import stats
from helpers.analysis.records import best, by_study, gap as gap_of, ok as _ok
from helpers.analysis.repeats import collapse, comparisons, groups, repeated_studies, seeds, values
from helpers.config.record import Status
from helpers.present import format as fmt, trends
from helpers.present.markup import ref

TEST_NAME = "paired t-test over seeds"
SUMMARISED = {"val_accuracy": "val acc", "test_accuracy": "test acc", "roc_auc": "ROC AUC"}


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
            if any(values([r], key) for r in _ok(records)):  # ROC AUC: binary tasks only
                row[f"{name} (mean ± std)"], row[f"{name} 95 % CI"] = _pm(values(ok, key))
        gap, params, secs = values(ok, "gap"), values(ok, "params"), values(ok, "seconds")
        row["gap (train−val)"] = round(float(np.mean(gap)), 4) if gap else None
        row["parameters"] = int(params[0]) if params else None
        row["time (s, mean)"] = round(float(np.mean(secs)), 1) if secs else None
        diverged = sum(r.get("status") == Status.DIVERGED for r in rs)
        failed = len(rs) - len(ok) - diverged
        row["status"] = ", ".join([f"{diverged} diverged"] * bool(diverged) + [f"{failed} failed"] * bool(failed)) or "ok"
        rows.append(row)
    return pd.DataFrame(rows).set_index("configuration")



def comparison_table(records) -> pd.DataFrame:
    result = comparisons(records)
    rows = [{"configuration": c["label"], "difference in test acc (points)": fmt.points(c["diff"]),
             "seeds paired": c["n"], "p": fmt.p(c["p"]), "Holm-adjusted p": fmt.p(c["p_holm"]),
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
    b = best(collapse(ok))
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
        named = [f"**{r['label']}** (by {fmt.pp(r['diff'])} points, {fmt.p_is(r['p_holm'])})" for r in better]
        text.append("On test accuracy it is significantly better than "
                    + (", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]) + ".")
    if worse:
        text.append(" ".join(f"**{r['label']}** has significantly higher test accuracy ({fmt.pp(r['diff'])} "
                             f"points, {fmt.p_is(r['p_holm'])}), although **{label}** leads on "
                             "validation accuracy." for r in worse))
    if len(rows) == 1 and noise:  # one comparison: "every difference ... (smallest p)" would be odd
        text.append(f"The difference to **{noise[0]['label']}** is within noise ({fmt.p_is(noise[0]['p_holm'])}), "
                    "so the study does not rank the two.")
    elif noise and len(noise) == len(rows):
        text.append(f"Every difference from it is within noise (smallest {fmt.p_is(min(r['p_holm'] for r in noise))}), "
                    "so the study does not rank its configurations.")
    elif len(noise) == 1:
        text.append(f"The difference to **{noise[0]['label']}** is within noise ({fmt.p_is(noise[0]['p_holm'])}), "
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
    parts = [(f"{ref(f'tab:{study}:results')} lists each configuration's mean ± standard deviation "
              f"over {len(used)} seeds ({', '.join(map(str, used))}) with a 95 % confidence interval of the mean.")
             if links else "", headline(records)[0]]
    rows = comparisons(records)["comparisons"]
    if rows:
        where = f" in {ref(f'tab:{study}:comparisons')}" if links else ""
        parts.append(f"The comparisons{where} use a two-sided {TEST_NAME} on test accuracy, corrected for the {len(rows)} "
                     f"comparison{'s' * (len(rows) != 1)} with Holm's method; a difference counts only when "
                     f"the adjusted p is below {stats.ALPHA:g}.")
    means = _ok(collapse(ok))
    if rows and all(r["significant"] for r in rows):
        trend = trends.trend(means)[1]
        parts.append(f"Averaged over seeds: {trend[0].lower()}{trend[1:]}" if trend else "")
    worst = max(means, key=gap_of)
    parts.append(f"{trends.overfitting(gap_of(worst))}: the largest mean train–validation gap is {fmt.pp(gap_of(worst))} percentage points "
                 f"(**{worst['label']}**).")
    ok_ids = {id(r) for r in ok}
    for word in (Status.DIVERGED, Status.FAILED):
        bad = [r for r in records if id(r) not in ok_ids and (r.get("status") == Status.DIVERGED) == (word == Status.DIVERGED)]
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
    single = [study for study in by_study(records) if study not in several]
    used = sorted({s for ss in several.values() for s in ss})
    which = "Every configuration" if not single else (
        "In the " + ", ".join(f"*{s}*" for s in several) + f" stud{'y' if len(several) == 1 else 'ies'}, each configuration")
    return (f"{which} is trained once per seed (seeds {', '.join(map(str, used))}); the data split always uses seed "
            f"{seed}, so only initial weights, batch order and dropout change between repeats. Their tables give "
            "mean ± standard deviation and a 95 % confidence interval of the mean (t distribution); the best "
            f"configuration (highest mean validation accuracy) is compared with each other one by a two-sided "
            f"{TEST_NAME} on test accuracy, with Holm's correction for the number of comparisons."
            + (f" Other studies: seed {seed}, one run per configuration." if single else ""))

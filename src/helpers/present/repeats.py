"""Studies trained over several seeds, in words and tables: per configuration mean ± std and a
95 % confidence interval over its n finished seeds, the paired comparisons with the best
configuration, and findings that call a difference "within noise" when that test does not find
it, "not tested" when no test could be made, never order such configurations, and state a trend
only when a test through all the configurations finds it. The numbers are helpers.analysis.repeats."""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.analysis import stats
from helpers.analysis.records import by_study, gap as gap_of, metric, ok as _ok
from helpers.analysis.repeats import (
    TEST,
    best_config,
    collapse,
    comparisons,
    groups,
    leader,
    peak_test,
    repeated_studies,
    seeds,
    trend_test,
    values,
)
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
        return fmt.acc(s["mean"]), "—"
    # accuracies and AUC lie in [0, 1]; a t interval over two or three seeds can reach past either end
    low, high = max(s["ci_low"], 0.0), min(s["ci_high"], 1.0)
    return f"{fmt.acc(s['mean'])} ± {fmt.acc(s['std'])}", f"[{fmt.acc(low)}, {fmt.acc(high)}]"


def table(records) -> pd.DataFrame:
    """Per configuration: its seeds finished out of those run (the n its numbers are over), mean ±
    std and a 95 % CI of validation and test accuracy (and ROC AUC for binary tasks), mean gap,
    parameters and mean training time."""
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


def untested_reason(c: dict) -> str:
    """Why no test was made against a configuration, for a table cell or a sentence."""
    n = c["n"]
    if c["untested"] == stats.CONSTANT:
        return (f"not tested: the difference was the same ({fmt.signed_pp(c['diff'])} points) on each of the {n} "
                f"seeds, so the t-test has no spread to work with; with {n} seeds an exact test cannot give p "
                f"below {fmt.p(c['min_p'])}")
    need = stats.MIN_PAIRS[TEST]
    return (f"not tested: only {_seeds(n)} in common with the best, and the paired t-test needs at least {need}"
            if n else "not tested: no seed of it finished")


def comparison_table(records) -> pd.DataFrame:
    result = comparisons(records)
    rows = [{"configuration": c["label"], "difference in test acc (points)": fmt.points(c["diff"]),
             "seeds paired": c["n"], "p": fmt.p(c["p"]), "Holm-adjusted p": fmt.p(c["p_holm"]),
             "significant (α = 0.05)": "yes" if c["significant"] else "no — within noise"}
            for c in result["comparisons"]]
    rows += [{"configuration": c["label"], "seeds paired": c["n"], "p": "—", "Holm-adjusted p": "—",
              "difference in test acc (points)": fmt.points(c["diff"]) if c["n"] else None,
              "significant (α = 0.05)": untested_reason(c)} for c in result["untested"]]
    return pd.DataFrame(rows).astype({"seeds paired": "Int64"}).set_index("configuration") if rows else pd.DataFrame()


def _names(rows: list[dict]) -> str:
    names = [f"**{r['label']}**" for r in rows]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _seeds(n: int) -> str:
    return f"{n} seed{'s' * (n != 1)}"


def headline(records) -> tuple[str, bool]:
    """The best configuration and what the paired tests say; True when some other configuration
    is within noise of it or could not be tested against it (so nothing is ranked between them).
    ``records``: every run of the study, failed and diverged ones included — a configuration
    that lost a seed cannot be named best, and only the failed runs show that it did."""
    if not _ok(records):
        return "No run finished successfully.", False
    b, top = best_config(records), leader(records)
    text = []
    if top is not None and (b is None or top["label"] != b["label"]):
        text.append(f"**{top['label']}** has the highest mean validation accuracy "
                    f"({fmt.acc(metric(top, 'val_accuracy'))}), but only {top['runs_ok']} of its {_seeds(top['runs'])} "
                    "finished: a mean over the seeds that survived leaves out those it failed on, so it is not "
                    "named best.")
    if b is None:
        return " ".join(text + ["No configuration finished all its seeds, so none is named best."]), True
    label = b["label"]
    spread = lambda k: (f" ± {fmt.acc(b['spread'][k])}" if k in b.get("spread", {}) else "")  # noqa: E731
    text.append(f"The best configuration by mean validation accuracy{' among those whose seeds all finished' * bool(text)} "
                f"is **{label}** (validation {fmt.acc(metric(b, 'val_accuracy'))}{spread('val_accuracy')}, test "
                f"{fmt.acc(metric(b, 'test_accuracy'))}{spread('test_accuracy')}, over {_seeds(b.get('runs_ok', 1))}).")
    result = comparisons(records)
    rows, untested = result["comparisons"], result["untested"]
    better = [r for r in rows if r["significant"] and r["diff"] > 0]
    worse = [r for r in rows if r["significant"] and r["diff"] <= 0]
    noise = [r for r in rows if not r["significant"]]  # kept in study order: no ranking implied
    if better:
        named = [f"**{r['label']}** (by {fmt.pp(r['diff'])} points over {_seeds(r['n'])}, {fmt.p_is(r['p_holm'])})"
                 for r in better]
        text.append("On test accuracy it is significantly better than "
                    + (", ".join(named[:-1]) + " and " + named[-1] if len(named) > 1 else named[0]) + ".")
    if worse:
        text.append(" ".join(f"**{r['label']}** has significantly higher test accuracy ({fmt.pp(r['diff'])} "
                             f"points over {_seeds(r['n'])}, {fmt.p_is(r['p_holm'])}), although **{label}** leads on "
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
        text.append(f"The differences to {_names(noise)} are within noise (Holm-adjusted p ≥ {fmt.p(stats.ALPHA)}), "
                    f"so no ranking is claimed among them and **{label}**.")
    for c in untested:
        why = untested_reason(c).removeprefix("not tested: ")
        text.append(f"**{c['label']}** could not be tested against it: {why}; no ranking is claimed between them.")
    return " ".join(text), bool(noise or untested)


def trend(records) -> tuple[str | None, str]:
    """(shape, sentence) of the trend along a numeric axis, averaged over seeds — told only when a
    test through all the configurations finds it: Spearman's rank correlation over every run for
    a rise or a fall, paired tests of the peak against both ends for a peak. Otherwise shape is
    None and the sentence says that no trend is claimed, and why."""
    shape, sentence = trends.trend(_ok(collapse(records)))
    t = trend_test(records)
    if shape is None or t is None or t["rho"] != t["rho"]:  # NaN: a constant side
        return None, ""
    stat = (f"Spearman's rank correlation between `{t['key']}` and validation accuracy over all {t['n']} runs "
            f"is {fmt.signed(t['rho'])}, {fmt.p_is(t['p'], 'p')}")
    if shape in ("rises", "plateau", "falls") and t["p"] < stats.ALPHA and (t["rho"] > 0) == (shape != "falls"):
        return shape, f"Averaged over seeds: {sentence[0].lower()}{sentence[1:].rstrip('.')} ({stat})."
    if shape == "peak":
        at = max(_ok(collapse(records)), key=lambda r: metric(r, "val_accuracy"))["axis"][t["key"]]
        pk = peak_test(records, at)
        rows = pk["comparisons"] if pk else []
        if len(rows) == 2 and all(r["significant"] and r["diff"] > 0 for r in rows):
            return shape, (f"Averaged over seeds: {sentence[0].lower()}{sentence[1:].rstrip('.')} (the peak beats "
                           f"both ends on validation accuracy, {TEST_NAME}, largest "
                           f"{fmt.p_is(max(r['p_holm'] for r in rows))}).")
        return None, (f"No trend through the configurations is claimed: the peak at `{t['key']}` = "
                      f"{fmt.compact(at)} is not shown to lie above both ends by a {TEST_NAME} on validation "
                      f"accuracy (Holm-adjusted p < {fmt.p(stats.ALPHA)}, each difference varying over the seeds).")
    return None, f"No trend through the configurations is claimed: {stat}."


def findings(records, links: bool = False) -> str:
    """Markdown findings of one study trained over several seeds."""
    records = list(records)
    ok = _ok(records)
    if not ok:
        return f"No run finished successfully ({len(records)} failed), so there are no findings."
    study = records[0].get("study", "")
    used = seeds(ok)
    parts = [(f"{ref(f'tab:{study}:results')} lists each configuration's mean ± standard deviation "
              f"over its finished seeds (of {len(used)}: {', '.join(map(str, used))}) with a 95 % confidence "
              "interval of the mean.") if links else "", headline(records)[0]]
    rows = comparisons(records)["comparisons"]
    if rows:
        where = f" in {ref(f'tab:{study}:comparisons')}" if links else ""
        lo, hi = min(c["n"] for c in rows), max(c["n"] for c in rows)
        parts.append(f"The comparisons{where} use a two-sided {TEST_NAME} on test accuracy over the seeds both "
                     f"configurations finished ({lo if lo == hi else f'{lo} to {hi}'} seeds), corrected for the "
                     f"{len(rows)} comparison{'s' * (len(rows) != 1)} with Holm's method; a difference counts only "
                     f"when the adjusted p is below {fmt.p(stats.ALPHA)}. With {_seeds(lo)} the t-test leans on its "
                     f"assumption of normally distributed differences: an exact test on {_seeds(lo)} could not give "
                     f"p below {fmt.p(stats.min_p(lo))}.")
    parts.append(trend(records)[1])
    means = _ok(collapse(ok))
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
            "each configuration's number of finished seeds n, mean ± standard deviation and a 95 % confidence "
            "interval of the mean (t distribution); the best configuration (highest mean validation accuracy, "
            "among those whose seeds all finished) is compared with each other one by a two-sided "
            f"{TEST_NAME} on test accuracy, with Holm's correction for the number of comparisons. A comparison "
            f"over fewer than {stats.MIN_PAIRS[TEST]} shared seeds, or whose difference is the same on every seed, "
            "is reported as not tested. A trend along a numeric axis is stated only when Spearman's rank "
            "correlation between the axis value and validation accuracy over all runs is significant "
            f"(p < {fmt.p(stats.ALPHA)}), a peak only when it beats both ends in the paired test."
            + (f" Other studies: seed {seed}, one run per configuration." if single else ""))

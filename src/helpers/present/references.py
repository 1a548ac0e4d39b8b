"""The reference studies' figures beside ours: a table and the sentences that say, per figure,
whether the reference lies inside our 95 % confidence interval over seeds, above it or below it.

A run carries its configuration's reference (``reference``, docs/records.md): the figures, their
source, the profile it ran under and what that profile reduced. One run gives no interval, so it
cannot reproduce a figure; a reduced profile (fewer samples or epochs) cannot be compared with a
full-data figure at all. Both are said, not glossed over.
"""
from __future__ import annotations

import html

import pandas as pd

from helpers.analysis import stats
from helpers.analysis.repeats import groups, values
from helpers.config.record import RESULTS, is_fold, is_refit
from helpers.present import format as fmt
from helpers.present.markup import table_html

NAMES = {"test_accuracy": "test accuracy", "val_accuracy": "validation accuracy",
         "train_accuracy": "training accuracy", "f1_macro": "macro F1", "roc_auc": "ROC AUC",
         "auc_ovr": "AUC (one-vs-rest)", "average_precision": "average precision"}
INSIDE, ABOVE, BELOW, ONE, NONE = "inside", "above", "below", "one run", "no run"
SUGGESTED_REPEATS = 3


def rows(records) -> list[dict]:
    """One row per (configuration, reference figure): our runs' summary and the verdict. Folds
    have no test split and are no configuration of their own: left out."""
    out = []
    for (_, label), rs in groups(r for r in records if not is_fold(r)).items():
        ref = next((r["reference"] for r in rs if r.get("reference")), None)
        if not ref:
            continue
        measured = [r for r in rs if r.get("status") in RESULTS]  # a diverged run is a result too
        for metric, figure in ref["figures"].items():
            ours = stats.summarize(values(measured, metric))
            low, high = max(ours["ci_low"], 0.0), min(ours["ci_high"], 1.0)  # accuracies lie in [0, 1]
            if ours["n"] == 0:
                verdict = NONE
            elif ours["n"] == 1:
                verdict = ONE
            else:
                verdict = ABOVE if figure > high else BELOW if figure < low else INSIDE
            out.append({"label": label, "metric": metric, "figure": figure, "source": ref["source"],
                        "note": ref.get("note", ""), "n": ours["n"], "runs": len(rs), "mean": ours["mean"],
                        "std": ours["std"], "low": low, "high": high, "verdict": verdict,
                        "profile": ref.get("profile"), "reduced": ref.get("reduced") or {},
                        "refit": any(is_refit(r) for r in rs)})
    return out


def _ours(row: dict) -> tuple[str, str]:
    if row["n"] == 0:
        return "—", "—"
    if row["n"] == 1:
        return fmt.acc(row["mean"]), "—"
    return f"{fmt.acc(row['mean'])} ± {fmt.acc(row['std'])}", f"[{fmt.acc(row['low'])}, {fmt.acc(row['high'])}]"


def _verdict_cell(row: dict) -> str:
    if row["reduced"]:
        return f"not comparable: {row['profile']} profile"
    return {INSIDE: "inside our CI", ABOVE: "above our CI", BELOW: "below our CI",
            ONE: "one run: no interval", NONE: "no run finished"}[row["verdict"]]


def frame(records) -> pd.DataFrame:
    """The table: configuration, figure, the reference and its source, ours, seeds, verdict."""
    out = []
    for row in rows(records):
        mean, ci = _ours(row)
        out.append({"configuration": row["label"], "figure": NAMES.get(row["metric"], row["metric"]),
                    "reference": f"{fmt.compact(row['figure'])} ({row['source']})", "ours (mean ± std)": mean,
                    "ours 95 % CI": ci, "seeds": f"{row['n']}/{row['runs']}", "reference lies": _verdict_cell(row)})
    return pd.DataFrame(out)


def reduction(row: dict) -> str:
    """What a reduced profile changed, in words: '12,000 training samples, at most 5 epochs'."""
    r = row["reduced"]
    parts = ([f"{fmt.count(r['train_samples'])} training samples"] * ("train_samples" in r)
             + [f"{fmt.count(r['test_samples'])} test samples"] * ("test_samples" in r)
             + [f"at most {r['epochs']} epoch{'s' * (r['epochs'] != 1)}"] * ("epochs" in r))
    return ", ".join(parts)


def sentence(row: dict) -> str:
    """What one reference figure and our runs say together (Markdown-free plain text with <b>)."""
    name = NAMES.get(row["metric"], row["metric"])
    label = f"<b>{html.escape(row['label'])}</b>"
    head = f"{html.escape(row['source'])} reports a {name} of {fmt.compact(row['figure'])} for {label}"
    if row["verdict"] == NONE:
        return f"{head}; no run of it finished here, so there is nothing to compare it with."
    diff = row["mean"] - row["figure"]
    apart = fmt.pp(diff) != fmt.pp(0.0)
    where = f"{fmt.pp(diff)} points {'above' if diff > 0 else 'below'} it" if apart else "equal to it"
    if row["verdict"] == ONE:
        how = ("A cross-validation study retrains its selected configuration once; train that configuration in "
               f"a study of its own with several seeds (<code>repeats: {SUGGESTED_REPEATS}</code>) to compare."
               if row["refit"] else
               f"Train the configuration over several seeds (<code>repeats: {SUGGESTED_REPEATS}</code>) to get an "
               "interval to compare it with.")
        return (f"{head}; our one run gives {fmt.acc(row['mean'])} ({where}). One run cannot reproduce a figure: it "
                f"says nothing about how much the result moves from seed to seed. {how}")
    ours = (f"over {row['n']} seeds ours is {fmt.acc(row['mean'])} ± {fmt.acc(row['std'])}, 95 % CI "
            f"[{fmt.acc(row['low'])}, {fmt.acc(row['high'])}]")
    if row["verdict"] == INSIDE:
        return f"{head}; {ours}: the reference lies inside our interval, so we reproduce it within the noise of {row['n']} seeds."
    edge = row["high"] if row["verdict"] == ABOVE else row["low"]
    ours_side = "lower" if row["verdict"] == ABOVE else "higher"
    return (f"{head}; {ours}: the reference lies {row['verdict']} our interval ({fmt.pp(row['figure'] - edge)} points "
            f"beyond its {'upper' if row['verdict'] == ABOVE else 'lower'} end), so we do not reproduce it: our "
            f"{name} is {ours_side}.")


def summary(records) -> str:
    """The sentences under the table: a reduced profile first (then nothing is compared), else one
    sentence per figure."""
    all_rows = rows(records)
    if not all_rows:
        return ""
    reduced = [r for r in all_rows if r["reduced"]]
    sources = ", ".join(dict.fromkeys(html.escape(r["source"]) for r in all_rows))
    if reduced:
        r = reduced[0]
        seeds = min(x["n"] for x in all_rows)
        return (f"This build uses the <b>{html.escape(str(r['profile']))}</b> profile ({reduction(r)}), a reduced "
                f"version of the data or training that {sources} used: its numbers cannot be compared with a "
                "full-data reference, and the table shows them side by side for orientation only. Build with "
                "<code>--profile full</code> to compare"
                + (f", with several seeds per configuration (<code>repeats: {SUGGESTED_REPEATS}</code>): one run "
                   "cannot reproduce a figure." if seeds < 2 else "."))
    inside = sum(r["verdict"] == INSIDE for r in all_rows)
    tested = sum(r["verdict"] in (INSIDE, ABOVE, BELOW) for r in all_rows)
    lead = (f"{inside} of {tested} reference figure{'s' * (tested != 1)} lie{'s' * (tested == 1)} inside our 95 % "
            "confidence interval over seeds. " if tested else "")
    notes = [f"{html.escape(r['label'])}: {html.escape(r['note'])}" for r in all_rows if r["note"]]
    return (lead + " ".join(sentence(r) for r in all_rows)
            + (" Notes on the references: " + "; ".join(dict.fromkeys(notes)) + "." if notes else ""))


def table(records) -> str:
    """The study's reference figures beside ours (HTML), or nothing when it reproduces none."""
    df = frame(records)
    if df.empty:
        return ""
    study = next((r.get("study") for r in records), "study")
    n = max(row["n"] for row in rows(records))
    caption = ("Reference figures beside ours: the reference study's figure and source, our mean ± standard "
               "deviation and the 95 % confidence interval of the mean (t distribution) over "
               + (f"up to {n} seeds" if n > 1 else "one seed, which gives no interval")
               + " (seeds = runs measured / trained), and where the reference lies relative to that interval.")
    body = df.to_html(index=False, classes="results references", na_rep="—", escape=True)
    return table_html(body, f"tab:{study}:references", caption) + f'<p class="references">{summary(records)}</p>'


"""What a cross-validation study's section shows (its notebook calls these as cv.<name>):
the design, the fold scores with mean ± std, a figure of them, the paired tests, the selected
configuration with its one test evaluation, and findings that never rank inside noise. Each
returns what a notebook cell displays (Markdown or HTML); ``.data`` is the text."""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown

from helpers.analysis import cv as cv_scores, stats
from helpers.config.record import RunRecord, Status, is_fold
from helpers.present import design as design_words, figures, format as fmt
from helpers.present.markup import figure_html, ref, see, table_html
from helpers.run.crossval import scores, selected as selected_variant, selection


def _shown(kind):
    """The function's text, wrapped as the notebook displays it."""
    return lambda fn: functools.wraps(fn)(lambda records: kind(fn(records)))

TESTS = {"t": "paired t-test", "wilcoxon": "Wilcoxon signed-rank test"}


def _study(records: list[RunRecord]) -> str:
    return records[0].get("study", "cv") if records else "cv"


@_shown(Markdown)
def design(records: list[RunRecord]) -> str:
    """Markdown: folds, sizes, what varied, the selection and refit rules."""
    folds = [r for r in records if is_fold(r)]
    if not folds:
        return "No cross-validation runs."
    k = cv_scores.n_folds(records)
    data = folds[0]["config"]["data"]
    info = next((r["data_info"] for r in folds if r.get("data_info")), None)
    refit = cv_scores.refit_record(records)
    sizes = ""
    if info:
        pool = info["train"] + info["val"]
        sizes = (f" of the **{pool:,}** training+validation samples (each fold trains on about "
                 f"{info['train']:,} and validates on about {info['val']:,})")
    test_n = (refit or {}).get("data_info", {}).get("test")
    test = (f"The **{test_n:,}** test samples are in no fold" if test_n else "The test split is in no fold")
    # The variants' own settings, without the fold bookkeeping.
    plain = [{**r, "data_info": None,
              "config": {**r["config"], "data": {k: v for k, v in data.items() if k not in ("fold", "folds")}}}
             for r in folds if r["axis"]["fold"] == 1]
    stop = folds[0]["config"]["training"].get("early_stopping")
    lines = [f"**Protocol**: {k}-fold stratified cross-validation{sizes}, shuffled with seed {data.get('seed')}. "
             "Every fold trains a freshly built, freshly initialised model. "
             f"{test}: only the selected configuration is evaluated on it, once, after it is chosen.",
             "", "**Score**: a fold's validation accuracy"
             + (" (of the restored best epoch: early stopping watches the same fold, which flatters every "
                "variant alike)" if stop else "") + ". **Selection**: the highest mean fold score; the test "
             "set plays no part in it.",
             "", design_words.design(plain)]
    return "\n".join(lines)


@_shown(HTML)
def table(records: list[RunRecord]) -> str:
    df = cv_scores.summary(records)
    if df.empty:
        return ""
    df = df.round(4)
    df["folds"] = df["folds"].astype("Int64")
    df.index.name = "configuration"
    study = _study(records)
    body = df.to_html(table_id=f"results-{study}", classes="results", na_rep="—", escape=True)
    return table_html(body, f"tab:{study}:results",
                      "Validation accuracy of each fold per configuration, with the mean and the standard "
                      "deviation over the folds (folds = folds that trained successfully).")


def fold_figure(records: list[RunRecord]):
    """Fold scores as points (one colour per fold), the mean as a bar with ± 1 std."""
    s = {v: f for v, f in scores(records).items() if f}
    if not s:
        return figures.empty()
    names = list(s)
    fig = figures.figure(height=min(4.5, max(2.6, 1.0 + 0.45 * len(names))))
    ax = fig.add_subplot()
    means = [float(np.mean(list(s[v].values()))) for v in names]
    stds = [stats.summarize(list(s[v].values()))["std"] for v in names]
    pos = np.arange(len(names))
    ax.barh(pos, means, height=0.6, color="#d9d9d9", edgecolor="#7f7f7f",
            xerr=[0 if math.isnan(e) else e for e in stds], capsize=4, label="mean ± std")
    k = cv_scores.n_folds(records)
    colours = figures.colours(k)
    for i, v in enumerate(names):
        for fold, score in s[v].items():
            jitter = (fold - (k + 1) / 2) / max(k, 1) * 0.4
            ax.plot(score, i + jitter, "o", color=colours[fold - 1], markersize=5,
                    label=f"fold {fold}" if i == 0 else None)
    values = [x for f in s.values() for x in f.values()]
    start, end = figures.zoomed_limits(values, text_room=0.1)
    ax.set_xlim(start, end)
    ax.set_yticks(pos, names)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("validation accuracy of the fold")
    figures.label_axis_start(ax, start, axis="x")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title(f"{k}-fold cross-validation: fold scores per configuration")
    return fig


@_shown(HTML)
def figure(records: list[RunRecord]) -> str:
    return figure_html(fold_figure(records), f"fig:{_study(records)}:folds",
                       "Validation accuracy of each fold (points, one colour per fold) and its mean over "
                       "the folds (bar, with ± 1 standard deviation) per configuration.")


def untested_reason(c: dict, test: str) -> str:
    """Why the selected variant was not tested against ``c``, for a table cell or a sentence."""
    n = c["n"]
    if c["untested"] == stats.CONSTANT:
        return (f"not tested: the difference was the same ({fmt.signed_pp(c['diff'])} points) on each of the {n} "
                f"folds both finished; with {n} folds an exact test cannot give p below {fmt.p(c['min_p'])}")
    return (f"not tested: it shares only {n} fold{'s' * (n != 1)} with the selected configuration, and the "
            f"{TESTS[test]} needs at least {stats.MIN_PAIRS[test]}")


@_shown(HTML)
def tests(records: list[RunRecord]) -> str:
    """The best variant against each other one, paired over the folds both finished, Holm-corrected."""
    c = cv_scores.comparison(records)
    if not c["comparisons"] and not c["untested"]:
        return "<p>Only one configuration has fold scores: there is nothing to compare.</p>"
    name = TESTS[c["test"]]
    rows = [{"best": c["best"], "against": r["label"], "difference (points)": fmt.points(r["diff"]),
             "folds": r["n"], "p": fmt.p(r["p"]), "p (Holm)": fmt.p(r["p_holm"]),
             "verdict": "significant" if r["significant"] else "within noise"} for r in c["comparisons"]]
    rows += [{"best": c["best"], "against": r["label"], "difference (points)": fmt.points(r["diff"]) if r["n"] else None,
              "folds": r["n"], "p": "—", "p (Holm)": "—", "verdict": untested_reason(r, c["test"])}
             for r in c["untested"]]
    body = pd.DataFrame(rows).to_html(classes="results", index=False, na_rep="—", escape=True)
    study = _study(records)
    n = len(c["comparisons"])
    return table_html(body, f"tab:{study}:tests",
                      f"The selected configuration against each other one: {name} over the folds both finished "
                      f"(two-sided), p-values Holm-corrected for the {n} comparison{'s' * (n != 1)} tested; "
                      f"significant means p (Holm) &lt; {fmt.p(stats.ALPHA)}.")


def _chosen_on(records: list[RunRecord]) -> tuple[str, str]:
    """How the selection's means were taken when not over every fold of every variant: (the folds
    compared, the variants that were no candidates); empty strings when nothing was left out."""
    sel, k = selection(records), cv_scores.n_folds(records)
    folds = (f"folds {', '.join(map(str, sel['folds']))}, the folds every candidate finished, so that no variant "
             "is averaged over easier folds than another" if len(sel["folds"]) < k else "")
    names = ", ".join(f"**{v}**" for v in sel["left_out"])
    left = (f"{names} finished too few folds to share two with the others and "
            f"{'was' if len(sel['left_out']) == 1 else 'were'} no candidate" if names else "")
    return folds, left


@_shown(Markdown)
def selected(records: list[RunRecord]) -> str:
    """Markdown: the selected configuration, how it was retrained, and its one test result."""
    best = selected_variant(records)
    if best is None:
        if any(scores(records).values()):
            return "No two configurations finished a common fold, so none was selected."
        return "No configuration finished its folds, so none was selected."
    sel = selection(records)
    s = stats.summarize(list(scores(records)[best].values()))
    refit = cv_scores.refit_record(records)
    spread = f" ± {fmt.acc(s['std'])}" if s["n"] > 1 else ""
    folds, left = _chosen_on(records)
    own = f"{fmt.acc(s['mean'])}{spread} over its {s['n']} fold{'s' * (s['n'] != 1)}"
    text = [f"**Selected: {best}**, the highest mean fold score"
            + (f": {fmt.acc(sel['means'][best])} over {folds} ({own.replace('over its', 'over all its')})." if folds
               else f" ({own}).")
            + (f" {left[0].upper()}{left[1:]}." if left else "")]
    if refit is None:
        return " ".join(text) + " It was not retrained."
    if refit.get("status") != Status.OK:
        return " ".join(text) + f" Its retraining failed: `{refit.get('error')}`."
    m, t = refit["metrics"], refit["config"]["training"]
    folds = [r for r in records if is_fold(r) and r.get("status") == Status.OK and r["axis"]["variant"] == best]
    stopped = any(r["config"]["training"].get("early_stopping") for r in folds)
    epochs = (f"for **{t['epochs']}** epochs (the rounded mean best epoch of its folds: "
              + ", ".join(str(r["metrics"]["best_epoch"]) for r in folds)
              + "; early stopping needs a validation split, and none is left)" if stopped
              else f"for {t['epochs']} epochs, as in its folds")
    text.append(f"It was retrained from a fresh initialisation on all {fmt.count(refit['data_info']['train'])} "
                f"training+validation samples {epochs}, then evaluated **once** on the "
                f"{fmt.count(refit['data_info']['test'])} test samples: **test accuracy {fmt.acc(m['test_accuracy'])}**"
                + (f", ROC AUC {fmt.acc(m['roc_auc'])}" if m.get("roc_auc") is not None else "")
                + f", macro F1 {fmt.acc(m['f1_macro'])} (training accuracy {fmt.acc(m['train_accuracy'])}, "
                f"{fmt.count(m['params'])} parameters, {m['seconds']:.1f} s).")
    text.append("Elsewhere in this report its validation accuracy is the cross-validated mean above.")
    return " ".join(text)


@_shown(Markdown)
def findings(records: list[RunRecord]) -> str:
    """Markdown: what the folds show, never ranking inside noise nor calling untested "within noise"."""
    c = cv_scores.comparison(records)
    if c["best"] is None:
        if any(scores(records).values()):
            return "No two configurations finished a common fold, so none was selected and there are no findings."
        return "No fold finished successfully, so there are no findings."
    study, best = _study(records), c["best"]
    mean = {v: float(np.mean(list(f.values()))) for v, f in scores(records).items() if f}
    parts = [f"{ref(f'tab:{study}:results')} lists every fold{see(f'fig:{study}:folds')}."]
    name = TESTS[c["test"]]
    rows = sorted(c["comparisons"], key=lambda r: r["diff"])
    if not rows and not c["untested"]:
        parts.append(f"**{best}** is the only configuration with fold scores (mean {fmt.acc(mean[best])}).")
    elif rows:
        up = rows[0]  # the runner-up on the folds both finished
        on = f"{fmt.acc(up['mean_best'])} against {fmt.acc(up['mean'])} over the {up['n']} folds both finished"
        if up["significant"]:
            parts.append(f"**{best}** has the highest mean fold score and beats the runner-up **{up['label']}** by "
                         f"{fmt.pp(up['diff'])} points on the same folds ({on}; {name}, {fmt.p_is(up['p_holm'])}).")
        else:
            parts.append(f"**{best}** and **{up['label']}** are within noise: the {fmt.pp(up['diff'])}-point difference "
                         f"({on}) is not significant ({name}, {fmt.p_is(up['p'], 'p')}, {fmt.p_is(up['p_holm'])}), "
                         f"so no ranking is claimed between them; {best} was retrained only because its mean is higher.")
        sig = [r["label"] for r in rows[1:] if r["significant"]]
        noise = [r["label"] for r in rows[1:] if not r["significant"]]
        if sig:
            parts.append(f"It is significantly better than {', '.join(f'**{x}**' for x in sig)}.")
        if noise:
            parts.append(f"{', '.join(f'**{x}**' for x in noise)} {'is' if len(noise) == 1 else 'are'} also "
                         "within noise of it.")
        n = max(r["n"] for r in rows)
        if c["test"] == "wilcoxon" and cv_scores.min_wilcoxon_p(n) >= stats.ALPHA:
            parts.append(f"With {n} folds the two-sided signed-rank test cannot give p below "
                         f"{fmt.p(cv_scores.min_wilcoxon_p(n))}, so it cannot call any difference significant: "
                         "use more folds or the paired t-test.")
    for r in c["untested"]:
        why = untested_reason(r, c["test"]).removeprefix("not tested: ")
        parts.append(f"**{r['label']}** could not be tested against **{best}**: {why}; no ranking is claimed "
                     "between them.")
    if rows or c["untested"]:
        parts.append("Fold scores share most of their training data, so they are not independent and these "
                     "p-values are, if anything, too small.")
    folds, left = _chosen_on(records)
    if folds or left:
        parts.append("The selection compared " + "; ".join([f"means over {folds}"] * bool(folds) + [left] * bool(left)) + ".")
    refit = cv_scores.refit_record(records)
    if refit and refit.get("status") == Status.OK:
        m = refit["metrics"]
        parts.append(f"Retrained on all training data, {best} scores **{fmt.acc(m['test_accuracy'])}** on the test set "
                     f"(cross-validated estimate {fmt.acc(mean[best])}); that single number is the unbiased estimate "
                     "of the selected configuration, and it chose nothing.")
    failed = [r["label"] for r in records if r.get("status") != Status.OK]
    if failed:
        parts.append(f"{len(failed)} run{'s' * (len(failed) != 1)} failed ({', '.join(failed)}) and "
                     f"{'is' if len(failed) == 1 else 'are'} left out.")
    return " ".join(parts)


def abstract_note(records: list[RunRecord]) -> str:
    """A sentence for the abstract, whose counts leave folds out (a fold is no configuration)."""
    folds = [r for r in records if is_fold(r)]
    if not folds:
        return ""
    studies = list(dict.fromkeys(r.get("study") for r in folds))
    failed = sum(r.get("status") != Status.OK for r in folds)
    return (f" Cross-validation ({', '.join(f'*{s}*' for s in studies)}) adds {len(folds)} fold runs, not counted "
            "above: they score configurations on folds of the training data and never touch the test set"
            + (f"; {failed} of them failed." if failed else "."))

"""The report's words across studies: the abstract's headline numbers and the conclusions with
future work derived from the results."""
from __future__ import annotations

from collections.abc import Iterable

from helpers.analysis import repeats
from helpers.analysis.records import (
    best,
    by_study,
    chance as chance_rate,
    diverged as diverged_runs,
    gap as gap_of,
    metric,
    ok as successful,
    ranked as ranked_runs,
)
from helpers.config import kinds
from helpers.config.record import RunRecord
from helpers.present import format as fmt, repeats as repeat_words, trends
from helpers.present.findings import headline
from helpers.present.trends import GAP_CLEAR


def abstract(records: Iterable[RunRecord]) -> str:
    """Short paragraph of headline numbers across all studies."""
    records = list(records)
    if not records:
        return "No runs to report."
    ok = successful(records)
    studies = by_study(records)
    datasets = list(dict.fromkeys(d for r in records if (d := r.get("config", {}).get("data", {}).get("dataset"))))
    on = f" on `{'`, `'.join(datasets)}`" if datasets else ""
    n_div = len(diverged_runs(records))
    failed = len(records) - len(ok) - n_div
    lost = " and ".join(w for w in (f"{failed} failed" if failed else "", f"{n_div} diverged" if n_div else "") if w)
    parts = [f"This report covers {len(studies)} {'study' if len(studies) == 1 else 'studies'} with "
             f"{len(records)} training runs{on}" + (f", of which {lost}." if lost else ".")]
    several = repeats.repeated_studies(ok)
    if several:
        ok = successful(repeats.collapse(ok))
        used = sorted({s for ss in several.values() for s in ss})  # not the single-seed studies' seed
        counts = {len(ss) for ss in several.values()}
        n = f"{counts.pop()} seeds" if len(counts) == 1 else "several seeds"
        if len(several) == len(studies):
            parts.append(f"Each configuration was trained with {n}; the numbers below are means over them.")
        else:
            parts.append(f"In the {', '.join(f'*{s}*' for s in several)} stud{'y' if len(several) == 1 else 'ies'} "
                         f"each configuration was trained with {n} ({', '.join(map(str, used))}); "
                         f"{'its' if len(several) == 1 else 'their'} numbers below are means over them, and the other "
                         "studies ran once per configuration.")
    b = best(ok)
    if b is None:
        return parts[0] + " No run finished successfully."
    parts.append(f"The best configuration overall, selected by validation accuracy, is **{b['label']}** "
                 f"from the *{b.get('study')}* study (validation {fmt.acc(metric(b, 'val_accuracy'))}, "
                 f"test {fmt.acc(metric(b, 'test_accuracy'))}).")
    # runs stuck near chance (e.g. a diverged learning rate) would make the range meaningless
    chance = chance_rate(ok)
    floor = chance + (metric(b, "val_accuracy") - chance) / 2
    sensible = [r for r in ok if metric(r, "val_accuracy") >= floor]
    tests = [metric(r, "test_accuracy") for r in sensible]
    excluded = len(ok) - len(sensible)
    parts.append(f"Test accuracy of the successful configurations ranges from {fmt.acc(min(tests))} to {fmt.acc(max(tests))}"
                 + (f" ({excluded} {'configuration' if several else 'run'}{'s' if excluded > 1 else ''} stuck near "
                    "chance level excluded)." if excluded else "."))
    ranked = {study: ranked_runs(rs) for study, rs in by_study(sensible).items()
              if not kinds.after_others(rs[0].get("kind"))}  # it re-trains other studies' best: not a factor
    spreads = sorted(((metric(rs[0], "val_accuracy") - metric(rs[-1], "val_accuracy"), study, rs[0], rs[-1])
                      for study, rs in ranked.items() if len(rs) > 1), key=lambda t: -t[0])
    if spreads:
        d, study, hi, lo = spreads[0]
        parts.append(f"The largest effect comes from the *{study}* study, where validation accuracy spans "
                     f"{fmt.pp(d)} percentage points ({lo['label']} to {hi['label']}).")
        if len(spreads) > 1:
            d, study, *_ = spreads[-1]
            parts.append(f"The *{study}* study matters least ({fmt.pp(d)} percentage points).")
    return " ".join(parts)


def conclusions(records: Iterable[RunRecord]) -> str:
    """Markdown bullets: one per study, then future work derived from the results."""
    records = list(records)
    if not records:
        return "- No runs to report."
    bullets, close_calls, plateaus, edges = [], 0, [], []
    for study, rs in by_study(records).items():
        ok = successful(rs)
        if not ok:
            bullets.append(f"- **{study}**: no successful runs ({len(rs)} failed or diverged).")
            continue
        several = repeats.repeated(ok)
        headline_text, tied = repeat_words.headline(ok) if several else headline(ok)
        ok = successful(repeats.collapse(ok))
        close_calls += tied and not several
        shape, trend = trends.trend(ok)
        trend = "" if several and tied else trend  # a trend through differences within noise is no finding
        plateaus += [study] if shape in ("plateau", "flat") else []
        edge = trends.edge(ok)
        # "keeps improving towards that end" would rank the best above a runner-up within noise
        edges += [(study, *edge)] if edge and shape in ("rises", "falls") and not tied else []
        bullets.append(f"- **{study}**: {headline_text} {trend}".rstrip())
    ok = successful(records)
    future = []
    kind = lambda r: r.get("config", {}).get("model", {}).get("kind")  # noqa: E731
    cnn, dense = best([r for r in ok if kind(r) == "cnn"]), best([r for r in ok if kind(r) != "cnn"])
    if cnn and dense and metric(cnn, "val_accuracy") > metric(dense, "val_accuracy"):
        diff = metric(cnn, "val_accuracy") - metric(dense, "val_accuracy")
        future.append(f"- The convolutional model **{cnn['label']}** beats the best dense model by {fmt.pp(diff)} "
                      f"percentage points of validation accuracy: study CNN depth, filters and data augmentation next.")
    elif not cnn and plateaus:
        future.append(f"- Validation accuracy plateaus in the {', '.join(f'*{s}*' for s in plateaus)} "
                      f"{'study' if len(plateaus) == 1 else 'studies'}: a convolutional network or data "
                      f"augmentation is the likely next step for higher accuracy.")
    if ok:
        worst = max(ok, key=gap_of)
        if gap_of(worst) >= GAP_CLEAR:
            future.append(f"- The largest train–validation gap is {fmt.pp(gap_of(worst))} percentage points "
                          f"(**{worst['label']}**): try more regularization (dropout, L2, early stopping) or more data.")
    for study, key, value, side in edges:
        future.append(f"- In the *{study}* study the best `{key}` is the {side} value tried ({fmt.compact(value)}) "
                      f"and accuracy keeps improving towards that end: extend the "
                      f"range {'above' if side == 'largest' else 'below'} {fmt.compact(value)}.")
    pairs = [(r.get("study"), r.get("label")) for r in records if not kinds.after_others(r.get("kind"))]
    if len(pairs) == len(set(pairs)):
        close = f"; {close_calls} {'study has' if close_calls == 1 else 'studies have'} a best and runner-up within " \
                f"1 point that only repeats could separate" if close_calls else ""
        outside = any(kinds.after_others(r.get("kind")) for r in records)  # it did repeat its configurations
        future.append(f"- {'Outside the robustness study, each' if outside else 'Each'} configuration was trained "
                      f"with a single seed: repeat runs over several seeds to get error bars{close}.")
    div = diverged_runs(records)
    failed = len(records) - len(ok) - len(div)
    if div:
        future.append(f"- {len(div)} run{'s' if len(div) > 1 else ''} diverged ("
                      + ", ".join(f"{r.get('label')} in *{r.get('study')}*" for r in div)
                      + "): a smaller learning rate or a better-scaled initializer would let "
                      + ("it" if len(div) == 1 else "them") + " train.")
    if failed:
        future.append(f"- {failed} run{'s' if failed > 1 else ''} failed: check the error messages and rerun.")
    return "\n".join(bullets + (["", "**Future work**", ""] + future if future else []))

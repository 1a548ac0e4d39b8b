"""The report's words across studies: the abstract's headline numbers and the conclusions with
future work derived from the results."""
from __future__ import annotations

from collections.abc import Iterable

from helpers.analysis import noise, repeats
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
from helpers.config.record import RunRecord, is_refit
from helpers.present import format as fmt, repeats as repeat_words, trends
from helpers.present.findings import headline
from helpers.present.trends import GAP_CLEAR, MORE


def effects(spreads: list[tuple], floor: float) -> list[str]:
    """Sentences on which study moves validation accuracy most and least. ``spreads``: (best −
    worst, study, ...) largest first. "Largest" and "least" are comparisons between studies, so
    each is said only when it stands out from the next by the noise floor."""
    if not spreads:
        return []
    d, study, hi, lo = spreads[0][:4]
    if d < floor:
        return [f"No study moves validation accuracy by more than the noise floor of {fmt.pp(floor)} points, so "
                f"the data cannot tell which factor matters ({MORE})."]
    if len(spreads) > 1 and d - spreads[1][0] < floor:
        out = [f"The *{study}* and *{spreads[1][1]}* studies move validation accuracy most ({fmt.pp(d)} and "
               f"{fmt.pp(spreads[1][0])} percentage points); they differ by less than the noise floor of "
               f"{fmt.pp(floor)} points, so neither is called the largest effect."]
    else:
        out = [f"The largest effect comes from the *{study}* study, where validation accuracy spans "
               f"{fmt.pp(d)} percentage points ({lo['label']} to {hi['label']})."]
    quiet = [s for dd, s, *_ in spreads if dd < floor]
    if quiet:
        out.append(f"In the {', '.join(f'*{s}*' for s in quiet)} stud{'y' if len(quiet) == 1 else 'ies'} validation "
                   f"accuracy moves by less than the noise floor ({fmt.pp(floor)} points): "
                   f"{'that factor' if len(quiet) == 1 else 'those factors'} did not measurably matter here.")
    elif len(spreads) > 2 and spreads[-2][0] - spreads[-1][0] >= floor:
        out.append(f"The *{spreads[-1][1]}* study matters least ({fmt.pp(spreads[-1][0])} percentage points).")
    return out


def _refits(refits: list[RunRecord]) -> str:
    """A cv refit's validation figure is a mean over folds: told apart, never ranked with single splits."""
    return " ".join(f"The *{r.get('study')}* study's cross-validated choice, **{r['label']}**, retrained on training "
                    f"and validation data, reaches test accuracy {fmt.acc(metric(r, 'test_accuracy'))}; its "
                    f"validation figure is a mean over folds ({fmt.acc(metric(r, 'val_accuracy'))}), so it is not "
                    "ranked with the single-split runs above." for r in refits)


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
        # every run, failed seeds included: a configuration that lost a seed is never best
        ok = repeats.eligible(repeats.collapse(records))
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
    refits = [r for r in ok if is_refit(r)]
    ok = [r for r in ok if not is_refit(r)]
    b = best(ok)
    if b is None:
        return " ".join([parts[0], _refits(refits) or "No run finished successfully."])
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
    parts += effects(spreads, noise.floor(records))  # the Methodology's floor: every record's
    parts.append(_refits(refits))
    return " ".join(p for p in parts if p)


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
        floor = noise.floor(ok)
        # several seeds: the headline sees failed and diverged seeds, the trend needs its own test
        headline_text, tied = repeat_words.headline(rs) if several else headline(ok, floor)
        ok = successful(repeats.collapse(ok))
        close_calls += tied and not several
        shape, trend = repeat_words.trend(rs) if several else trends.trend(ok, floor)
        plateaus += [study] if shape == "plateau" else []
        edge = trends.edge(ok)
        # "keeps improving towards that end" would rank the best above a runner-up within noise, and
        # only follows when the curve climbs towards the end the best sits at
        toward = {"rises": "largest", "falls": "smallest"}.get(shape)
        edges += [(study, *edge)] if edge and edge[2] == toward and not tied else []
        bullets.append(f"- **{study}**: {headline_text} {trend}".rstrip())
    ok = successful(records)
    future = []
    kind = lambda r: r.get("config", {}).get("model", {}).get("kind")  # noqa: E731
    single = [r for r in ok if not is_refit(r)]  # a refit's validation figure is a mean over folds
    cnn, dense = best([r for r in single if kind(r) == "cnn"]), best([r for r in single if kind(r) != "cnn"])
    diff = metric(cnn, "val_accuracy") - metric(dense, "val_accuracy") if cnn and dense else 0.0
    if cnn and dense and diff >= noise.floor([cnn, dense]):
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
                f"the noise floor that only repeats could separate" if close_calls else ""
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

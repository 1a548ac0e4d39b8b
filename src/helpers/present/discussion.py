"""The Discussion across studies: which factors mattered most and least, the overfitting pattern,
cost against accuracy, and what the report's seeds allow it to claim."""
from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd

from helpers.analysis import repeats, stats
from helpers.analysis.records import (
    best,
    by_study,
    chance as chance_rate,
    gap as gap_of,
    metric,
    ok as successful,
    ranked as ranked_runs,
)
from helpers.config import kinds
from helpers.config.record import RunRecord
from helpers.present import format as fmt, repeats as repeat_words
from helpers.present.design import flatten
from helpers.present.markup import ref, see
from helpers.present.trends import GAP_MILD, NOISE

REGULARIZERS = {"model.dropout", "model.dropout_kind", "model.l1", "model.l2", "model.batch_norm",
                "model.conv_dropout"}



def varied(records: list[RunRecord]) -> set[str]:
    flats = [flatten(r.get("config", {})) for r in records]
    keys = {k for f in flats for k in f}
    return {k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1}


def _regularized(rec: dict) -> bool:
    m = rec.get("config", {}).get("model", {})
    return bool(m.get("dropout") or m.get("l1") or m.get("l2") or m.get("batch_norm") or m.get("conv_dropout"))


def _what_mattered(groups: dict[str, list[dict]], links: bool) -> str:
    spreads = sorted(((metric(rs[0], "val_accuracy") - metric(rs[-1], "val_accuracy"), study, rs[0], rs[-1])
                      for study, rs in groups.items() if len(rs) > 1), key=lambda t: -t[0])
    if not spreads:
        return ""
    table = f" ({ref('tab:summary')} gives each study's best configuration)" if links else ""
    order = ", ".join(f"*{study}* ({fmt.pp(d)})" for d, study, *_ in spreads)
    parts = [f"Ranked by how far validation accuracy moves between a study's best and worst configuration, "
             f"in percentage points, the factors order as {order}{table}."]
    d, study, hi, lo = spreads[0]
    parts.append(f"The *{study}* study shows the largest effect: from **{lo['label']}** to **{hi['label']}** validation "
                 f"accuracy changes by {fmt.pp(d)} points{see(f'tab:{study}:results') if links else ''}.")
    if len(spreads) > 1 and spreads[-1][0] >= NOISE:
        parts.append(f"The *{spreads[-1][1]}* study matters least ({fmt.pp(spreads[-1][0])} points).")
    quiet = [study for d, study, *_ in spreads if d < NOISE]
    if quiet and len(quiet) == len(spreads):
        parts.append("No factor moves validation accuracy by more than 1 point, which is within the run-to-run "
                     "noise of a single seed: at this data size and training length none measurably matters.")
    elif quiet:
        parts.append(f"In {'the ' + quiet[0] if len(quiet) == 1 else ', '.join(quiet[:-1]) + ' and ' + quiet[-1]} "
                     f"{'study' if len(quiet) == 1 else 'studies'} every configuration lies within 1 point of the "
                     f"others, within single-seed noise: {'that factor' if len(quiet) == 1 else 'those factors'} "
                     "did not measurably matter here.")
    return " ".join(parts)


def _overfitting(ok: list[dict], links: bool) -> str:
    gaps = [gap_of(r) for r in ok]
    worst = max(ok, key=gap_of)
    median = float(pd.Series(gaps).median())
    parts = [f"Across all {len(ok)} successful runs the train–validation gap ranges from "
             f"{'−' if min(gaps) < 0 else ''}{fmt.pp(min(gaps))} to {fmt.pp(max(gaps))} percentage points "
             f"(median {'−' if median < 0 else ''}{fmt.pp(median)}); the largest is **{worst['label']}** in the "
             f"*{worst.get('study')}* study"
             + (see(f"fig:{worst.get('study')}:splits", f"fig:{worst.get('study')}:curves") if links else "") + "."]
    if max(gaps) < GAP_MILD:
        parts.append("No run overfits noticeably: the training is too short, or the models too small, for "
                     "the training accuracy to pull away from the validation accuracy.")
    params = [metric(r, "params") for r in ok]
    rho = stats.rank_corr(params, gaps)
    if len(ok) >= 5 and rho == rho:
        parts.append(("Larger models overfit more" if rho >= 0.5 else "Smaller models show the larger gaps"
                      if rho <= -0.5 else "The gap is not driven by model size")
                     + f" (rank correlation between parameter count and gap: {fmt.signed(rho)}).")
    # Only studies whose configurations differ in regularization alone compare like with like.
    studies = {study for study, rs in by_study(ok).items()
               if any(_regularized(r) for r in rs) and any(not _regularized(r) for r in rs)
               and (rs[0].get("kind") == "regularization" or varied(rs) <= REGULARIZERS)}
    reg = [gap_of(r) for r in ok if _regularized(r) and r.get("study") in studies]
    plain = [gap_of(r) for r in ok if not _regularized(r) and r.get("study") in studies]
    if reg and plain:
        mr, mp = float(pd.Series(reg).median()), float(pd.Series(plain).median())
        parts.append(f"Regularized configurations have a median gap of {'−' if mr < 0 else ''}{fmt.pp(mr)} points "
                     f"against {'−' if mp < 0 else ''}{fmt.pp(mp)} for the unregularized ones in the same studies"
                     + (": regularization narrows the gap." if mr < mp - 0.005 else
                        ": at this training length regularization makes little difference to it."))
    return " ".join(parts)


def _cost(ok: list[dict], links: bool) -> str:
    if not all("seconds" in r.get("metrics", {}) and "params" in r.get("metrics", {}) for r in ok):
        return ""
    b = best(ok)
    close = [r for r in ok if metric(r, "val_accuracy") >= metric(b, "val_accuracy") - NOISE]
    cheap = min(close, key=lambda r: (metric(r, "seconds"), metric(r, "params"), r is not b))
    what = lambda r: (f"**{r['label']}** (*{r.get('study')}*, {fmt.count(metric(r, 'params'))} parameters, "  # noqa: E731
                      f"{metric(r, 'seconds'):.1f} s)")
    parts = [f"The best configuration overall is {what(b)}."]
    if cheap is not b and metric(b, "seconds") >= 1.1 * metric(cheap, "seconds"):
        parts.append(f"The fastest to train within 1 point of it is {what(cheap)}: "
                     f"{metric(b, 'seconds') / max(metric(cheap, 'seconds'), 1e-9):.1f} times faster for "
                     f"{fmt.pp(metric(b, 'val_accuracy') - metric(cheap, 'val_accuracy'))} points of validation accuracy.")
    else:
        parts.append("No configuration within 1 point of it trains noticeably faster.")
    rho = stats.rank_corr([metric(r, "seconds") for r in ok], [metric(r, "val_accuracy") for r in ok])
    if len(ok) >= 5 and rho == rho:
        parts.append("Longer training buys accuracy" if rho >= 0.5 else "Training time and accuracy are unrelated"
                     if abs(rho) < 0.5 else "The slower configurations are the less accurate ones")
        parts[-1] += f" across the runs (rank correlation {fmt.signed(rho)})."
    ratios = sorted(((max(metric(r, "seconds") for r in rs) / max(min(metric(r, "seconds") for r in rs), 1e-9), study)
                     for study, rs in by_study(ok).items() if len(rs) > 1), reverse=True)
    if ratios and ratios[0][0] >= 1.5:
        ratio, study = ratios[0]
        parts.append(f"Time varies most in the *{study}* study: the slowest configuration takes {ratio:.1f} times "
                     f"as long as the fastest"
                     + (see(f"fig:{study}:versus-seconds", f"tab:{study}:results") if links else "") + ".")
    return " ".join(parts)


def discussion(records: Iterable[RunRecord], links: bool = False) -> str:
    """Markdown paragraphs across studies: which factors mattered most and least, the overfitting
    pattern, and cost against accuracy. ``links``: refer to tables and figures (see ``ref``)."""
    records = list(records)
    # the robustness study repeats other studies' configurations: it is not a factor of its own
    raw = [r for r in records if not kinds.after_others(r.get("kind"))]
    ok = successful(repeats.collapse(raw))
    if not ok:
        return "No run finished successfully, so there is nothing to discuss."
    chance = chance_rate(ok)
    b = best(ok)
    floor = chance + (metric(b, "val_accuracy") - chance) / 2
    sensible = [r for r in ok if metric(r, "val_accuracy") >= floor]
    groups = {study: ranked_runs(rs) for study, rs in by_study(sensible).items()}
    stuck = [r for r in ok if metric(r, "val_accuracy") < floor]
    paragraphs = [_what_mattered(groups, links)]
    if stuck:
        names = ", ".join(f"**{r['label']}** (*{r.get('study')}*)" for r in stuck)
        lead = "Left out of this ranking, as configurations that" if paragraphs[-1] else "Some configurations"
        paragraphs[-1] += (f" {lead} failed to train (validation "
                           f"accuracy below {fmt.acc(floor)}, halfway between chance, {fmt.acc(chance)}, and the best): "
                           f"{names}. Such a failure says more about its settings than about the factor.")
    paragraphs += [_overfitting(successful(raw), links), _cost(ok, links), _seeds_paragraph(records)]
    return "\n\n".join(p.strip() for p in paragraphs if p.strip())


def _seeds_paragraph(records: list[RunRecord]) -> str:
    """What the report's seeds allow: tests where studies repeat their runs, the 1-point rule where not."""
    several = repeats.repeated_studies(records)
    one = len(several) == 1 and len(by_study(records)) > 1
    whose = "its" if one else "each study's"
    tests = (f"{whose} findings test its best configuration against the others "
             f"({repeat_words.TEST_NAME}, Holm-corrected); differences that test does not find are called within noise")
    if not several:
        return ("Each configuration was trained once, with one seed: differences below about 1 point are within "
                "the run-to-run noise and are not claimed as effects anywhere in this report.")
    used = ", ".join(map(str, sorted({s for ss in several.values() for s in ss})))
    if len(several) == len(by_study(records)):
        return f"Configurations were trained over several seeds ({used}): the numbers above are means, and {tests}."
    return (f"The {', '.join(f'*{s}*' for s in several)} stud{'y' if len(several) == 1 else 'ies'} trained "
            f"{'its' if len(several) == 1 else 'their'} configurations over several seeds ({used}): "
            f"{'its' if len(several) == 1 else 'their'} numbers are means, and {tests}. The other studies trained "
            "each configuration once: differences there below about 1 point are within the run-to-run noise and "
            "are not claimed as effects.")

"""The Discussion across studies: which factors mattered most and least, the overfitting pattern,
cost against accuracy, and what the report's seeds allow it to claim."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable

import pandas as pd

from helpers.analysis import noise, repeats
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
from helpers.config.record import RunRecord, is_refit
from helpers.present import format as fmt, repeats as repeat_words
from helpers.present.design import flatten
from helpers.present.markup import ref, see
from helpers.present.overview import effects
from helpers.present.trends import GAP_MILD, MORE

REGULARIZERS = {"model.dropout", "model.dropout_kind", "model.l1", "model.l2", "model.batch_norm",
                "model.conv_dropout"}



def varied(records: list[RunRecord]) -> set[str]:
    flats = [flatten(r.get("config", {})) for r in records]
    keys = {k for f in flats for k in f}
    return {k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1}


def _regularized(rec: dict) -> bool:
    m = rec.get("config", {}).get("model", {})
    return bool(m.get("dropout") or m.get("l1") or m.get("l2") or m.get("batch_norm") or m.get("conv_dropout"))


def _what_mattered(groups: dict[str, list[dict]], floor: float, links: bool) -> str:
    spreads = sorted(((metric(rs[0], "val_accuracy") - metric(rs[-1], "val_accuracy"), study, rs[0], rs[-1])
                      for study, rs in groups.items() if len(rs) > 1), key=lambda t: -t[0])
    if not spreads:
        return ""
    table = f" ({ref('tab:summary')} gives each study's best configuration)" if links else ""
    order = ", ".join(f"*{study}* ({fmt.pp(d)})" for d, study, *_ in spreads)
    parts = [f"Ranked by how far validation accuracy moves between a study's best and worst configuration, "
             f"in percentage points, the factors order as {order}{table}; neighbours in this order that differ "
             f"by less than the noise floor ({fmt.pp(floor)} points) are not ranked."]
    d, study, hi, lo = spreads[0]
    said = effects(spreads, floor)
    if said and said[0].startswith("The largest effect"):  # the same claim, with the configurations named
        said[0] = (f"The *{study}* study shows the largest effect: from **{lo['label']}** to **{hi['label']}** validation "
                   f"accuracy changes by {fmt.pp(d)} points{see(f'tab:{study}:results') if links else ''}.")
    return " ".join(parts + said)


def _overfitting(ok: list[dict], floor: float, links: bool) -> str:
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
    rho, p, significant = noise.correlated(params, gaps)
    if len(ok) >= noise.MIN_POINTS and not math.isnan(rho):
        told = f"rank correlation between parameter count and gap {fmt.signed(rho)}, {fmt.p_is(p, 'p')}, {len(ok)} runs"
        if significant and max(gaps) - min(gaps) >= floor:
            parts.append(("Larger models overfit more" if rho > 0 else "Smaller models show the larger gaps") + f" ({told}).")
        else:
            parts.append(f"The data cannot tell whether model size drives the gap ({told}; gaps that differ by less "
                         f"than {fmt.pp(floor)} points, or a p of {noise.ALPHA:g} or more, are not claimed).")
    # Only studies whose configurations differ in regularization alone compare like with like.
    studies = {study for study, rs in by_study(ok).items()
               if any(_regularized(r) for r in rs) and any(not _regularized(r) for r in rs)
               and (rs[0].get("kind") == "regularization" or varied(rs) <= REGULARIZERS)}
    reg = [gap_of(r) for r in ok if _regularized(r) and r.get("study") in studies]
    plain = [gap_of(r) for r in ok if not _regularized(r) and r.get("study") in studies]
    if reg and plain:
        mr, mp = float(pd.Series(reg).median()), float(pd.Series(plain).median())
        parts.append(f"Regularized configurations have a median gap of {fmt.signed_pp(mr)} points "
                     f"against {fmt.signed_pp(mp)} for the unregularized ones in the same studies"
                     + (": regularization narrows the gap." if mr <= mp - floor else
                        ": the regularized ones overfit more." if mr >= mp + floor else
                        f": the two differ by less than the noise floor ({fmt.pp(floor)} points), so the data "
                        f"cannot tell whether regularization changes the gap ({MORE})."))
    return " ".join(parts)


def _cost(ok: list[dict], floor: float, links: bool) -> str:
    if not all("seconds" in r.get("metrics", {}) and "params" in r.get("metrics", {}) for r in ok):
        return ""
    ok = [r for r in ok if not is_refit(r)]  # a refit's validation figure is a mean over folds
    b = best(ok)
    if b is None:
        return ""
    close = [r for r in ok if metric(r, "val_accuracy") > metric(b, "val_accuracy") - floor]
    cheap = min(close, key=lambda r: (metric(r, "seconds"), metric(r, "params"), r is not b))
    what = lambda r: (f"**{r['label']}** (*{r.get('study')}*, {fmt.count(metric(r, 'params'))} parameters, "  # noqa: E731
                      f"{metric(r, 'seconds'):.1f} s)")
    parts = [f"The best configuration overall is {what(b)}."]
    if cheap is not b and metric(b, "seconds") >= 1.1 * metric(cheap, "seconds"):
        parts.append(f"The fastest to train within the noise floor ({fmt.pp(floor)} points) of it is {what(cheap)}: "
                     f"{metric(b, 'seconds') / max(metric(cheap, 'seconds'), 1e-9):.1f} times faster for "
                     f"{fmt.pp(metric(b, 'val_accuracy') - metric(cheap, 'val_accuracy'))} points of validation accuracy.")
    else:
        parts.append(f"No configuration within the noise floor ({fmt.pp(floor)} points) of it trains noticeably faster.")
    accs = [metric(r, "val_accuracy") for r in ok]
    rho, p, significant = noise.correlated([metric(r, "seconds") for r in ok], accs)
    if len(ok) >= noise.MIN_POINTS and not math.isnan(rho):
        told = f"rank correlation {fmt.signed(rho)}, {fmt.p_is(p, 'p')}, {len(ok)} runs"
        parts.append((("Longer training buys accuracy" if rho > 0 else "The slower configurations are the less "
                       "accurate ones") + f" across the runs ({told}).")
                     if significant and max(accs) - min(accs) >= floor else
                     f"The data cannot tell whether longer training buys accuracy ({told}).")
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
    # the best is chosen among configurations whose seeds all finished (the survivors alone could be lucky)
    b = best(repeats.eligible(repeats.collapse(raw))) or best(ok)
    floor = chance + (metric(b, "val_accuracy") - chance) / 2
    sensible = [r for r in ok if metric(r, "val_accuracy") >= floor]
    groups = {study: ranked_runs(rs) for study, rs in by_study(sensible).items()}
    stuck = [r for r in ok if metric(r, "val_accuracy") < floor]
    # one floor for the whole section, the one the Methodology states (noise.floor of every record)
    floor = noise.floor(records)
    paragraphs = [_what_mattered(groups, floor, links)]
    if stuck:
        names = ", ".join(f"**{r['label']}** (*{r.get('study')}*)" for r in stuck)
        lead = "Left out of this ranking, as configurations that" if paragraphs[-1] else "Some configurations"
        paragraphs[-1] += (f" {lead} failed to train (validation "
                           f"accuracy below {fmt.acc(floor)}, halfway between chance, {fmt.acc(chance)}, and the best): "
                           f"{names}. Such a failure says more about its settings than about the factor.")
    paragraphs += [_overfitting(successful(raw), floor, links), _cost(ok, floor, links), _seeds_paragraph(records)]
    return "\n\n".join(p.strip() for p in paragraphs if p.strip())


def _seeds_paragraph(records: list[RunRecord]) -> str:
    """What the report's seeds allow: tests where studies repeat their runs, the 1-point rule where not."""
    several = repeats.repeated_studies(records)
    one = len(several) == 1 and len(by_study(records)) > 1
    whose = "its" if one else "each study's"
    tests = (f"{whose} findings test its best configuration against the others "
             f"({repeat_words.TEST_NAME}, Holm-corrected); differences that test does not find are called within noise")
    floor = f"the noise floor ({fmt.pp(noise.floor(records))} points, see the Methodology)"
    if not several:
        return (f"Each configuration was trained once, with one seed: differences below {floor} are not claimed "
                f"as effects anywhere in this report; where the data cannot decide, the text says so ({MORE}).")
    used = ", ".join(map(str, sorted({s for ss in several.values() for s in ss})))
    if len(several) == len(by_study(records)):
        return f"Configurations were trained over several seeds ({used}): the numbers above are means, and {tests}."
    return (f"The {', '.join(f'*{s}*' for s in several)} stud{'y' if len(several) == 1 else 'ies'} trained "
            f"{'its' if len(several) == 1 else 'their'} configurations over several seeds ({used}): "
            f"{'its' if len(several) == 1 else 'their'} numbers are means, and {tests}. The other studies trained "
            f"each configuration once: differences there below {floor} are not claimed as effects.")

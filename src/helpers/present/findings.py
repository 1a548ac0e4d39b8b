"""A study's findings in words, computed from its run records: the best configuration, the
baseline, the trend, overfitting, cost, diverged and failed runs. Several seeds: helpers.present.repeats."""
from __future__ import annotations

import numbers
from collections.abc import Iterable

from helpers.analysis import noise, repeats
from helpers.analysis.records import (
    best,
    diverged as diverged_runs,
    gap as gap_of,
    metric,
    ok as successful,
    ranked as ranked_runs,
)
from helpers.config.record import RunRecord, Status
from helpers.present import format as fmt, repeats as repeat_words, trends
from helpers.present.design import each_study
from helpers.present.markup import ref, see


def floor_words(records: list[RunRecord]) -> str:
    """The noise floor of ``records`` with what it rests on: "2.9 points (twice the ...)"."""
    d = noise.describe(records)
    times = "twice" if d["z"] == 2 else f"{d['z']:g} times"
    if d["seed_se"] is not None:
        why = (f"{times} the larger of the seed-to-seed standard error of a mean and the binomial standard error "
               "of a validation accuracy")
    elif d["n"] and d["level"] is not None:
        why = (f"{times} the binomial standard error of an accuracy of {fmt.acc(d['level'])} on "
               f"{fmt.count(d['n'])} validation samples")
    else:
        why = "a fixed floor: no run records how many validation samples it was scored on"
    return f"{fmt.pp(d['floor'])} points ({why})"


def headline(ok: list[dict], floor: float | None = None) -> tuple[str, bool]:
    """Sentence naming the best run; True when the runner-up is within the noise floor."""
    floor = noise.floor(ok) if floor is None else floor
    ranked = ranked_runs(ok)
    b = ranked[0]
    if len(ranked) > 1 and metric(b, "val_accuracy") - metric(ranked[1], "val_accuracy") < floor:
        close = [r for r in ranked[1:] if metric(b, "val_accuracy") - metric(r, "val_accuracy") < floor]
        r = ranked[1]
        diff = metric(b, "val_accuracy") - metric(r, "val_accuracy")
        others = (f" {len(close) - 1} more configuration{'s' * (len(close) > 2)} also lie{'s' * (len(close) == 2)} "
                  "within the noise floor of the best." if len(close) > 1 else "")
        return (f"**{b['label']}** and **{r['label']}** reach nearly the same validation accuracy "
                f"({fmt.acc(metric(b, 'val_accuracy'))} vs {fmt.acc(metric(r, 'val_accuracy'))}); the {fmt.pp(diff)}-point "
                f"difference is within the likely run-to-run noise of a single seed (below the noise floor of "
                f"{fmt.pp(floor)} points), so no ranking is claimed between them (test accuracy "
                f"{fmt.acc(metric(b, 'test_accuracy'))} and {fmt.acc(metric(r, 'test_accuracy'))}).{others}"), True
    return (f"The best configuration by validation accuracy is **{b['label']}** "
            f"(validation {fmt.acc(metric(b, 'val_accuracy'))}, test {fmt.acc(metric(b, 'test_accuracy'))})."), False



def diverged(records: Iterable[RunRecord]) -> str:
    """Names each diverged run and why: a result, not a failure, and never a candidate for best."""
    div = diverged_runs(records)
    if not div:
        return ""

    def one(r):
        test = metric(r, "test_accuracy", None)
        return (f"**{r.get('label', '?')}** diverged: {r.get('reason') or 'training was stopped'}"
                + (f" (test accuracy {fmt.acc(test)})" if isinstance(test, numbers.Real) else ""))
    return "; ".join(one(r) for r in div) + f". {'It is' if len(div) == 1 else 'They are'} left out of every ranking."


def _findings_one(records: list[RunRecord], links: bool = False) -> str:
    if repeats.repeated(records):  # several seeds: means, confidence intervals and paired tests
        return repeat_words.findings(records, links)
    ok = successful(records)
    failed = len(records) - len(ok) - len(diverged_runs(records))
    if not ok:
        return (f"No run finished successfully ({len(records) - len(ok)} of {len(records)} failed or diverged), "
                f"so there are no findings. {diverged(records)}").strip()
    study = records[0].get("study", "")

    def link(*names: str) -> str:
        return see(*(f"fig:{study}:{n}" for n in names)) if links else ""
    b = best(ok)
    floor = noise.floor(ok)
    parts = [f"{ref(f'tab:{study}:results')} lists every configuration." if links else "",
             headline(ok, floor)[0]]
    base = next((r for r in ok if r.get("baseline")), None)
    if base is not None and base is not b:
        dv = metric(b, "val_accuracy") - metric(base, "val_accuracy")
        dt = metric(b, "test_accuracy") - metric(base, "test_accuracy")
        within = " (within single-seed noise)" if dv < floor else ""
        parts.append(f"Against the baseline (**{base['label']}**), **{b['label']}** gains {fmt.pp(dv)} percentage "
                     f"points of validation accuracy{within} and {'gains' if dt >= 0 else 'loses'} {fmt.pp(dt)} "
                     f"points of test accuracy.")
    elif base is b and len(ok) > 1:
        parts.append("The baseline itself is the best configuration.")
    parts.append(trends.trend(ok, floor)[1])
    worst = max(ok, key=gap_of)
    gap = gap_of(worst)
    parts.append(f"{trends.overfitting(gap, floor)}{link('splits', 'curves')}: the largest train–validation gap is {fmt.pp(gap)} "
                 f"percentage points (**{worst['label']}**).")
    if "params" in b.get("metrics", {}) and len(ok) > 1:
        close = [r for r in ok if metric(r, "val_accuracy") > metric(b, "val_accuracy") - floor]
        cheap = min(close, key=lambda r: (metric(r, "params", 0), metric(r, "seconds", 0)))
        cost = lambda r: f"{fmt.count(metric(r, 'params'))} parameters and {metric(r, 'seconds', 0):.1f} s"  # noqa: E731
        where = link("versus-seconds", "versus-params")
        within = f"within the noise floor ({fmt.pp(floor)} points)"
        parts.append(f"It is also the cheapest configuration {within} of the best{where} ({cost(b)} of "
                     "training)." if cheap is b else
                     f"For less cost{where}, **{cheap['label']}** stays {within} of it (validation "
                     f"{fmt.acc(metric(cheap, 'val_accuracy'))}) with {cost(cheap)} of training, versus {cost(b)} "
                     f"for **{b['label']}**.")
    if len(ok) > 1:
        parts.append("With one seed per configuration there is no estimate of run-to-run noise: differences below "
                     f"{floor_words(ok)} are not claimed as effects (set `repeats:` to test them).")
    parts.append(diverged(records))
    if failed:
        ok_ids = {id(r) for r in ok}
        names = ", ".join(r.get("label", "?") for r in records
                          if id(r) not in ok_ids and r.get("status") != Status.DIVERGED)
        parts.append(f"{failed} of {len(records)} runs failed ({names}) and "
                     f"{'is' if failed == 1 else 'are'} excluded.")
    return " ".join(p for p in parts if p)


def findings(records: Iterable[RunRecord], links: bool = False) -> str:
    """Markdown paragraph(s), one per study: best, baseline delta, trend, overfitting, cost.
    ``links``: refer to the study's table and figures (``{{ref:...}}`` tokens the report resolves)."""
    return each_study(lambda rs: _findings_one(rs, links), records, "*{}*: ")

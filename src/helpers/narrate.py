"""Findings in words, computed from run records (see docs/records.md).

Model selection rule: the "best" configuration is always chosen by validation
accuracy; test accuracy is only reported beside it, never used to rank, so the
test set stays an unbiased estimate. Failed runs are ignored (and counted).
"""
from __future__ import annotations

import json
import numbers
from collections.abc import Iterable

import pandas as pd

# Each configuration is trained once (one seed); differences below this are
# within the run-to-run noise one would expect from a different seed.
NOISE = 0.01
# Successive gains below this count as a plateau.
PLATEAU = 0.005
# Train - validation gaps above these are called mild / clear overfitting.
GAP_MILD, GAP_CLEAR = 0.02, 0.05
# Keys that only mean something for convolutional models.
CNN_ONLY = {"model.filters", "model.kernel_size", "model.pool_size", "model.conv_dropout"}


# ---------------------------------------------------------------- formatting
def _acc(v: float) -> str:
    return f"{v:.4f}"


def _pp(diff: float) -> str:
    """A difference of two accuracies in percentage points, 1-2 decimals."""
    points = abs(diff) * 100
    return f"{points:.2f}" if points < 1 else f"{points:.1f}"


def _params(v) -> str:
    return f"{int(v):,}"


def _compact(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_compact(x) for x in v) + "]" if v else "none"
    return str(v)


# ---------------------------------------------------------------- selection
def _ok(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok" and "val_accuracy" in r.get("metrics", {})]


def _by_study(records: Iterable[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r.get("study", ""), []).append(r)
    return groups


def _m(rec: dict, key: str, default=float("nan")):
    return rec.get("metrics", {}).get(key, default)


def _gap(rec: dict) -> float:
    return _m(rec, "gap", _m(rec, "train_accuracy") - _m(rec, "val_accuracy"))


def _ranked(records: Iterable[dict]) -> list[dict]:
    # ties on validation accuracy go to the smaller model
    return sorted(_ok(records), key=lambda r: (-_m(r, "val_accuracy"), _m(r, "params", 0)))


def best(records: Iterable[dict]) -> dict | None:
    """The ok record with the highest validation accuracy (ties: fewer params), or None."""
    ranked = _ranked(records)
    return ranked[0] if ranked else None


# ---------------------------------------------------------------- design
def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _each_study(fn, records: Iterable[dict], heading: str) -> str:
    """fn on one study's records; several studies get one headed block each."""
    groups = _by_study(records)
    if len(groups) == 1:
        return fn(next(iter(groups.values())))
    return "\n\n".join(heading.format(study) + fn(rs) for study, rs in groups.items())


def _design_one(records: list[dict]) -> str:
    flats = [_flatten(r.get("config", {})) for r in records]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    varied, fixed = {}, {}
    for k in keys:
        # json text makes lists comparable and hashable
        seen = list(dict.fromkeys(json.dumps(f.get(k), sort_keys=True) for f in flats))
        if len(seen) > 1:
            varied[k] = [json.loads(s) for s in seen]
        else:
            fixed[k] = json.loads(seen[0])
    if all(f.get("model.kind") != "cnn" for f in flats):
        fixed = {k: v for k, v in fixed.items() if k not in CNN_ONLY}
    if fixed.get("model.init_stddev", 0) is None:  # unset: the initializer's own default, nothing to say
        del fixed["model.init_stddev"]
    if any("data.folds" in f for f in flats):  # cross-validation: the folds replace the validation split
        fixed = {k: v for k, v in fixed.items() if k not in ("data.validation_split", "data.validation_method")}
    lines = ["**Varied**"]
    lines += [f"- `{k}`: " + ", ".join(_compact(v) for v in vals) for k, vals in varied.items()]
    if not varied:
        lines.append("- nothing (all runs share one configuration)")
    lines += ["", "**Held fixed**"]
    groups: dict[str, list[str]] = {}
    for k, v in fixed.items():
        section, _, rest = k.partition(".")
        group = section if section in ("model", "training", "data") and rest else "other"
        groups.setdefault(group, []).append(f"{rest or k}={_compact(v)}")
    for group in ("model", "training", "data", "other"):
        if group in groups:
            lines.append(f"- *{group}*: " + ", ".join(groups[group]))
    data = records[0].get("config", {}).get("data", {}) if records else {}
    info = next((r["data_info"] for r in records if r.get("data_info")), None)
    sizes = []
    if info:  # what was actually loaded: exact, also when the profile takes all the data
        sizes = [f"{_params(info['train'])} training, {_params(info['val'])} validation and "
                 f"{_params(info['test'])} test samples"]
    else:
        if data.get("train_samples") is not None:
            sizes.append(f"{_params(data['train_samples'])} training samples")
            if data.get("validation_split"):
                sizes[-1] += f" (of which {data['validation_split']:.0%} are held out for validation)"
        if data.get("test_samples") is not None:
            sizes.append(f"{_params(data['test_samples'])} test samples")
    if sizes:
        note = " (sizes vary between runs, see above)" if any(k.startswith("data.") for k in varied) else ""
        name = f"`{data['dataset']}`: " if "dataset" in data else ""
        lines += ["", f"**Data**: {name}" + ", ".join(sizes) + note + "."]
    return "\n".join(lines)


def design(records: Iterable[dict]) -> str:
    """Markdown: which config keys vary across the study's runs and which are held fixed."""
    return _each_study(_design_one, records, "#### {}\n\n")


# ---------------------------------------------------------------- findings
def _trend(ok: list[dict]) -> tuple[str | None, str]:
    """(shape, sentence) for a single numeric axis; shape is None when there is no trend to tell."""
    axes = [r.get("axis") or {} for r in ok]
    if not axes or any(len(a) != 1 for a in axes) or len({next(iter(a)) for a in axes}) != 1:
        return None, ""
    key = next(iter(axes[0]))
    xs = [a[key] for a in axes]
    if not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in xs):
        return None, ""
    by_x: dict = {}
    for x, r in zip(xs, ok):
        by_x.setdefault(x, []).append(_m(r, "val_accuracy"))
    xs = sorted(by_x)
    if len(xs) < 3:
        return None, ""
    ys = [sum(by_x[x]) / len(by_x[x]) for x in xs]
    d = [b - a for a, b in zip(ys, ys[1:])]
    top = max(range(len(ys)), key=ys.__getitem__)
    what = f"As `{key}` increases, validation accuracy"
    if max(ys) - min(ys) < PLATEAU:
        return "flat", f"{what} barely changes (less than {_pp(PLATEAU)} percentage points overall)."
    if 0 < top < len(ys) - 1 and ys[top] - ys[0] >= PLATEAU and ys[top] - ys[-1] >= PLATEAU:
        return "peak", f"{what} peaks at {key} = {_compact(xs[top])} and falls on either side."
    if all(g > -PLATEAU for g in d):
        gains = [i for i, g in enumerate(d) if g >= PLATEAU]
        if not gains:  # many small steps that add up: no single step is large enough to plateau after
            return "rises", f"{what} rises gradually."
        last_gain = gains[-1]
        if last_gain + 1 < len(xs) - 1:
            return "plateau", (f"{what} rises and then plateaus after {key} = {_compact(xs[last_gain + 1])} "
                               f"(later gains are below {_pp(PLATEAU)} percentage points).")
        return "rises", f"{what} rises steadily."
    if all(g < PLATEAU for g in d):
        return "falls", f"{what} falls."
    return "mixed", f"{what} shows no simple monotonic trend."


def _edge(ok: list[dict]) -> tuple[str, object, str] | None:
    """(key, value, "largest" | "smallest") when the best run sits at an end of a numeric axis."""
    axes = [r.get("axis") or {} for r in ok]
    if len(ok) < 3 or any(len(a) != 1 for a in axes) or len({next(iter(a)) for a in axes}) != 1:
        return None
    key = next(iter(axes[0]))
    xs = [a[key] for a in axes]
    if not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in xs):
        return None
    x = best(ok)["axis"][key]
    return (key, x, "largest") if x == max(xs) else (key, x, "smallest") if x == min(xs) else None


def _headline(ok: list[dict]) -> tuple[str, bool]:
    """Sentence naming the best run; True when the runner-up is within noise."""
    ranked = _ranked(ok)
    b = ranked[0]
    if len(ranked) > 1 and _m(b, "val_accuracy") - _m(ranked[1], "val_accuracy") < NOISE:
        r = ranked[1]
        diff = _m(b, "val_accuracy") - _m(r, "val_accuracy")
        return (f"**{b['label']}** and **{r['label']}** reach nearly the same validation accuracy "
                f"({_acc(_m(b, 'val_accuracy'))} vs {_acc(_m(r, 'val_accuracy'))}); the {_pp(diff)}-point "
                f"difference is within the likely run-to-run noise of a single seed, so no ranking is claimed "
                f"between them (test accuracy {_acc(_m(b, 'test_accuracy'))} and {_acc(_m(r, 'test_accuracy'))})."), True
    return (f"The best configuration by validation accuracy is **{b['label']}** "
            f"(validation {_acc(_m(b, 'val_accuracy'))}, test {_acc(_m(b, 'test_accuracy'))})."), False


def ref(*labels: str) -> str:
    """A reference to the first of ``labels`` that the report has, as the report resolves it:
    "Figure 4" linked to the figure (see report.number). Labels: ``fig:<study>:<name>`` for the
    figures of helpers.section (curves, splits, confusion, diagnostics, versus-<x>, bars-<y>,
    grid-<i>), ``tab:<study>:results`` / ``tab:<study>:grid``, ``tab:summary`` and the like."""
    return "{{ref:" + "|".join(labels) + "}}"


def see(*labels: str) -> str:
    """" (see Figure 4)" for the first of ``labels`` the report has; nothing when it has none."""
    return "{{see:" + "|".join(labels) + "}}"


def _diverged_runs(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "diverged"]


def diverged(records: Iterable[dict]) -> str:
    """Names each diverged run and why: a result, not a failure, and never a candidate for best."""
    div = _diverged_runs(records)
    if not div:
        return ""

    def one(r):
        test = _m(r, "test_accuracy", None)
        return (f"**{r.get('label', '?')}** diverged: {r.get('reason') or 'training was stopped'}"
                + (f" (test accuracy {_acc(test)})" if isinstance(test, numbers.Real) else ""))
    return "; ".join(one(r) for r in div) + f". {'It is' if len(div) == 1 else 'They are'} left out of every ranking."


def _findings_one(records: list[dict], links: bool = False) -> str:
    from helpers import repeats
    if repeats.repeated(records):  # several seeds: means, confidence intervals and paired tests
        return repeats.findings(records, links)
    ok = _ok(records)
    failed = len(records) - len(ok) - len(_diverged_runs(records))
    if not ok:
        return (f"No run finished successfully ({len(records) - len(ok)} of {len(records)} failed or diverged), "
                f"so there are no findings. {diverged(records)}").strip()
    study = records[0].get("study", "")

    def link(*names: str) -> str:
        return see(*(f"fig:{study}:{n}" for n in names)) if links else ""
    b = best(ok)
    parts = [f"{ref(f'tab:{study}:results')} lists every configuration." if links else "",
             _headline(ok)[0]]
    base = next((r for r in ok if r.get("baseline")), None)
    if base is not None and base is not b:
        dv = _m(b, "val_accuracy") - _m(base, "val_accuracy")
        dt = _m(b, "test_accuracy") - _m(base, "test_accuracy")
        noise = " (within single-seed noise)" if dv < NOISE else ""
        parts.append(f"Against the baseline (**{base['label']}**), **{b['label']}** gains {_pp(dv)} percentage "
                     f"points of validation accuracy{noise} and {'gains' if dt >= 0 else 'loses'} {_pp(dt)} "
                     f"points of test accuracy.")
    elif base is b and len(ok) > 1:
        parts.append("The baseline itself is the best configuration.")
    parts.append(_trend(ok)[1])
    worst = max(ok, key=_gap)
    gap = _gap(worst)
    verdict = ("Overfitting is clear" if gap >= GAP_CLEAR else "Overfitting is mild" if gap >= GAP_MILD
               else "No configuration overfits noticeably")
    parts.append(f"{verdict}{link('splits', 'curves')}: the largest train–validation gap is {_pp(gap)} "
                 f"percentage points (**{worst['label']}**).")
    if "params" in b.get("metrics", {}) and len(ok) > 1:
        close = [r for r in ok if _m(r, "val_accuracy") >= _m(b, "val_accuracy") - NOISE]
        cheap = min(close, key=lambda r: (_m(r, "params", 0), _m(r, "seconds", 0)))
        cost = lambda r: f"{_params(_m(r, 'params'))} parameters and {_m(r, 'seconds', 0):.1f} s"  # noqa: E731
        where = link("versus-seconds", "versus-params")
        parts.append(f"It is also the cheapest configuration within 1 point of the best{where} ({cost(b)} of "
                     "training)." if cheap is b else
                     f"For less cost{where}, **{cheap['label']}** stays within 1 point (validation "
                     f"{_acc(_m(cheap, 'val_accuracy'))}) with {cost(cheap)} of training, versus {cost(b)} "
                     f"for **{b['label']}**.")
    if len(ok) > 1:
        parts.append("With one seed per configuration there is no estimate of run-to-run noise, so differences "
                     f"below {_pp(NOISE)} point are not claimed as effects (set `repeats:` to test them).")
    parts.append(diverged(records))
    if failed:
        ok_ids = {id(r) for r in ok}
        names = ", ".join(r.get("label", "?") for r in records
                          if id(r) not in ok_ids and r.get("status") != "diverged")
        parts.append(f"{failed} of {len(records)} runs failed ({names}) and "
                     f"{'is' if failed == 1 else 'are'} excluded.")
    return " ".join(p for p in parts if p)


def findings(records: Iterable[dict], links: bool = False) -> str:
    """Markdown paragraph(s), one per study: best, baseline delta, trend, overfitting, cost.
    ``links``: refer to the study's table and figures (``{{ref:...}}`` tokens the report resolves)."""
    return _each_study(lambda rs: _findings_one(rs, links), records, "*{}*: ")


# ---------------------------------------------------------------- whole report
def summary(records: Iterable[dict]) -> pd.DataFrame:
    """One row per study (first-appearance order) describing its best run by validation accuracy."""
    keys = ["val_accuracy", "test_accuracy", "f1_macro", "params", "seconds"]
    rows = []
    from helpers.repeats import collapse
    for study, rs in _by_study(records).items():
        b = best(collapse(rs))  # several seeds: means over them
        rows.append([study, b["label"] if b else None, *(_m(b, k) if b else float("nan") for k in keys),
                     f"{len(_ok(rs))}/{len(rs)}"])
    return pd.DataFrame(rows, columns=["study", "best", *keys, "runs"])


def _chance(records: list[dict]) -> float:
    n = next((len(c) for r in records if (c := r.get("class_names") or r.get("confusion"))), 0)
    return 1.0 / n if n else 0.0


def abstract(records: Iterable[dict]) -> str:
    """Short paragraph of headline numbers across all studies."""
    records = list(records)
    if not records:
        return "No runs to report."
    ok = _ok(records)
    studies = _by_study(records)
    datasets = list(dict.fromkeys(d for r in records if (d := r.get("config", {}).get("data", {}).get("dataset"))))
    on = f" on `{'`, `'.join(datasets)}`" if datasets else ""
    n_div = len(_diverged_runs(records))
    failed = len(records) - len(ok) - n_div
    lost = " and ".join(w for w in (f"{failed} failed" if failed else "", f"{n_div} diverged" if n_div else "") if w)
    parts = [f"This report covers {len(studies)} {'study' if len(studies) == 1 else 'studies'} with "
             f"{len(records)} training runs{on}" + (f", of which {lost}." if lost else ".")]
    from helpers import repeats
    several = repeats.repeated_studies(ok)
    if several:
        ok = _ok(repeats.collapse(ok))
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
                 f"from the *{b.get('study')}* study (validation {_acc(_m(b, 'val_accuracy'))}, "
                 f"test {_acc(_m(b, 'test_accuracy'))}).")
    # runs stuck near chance (e.g. a diverged learning rate) would make the range meaningless
    chance = _chance(ok)
    floor = chance + (_m(b, "val_accuracy") - chance) / 2
    sensible = [r for r in ok if _m(r, "val_accuracy") >= floor]
    tests = [_m(r, "test_accuracy") for r in sensible]
    excluded = len(ok) - len(sensible)
    parts.append(f"Test accuracy of the successful configurations ranges from {_acc(min(tests))} to {_acc(max(tests))}"
                 + (f" ({excluded} {'configuration' if several else 'run'}{'s' if excluded > 1 else ''} stuck near "
                    "chance level excluded)." if excluded else "."))
    ranked = {study: _ranked(rs) for study, rs in _by_study(sensible).items()
              if rs[0].get("kind") != "robustness"}  # it re-trains other studies' best: not a factor
    spreads = sorted(((_m(rs[0], "val_accuracy") - _m(rs[-1], "val_accuracy"), study, rs[0], rs[-1])
                      for study, rs in ranked.items() if len(rs) > 1), key=lambda t: -t[0])
    if spreads:
        d, study, hi, lo = spreads[0]
        parts.append(f"The largest effect comes from the *{study}* study, where validation accuracy spans "
                     f"{_pp(d)} percentage points ({lo['label']} to {hi['label']}).")
        if len(spreads) > 1:
            d, study, *_ = spreads[-1]
            parts.append(f"The *{study}* study matters least ({_pp(d)} percentage points).")
    return " ".join(parts)


def conclusions(records: Iterable[dict]) -> str:
    """Markdown bullets: one per study, then future work derived from the results."""
    records = list(records)
    if not records:
        return "- No runs to report."
    bullets, close_calls, plateaus, edges = [], 0, [], []
    from helpers import repeats
    for study, rs in _by_study(records).items():
        ok = _ok(rs)
        if not ok:
            bullets.append(f"- **{study}**: no successful runs ({len(rs)} failed or diverged).")
            continue
        several = repeats.repeated(ok)
        headline, tied = repeats.headline(ok) if several else _headline(ok)
        ok = _ok(repeats.collapse(ok))
        close_calls += tied and not several
        shape, trend = _trend(ok)
        trend = "" if several and tied else trend  # a trend through differences within noise is no finding
        plateaus += [study] if shape in ("plateau", "flat") else []
        edge = _edge(ok)
        # "keeps improving towards that end" would rank the best above a runner-up within noise
        edges += [(study, *edge)] if edge and shape in ("rises", "falls") and not tied else []
        bullets.append(f"- **{study}**: {headline} {trend}".rstrip())
    ok = _ok(records)
    future = []
    kind = lambda r: r.get("config", {}).get("model", {}).get("kind")  # noqa: E731
    cnn, dense = best([r for r in ok if kind(r) == "cnn"]), best([r for r in ok if kind(r) != "cnn"])
    if cnn and dense and _m(cnn, "val_accuracy") > _m(dense, "val_accuracy"):
        diff = _m(cnn, "val_accuracy") - _m(dense, "val_accuracy")
        future.append(f"- The convolutional model **{cnn['label']}** beats the best dense model by {_pp(diff)} "
                      f"percentage points of validation accuracy: study CNN depth, filters and data augmentation next.")
    elif not cnn and plateaus:
        future.append(f"- Validation accuracy plateaus in the {', '.join(f'*{s}*' for s in plateaus)} "
                      f"{'study' if len(plateaus) == 1 else 'studies'}: a convolutional network or data "
                      f"augmentation is the likely next step for higher accuracy.")
    if ok:
        worst = max(ok, key=_gap)
        if _gap(worst) >= GAP_CLEAR:
            future.append(f"- The largest train–validation gap is {_pp(_gap(worst))} percentage points "
                          f"(**{worst['label']}**): try more regularization (dropout, L2, early stopping) or more data.")
    for study, key, value, side in edges:
        future.append(f"- In the *{study}* study the best `{key}` is the {side} value tried ({_compact(value)}) "
                      f"and accuracy keeps improving towards that end: extend the "
                      f"range {'above' if side == 'largest' else 'below'} {_compact(value)}.")
    pairs = [(r.get("study"), r.get("label")) for r in records if r.get("kind") != "robustness"]
    if len(pairs) == len(set(pairs)):
        close = f"; {close_calls} {'study has' if close_calls == 1 else 'studies have'} a best and runner-up within " \
                f"1 point that only repeats could separate" if close_calls else ""
        outside = any(r.get("kind") == "robustness" for r in records)  # it did repeat its configurations
        future.append(f"- {'Outside the robustness study, each' if outside else 'Each'} configuration was trained "
                      f"with a single seed: repeat runs over several seeds to get error bars{close}.")
    div = _diverged_runs(records)
    failed = len(records) - len(ok) - len(div)
    if div:
        future.append(f"- {len(div)} run{'s' if len(div) > 1 else ''} diverged ("
                      + ", ".join(f"{r.get('label')} in *{r.get('study')}*" for r in div)
                      + "): a smaller learning rate or a better-scaled initializer would let "
                      + ("it" if len(div) == 1 else "them") + " train.")
    if failed:
        future.append(f"- {failed} run{'s' if failed > 1 else ''} failed: check the error messages and rerun.")
    return "\n".join(bullets + (["", "**Future work**", ""] + future if future else []))


# ---------------------------------------------------------------- discussion (across studies)
def _rank_corr(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation (NaN when either side is constant)."""
    a, b = pd.Series(xs).rank(), pd.Series(ys).rank()
    return float(a.corr(b)) if a.nunique() > 1 and b.nunique() > 1 else float("nan")


REGULARIZERS = {"model.dropout", "model.dropout_kind", "model.l1", "model.l2", "model.batch_norm",
                "model.conv_dropout"}


def _num(v: float) -> str:
    return f"{v:.2f}".replace("-", "−")


def _varied(records: list[dict]) -> set[str]:
    flats = [_flatten(r.get("config", {})) for r in records]
    keys = {k for f in flats for k in f}
    return {k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1}


def _regularized(rec: dict) -> bool:
    m = rec.get("config", {}).get("model", {})
    return bool(m.get("dropout") or m.get("l1") or m.get("l2") or m.get("batch_norm") or m.get("conv_dropout"))


def _what_mattered(groups: dict[str, list[dict]], links: bool) -> str:
    spreads = sorted(((_m(rs[0], "val_accuracy") - _m(rs[-1], "val_accuracy"), study, rs[0], rs[-1])
                      for study, rs in groups.items() if len(rs) > 1), key=lambda t: -t[0])
    if not spreads:
        return ""
    table = f" ({ref('tab:summary')} gives each study's best configuration)" if links else ""
    order = ", ".join(f"*{study}* ({_pp(d)})" for d, study, *_ in spreads)
    parts = [f"Ranked by how far validation accuracy moves between a study's best and worst configuration, "
             f"in percentage points, the factors order as {order}{table}."]
    d, study, hi, lo = spreads[0]
    parts.append(f"The *{study}* study shows the largest effect: from **{lo['label']}** to **{hi['label']}** validation "
                 f"accuracy changes by {_pp(d)} points{see(f'tab:{study}:results') if links else ''}.")
    if len(spreads) > 1 and spreads[-1][0] >= NOISE:
        parts.append(f"The *{spreads[-1][1]}* study matters least ({_pp(spreads[-1][0])} points).")
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
    gaps = [_gap(r) for r in ok]
    worst = max(ok, key=_gap)
    median = float(pd.Series(gaps).median())
    parts = [f"Across all {len(ok)} successful runs the train–validation gap ranges from "
             f"{'−' if min(gaps) < 0 else ''}{_pp(min(gaps))} to {_pp(max(gaps))} percentage points "
             f"(median {'−' if median < 0 else ''}{_pp(median)}); the largest is **{worst['label']}** in the "
             f"*{worst.get('study')}* study"
             + (see(f"fig:{worst.get('study')}:splits", f"fig:{worst.get('study')}:curves") if links else "") + "."]
    if max(gaps) < GAP_MILD:
        parts.append("No run overfits noticeably: the training is too short, or the models too small, for "
                     "the training accuracy to pull away from the validation accuracy.")
    params = [_m(r, "params") for r in ok]
    rho = _rank_corr(params, gaps)
    if len(ok) >= 5 and rho == rho:
        parts.append(("Larger models overfit more" if rho >= 0.5 else "Smaller models show the larger gaps"
                      if rho <= -0.5 else "The gap is not driven by model size")
                     + f" (rank correlation between parameter count and gap: {_num(rho)}).")
    # Only studies whose configurations differ in regularization alone compare like with like.
    studies = {study for study, rs in _by_study(ok).items()
               if any(_regularized(r) for r in rs) and any(not _regularized(r) for r in rs)
               and (rs[0].get("kind") == "regularization" or _varied(rs) <= REGULARIZERS)}
    reg = [_gap(r) for r in ok if _regularized(r) and r.get("study") in studies]
    plain = [_gap(r) for r in ok if not _regularized(r) and r.get("study") in studies]
    if reg and plain:
        mr, mp = float(pd.Series(reg).median()), float(pd.Series(plain).median())
        parts.append(f"Regularized configurations have a median gap of {'−' if mr < 0 else ''}{_pp(mr)} points "
                     f"against {'−' if mp < 0 else ''}{_pp(mp)} for the unregularized ones in the same studies"
                     + (": regularization narrows the gap." if mr < mp - 0.005 else
                        ": at this training length regularization makes little difference to it."))
    return " ".join(parts)


def _cost(ok: list[dict], links: bool) -> str:
    if not all("seconds" in r.get("metrics", {}) and "params" in r.get("metrics", {}) for r in ok):
        return ""
    b = best(ok)
    close = [r for r in ok if _m(r, "val_accuracy") >= _m(b, "val_accuracy") - NOISE]
    cheap = min(close, key=lambda r: (_m(r, "seconds"), _m(r, "params"), r is not b))
    what = lambda r: (f"**{r['label']}** (*{r.get('study')}*, {_params(_m(r, 'params'))} parameters, "  # noqa: E731
                      f"{_m(r, 'seconds'):.1f} s)")
    parts = [f"The best configuration overall is {what(b)}."]
    if cheap is not b and _m(b, "seconds") >= 1.1 * _m(cheap, "seconds"):
        parts.append(f"The fastest to train within 1 point of it is {what(cheap)}: "
                     f"{_m(b, 'seconds') / max(_m(cheap, 'seconds'), 1e-9):.1f} times faster for "
                     f"{_pp(_m(b, 'val_accuracy') - _m(cheap, 'val_accuracy'))} points of validation accuracy.")
    else:
        parts.append("No configuration within 1 point of it trains noticeably faster.")
    rho = _rank_corr([_m(r, "seconds") for r in ok], [_m(r, "val_accuracy") for r in ok])
    if len(ok) >= 5 and rho == rho:
        parts.append("Longer training buys accuracy" if rho >= 0.5 else "Training time and accuracy are unrelated"
                     if abs(rho) < 0.5 else "The slower configurations are the less accurate ones")
        parts[-1] += f" across the runs (rank correlation {_num(rho)})."
    ratios = sorted(((max(_m(r, "seconds") for r in rs) / max(min(_m(r, "seconds") for r in rs), 1e-9), study)
                     for study, rs in _by_study(ok).items() if len(rs) > 1), reverse=True)
    if ratios and ratios[0][0] >= 1.5:
        ratio, study = ratios[0]
        parts.append(f"Time varies most in the *{study}* study: the slowest configuration takes {ratio:.1f} times "
                     f"as long as the fastest"
                     + (see(f"fig:{study}:versus-seconds", f"tab:{study}:results") if links else "") + ".")
    return " ".join(parts)


def discussion(records: Iterable[dict], links: bool = False) -> str:
    """Markdown paragraphs across studies: which factors mattered most and least, the overfitting
    pattern, and cost against accuracy. ``links``: refer to tables and figures (see ``ref``)."""
    from helpers import repeats
    records = list(records)
    # the robustness study repeats other studies' configurations: it is not a factor of its own
    raw = [r for r in records if r.get("kind") != "robustness"]
    ok = _ok(repeats.collapse(raw))
    if not ok:
        return "No run finished successfully, so there is nothing to discuss."
    chance = _chance(ok)
    b = best(ok)
    floor = chance + (_m(b, "val_accuracy") - chance) / 2
    sensible = [r for r in ok if _m(r, "val_accuracy") >= floor]
    groups = {study: _ranked(rs) for study, rs in _by_study(sensible).items()}
    stuck = [r for r in ok if _m(r, "val_accuracy") < floor]
    paragraphs = [_what_mattered(groups, links)]
    if stuck:
        names = ", ".join(f"**{r['label']}** (*{r.get('study')}*)" for r in stuck)
        lead = "Left out of this ranking, as configurations that" if paragraphs[-1] else "Some configurations"
        paragraphs[-1] += (f" {lead} failed to train (validation "
                           f"accuracy below {_acc(floor)}, halfway between chance, {_acc(chance)}, and the best): "
                           f"{names}. Such a failure says more about its settings than about the factor.")
    paragraphs += [_overfitting(_ok(raw), links), _cost(ok, links), _seeds_paragraph(records)]
    return "\n\n".join(p.strip() for p in paragraphs if p.strip())


def _seeds_paragraph(records: list[dict]) -> str:
    """What the report's seeds allow: tests where studies repeat their runs, the 1-point rule where not."""
    from helpers import repeats
    several = repeats.repeated_studies(records)
    one = len(several) == 1 and len(_by_study(records)) > 1
    whose = "its" if one else "each study's"
    tests = (f"{whose} findings test its best configuration against the others "
             f"({repeats.TEST_NAME}, Holm-corrected); differences that test does not find are called within noise")
    if not several:
        return ("Each configuration was trained once, with one seed: differences below about 1 point are within "
                "the run-to-run noise and are not claimed as effects anywhere in this report.")
    used = ", ".join(map(str, sorted({s for ss in several.values() for s in ss})))
    if len(several) == len(_by_study(records)):
        return f"Configurations were trained over several seeds ({used}): the numbers above are means, and {tests}."
    return (f"The {', '.join(f'*{s}*' for s in several)} stud{'y' if len(several) == 1 else 'ies'} trained "
            f"{'its' if len(several) == 1 else 'their'} configurations over several seeds ({used}): "
            f"{'its' if len(several) == 1 else 'their'} numbers are means, and {tests}. The other studies trained "
            "each configuration once: differences there below about 1 point are within the run-to-run noise and "
            "are not claimed as effects.")

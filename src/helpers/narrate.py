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


def _findings_one(records: list[dict]) -> str:
    ok = _ok(records)
    failed = len(records) - len(ok)
    if not ok:
        return f"No run finished successfully ({failed} of {len(records)} failed), so there are no findings."
    b = best(ok)
    parts = [_headline(ok)[0]]
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
    parts.append(f"{verdict}: the largest train–validation gap is {_pp(gap)} percentage points "
                 f"(**{worst['label']}**).")
    if "params" in b.get("metrics", {}) and len(ok) > 1:
        close = [r for r in ok if _m(r, "val_accuracy") >= _m(b, "val_accuracy") - NOISE]
        cheap = min(close, key=lambda r: (_m(r, "params", 0), _m(r, "seconds", 0)))
        cost = lambda r: f"{_params(_m(r, 'params'))} parameters and {_m(r, 'seconds', 0):.1f} s"  # noqa: E731
        parts.append(f"It is also the cheapest configuration within 1 point of the best ({cost(b)} of training)."
                     if cheap is b else
                     f"For less cost, **{cheap['label']}** stays within 1 point (validation "
                     f"{_acc(_m(cheap, 'val_accuracy'))}) with {cost(cheap)} of training, versus {cost(b)} "
                     f"for **{b['label']}**.")
    if failed:
        ok_ids = {id(r) for r in ok}
        names = ", ".join(r.get("label", "?") for r in records if id(r) not in ok_ids)
        parts.append(f"{failed} of {len(records)} runs failed ({names}) and "
                     f"{'is' if failed == 1 else 'are'} excluded.")
    return " ".join(p for p in parts if p)


def findings(records: Iterable[dict]) -> str:
    """Markdown paragraph(s), one per study: best, baseline delta, trend, overfitting, cost."""
    return _each_study(_findings_one, records, "*{}*: ")


# ---------------------------------------------------------------- whole report
def summary(records: Iterable[dict]) -> pd.DataFrame:
    """One row per study (first-appearance order) describing its best run by validation accuracy."""
    keys = ["val_accuracy", "test_accuracy", "f1_macro", "params", "seconds"]
    rows = []
    for study, rs in _by_study(records).items():
        b = best(rs)
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
    failed = len(records) - len(ok)
    parts = [f"This report covers {len(studies)} {'study' if len(studies) == 1 else 'studies'} with "
             f"{len(records)} training runs{on}" + (f", of which {failed} failed." if failed else ".")]
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
                 + (f" ({excluded} run{'s' if excluded > 1 else ''} stuck near chance level excluded)." if excluded else "."))
    ranked = {study: _ranked(rs) for study, rs in _by_study(sensible).items()}
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
    bullets, close_calls, plateaus = [], 0, []
    for study, rs in _by_study(records).items():
        ok = _ok(rs)
        if not ok:
            bullets.append(f"- **{study}**: no successful runs ({len(rs)} failed).")
            continue
        headline, tied = _headline(ok)
        close_calls += tied
        shape, trend = _trend(ok)
        plateaus += [study] if shape in ("plateau", "flat") else []
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
    pairs = [(r.get("study"), r.get("label")) for r in records]
    if len(pairs) == len(set(pairs)):
        close = f"; {close_calls} {'study has' if close_calls == 1 else 'studies have'} a best and runner-up within " \
                f"1 point that only repeats could separate" if close_calls else ""
        future.append(f"- Each configuration was trained with a single seed: repeat runs over several seeds to get "
                      f"error bars{close}.")
    failed = len(records) - len(ok)
    if failed:
        future.append(f"- {failed} run{'s' if failed > 1 else ''} failed: check the error messages and rerun.")
    return "\n".join(bullets + (["", "**Future work**", ""] + future if future else []))

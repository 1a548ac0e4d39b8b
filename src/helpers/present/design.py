"""The design of a study in words: what varied across its runs and what was held fixed, and the
data each run saw."""
from __future__ import annotations

import json
from collections.abc import Iterable

from helpers.analysis.records import by_study
from helpers.config.record import RunRecord
from helpers.present import format as fmt

# Keys that only mean something for convolutional models.
CNN_ONLY = {"model.filters", "model.kernel_size", "model.pool_size", "model.conv_dropout"}


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def each_study(fn, records: Iterable[RunRecord], heading: str) -> str:
    """fn on one study's records; several studies get one headed block each."""
    groups = by_study(records)
    if len(groups) == 1:
        return fn(next(iter(groups.values())))
    return "\n\n".join(heading.format(study) + fn(rs) for study, rs in groups.items())


def _design_one(records: list[RunRecord]) -> str:
    flats = [flatten(r.get("config", {})) for r in records]
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
    lines += [f"- `{k}`: " + ", ".join(fmt.compact(v) for v in vals) for k, vals in varied.items()]
    if not varied:
        lines.append("- nothing (all runs share one configuration)")
    lines += ["", "**Held fixed**"]
    groups: dict[str, list[str]] = {}
    for k, v in fixed.items():
        section, _, rest = k.partition(".")
        group = section if section in ("model", "training", "data") and rest else "other"
        groups.setdefault(group, []).append(f"{rest or k}={fmt.compact(v)}")
    for group in ("model", "training", "data", "other"):
        if group in groups:
            lines.append(f"- *{group}*: " + ", ".join(groups[group]))
    data = records[0].get("config", {}).get("data", {}) if records else {}
    info = next((r["data_info"] for r in records if r.get("data_info")), None)
    sizes = []
    if info:  # what was actually loaded: exact, also when the profile takes all the data
        sizes = [f"{fmt.count(info['train'])} training, {fmt.count(info['val'])} validation and "
                 f"{fmt.count(info['test'])} test samples"]
    else:
        if data.get("train_samples") is not None:
            sizes.append(f"{fmt.count(data['train_samples'])} training samples")
            if data.get("validation_split"):
                sizes[-1] += f" (of which {data['validation_split']:.0%} are held out for validation)"
        if data.get("test_samples") is not None:
            sizes.append(f"{fmt.count(data['test_samples'])} test samples")
    if sizes:
        note = " (sizes vary between runs, see above)" if any(k.startswith("data.") for k in varied) else ""
        name = f"`{data['dataset']}`: " if "dataset" in data else ""
        lines += ["", f"**Data**: {name}" + ", ".join(sizes) + note + "."]
    return "\n".join(lines)


def design(records: Iterable[RunRecord]) -> str:
    """Markdown: which config keys vary across the study's runs and which are held fixed."""
    return each_study(_design_one, records, "#### {}\n\n")

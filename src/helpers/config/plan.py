"""Plans: a validated report and every run of every study, expanded from the parameters.

A study's configurations (``points``) are each merged over the base configuration, validated, and
trained once per seed; the study kind then shapes them into the plan's runs (``Study.finish``).
The robustness study's runs are known only after the other studies finished (``expand_robustness``).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from helpers.config import kinds
from helpers.config.errors import ConfigError, did_you_mean
from helpers.config.layers import Layers, check, merge
from helpers.config.record import Status, is_fold, is_refit
from helpers.config.specs import ModelSpec, Report, TrainingSpec, split_patch
from helpers.data.registry import DATASETS


@dataclass
class StudyPlan:
    name: str
    kind: str
    title: str
    question: str
    runs: list[dict]
    options: dict = field(default_factory=dict)  # robustness: {"top": k, "seeds": [...]}
    expected: int = 0                            # runs it will train or reuse (the progress total)


@dataclass
class Plan:
    """A validated report: its settings and every run of every study, ready to train."""
    report: Report
    studies: dict[str, StudyPlan]
    source: str = ""
    data: dict = field(default_factory=dict)
    merged: dict = field(default_factory=dict)   # the layers merged: what was validated
    origins: dict = field(default_factory=dict)  # leaf path of ``merged`` -> the layer that set it


def _expand(name: str, entry: dict, report: Report, layers: Layers) -> StudyPlan:
    kind = entry.get("kind", name)
    prefix = ("studies", name)
    study = check(kinds.KINDS[kind].schema, dict(entry, kind=kind), layers, lambda loc: prefix + loc)
    profile = report.profiles.get(report.profile)
    data = {"dataset": report.dataset, **report.data.model_dump(),
            "train_samples": profile.train_samples, "test_samples": profile.test_samples,
            "seed": report.seed}
    if "num_words" not in DATASETS[report.dataset].options:  # a vocabulary's size; elsewhere it means nothing
        data.pop("num_words")
    references = _references(name, kind, study, layers)
    runs = []
    for label, axis, patch in study.points():
        resolved, is_base = {}, True
        for part, base, own, spec_cls in (
                ("model", report.base.model.model_dump(), split_patch(patch)[0], ModelSpec),
                ("training", report.base.training.model_dump(), split_patch(patch)[1], TrainingSpec)):
            study_part = getattr(study, part).model_dump(exclude_unset=True)

            def where(loc, own=own, study_part=study_part, part=part, label=label):
                if not loc:  # a check across keys: blame the most specific layer that set any
                    return ((*prefix, *study.origin(label, next(iter(own)))) if own else
                            (*prefix, part) if study_part else ("base", part))
                if loc[0] in own:  # set by this configuration: a variant, an axis, a grid axis
                    return (*prefix, *study.origin(label, loc[0]), *loc[1:])
                if loc[0] in study_part:
                    return (*prefix, part, *loc)
                return ("base", part, *loc)
            study_base = merge(base, study_part)
            resolved[part] = check(spec_cls, merge(study_base, own), layers, where).model_dump()
            is_base &= all(study_base.get(k) == v for k, v in own.items())
        training = resolved["training"]
        reduced = {k: v for k, v in (("train_samples", profile.train_samples),
                                     ("test_samples", profile.test_samples)) if v is not None}
        if profile.epochs and profile.epochs < training["epochs"]:
            training["epochs"] = reduced["epochs"] = profile.epochs
        # How a run is shown, not what it computes (never in the cache key): the reference figures
        # and the profile that may make them incomparable. Always present (None: no reference).
        ref = references.get(label)
        reference = dict(ref.on_run(), profile=report.profile, reduced=reduced) if ref else None
        # One run per seed; the data split keeps the report's seed, so only training varies.
        runs += [{"study": name, "kind": kind, "label": label, "axis": axis, "baseline": is_base,
                  "seed": seed, "reference": copy.deepcopy(reference),
                  "config": {"model": resolved["model"], "training": dict(training), "data": dict(data)}}
                 for seed in study.seed_list(report)]
    title = study.title or name.replace("_", " ").capitalize()
    if runs:  # a robustness study has none yet: they come from the other studies' results
        # The baseline is the study's own base configuration when it is among the runs, else the
        # first; an explicit `baseline:` names it.
        chosen = study.baseline or next((r["label"] for r in runs if r["baseline"]), runs[0]["label"])
        for r in runs:
            r["baseline"] = r["label"] == chosen
        runs = study.finish(runs, profile.epochs)
    return StudyPlan(name, kind, title, study.question, runs, study.options(report),
                     study.expected_runs(runs, report))


def _references(name: str, kind: str, study, layers: Layers) -> dict:
    """label -> the reference figures of that configuration; every label must be the study's."""
    try:
        given = study.references()
    except ValueError as e:
        raise ConfigError(f"{layers.source_of(('studies', name, 'reference'))}: studies.{name}: {e}") from None
    labels = [label for label, _, _ in study.points()]
    for label, (_, where) in given.items():
        if label in labels:
            continue
        key = ".".join(("studies", name, *where))
        source = layers.source_of(("studies", name, *where))
        if kinds.after_others(kind):
            raise ConfigError(f"{source}: {key}: a {kind} study chooses its configurations after the other "
                              "studies ran; give the reference in the study that trains the configuration "
                              "(its runs here carry it)")
        raise ConfigError(f"{source}: {key}: no configuration {label!r} in this study{did_you_mean(label, labels)}; "
                          f"its configurations: {', '.join(labels)}")
    return {label: ref for label, (ref, _) in given.items()}


def run_ids(runs: list[dict]) -> list[str]:
    """Each run's identity within its study: its label, plus its seed where the study trains a
    configuration more than once ("2 layers · seed 43")."""
    repeated = len({r["label"] for r in runs}) < len(runs)
    return [f"{r['label']} · seed {r['seed']}" if repeated else r["label"] for r in runs]


def phases(plans: list[StudyPlan]) -> tuple[list[StudyPlan], list[StudyPlan]]:
    """The studies that run first and those that run after them: a kind that re-trains the other
    studies' results (robustness) waits for them; alone, it has nothing to wait for."""
    later = [p for p in plans if kinds.KINDS[p.kind].after_others]
    if not later or len(later) == len(plans):
        return plans, []
    return [p for p in plans if p not in later], later


def expand_robustness(plan: StudyPlan, records: list[dict]) -> list[dict]:
    """The robustness study's runs: the ``top`` distinct configurations among ``records`` (the
    other studies' runs, ranked by mean validation accuracy of their successful runs; ties: fewer
    parameters), each trained again with every seed. The seed the source already used is a cache
    hit, since the configuration is copied exactly."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        # cv runs train on folds or on train+validation without a validation split: not comparable
        if (r.get("status") == Status.OK and not kinds.after_others(r.get("kind")) and not is_fold(r)
                and not is_refit(r) and (r.get("metrics") or {}).get("val_accuracy") is not None):
            groups.setdefault((r["study"], r["label"]), []).append(r)
    ranked = sorted(groups.values(), key=lambda rs: (-sum(r["metrics"]["val_accuracy"] for r in rs) / len(rs),
                                                     rs[0]["metrics"].get("params", 0)))
    chosen, seen = [], set()
    for rs in ranked:
        config = json.dumps(rs[0]["config"], sort_keys=True)
        if config not in seen:  # the same configuration in two studies is one candidate
            seen.add(config)
            chosen.append(rs[0])
    # A configuration keeps the reference figures its own study gave it.
    return [{"study": plan.name, "kind": plan.kind, "label": f"{r['label']} ({r['study']})", "axis": {},
             "baseline": False, "seed": seed, "reference": copy.deepcopy(r.get("reference")),
             "config": copy.deepcopy(r["config"])}
            for r in chosen[:plan.options["top"]] for seed in plan.options["seeds"]]


def validate(tree: dict, layers: Layers) -> Plan:
    report = check(Report, tree, layers, lambda loc: loc)
    if report.profile not in report.profiles:
        raise ConfigError(f"{layers.source_of(('profile',))}: profile = {report.profile!r}: "
                          f"no such entry under profiles; defined: {', '.join(report.profiles)}")
    studies = {name: _expand(name, entry or {}, report, layers) for name, entry in report.studies.items()}
    robustness_has_sources(studies, layers.source_of(("studies",)))
    first = next(p.runs[0] for p in studies.values() if p.runs)["config"]["data"]
    return Plan(report, studies, data=first)


def robustness_has_sources(studies: dict[str, StudyPlan], source: str) -> None:
    robust = [name for name, p in studies.items() if kinds.after_others(p.kind)]
    if robust and len(robust) == len(studies):
        raise ConfigError(f"{source}: studies.{robust[0]}: a robustness study re-trains the best "
                          "configurations of the report's other studies; include at least one other study")



"""Parameters: load YAML, merge the layers, validate everything, expand studies into runs.

Layers, lowest first: ``params/defaults.yaml`` < the report file < ``--set``. A study's own
settings come from its study file ``params/studies/<kind>.yaml``, overridden by the report file's
entry for that study, overridden by ``--set <study>.<key>=...``. Validation happens once, on the
merged result, before anything trains; the first problem becomes a one-line :class:`ConfigError`
that names the file that set the value.
"""
from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from helpers.schema import (MODEL_KEYS, TRAINING_KEYS, ModelSpec, Report, StudyKinds, TrainingSpec,
                            split_patch)

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params"
NOTEBOOKS = ROOT / "notebooks"


class ConfigError(Exception):
    """Bad input: one line naming the file, the key path, the value and what is allowed."""


def read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{_rel(path)}: file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{_rel(path)}: malformed YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{_rel(path)}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def merge(low: Any, high: Any) -> Any:
    """Deep-merge two YAML trees; mappings merge key by key, anything else is replaced."""
    if isinstance(low, dict) and isinstance(high, dict):
        out = dict(low)
        for k, v in high.items():
            out[k] = merge(low.get(k), v) if k in low else copy.deepcopy(v)
        return out
    return copy.deepcopy(high)


def parse_set(item: str, study_names: set[str]) -> tuple[list[str], Any]:
    """``width.units=[8,16]`` -> (['studies', 'width', 'units'], [8, 16]); values are YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected KEY=VALUE, for example --set base.training.epochs=3")
    key, _, raw = item.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {item}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {item}: the value {raw!r} is not valid YAML") from None
    if path[0] in study_names or path[0] in StudyKinds:
        path = ["studies", *path]
    # A shorthand users reach for: base.epochs means base.training.epochs.
    if len(path) >= 2 and path[0] == "base" and path[1] not in ("model", "training"):
        if path[1] in TRAINING_KEYS:
            path = ["base", "training", *path[1:]]
        elif path[1] in MODEL_KEYS:
            path = ["base", "model", *path[1:]]
    return path, value


def _put(tree: dict, path: list[str], value: Any) -> dict:
    node = tree
    for p in path[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[path[-1]] = value
    return tree


def _has(tree: Any, path: tuple) -> bool:
    for p in path:
        if isinstance(tree, dict) and p in tree:
            tree = tree[p]
        elif isinstance(tree, list) and isinstance(p, int) and p < len(tree):
            tree = tree[p]
        else:
            return False
    return True


class Layers:
    """The raw layers, kept so an error can name the file that set the bad value."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []

    def add(self, source: str, tree: dict) -> None:
        self.items.append((source, tree))

    def rank(self, path: tuple) -> int:
        """Index of the last layer that sets ``path`` (-1: none)."""
        return max((i for i, (_, tree) in enumerate(self.items) if _has(tree, path)), default=-1)

    def source_of(self, path: tuple) -> str:
        i = self.rank(path)
        # A key missing everywhere was required by the schema: blame the top layer's file.
        return self.items[i][0] if i >= 0 else (self.items[-1][0] if self.items else "parameters")


def _fmt_path(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _error_line(err: dict, layers: Layers, user_loc: tuple, allowed: list[str]) -> str:
    source = layers.source_of(user_loc)
    where = _fmt_path(user_loc) or "(top level)"
    typ, value = err["type"], err.get("input")
    if typ == "extra_forbidden":
        hint = difflib.get_close_matches(str(user_loc[-1]), allowed, n=1)
        return (f"{source}: {where}: unknown key {user_loc[-1]!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + (f"; allowed: {', '.join(allowed)}" if allowed else ""))
    msg = err["msg"]
    expected = err.get("ctx", {}).get("expected")
    if typ == "literal_error" and expected:
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        hint = difflib.get_close_matches(str(value), options, n=1)
        msg = f"must be one of {', '.join(options)}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    else:
        msg = msg[0].lower() + msg[1:]
        msg = msg.replace("input should be", "must be")
    if typ == "missing":
        return f"{source}: {where}: required key is missing"
    if isinstance(value, dict) and typ.startswith("value_error"):
        return f"{source}: {where}: {msg}"
    return f"{source}: {where} = {value!r}: {msg}"


def _unwrap(ann: Any) -> Any:
    """Optional[X] -> X, so that a walk along an error's location can follow nested models."""
    args = [a for a in get_args(ann) if a is not type(None)]
    return args[0] if get_origin(ann) in (Union, UnionType) and len(args) == 1 else ann


def _fields_at(cls: Any, loc: tuple) -> list[str]:
    """The keys allowed at ``loc`` inside model ``cls``: for "did you mean" on an unknown key."""
    cur = cls
    for p in loc:
        cur = _unwrap(cur)
        if isinstance(cur, type) and issubclass(cur, BaseModel) and p in cur.model_fields:
            cur = cur.model_fields[p].annotation
        elif get_origin(cur) in (list, dict):
            cur = get_args(cur)[-1]
    cur = _unwrap(cur)
    return sorted(cur.model_fields) if isinstance(cur, type) and issubclass(cur, BaseModel) else []


def _check(cls: type[BaseModel], data: Any, layers: Layers, where) -> Any:
    """Validate ``data`` as ``cls``; ``where`` maps the error's location to the user's key path."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = tuple(err["loc"])
        allowed = _fields_at(cls, loc[:-1]) if err["type"] == "extra_forbidden" else []
        user_loc = where(loc)
        linked = getattr(cls, "linked", {}).get(loc[-1], ()) if loc else ()
        if linked:  # blame the partner key instead when a later layer set it
            partner = max((where(loc[:-1] + (k,)) for k in linked), key=layers.rank)
            if layers.rank(partner) > layers.rank(user_loc):
                user_loc = partner
                err = dict(err, input=_get(layers, partner))
        raise ConfigError(_error_line(err, layers, user_loc, allowed)) from None


def _get(layers: Layers, path: tuple) -> Any:
    tree = layers.items[layers.rank(path)][1]
    for p in path:
        tree = tree[p]
    return tree


@dataclass
class StudyPlan:
    name: str
    kind: str
    title: str
    question: str
    runs: list[dict]
    options: dict = field(default_factory=dict)  # robustness: {"top": k, "seeds": [...]}


@dataclass
class Plan:
    """A validated report: its settings and every run of every study, ready to train."""
    report: Report
    studies: dict[str, StudyPlan]
    source: str = ""
    data: dict = field(default_factory=dict)


def _expand(name: str, entry: dict, report: Report, layers: Layers) -> StudyPlan:
    kind = entry.get("kind", name)
    prefix = ("studies", name)
    study = _check(StudyKinds[kind], dict(entry, kind=kind), layers, lambda loc: prefix + loc)
    profile = report.profiles.get(report.profile)
    data = {"dataset": report.dataset, **report.data.model_dump(),
            "train_samples": profile.train_samples, "test_samples": profile.test_samples,
            "seed": report.seed}
    if report.dataset != "imdb":  # the only dataset with a vocabulary; elsewhere it means nothing
        data.pop("num_words")
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
            resolved[part] = _check(spec_cls, merge(study_base, own), layers, where).model_dump()
            is_base &= all(study_base.get(k) == v for k, v in own.items())
        training = resolved["training"]
        if profile.epochs:
            training["epochs"] = min(training["epochs"], profile.epochs)
        # One run per seed; the data split keeps the report's seed, so only training varies.
        runs += [{"study": name, "kind": kind, "label": label, "axis": axis, "baseline": is_base,
                  "seed": seed,
                  "config": {"model": resolved["model"], "training": dict(training), "data": dict(data)}}
                 for seed in study.seed_list(report)]
    title = study.title or name.replace("_", " ").capitalize()
    if kind == "robustness":  # its runs come from the other studies' results (expand_robustness)
        return StudyPlan(name, kind, title, study.question, [],
                         {"top": study.top, "seeds": study.seed_list(report)})
    # The baseline is the study's own base configuration when it is among the runs, else the first;
    # an explicit `baseline:` names it.
    chosen = study.baseline or next((r["label"] for r in runs if r["baseline"]), runs[0]["label"])
    for r in runs:
        r["baseline"] = r["label"] == chosen
    if kind == "cv":  # one run per configuration and fold; the refit follows in the notebook
        from helpers import crossval
        runs = crossval.fold_runs(runs, study.folds, study.test)
    if kind == "search":  # the tuner's space and budget travel with the runs (helpers.search)
        runs = [dict(r, search=study.settings(r["config"]["training"]["epochs"], profile.epochs)) for r in runs]
    return StudyPlan(name, kind, title, study.question, runs)


def run_ids(runs: list[dict]) -> list[str]:
    """Each run's identity within its study: its label, plus its seed where the study trains a
    configuration more than once ("2 layers · seed 43")."""
    repeated = len({r["label"] for r in runs}) < len(runs)
    return [f"{r['label']} · seed {r['seed']}" if repeated else r["label"] for r in runs]


def expand_robustness(plan: StudyPlan, records: list[dict]) -> list[dict]:
    """The robustness study's runs: the ``top`` distinct configurations among ``records`` (the
    other studies' runs, ranked by mean validation accuracy of their successful runs; ties: fewer
    parameters), each trained again with every seed. The seed the source already used is a cache
    hit, since the configuration is copied exactly."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        # cv runs train on folds or on train+validation without a validation split: not comparable
        if (r.get("status") == "ok" and r.get("kind") not in ("robustness", "cv")
                and (r.get("metrics") or {}).get("val_accuracy") is not None):
            groups.setdefault((r["study"], r["label"]), []).append(r)
    ranked = sorted(groups.values(), key=lambda rs: (-sum(r["metrics"]["val_accuracy"] for r in rs) / len(rs),
                                                     rs[0]["metrics"].get("params", 0)))
    chosen, seen = [], set()
    for rs in ranked:
        config = json.dumps(rs[0]["config"], sort_keys=True)
        if config not in seen:  # the same configuration in two studies is one candidate
            seen.add(config)
            chosen.append(rs[0])
    return [{"study": plan.name, "kind": plan.kind, "label": f"{r['label']} ({r['study']})", "axis": {},
             "baseline": False, "seed": seed, "config": copy.deepcopy(r["config"])}
            for r in chosen[:plan.options["top"]] for seed in plan.options["seeds"]]


def _validate(tree: dict, layers: Layers) -> Plan:
    report = _check(Report, tree, layers, lambda loc: loc)
    if report.profile not in report.profiles:
        raise ConfigError(f"{layers.source_of(('profile',))}: profile = {report.profile!r}: "
                          f"no such entry under profiles; defined: {', '.join(report.profiles)}")
    studies = {name: _expand(name, entry or {}, report, layers) for name, entry in report.studies.items()}
    _robustness_has_sources(studies, layers.source_of(("studies",)))
    first = next(p.runs[0] for p in studies.values() if p.runs)["config"]["data"]
    return Plan(report, studies, data=first)


def _robustness_has_sources(studies: dict[str, StudyPlan], source: str) -> None:
    robust = [name for name, p in studies.items() if p.kind == "robustness"]
    if robust and len(robust) == len(studies):
        raise ConfigError(f"{source}: studies.{robust[0]}: a robustness study re-trains the best "
                          "configurations of the report's other studies; include at least one other study")


def load(params_file: str | Path = PARAMS / "report.yaml", *, profile: str | None = None,
         studies: list[str] | None = None, sets: list[str] = (), notebooks: Path = NOTEBOOKS) -> Plan:
    """Read, merge and validate a report's parameters; raises ConfigError on any bad input."""
    params_file = Path(params_file)
    layers = Layers()
    defaults = read_yaml(PARAMS / "defaults.yaml")
    layers.add(str(_rel(PARAMS / "defaults.yaml")), defaults)
    report = read_yaml(params_file)
    user_studies = report.get("studies")
    if user_studies is None:
        raise ConfigError(f"{_rel(params_file)}: studies: missing: list the studies to run, "
                          f"from {', '.join(StudyKinds)}")
    if isinstance(user_studies, list):  # a plain list of names is allowed too
        user_studies = {name: {} for name in user_studies}
        report = dict(report, studies=user_studies)
    if not isinstance(user_studies, dict) or not user_studies:
        raise ConfigError(f"{_rel(params_file)}: studies = {user_studies!r}: must be a non-empty "
                          f"mapping of study names, from {', '.join(StudyKinds)}")

    # Each study's defaults come from its kind's study file, under the report's entry.
    study_layer: dict = {"studies": {}}
    for name, entry in list(user_studies.items()):
        if entry is None:  # `depth:` with nothing after it: the study file's defaults
            entry = user_studies[name] = {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{_rel(params_file)}: studies.{name} = {entry!r}: must be a mapping of "
                              f"the study's keys, or empty for its defaults")
        kind = entry.get("kind", name)
        if kind not in StudyKinds:
            hint = difflib.get_close_matches(str(kind), list(StudyKinds), n=1)
            key = f"studies.{name}" + (".kind" if isinstance(entry, dict) and "kind" in entry else "")
            raise ConfigError(f"{_rel(params_file)}: {key}: unknown study {kind!r}"
                              + (f" (did you mean {hint[0]!r}?)" if hint else "")
                              + f"; allowed: {', '.join(StudyKinds)}")
        if not (notebooks / f"{kind}.ipynb").exists():
            raise ConfigError(f"{_rel(params_file)}: studies.{name}: the study {kind!r} has no notebook "
                              f"({_rel(notebooks / (kind + '.ipynb'))} is missing)")
        study_file = PARAMS / "studies" / f"{kind}.yaml"
        if study_file.exists():
            sf = read_yaml(study_file)
            # A report that lists variants (or a search space) means exactly those.
            sf = {k: v for k, v in sf.items() if k not in ("variants", "space") or k not in entry}
            layers.add(str(_rel(study_file)), {"studies": {name: sf}})
            study_layer["studies"][name] = sf
    layers.add(str(_rel(params_file)), report)

    tree = merge(merge(defaults, study_layer), report)
    # Keep the report's study order (the section order), not the study files'.
    tree["studies"] = {name: tree["studies"][name] for name in user_studies}

    set_layer: dict = {}
    for item in sets:
        path, value = parse_set(item, set(user_studies))
        if path[0] == "studies" and len(path) == 2 and not isinstance(value, dict):
            raise ConfigError(f"--set {item}: a study is a mapping; set one of its keys, "
                              f"e.g. --set {path[1]}.title=...")
        if path[0] == "studies" and len(path) > 1 and path[1] not in user_studies:
            raise ConfigError(f"--set {item}: the report has no study {path[1]!r}; "
                              f"it has {', '.join(user_studies)}")
        _put(set_layer, path, value)
    if set_layer:
        layers.add("--set", set_layer)
        tree = merge(tree, set_layer)
    if profile is not None:
        tree["profile"] = profile
        layers.add("--profile", {"profile": profile})

    cfg = _validate(tree, layers)
    if studies:
        unknown = [s for s in studies if s not in cfg.studies]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], list(cfg.studies), n=1)
            raise ConfigError(f"--studies: unknown study {unknown[0]!r}"
                              + (f" (did you mean {hint[0]!r}?)" if hint else "")
                              + f"; this report has {', '.join(cfg.studies)}")
        cfg.studies = {k: v for k, v in cfg.studies.items() if k in studies}
        _robustness_has_sources(cfg.studies, "--studies")
    cfg.source = str(_rel(params_file))
    return cfg


def _rel(path: Path) -> Path:
    try:
        return Path(path).resolve().relative_to(Path.cwd())
    except ValueError:
        return Path(path)

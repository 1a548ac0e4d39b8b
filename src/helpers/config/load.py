"""Parameters: load YAML, merge the layers, validate everything, expand studies into runs.

Layers, lowest first: ``params/defaults.yaml`` < the report file < ``--set``. A study's own
settings come from its study file ``params/studies/<kind>.yaml``, overridden by the report file's
entry for that study, overridden by ``--set <study>.<key>=...``. Validation happens once, on the
merged result, before anything trains; the first problem becomes a one-line :class:`ConfigError`
that names the file that set the value. The merge also records which layer set each value
(``Plan.origins``), for ``--show-config``.
"""
from __future__ import annotations

import importlib.util
import sys

from pathlib import Path
from typing import Any

import yaml

from helpers.config import kinds
from helpers.config.errors import ConfigError, did_you_mean
from helpers.config.layers import KeyProblem, Layers, parse_yaml, put, read_yaml, rel
from helpers.config.plan import Plan, robustness_has_sources, validate
from helpers.config.specs import MODEL_KEYS, TRAINING_KEYS

ROOT = Path(__file__).resolve().parents[3]
PARAMS = ROOT / "params"
NOTEBOOKS = ROOT / "notebooks"
# What a notebook run by hand trains where the default report has no study of its kind.
EXAMPLES = PARAMS / "examples.yaml"


def in_repo(path: str | Path) -> Path:
    """``path`` as shown to a user: from the repository root when it lies in it (a notebook's working
    directory is notebooks/, a build's anywhere), else whole."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def parse_set(item: str, study_names: set[str]) -> tuple[list[str], Any]:
    """``width.units=[8,16]`` -> (['studies', 'width', 'units'], [8, 16]); values are YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected KEY=VALUE, for example --set base.training.epochs=3")
    key, _, raw = item.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {item}: empty key")
    try:
        value = parse_yaml(raw) if raw.strip() else None
    except KeyProblem as e:
        raise ConfigError(f"--set {item}: {e}") from None
    except yaml.YAMLError:
        raise ConfigError(f"--set {item}: the value {raw!r} is not valid YAML") from None
    if path[0] in study_names or path[0] in kinds.KINDS:
        path = ["studies", *path]
    # A shorthand users reach for: base.epochs means base.training.epochs.
    if len(path) >= 2 and path[0] == "base" and path[1] not in ("model", "training"):
        if path[1] in TRAINING_KEYS:
            path = ["base", "training", *path[1:]]
        elif path[1] in MODEL_KEYS:
            path = ["base", "model", *path[1:]]
    return path, value


def _names(listed: list, params_file: Path) -> list[str]:
    """The study names of ``studies: [depth, width]``: each text, each once."""
    for i, name in enumerate(listed):
        if not isinstance(name, str):
            raise ConfigError(f"{rel(params_file)}: studies[{i}] = {name!r}: must be a study's name, "
                              f"from {', '.join(kinds.KINDS)}")
        if name in listed[:i]:
            raise ConfigError(f"{rel(params_file)}: studies lists {name!r} twice; keep one")
    return listed


def load(params_file: str | Path = PARAMS / "report.yaml", *, profile: str | None = None,
         studies: list[str] | None = None, sets: list[str] = (), notebooks: Path = NOTEBOOKS) -> Plan:
    """Read, merge and validate a report's parameters; raises ConfigError on any bad input."""
    params_file = Path(params_file)
    layers = Layers()
    defaults = read_yaml(PARAMS / "defaults.yaml")
    layers.add(str(rel(PARAMS / "defaults.yaml")), defaults)
    report = read_yaml(params_file)
    user_studies = report.get("studies")
    if user_studies is None:
        raise ConfigError(f"{rel(params_file)}: studies: missing: list the studies to run, "
                          f"from {', '.join(kinds.KINDS)}")
    if isinstance(user_studies, list):  # a plain list of names is allowed too
        user_studies = {name: {} for name in _names(user_studies, params_file)}
        report = dict(report, studies=user_studies)
    if not isinstance(user_studies, dict) or not user_studies:
        raise ConfigError(f"{rel(params_file)}: studies = {user_studies!r}: must be a non-empty "
                          f"mapping of study names, from {', '.join(kinds.KINDS)}")

    # Each study's defaults come from its kind's study file, under the report's entry.
    for name, entry in list(user_studies.items()):
        if entry is None:  # `depth:` with nothing after it: the study file's defaults
            entry = user_studies[name] = {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{rel(params_file)}: studies.{name} = {entry!r}: must be a mapping of "
                              f"the study's keys, or empty for its defaults")
        kind = entry.get("kind", name)
        if kind not in kinds.KINDS:
            key = f"studies.{name}" + (".kind" if isinstance(entry, dict) and "kind" in entry else "")
            raise ConfigError(f"{rel(params_file)}: {key}: unknown study {kind!r}{did_you_mean(kind, kinds.KINDS)}"
                              f"; allowed: {', '.join(kinds.KINDS)}")
        if not (notebooks / f"{kind}.ipynb").exists():
            raise ConfigError(f"{rel(params_file)}: studies.{name}: the study {kind!r} has no notebook "
                              f"({rel(notebooks / (kind + '.ipynb'))} is missing)")
        study_file = PARAMS / "studies" / f"{kind}.yaml"
        if study_file.exists():
            sf = read_yaml(study_file)
            # A report that lists variants (or a search space) means exactly those.
            sf = {k: v for k, v in sf.items() if k not in ("variants", "space") or k not in entry}
            layers.add(str(rel(study_file)), {"studies": {name: sf}})
    layers.add(str(rel(params_file)), report)

    set_layer: dict = {}
    for item in sets:
        path, value = parse_set(item, set(user_studies))
        if path[0] == "studies" and len(path) == 2 and not isinstance(value, dict):
            raise ConfigError(f"--set {item}: a study is a mapping; set one of its keys, "
                              f"e.g. --set {path[1]}.title=...")
        if path[0] == "studies" and len(path) > 1 and path[1] not in user_studies:
            raise ConfigError(f"--set {item}: the report has no study {path[1]!r}; "
                              f"it has {', '.join(user_studies)}")
        put(set_layer, path, value)
    if set_layer:
        layers.add("--set", set_layer)
    if profile is not None:
        layers.add("--profile", {"profile": profile})

    tree, origins = layers.merged()
    # Keep the report's study order (the section order), not the study files'.
    tree["studies"] = {name: tree["studies"][name] for name in user_studies}
    cfg = validate(tree, layers)
    cfg.merged, cfg.origins = tree, origins
    if importlib.util.find_spec(cfg.report.backend) is None:  # checked here: the error can name its file
        raise ConfigError(f"{layers.source_of(('backend',))}: backend: {cfg.report.backend!r}: it is not "
                          f"installed in {sys.prefix}; `make setup BACKEND={cfg.report.backend}` installs it")
    if studies is not None and not studies:
        raise ConfigError(f"--studies: names no study; this report has {', '.join(cfg.studies)}")
    if studies:
        unknown = [s for s in studies if s not in cfg.studies]
        if unknown:
            raise ConfigError(f"--studies: unknown study {unknown[0]!r}{did_you_mean(unknown[0], cfg.studies)}"
                              f"; this report has {', '.join(cfg.studies)}")
        cfg.studies = {k: v for k, v in cfg.studies.items() if k in studies}
        robustness_has_sources(cfg.studies, "--studies")
    cfg.source = str(rel(params_file))
    return cfg


def examples() -> list[str]:
    """The names of the built-in examples' studies (one per kind the default report lacks)."""
    return list(read_yaml(EXAMPLES)["studies"])


def by_hand(study: str, params_file: str | Path | None = None, profile: str | None = "smoke") -> Plan:
    """The plan that a notebook run by hand (no runs injected) takes its study from: ``params_file``
    (a relative path from the working directory, else from the repository root: Jupyter's is
    notebooks/), by default the default report or, where it has no study ``study``, the built-in
    examples. The plan holds all the file's studies: a robustness study re-trains the others'."""
    report = None
    if params_file is None:
        report = load(PARAMS / "report.yaml", profile=profile)
        if study in report.studies:
            return report
        path = EXAMPLES
    else:
        path = Path(params_file)
        path = path if path.is_absolute() or path.exists() else ROOT / path
    plan = load(path, profile=profile)
    if study not in plan.studies:
        known = [*(report.studies if report else ()), *plan.studies]
        also = f"; {rel(PARAMS / 'report.yaml')} has {', '.join(report.studies)}" if report else ""
        raise ConfigError(f"{rel(path)}: no study {study!r}{did_you_mean(study, known)}; "
                          f"it has {', '.join(plan.studies)}{also}")
    return plan

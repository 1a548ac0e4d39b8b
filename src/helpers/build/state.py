"""What a build can reuse: a study's state (template, presentation code, parameters and run keys)
decides whether its executed notebook still stands, and the report's key whether the report on
disk does. Computed without TensorFlow, papermill or nbconvert, so an unchanged build stays fast."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from helpers.config.load import NOTEBOOKS
from helpers.config.plan import StudyPlan, run_ids
from helpers.data.registry import content_hash
from helpers.run import cache

TEMPLATES = Path(__file__).parent / "templates"
# A study's notebook output may depend on any helper module but those of the build, which run only
# in the build process.
BUILD_ONLY = ("build",)


def study(plan: StudyPlan, notebooks: Path = NOTEBOOKS) -> dict:
    """What a study's executed notebook depends on: template, presentation code, parameters and,
    per run, the run key's inputs. Computed without TensorFlow, so an unchanged build stays fast."""
    digest = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    runs = {}
    for spec, run_id in zip(plan.runs, run_ids(plan.runs)):
        inputs = cache.key_inputs(spec, content_hash(spec["config"]["data"]["dataset"]))
        runs[run_id] = {"key": cache.run_key(spec, inputs["data_files"]), "inputs": inputs}
    state = {"template": digest((notebooks / f"{plan.kind}.ipynb").read_bytes()),
             "presentation": cache.code_hash(cache.HELPERS, ("",), exclude=BUILD_ONLY),
             "parameters": digest(json.dumps({"title": plan.title, "question": plan.question,
                                              "runs": plan.runs}, sort_keys=True).encode()),
             "runs": runs}
    state["key"] = digest(json.dumps(state, sort_keys=True).encode())
    return state


def forced(force: set[str] | bool, name: str) -> bool:
    """Whether ``--force`` (True: every study, or a set of study names) makes study ``name`` train again."""
    return force is True or (bool(force) and name in force)


def previous(out_dir: Path, name: str) -> dict | None:
    """The state a study's last successful execution saved (None: never built, or failed since)."""
    try:
        return json.loads((out_dir / f"{name}.study.json").read_text())
    except (OSError, ValueError):
        return None


def why_changed(old: dict | None, new: dict, forced: bool = False) -> str:
    """In words, why a study executes: forced, or what differs between two study states (for the
    build summary and the dry run)."""
    if forced:
        return "forced"
    if not old:
        return "first build"
    reasons = []
    added = [label for label in new["runs"] if label not in old.get("runs", {})]
    removed = [label for label in old.get("runs", {}) if label not in new["runs"]]
    if added:
        reasons.append("gained " + ", ".join(added))
    if removed:
        reasons.append("lost " + ", ".join(removed))
    changed = [label for label in new["runs"] if label in old.get("runs", {})
               and old["runs"][label]["key"] != new["runs"][label]["key"]]
    if changed:
        label = changed[0]
        reasons.append(f"{label}: {cache.explain(old['runs'][label].get('inputs'), new['runs'][label]['inputs'])}"
                       + (f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""))
    for part in ("template", "presentation", "parameters"):
        if not reasons and old.get(part) != new[part]:
            reasons.append({"template": "notebook template changed", "presentation": "report code changed",
                            "parameters": "title or question changed"}[part])
    return "; ".join(reasons) or "previous build did not finish"


def reuse(plan: StudyPlan, out_dir: Path, state: dict, cache_dir: Path) -> list[dict] | None:
    """The records of an unchanged study, as its previous execution saved them, if it finished, nothing it shows changed, and
    its runs are still in the cache (a cleared cache means train again)."""
    results, notebook = out_dir / f"{plan.name}.results.json", out_dir / f"{plan.name}.ipynb"
    old = previous(out_dir, plan.name)
    if old is None or old.get("key") != state["key"] or not notebook.exists():
        return None
    try:
        records = json.loads(results.read_text())
    except (OSError, ValueError):
        return None
    if not all((Path(cache_dir) / "runs" / str(r.get("key")) / "meta.json").exists() for r in records):
        return None
    for r in records:
        r["cached"] = True
    return records


def report_key(report_settings: dict, study_keys: list[str]) -> str:
    """What a rendered report depends on beyond its studies: its own settings and the code and
    template that write it. Equal keys and reused studies: the report on disk is still right."""
    digest = hashlib.sha256(json.dumps({"report": report_settings, "studies": study_keys},
                                       sort_keys=True, default=str).encode())
    # Every helper module (the report calls into most of them) and the report's template.
    digest.update(cache.code_hash(cache.HELPERS, ("",)).encode())
    for path in sorted(TEMPLATES.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(TEMPLATES).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()

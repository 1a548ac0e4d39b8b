"""What each build leaves behind so that the next can say what changed: one small JSON entry per
report build in ``OUT/NAME.history/`` (its time, the merged parameters of the studies it built,
every run's key and headline metrics, the noise floor its report states, and each study's findings
in words), the comparison of two entries, and the run-cache entries no kept build refers to.

An entry is written only once the report it describes is on disk, under a temporary name renamed
into place, so an interrupted or failed build never becomes "the previous build". Only the newest
KEEP entries are kept.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import nbformat

from helpers.analysis import noise
from helpers.analysis.records import ok as successful
from helpers.analysis.repeats import groups
from helpers.config.plan import Plan, run_ids
from helpers.config.record import is_fold
from helpers.build.notebooks import FINDINGS
from helpers.run.cache import write_atomic

KEEP = 20            # entries kept per report; the oldest beyond this are deleted
FORMAT = 1
METRICS = ("val_accuracy", "test_accuracy")
HEADING = f"### {FINDINGS[0][0]}"  # every kind's notebook ends with its findings under this heading


class HistoryError(ValueError):
    """Asked to compare builds that are not kept."""


def folder(out: Path, name: str) -> Path:
    return Path(out) / f"{name}.history"


# ---------------------------------------------------------------- one build's entry
def _parameters(plan: Plan) -> dict:
    """The merged parameters with only the studies this build ran (as --show-config shows them):
    a study left out by --studies is no parameter change."""
    merged = dict(plan.merged)
    merged["studies"] = {s: merged.get("studies", {}).get(s) for s in plan.studies}
    return merged


def _run(record: dict, run_id: str) -> dict:
    metrics = record.get("metrics") or {}
    return {"study": record.get("study"), "id": run_id, "label": record.get("label"), "seed": record.get("seed"),
            "key": record.get("key"), "status": str(record.get("status")),
            "metrics": {m: metrics[m] for m in METRICS if isinstance(metrics.get(m), (int, float))
                        and math.isfinite(metrics[m])}}


def entry(plan: Plan, outcomes) -> dict:
    """A build's entry, from the records its report shows (a cv fold is no configuration of its own)."""
    shown = {o.name: [r for r in o.records if not is_fold(r)] for o in outcomes}
    item = {"format": FORMAT, "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "params_file": plan.source, "parameters": _parameters(plan),
            # the floor the report's Methodology states: the same function over the same records
            "noise_floor": noise.floor([r for rs in shown.values() for r in rs]),
            "runs": [_run(r, i) for rs in shown.values() for r, i in zip(rs, run_ids(rs))],
            "findings": {o.name: text for o in outcomes if (text := findings_text(o.notebook))},
            "cache": references({"runs": [r for o in outcomes for r in o.records]})}
    # as the next build will read it back (dates as text, tuples as lists), so the two compare alike
    return json.loads(json.dumps(item, default=str))


def findings_text(notebook: Path | None) -> str | None:
    """The words under a study notebook's Findings heading, as its report section shows them (read
    from the executed notebook, whatever the kind's view wrote them with)."""
    if notebook is None or not Path(notebook).exists():
        return None
    texts, under = [], False
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            under = cell.source.strip() == HEADING
        elif under:
            texts += [o["data"]["text/markdown"] for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {})]
    return "\n\n".join(texts) or None


def references(report: dict) -> dict:
    """The cache entries a report (or a history entry) needs: run keys and search-state folders."""
    runs = report.get("runs") or []
    return {"runs": sorted({r["key"] for r in runs if r.get("key")}),
            "search": sorted({(r.get("search") or {}).get("directory") for r in runs
                              if (r.get("search") or {}).get("directory")})}


# ---------------------------------------------------------------- storing and pruning
def kept(history: Path) -> list[Path]:
    """The kept entries, oldest first (names are UTC times, so they sort by age)."""
    if not history.is_dir():
        return []
    return sorted(p for p in history.glob("*.json") if not p.name.startswith("."))


def _stamp(history: Path) -> Path:
    """A new entry's path, named by the UTC time to the microsecond: names sort as builds ran."""
    when = dt.datetime.now(dt.timezone.utc)
    while (path := history / f"{when:%Y%m%d-%H%M%S-%f}.json").exists():
        when += dt.timedelta(microseconds=1)
    return path


def record(history: Path, item: dict, keep: int = KEEP) -> Path:
    """Store ``item`` as the newest entry, then drop the oldest beyond ``keep``."""
    history.mkdir(parents=True, exist_ok=True)
    path = _stamp(history)
    write_atomic(path, json.dumps(item, indent=1, allow_nan=False))
    prune(history, keep)
    return path


def prune(history: Path, keep: int = KEEP) -> list[Path]:
    entries = kept(history)
    gone = entries[:max(len(entries) - keep, 0)]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text()) | {"name": Path(path).stem}


def latest(history: Path) -> dict | None:
    entries = kept(history)
    return load(entries[-1]) if entries else None


def pick(history: Path, a: str | None = None, b: str | None = None) -> tuple[dict, dict]:
    """The two entries ``--compare A B`` names (a name as kept, or a number, 1 the oldest); no
    names: the last two builds; only A: A and the last build."""
    entries = kept(history)
    if len(entries) < 2:
        raise HistoryError(f"--compare needs two kept builds; {history} holds {len(entries)}")

    def one(name: str) -> Path:
        by_name = {p.stem: p for p in entries}
        if name in by_name:
            return by_name[name]
        if name.isdigit() and 1 <= int(name) <= len(entries):
            return entries[int(name) - 1]
        raise HistoryError(f"--compare {name}: no such kept build; kept (1 = oldest): "
                           + ", ".join(p.stem for p in entries))
    first = one(a) if a else entries[-2]
    second = one(b) if b else entries[-1]
    return load(first), load(second)


# ---------------------------------------------------------------- what changed
def set_path(path: tuple) -> str:
    """A merged parameter's path as --set takes it: a study's keys without ``studies.``."""
    return ".".join(map(str, path[1:] if len(path) > 1 and path[0] == "studies" else path))


def changed_parameters(old: dict, new: dict) -> list[tuple[str, object, object]]:
    """(--set path, old, new) of every differing leaf of the studies both builds ran and of the
    shared settings; a study only one build ran is a study added or removed, not parameters."""
    out = []
    both = [s for s in new.get("studies", {}) if s in old.get("studies", {})]
    trim = lambda p: dict(p, studies={s: p["studies"][s] for s in both}) if "studies" in p else p  # noqa: E731

    def walk(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in list(a) + [k for k in b if k not in a]:
                walk(a.get(k), b.get(k), (*path, k))
        elif a != b:
            out.append((set_path(path), a, b))
    walk(trim(old), trim(new), ())
    return out


def _means(runs: list[dict]) -> dict[tuple, float]:
    """(study, label) -> the mean validation accuracy over its successful runs (seeds)."""
    out = {}
    for key, rs in groups(runs).items():
        vals = [r["metrics"]["val_accuracy"] for r in successful(rs) if r["metrics"].get("val_accuracy") is not None]
        if vals:
            out[key] = sum(vals) / len(vals)
    return out


def _listed(run: dict) -> tuple[str, str, float | None]:
    """An added or removed run: (study, its id, its validation accuracy or None)."""
    return run["study"], run["id"], run["metrics"].get("val_accuracy") if run["status"] == "ok" else None


def diff(old: dict, new: dict) -> dict:
    """What differs from build ``old`` to build ``new``. A configuration's validation accuracy is
    a move only beyond ``new``'s noise floor (the one its report states)."""
    ids = lambda e: {(r["study"], r["id"]): r for r in e.get("runs", [])}  # noqa: E731
    before, after = ids(old), ids(new)
    floor = new["noise_floor"]
    old_means, new_means = _means(old.get("runs", [])), _means(new.get("runs", []))
    moves = [(study, label, old_means[(study, label)], v) for (study, label), v in new_means.items()
             if (study, label) in old_means and abs(v - old_means[(study, label)]) > floor]
    old_words, new_words = old.get("findings", {}), new.get("findings", {})
    old_studies, new_studies = (list(e.get("parameters", {}).get("studies", {})) for e in (old, new))
    return {"previous": old.get("name"), "current": new.get("name"),
            "previous_time": old.get("time"), "current_time": new.get("time"),
            "parameters": changed_parameters(old.get("parameters", {}), new.get("parameters", {})),
            "studies_added": [s for s in new_studies if s not in old_studies],
            "studies_removed": [s for s in old_studies if s not in new_studies],
            "added": [_listed(r) for k, r in after.items() if k not in before],
            "removed": [_listed(r) for k, r in before.items() if k not in after],
            "compared": len([k for k in new_means if k in old_means]),
            "moves": moves, "floor": floor,
            "findings": [(s, old_words[s], t) for s, t in new_words.items() if s in old_words and old_words[s] != t]}


# ---------------------------------------------------------------- the run cache's garbage
def kept_references(out: Path) -> dict[str, set[str]]:
    """The cache entries some kept build refers to: every history entry of every report in
    ``out`` (they share its cache) and every report's JSON there."""
    refs = {"runs": set(), "search": set()}
    sources = [p for h in Path(out).glob("*.history") for p in kept(h)] + list(Path(out).glob("*.json"))
    for path in sources:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found = data.get("cache") if isinstance(data.get("cache"), dict) else references(data)
        for part in refs:
            refs[part].update(found.get(part, []))
    return refs


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def gc(out: Path, cache_dir: Path) -> dict:
    """Delete the run-cache entries and search states no kept build refers to. Returns the counts
    deleted ("runs", "search") and the bytes freed. Half-written entries (dot names) go too: the
    caller holds the build lock, so no build is writing one."""
    refs = kept_references(out)
    freed = {"runs": 0, "search": 0, "bytes": 0}
    for part in ("runs", "search"):
        root = Path(cache_dir) / part
        for entry in sorted(root.iterdir()) if root.is_dir() else []:
            if entry.name in refs[part]:
                continue
            freed["bytes"] += _size(entry)
            freed[part] += not entry.name.startswith(".")
            shutil.rmtree(entry, ignore_errors=True)
    return freed

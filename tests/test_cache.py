"""The run cache: what is (and is not) in a run's key, damaged entries, and run_all's reuse.

Fast: key and store tests need no TensorFlow; the run_all tests train two 1-epoch runs on the
8x8 digits bundled with scikit-learn (no files, no network).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from conftest import ROOT, make_record
from fakedata import write_mnist
from helpers.config import load
from helpers.data import registry
from helpers.run import cache

HASH = "0" * 64


# --- the key ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plan():
    return load.load(profile="smoke")


@pytest.fixture
def spec(plan) -> dict:
    return copy.deepcopy(plan.studies["depth"].runs[0])


def _set(*path_and_value):
    *path, value = path_and_value

    def change(spec):
        node = spec
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value
    return change


def _bump(*path):
    """A different value of the same type at ``path`` (so the change is never a no-op)."""
    def change(spec):
        node = spec
        for p in path[:-1]:
            node = node[p]
        old = node[path[-1]]
        node[path[-1]] = (not old if isinstance(old, bool) else old * 2 + 1 if isinstance(old, int)
                          else old * 3 if isinstance(old, float) else f"{old}-changed")
    return change


CHANGES_THE_KEY = {
    "training.learning_rate": _bump("config", "training", "learning_rate"),
    "training.epochs": _bump("config", "training", "epochs"),
    "training.batch_size": _bump("config", "training", "batch_size"),
    "training.optimizer": _set("config", "training", "optimizer", "sgd"),
    "training.early_stopping": _set("config", "training", "early_stopping", None),
    "model.hidden": _set("config", "model", "hidden", [16, 16]),
    "model.dropout": _set("config", "model", "dropout", 0.25),
    "model.activation": _set("config", "model", "activation", "tanh"),
    "seed": _bump("seed"),
    "data.train_samples": _set("config", "data", "train_samples", 777),
    "data.validation_split": _set("config", "data", "validation_split", 0.3),
    "data.seed": _bump("config", "data", "seed"),
    "data.dataset": _set("config", "data", "dataset", "mnist"),
}

KEEPS_THE_KEY = {
    "study": _set("study", "another study"),
    "label": _set("label", "another label"),
    "kind": _set("kind", "width"),
    "axis": _set("axis", {"units": 7}),
    "baseline": _bump("baseline"),
}


@pytest.mark.parametrize("change", CHANGES_THE_KEY.values(), ids=CHANGES_THE_KEY.keys())
def test_what_a_run_computes_changes_its_key(spec, change):
    before = cache.run_key(spec, HASH)
    change(spec)
    assert cache.run_key(spec, HASH) != before


@pytest.mark.parametrize("change", KEEPS_THE_KEY.values(), ids=KEEPS_THE_KEY.keys())
def test_how_a_run_is_shown_keeps_its_key(spec, change):
    before = cache.run_key(spec, HASH)
    change(spec)
    assert cache.run_key(spec, HASH) == before


def test_the_key_is_stable_and_order_independent(spec):
    key = cache.run_key(spec, HASH)
    assert key == cache.run_key(copy.deepcopy(spec), HASH)
    assert len(key) == 64 and int(key, 16) >= 0
    shuffled = copy.deepcopy(spec)
    shuffled["config"]["model"] = dict(reversed(list(shuffled["config"]["model"].items())))
    assert cache.run_key(shuffled, HASH) == key


def test_the_data_files_hash_changes_the_key(spec):
    assert cache.run_key(spec, HASH) != cache.run_key(spec, "1" * 64)


def test_the_training_code_changes_the_key(spec, monkeypatch):
    before = cache.run_key(spec, HASH)
    assert cache.key_inputs(spec, HASH)["sources"] == cache.source_hash()
    monkeypatch.setattr(cache, "source_hash", lambda: "f" * 64)
    assert cache.run_key(spec, HASH) != before


def test_the_tensorflow_and_keras_versions_change_the_key(spec, monkeypatch):
    before = cache.run_key(spec, HASH)
    real = cache.versions()
    assert "keras" in real
    monkeypatch.setattr(cache, "versions", lambda: {**real, "keras": real["keras"] + ".post1"})
    assert cache.run_key(spec, HASH) != before
    monkeypatch.setattr(cache, "versions", lambda: {**real, "tensorflow": "0.0.1"})
    assert cache.run_key(spec, HASH) != before


def test_source_hash_covers_the_training_modules():
    assert cache.TRAINING_SOURCES == ("data", "run")
    for name in cache.TRAINING_SOURCES:
        assert (cache.HELPERS / name).is_dir(), name
    # The modules that train and measure (README: training, models, data, datasets, metrics,
    # crossval) are all under the hashed packages; the presentation and build layers are not.
    hashed = {p.relative_to(cache.HELPERS).as_posix() for name in cache.TRAINING_SOURCES
              for p in (cache.HELPERS / name).rglob("*.py")}
    for module in ("run/training.py", "run/models.py", "run/metrics.py", "run/crossval.py",
                   "data/registry.py", "data/readers.py", "data/splits.py", "data/feed.py"):
        assert module in hashed, module
    assert not any(m.startswith(("present/", "build/", "analysis/")) for m in hashed)
    assert "present" not in cache.TRAINING_SOURCES and "build" not in cache.TRAINING_SOURCES
    assert cache.source_hash() == cache.code_hash(cache.HELPERS, cache.TRAINING_SOURCES)


def _package(root: Path) -> Path:
    """A little helpers tree: data/ (with a sub-package), run/, present/."""
    for rel, text in {"data/__init__.py": "", "data/readers.py": "READ = 1\n",
                      "data/formats/__init__.py": "", "run/__init__.py": "", "run/training.py": "EPOCHS = 1\n",
                      "present/__init__.py": "", "present/figures.py": "DPI = 100\n"}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_code_hash_raises_for_a_listed_source_that_is_missing(tmp_path):
    root = _package(tmp_path / "helpers")
    cache.code_hash(root, ("data", "run"))  # all present: fine
    with pytest.raises(FileNotFoundError, match="datasets"):
        cache.code_hash(root, ("data", "run", "datasets"))  # a moved module must not drop out silently
    (root / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        cache.code_hash(root, ("data", "empty"))  # a package with no module at all
    # A single module may be listed by name, without its suffix.
    assert cache.code_hash(root, ("run/training",)) != cache.code_hash(root, ("data/readers",))


def test_code_hash_follows_every_module_of_a_package_recursively(tmp_path):
    root = _package(tmp_path / "helpers")
    sources = ("data", "run")
    before = cache.code_hash(root, sources)
    assert cache.code_hash(root, sources) == before  # stable
    # A module added in a sub-folder of a source package changes the hash...
    (root / "data" / "formats" / "idx.py").write_text("MAGIC = 2051\n")
    added = cache.code_hash(root, sources)
    assert added != before
    # ...and so does a change to it, or a rename (paths are part of the hash).
    (root / "data" / "formats" / "idx.py").write_text("MAGIC = 2049\n")
    edited = cache.code_hash(root, sources)
    assert edited not in (before, added)
    (root / "data" / "formats" / "idx.py").rename(root / "data" / "formats" / "gz.py")
    assert cache.code_hash(root, sources) not in (before, added, edited)
    # A module outside the sources does not.
    again = cache.code_hash(root, sources)
    (root / "present" / "tables.py").write_text("COLUMNS = []\n")
    assert cache.code_hash(root, sources) == again
    # exclude leaves a package out: the whole tree but present is the same with or without it.
    everything = cache.code_hash(root, ("",), exclude=("present",))
    (root / "present" / "more.py").write_text("X = 1\n")
    assert cache.code_hash(root, ("",), exclude=("present",)) == everything
    assert cache.code_hash(root, ("",)) != everything


def test_titles_and_questions_are_not_in_the_run_keys(plan):
    other = load.load(profile="smoke", sets=["depth.title=Another title", "depth.question=Why not?"])
    assert other.studies["depth"].title == "Another title"
    assert other.studies["depth"].question == "Why not?"
    keys = lambda p: [cache.run_key(r, HASH) for r in p.studies["depth"].runs]  # noqa: E731
    assert keys(other) == keys(plan)


def test_the_same_configuration_in_two_studies_has_one_key(plan):
    """depth's 4 x 128 baseline is width's 128 units: trained once, whatever the study calls it."""
    by_config = {}
    for study in plan.studies.values():
        for r in study.runs:
            by_config.setdefault(json.dumps([r["config"], r["seed"]], sort_keys=True), set()).add(
                cache.run_key(r, HASH))
    assert all(len(keys) == 1 for keys in by_config.values())
    shared = [k for k in by_config if sum(1 for s in plan.studies.values() for r in s.runs
                                          if json.dumps([r["config"], r["seed"]], sort_keys=True) == k) > 1]
    assert shared, "the default report should share at least one configuration between studies"


@pytest.mark.parametrize("where, value, path", [
    (("config", "training", "extra"), {1, 2}, "config.training.extra"),
    (("config", "model", "hidden"), [16, object()], "config.model.hidden[1]"),
    (("config", "data", "train_samples"), b"1000", "config.data.train_samples"),
])
def test_a_value_that_cannot_be_keyed_is_an_error_naming_its_path(spec, where, value, path):
    _set(*where, value)(spec)
    with pytest.raises(cache.UnkeyableValue) as e:
        cache.run_key(spec, HASH)
    assert path in str(e.value)
    assert isinstance(e.value, TypeError)


def test_nan_and_none_are_keyable(spec):
    spec["config"]["model"]["dropout"] = float("nan")
    spec["config"]["data"]["test_samples"] = None
    assert cache.run_key(spec, HASH) == cache.run_key(copy.deepcopy(spec), HASH)


# --- explain ------------------------------------------------------------------------------------

def test_explain_names_the_changed_input(spec):
    old = cache.key_inputs(spec, HASH)
    spec["config"]["training"]["learning_rate"] = 0.01
    new = cache.key_inputs(spec, HASH)
    assert cache.explain(old, new) == "training.learning_rate: 0.001 → 0.01"
    assert cache.explain(None, new) == "new configuration"
    assert cache.explain(new, copy.deepcopy(new)) == "unchanged"


def test_explain_abbreviates_hashes_and_long_lists(spec):
    old = cache.key_inputs(spec, HASH)
    new = copy.deepcopy(old)
    new["sources"], new["data_files"] = "a" * 64, "b" * 64
    assert cache.explain(old, new) == "data_files changed; sources changed"
    for k, v in (("epochs", 99), ("batch_size", 7), ("optimizer", "sgd")):
        new["training"][k] = v
    text = cache.explain(old, new)
    assert text.endswith(" …") and text.count(";") == 2


# --- the store ----------------------------------------------------------------------------------

# What the store is given: a run record without how it is shown (training strips IDENTITY).
RECORD = {k: v for k, v in make_record(val=0.5, seconds=1.25, history_epochs=2).items()
          if k not in ("study", "kind", "label", "axis", "baseline")}


@pytest.fixture
def store(tmp_path) -> cache.RunCache:
    return cache.RunCache(tmp_path / "cache")


def _put(store, key="a" * 64, record=RECORD):
    store.put(key, record, {"seed": 1})
    return key, store.runs / key


def test_put_then_get(store):
    key, folder = _put(store)
    assert store.get(key) == RECORD
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "record.json"]  # no temp files left
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["key"] == key and meta["inputs"] == {"seed": 1}
    assert meta["sha256"] == hashlib.sha256((folder / "record.json").read_bytes()).hexdigest()
    assert store.get("b" * 64) is None


def test_put_stores_once_and_replaces_only_when_asked(store):
    key, folder = _put(store)
    # A second writer of the same run (the build and a kernel both got the task's result) stores nothing.
    assert store.put(key, {**RECORD, "status": "again"}, {"seed": 1}) is False
    assert store.get(key)["status"] == "ok"
    # A forced re-run replaces a different entry, and leaves no temporary folder behind.
    assert store.put(key, {**RECORD, "status": "again"}, {"seed": 1}, replace=True) is True
    assert store.get(key)["status"] == "again"
    assert store.put(key, {**RECORD, "status": "again"}, {"seed": 1}, replace=True) is False  # identical
    assert [p.name for p in store.runs.iterdir()] == [key]


def test_concurrent_writers_store_a_run_once(store):
    import threading
    results, go = [], threading.Barrier(8)

    def write():
        go.wait()
        results.append(store.put("c" * 64, RECORD, {"seed": 1}))
    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert store.get("c" * 64) == RECORD and [p.name for p in store.runs.iterdir()] == ["c" * 64]


def _edit_record(folder: Path):
    text = (folder / "record.json").read_text()
    (folder / "record.json").write_text(text.replace("0.5", "0.9", 1))


def _truncate_record(folder: Path):
    text = (folder / "record.json").read_text()
    (folder / "record.json").write_text(text[: len(text) // 2])


def _delete_record(folder: Path):
    (folder / "record.json").unlink()


def _bad_meta(folder: Path):
    (folder / "meta.json").write_text('{"key": "aaa", "sha256": ')


def _meta_of_another_key(folder: Path):
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "key": "c" * 64}))


DAMAGE = {"record edited": _edit_record, "record truncated": _truncate_record,
          "record missing": _delete_record, "meta invalid JSON": _bad_meta,
          "meta of another key": _meta_of_another_key}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_entry_is_a_miss_with_a_warning_and_is_removed(store, damage):
    key, folder = _put(store)
    damage(folder)
    with pytest.warns(UserWarning, match=rf"cache entry {key[:12]} is damaged"):
        assert store.get(key) is None
    assert not folder.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get(key) is None  # gone: a plain miss from now on
    _put(store, key)
    assert store.get(key) == RECORD


@pytest.mark.parametrize("damage", [*DAMAGE.values(), lambda folder: (folder / "meta.json").unlink()],
                         ids=[*DAMAGE.keys(), "meta missing"])
def test_a_look_without_repair_misses_a_damaged_entry_and_leaves_it(store, damage):
    """A dry run's look: the build would train the run again, but nothing is changed yet."""
    key, folder = _put(store)
    damage(folder)
    left = {p.name: p.read_bytes() for p in folder.iterdir()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get(key, repair=False) is None
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == left


def test_a_record_without_meta_is_an_interrupted_save_and_a_miss(store):
    key, folder = _put(store)
    (folder / "meta.json").unlink()  # the meta file is written last: the save never finished
    with pytest.warns(UserWarning, match="incomplete"):
        assert store.get(key) is None
    assert not folder.exists()


def test_size_and_clear(store):
    assert store.size() == (0, 0)
    _put(store, "a" * 64)
    _put(store, "b" * 64, {**RECORD, "history": {"loss": [0.1] * 1000}})
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert len(files) == 4
    entries, size = store.size()
    assert entries == 2 and size == sum(p.stat().st_size for p in files) > 4000
    assert store.clear() == (entries, size)
    assert not store.root.exists()
    assert store.size() == (0, 0)
    assert store.clear() == (0, 0)  # clearing nothing is fine


def test_size_does_not_count_an_interrupted_entry(store):
    _put(store, "a" * 64)
    key, folder = _put(store, "b" * 64)
    (folder / "meta.json").unlink()
    assert store.size()[0] == 1


# --- registry.content_hash ----------------------------------------------------------------------------

@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.ENV_DATA_DIR, str(tmp_path))
    monkeypatch.setenv(registry.ENV_OFFLINE, "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras-home"))
    write_mnist(tmp_path, 60, 20)
    return tmp_path


def test_content_hash_follows_the_raw_files(mnist_dir):
    path = mnist_dir / "mnist.npz"
    first = registry.content_hash("mnist")
    assert first == registry.content_hash("mnist")
    # Other content, other size.
    write_mnist(mnist_dir, 70, 20)
    second = registry.content_hash("mnist")
    assert second != first
    # Same size, one byte different: seen once the modification time moves.
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    stat = path.stat()
    path.write_bytes(bytes(blob))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    assert path.stat().st_size == stat.st_size
    third = registry.content_hash("mnist")
    assert third not in (first, second)
    # Touching a file without changing it keeps the hash (it is a hash of the content).
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    assert registry.content_hash("mnist") == third


def test_content_hash_of_bundled_digits_names_the_package():
    assert "+scikit-learn-" in registry.content_hash("digits")


# --- training.run_all with a cache ------------------------------------------------------------------

@pytest.fixture(scope="module")
def digit_specs(digits_plan):
    runs = copy.deepcopy(digits_plan.studies["depth"].runs[:2])
    for r in runs:
        r["config"]["training"]["epochs"] = 1
    return runs


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _identity(r):
    return {k: r[k] for k in ("study", "kind", "label", "axis", "baseline")}


RUN_ALL_PROBE = """
import json, sys
from helpers.run import training
records = training.run_all(json.load(open(sys.argv[1])), cache_dir=sys.argv[2])
print([r["cached"] for r in records], "tensorflow" in sys.modules, "distributed" in sys.modules)
"""


def test_run_all_trains_once_then_reuses(digit_specs, tmp_path, monkeypatch):
    from helpers.run import training

    store_dir = tmp_path / "cache"
    specs = copy.deepcopy(digit_specs)
    first = training.run_all(specs, cache_dir=str(store_dir), events_path=str(tmp_path / "1.jsonl"))
    assert [r["status"] for r in first] == ["ok", "ok"], [r.get("error") for r in first]
    assert [r["cached"] for r in first] == [False, False]
    assert len({r["key"] for r in first}) == 2
    assert cache.RunCache(store_dir).size()[0] == 2
    assert [e["cached"] for e in _events(tmp_path / "1.jsonl") if e["event"] == "done"] == [False, False]

    # Second call: nothing trains.
    real_run = training.run

    def no_training(*a, **kw):
        raise AssertionError("training.run called for a cached run")
    monkeypatch.setattr(training, "run", no_training)
    second = training.run_all(copy.deepcopy(digit_specs), cache_dir=str(store_dir),
                              events_path=str(tmp_path / "2.jsonl"))
    assert [r["cached"] for r in second] == [True, True]
    assert [r["status"] for r in second] == ["ok", "ok"]
    for a, b in zip(first, second):
        assert b["metrics"] == a["metrics"] and b["history"] == a["history"] and b["key"] == a["key"]
        assert b["config"] == a["config"] and _identity(b) == _identity(a)
    assert [e["cached"] for e in _events(tmp_path / "2.jsonl") if e["event"] == "done"] == [True, True]
    # A process whose runs are all cached (a re-rendered study's kernel) never loads TensorFlow, nor
    # connects to the build's cluster (here none answers: connecting would raise).
    (tmp_path / "specs.json").write_text(json.dumps(digit_specs))
    probe = subprocess.run([sys.executable, "-c", RUN_ALL_PROBE, str(tmp_path / "specs.json"), str(store_dir)],
                           capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "STUDYBOOK_SCHEDULER": "tcp://127.0.0.1:1",
                                "STUDYBOOK_CONNECT_TIMEOUT": "1s"})
    assert probe.stdout.split() == ["[True,", "True]", "False", "False"], probe.stderr[-2000:]

    # A hit is shown as the study asking for it: same configuration, another study and label.
    alias = copy.deepcopy(digit_specs[1])
    alias.update(study="width", kind="width", label="64 units", axis={"units": 64}, baseline=True)
    (hit,) = training.run_all([alias], cache_dir=str(store_dir))
    assert hit["cached"] is True and _identity(hit) == _identity(alias)
    assert hit["metrics"] == first[1]["metrics"]

    # force: trains again (and the metrics are the same: deterministic ops, same seed).
    monkeypatch.setattr(training, "run", real_run)
    forced = training.run_all(copy.deepcopy(digit_specs), cache_dir=str(store_dir), force=True)
    assert [r["cached"] for r in forced] == [False, False]
    for a, b in zip(first, forced):
        assert b["metrics"]["val_accuracy"] == a["metrics"]["val_accuracy"]
        assert b["history"] == a["history"]

    # A damaged entry: only that run is trained again, with a warning.
    record_path = store_dir / "runs" / first[0]["key"] / "record.json"
    record_path.write_text(record_path.read_text().replace('"status": "ok"', '"status": "OK"', 1))
    calls = []

    def counting_run(spec, splits):
        calls.append(spec["label"])
        return real_run(spec, splits)
    monkeypatch.setattr(training, "run", counting_run)
    with pytest.warns(UserWarning, match="damaged"):
        third = training.run_all(copy.deepcopy(digit_specs), cache_dir=str(store_dir))
    assert calls == [digit_specs[0]["label"]]
    assert [r["cached"] for r in third] == [False, True]
    assert third[0]["metrics"]["val_accuracy"] == first[0]["metrics"]["val_accuracy"]
    assert cache.RunCache(store_dir).get(first[0]["key"])["status"] == "ok"  # cached again, intact


def test_run_all_without_a_cache_dir_trains_and_marks_nothing_cached(digit_specs):
    from helpers.run import training

    (record,) = training.run_all(copy.deepcopy(digit_specs[:1]))
    assert record["status"] == "ok" and record["cached"] is False and record["key"] is None


def test_a_failed_run_is_never_cached(digit_specs, tmp_path):
    from helpers.run import training

    bad = copy.deepcopy(digit_specs[0])
    bad["config"]["data"]["train_samples"] = 5  # too few to stratify: the load raises
    (record,) = training.run_all([bad], cache_dir=str(tmp_path / "cache"))
    assert record["status"] == "failed" and record["cached"] is False
    assert "train_samples" in record["error"]
    assert cache.RunCache(tmp_path / "cache").size()[0] == 0


def test_default_root_is_the_default_builds_cache_whatever_the_working_directory(monkeypatch, tmp_path):
    from conftest import ROOT
    monkeypatch.delenv(cache.ENV_CACHE, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cache.default_root() == ROOT / "reports" / ".cache"
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "c"))
    assert cache.default_root() == tmp_path / "c"

"""Run-level cache: a run's key, and results written so that a crash never leaves a fake hit.

A key hashes everything that can change what training produces: the validated model, training and
data configuration, the seed, a hash of the raw data files, the source of the helper modules that
train and measure, the Keras backend (TensorFlow or JAX) and its and Keras's versions, the versions of the libraries that draw the
splits and folds (helpers.data.splits.SPLIT_LIBRARIES), the device class (CPU or GPU) and the
oneDNN switch of TensorFlow's CPU kernels. Titles, labels, study names, plot options and output
paths are not in it, nor is the thread count a build gives TensorFlow: training pins the
intra-op count, the only one that changes a result (helpers.run.training.INTRA_OP_THREADS).
An entry is ``<root>/runs/<key>/record.json`` plus ``meta.json``;
the meta file is written last, only after the record is complete, and holds the record's hash and
the key's inputs (so a miss can be explained).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

from helpers.data.splits import split_versions

HELPERS = Path(__file__).resolve().parents[1]
# The packages whose code decides what a run computes (not how it is shown): every module under
# them, however deep, is part of every run key.
TRAINING_SOURCES = ("data", "run")
# 2: the key gained the split libraries' versions and the device (class and oneDNN switch).
# 3: the Keras backend and its versions; training's execution settings (jit_compile, steps_per_execution).
FORMAT = 3


class UnkeyableValue(TypeError):
    """A configuration value that cannot be part of a key (it would be silently ignored)."""


def code_hash(root: Path, sources: tuple[str, ...], *, exclude: tuple[str, ...] = ()) -> str:
    """A hash of every Python module under ``sources`` (packages or modules, relative to ``root``),
    recursively, named by their paths; ``exclude``: packages left out. A listed source that does
    not exist is an error: a moved module must never silently drop out of a key."""
    digest = hashlib.sha256()
    for name in sources:
        path = root / name
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.py")
                           if not any(p.is_relative_to(root / x) for x in exclude))
        elif path.with_suffix(".py").is_file():
            files = [path.with_suffix(".py")]
        else:
            raise FileNotFoundError(f"{path} is listed as a source of cache keys but does not exist")
        if not files:
            raise FileNotFoundError(f"{path} is listed as a source of cache keys but holds no module")
        for f in files:
            digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """The training path's code (see TRAINING_SOURCES), part of every run key."""
    return code_hash(HELPERS, TRAINING_SOURCES)


def keras_backend() -> str:
    """The Keras backend training uses: the loaded Keras's, else what Keras will read when loaded."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


@functools.lru_cache(maxsize=1)
def versions() -> dict:
    """TensorFlow's and Keras's versions, and those of the libraries that draw the splits."""
    out = {"backend": keras_backend()}
    # TensorFlow's CPU and CUDA builds are two distributions of one version: named once, so a
    # CPU-only build can drive GPU workers (the device class tells their sums apart).
    for name, dists in ((("tensorflow", ("tensorflow", "tensorflow-cpu")), ("keras", ("keras",)))
                        if out["backend"] == "tensorflow" else
                        (("keras", ("keras",)), ("jax", ("jax",)), ("jaxlib", ("jaxlib",)))):
        for dist in dists:
            try:
                out[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                pass
    return {**out, **split_versions()}


def _cuda_build() -> bool:
    """Whether the installed TensorFlow was built with CUDA, read from its build_info module's text
    (importing TensorFlow takes seconds; the build's state check must not)."""
    spec = importlib.util.find_spec("tensorflow")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        info = Path(folder) / "python" / "platform" / "build_info.py"
        if info.is_file():
            return "'is_cuda_build', True" in info.read_text()
    return False


@functools.lru_cache(maxsize=2)
def _device_class(tensorflow_loaded: bool) -> str:
    if keras_backend() == "jax":
        import jax
        return "gpu" if jax.default_backend() == "gpu" else "cpu"
    if tensorflow_loaded:  # the answer of the process that trains: what TensorFlow itself sees
        import tensorflow as tf
        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return "cpu"
    gpus = list(Path("/proc/driver/nvidia/gpus").glob("*")) if Path("/proc/driver/nvidia/gpus").is_dir() else []
    return "gpu" if gpus and _cuda_build() else "cpu"


# Where a notebook run by hand keeps its runs (helpers.run.trainer): unset, the default build's
# cache, so what that build trained is reused; tests name a folder of their own.
ENV_CACHE = "STUDYBOOK_CACHE"


def default_root() -> Path:
    """The run cache of ``build_report.py`` with its default --out (reports/.cache), or $STUDYBOOK_CACHE."""
    return Path(os.environ.get(ENV_CACHE) or HELPERS.parents[1] / "reports" / ".cache")


# Set by a build on a remote cluster: the device class its workers' Keras sees (helpers.build.cluster).
ENV_DEVICE = "STUDYBOOK_DEVICE_CLASS"


def device() -> dict:
    """Where training runs: the device class (a GPU's kernels compute other sums than the CPU's) and
    TF_ENABLE_ONEDNN_OPTS (it switches the CPU kernels; unset, TensorFlow decides by CPU). Asked of
    TensorFlow once it is loaded (the training kernel); before that (the build's state check), told
    from the environment, the NVIDIA driver and TensorFlow's build info without loading it."""
    return {"class": os.environ.get(ENV_DEVICE) or _device_class("tensorflow" in sys.modules),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def _canonical(value, path: str = "config"):
    """JSON-ready copy of ``value``; anything that is not plain data is an error, not dropped."""
    if isinstance(value, dict):
        return {str(k): _canonical(v, f"{path}.{k}") for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return float(repr(value)) if value == value else "nan"
    raise UnkeyableValue(f"{path} = {value!r} ({type(value).__name__}) cannot be part of a run's cache key")


def key_inputs(spec: dict, data_hash: str) -> dict:
    config = spec["config"]
    return _canonical({"format": FORMAT, "model": config["model"], "training": config["training"],
                       "data": config["data"], "seed": spec["seed"], "data_files": data_hash,
                       "sources": source_hash(), "versions": versions(), "device": device()})


def run_key(spec: dict, data_hash: str) -> str:
    blob = json.dumps(key_inputs(spec, data_hash), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once: a reader (or a crash) never sees half a file.
    The temporary name carries the pid, so two builds writing the same entry do not collide."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class RunCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs = self.root / "runs"

    def _dir(self, key: str) -> Path:
        return self.runs / key

    def get(self, key: str, *, repair: bool = True) -> dict | None:
        """The cached record, or None; a damaged or partial entry is removed with a warning
        (``repair``), or, for a look that must change nothing (a dry run), left as it is."""
        folder = self._dir(key)
        meta_path, record_path = folder / "meta.json", folder / "record.json"
        if not meta_path.exists():
            if folder.exists() and repair:  # a record without its meta: a run interrupted while saving
                warnings.warn(f"cache entry {key[:12]} is incomplete (interrupted while saving); "
                              "the run will be trained again", stacklevel=2)
                shutil.rmtree(folder, ignore_errors=True)
            return None
        try:
            meta = json.loads(meta_path.read_text())
            text = record_path.read_text()
            if meta.get("key") != key or meta.get("sha256") != hashlib.sha256(text.encode()).hexdigest():
                raise ValueError("hash mismatch")
            return json.loads(text)
        except (OSError, ValueError) as e:
            if not repair:
                return None
            warnings.warn(f"cache entry {key[:12]} is damaged ({e}); the run will be trained again",
                          stacklevel=2)
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def put(self, key: str, record: dict, inputs: dict, *, replace: bool = False,
            origin: dict | None = None) -> bool:
        """Store a run's record once: the entry is written in a folder of its own and renamed into
        place, so a reader never sees part of it and of two writers (the build and a kernel given
        the same task's result) one stores it. ``replace``: a forced re-run's entry replaces a
        different one. ``origin``: which build trained it for which study (kept in the meta file,
        outside the record's hash). True when this call stored it."""
        folder = self._dir(key)
        text = json.dumps(record, allow_nan=False)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if folder.exists():
            if not replace or self._sha(folder) == digest:
                return False
        self.runs.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=self.runs))
        write_atomic(tmp / "record.json", text)
        meta = {"key": key, "sha256": digest, "inputs": inputs, "trained": origin}
        write_atomic(tmp / "meta.json", json.dumps(meta, indent=1))
        if replace and folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.old.", dir=self.runs))
            try:
                os.replace(folder, old / "entry")
            except FileNotFoundError:
                pass
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(tmp, folder)  # fails when another writer's entry is already in place
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        return True

    def origin(self, key: str) -> dict:
        """Which build trained an entry, for which study ({} if not said)."""
        try:
            return json.loads((self._dir(key) / "meta.json").read_text()).get("trained") or {}
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _sha(folder: Path) -> str | None:
        try:
            return json.loads((folder / "meta.json").read_text()).get("sha256")
        except (OSError, ValueError):
            return None

    def size(self) -> tuple[int, int]:
        """(entries, bytes) under the cache root."""
        files = [p for p in self.root.rglob("*") if p.is_file()] if self.root.exists() else []
        entries = [p for p in self.runs.glob("*/meta.json") if not p.parent.name.startswith(".")] if self.runs.exists() else []
        return len(entries), sum(p.stat().st_size for p in files)

    def clear(self) -> tuple[int, int]:
        entries, size = self.size()
        shutil.rmtree(self.root, ignore_errors=True)
        return entries, size


def explain(old: dict | None, new: dict) -> str:
    """Why a key changed, in words: the first differing inputs (for the build summary)."""
    if old is None:
        return "new configuration"
    diffs = []

    def walk(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        elif a != b:
            diffs.append(f"{path}: {a!r} → {b!r}" if path not in ("sources", "data_files") else f"{path} changed")
    walk(old, new, "")
    return "; ".join(diffs[:3]) + (" …" if len(diffs) > 3 else "") if diffs else "unchanged"

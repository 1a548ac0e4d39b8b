"""Dataset registry: offline-first loading of raw dataset files into train/val/test splits.

Nothing here downloads. Studies must be reproducible on machines without network access,
so the raw files are looked up in a fixed list of folders and a missing file is reported
with a one-line message saying where to put it.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import json
import math
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from sklearn.model_selection import train_test_split

# Module-level so tests can point it at a nonexistent folder.
DEBIAN_DATA_DIR = Path("/usr/share/datasets")
ENV_DATA_DIR = "STUDYBOOK_DATA_DIR"


class DatasetMissing(Exception):
    """A raw dataset file is not in any searched folder; str() is a single line."""


@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    fingerprint: str
    info: dict


Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, decode and preprocess one dataset; the registry holds these."""
    subdir: str                                   # folder name inside each search root
    files: tuple[str, ...]
    decode: Callable[[Mapping[str, bytes]], Raw]  # raw file bytes by name -> arrays
    preprocess: Callable[[np.ndarray], np.ndarray]
    preprocessing: str                            # human-readable, shown in reports
    class_names: tuple[str, ...]
    apt_package: str | None = None


def _read_idx(name: str, blob: bytes, magic: int, ndim: int) -> np.ndarray:
    """Decode one gzip'd IDX file, failing loudly (with the file name) on any inconsistency."""
    try:
        data = gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{name}: not a valid gzip file ({e})") from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} bytes)")
    (got,) = struct.unpack(">I", data[:4])
    if got != magic:
        raise ValueError(f"{name}: bad IDX magic number 0x{got:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(dims)
    if len(data) != expected:
        raise ValueError(f"{name}: corrupt or truncated: {len(data)} bytes, "
                         f"header dims {dims} need {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _decode_mnist_like(train_img, train_lbl, test_img, test_lbl, n_classes):
    def decode(blobs: Mapping[str, bytes]) -> Raw:
        out = []
        for img, lbl in ((train_img, train_lbl), (test_img, test_lbl)):
            x = _read_idx(img, blobs[img], 0x00000803, 3)
            y = _read_idx(lbl, blobs[lbl], 0x00000801, 1).astype(np.int64)
            if x.shape[1:] != (28, 28):
                raise ValueError(f"{img}: expected 28x28 images, got {x.shape[1:]}")
            if len(x) != len(y):
                raise ValueError(f"{img} has {len(x)} images but {lbl} has {len(y)} labels")
            if y.size and y.max() >= n_classes:
                raise ValueError(f"{lbl}: label {y.max()} out of range 0..{n_classes - 1}")
            out += [x, y]
        return tuple(out)
    return decode


def _scale_pixels(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / np.float32(255.0)


_FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        subdir="fashion-mnist",
        files=_FASHION_FILES,
        decode=_decode_mnist_like(*_FASHION_FILES, n_classes=10),
        preprocess=_scale_pixels,
        preprocessing="pixels scaled to [0, 1] (÷255)",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        apt_package="dataset-fashion-mnist",
    ),
}


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def search_dirs(name: str) -> list[Path]:
    """Candidate folders in priority order (env overrides, Keras cache, Debian package)."""
    sub = _spec(name).subdir
    roots = []
    if os.environ.get(ENV_DATA_DIR):
        roots.append(Path(os.environ[ENV_DATA_DIR]))
    if os.environ.get("KERAS_HOME"):
        roots.append(Path(os.environ["KERAS_HOME"]) / "datasets")
    roots += [Path.home() / ".keras" / "datasets", DEBIAN_DATA_DIR]
    return list(dict.fromkeys(root.expanduser() / sub for root in roots))


def locate(name: str) -> Path:
    """First searched folder holding every raw file of `name`, else DatasetMissing."""
    spec = _spec(name)
    dirs = search_dirs(name)
    for d in dirs:
        if all((d / f).is_file() for f in spec.files):
            return d
    # Point at a half-filled folder if there is one: that is where the user was heading.
    target = next((d for d in dirs if any((d / f).is_file() for f in spec.files)), dirs[0])
    missing = [f for f in spec.files if not (target / f).is_file()]
    more = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    hint = f", or run `apt-get install {spec.apt_package}`" if spec.apt_package else ""
    raise DatasetMissing(
        f"{name}: missing {missing[0]}{more}; put {'it' if len(missing) == 1 else 'them'} in {target}{hint} "
        f"(searched: {', '.join(map(str, dirs))})")


def _stat_key(folder: Path, files) -> tuple:
    # Part of the cache key so a file replaced on disk mid-process is re-read, not served stale.
    stats = [(folder / f).stat() for f in files]
    return tuple((f, st.st_size, st.st_mtime_ns) for f, st in zip(files, stats))


@functools.lru_cache(maxsize=8)
def _read_raw(name: str, folder: Path, stat_key: tuple) -> tuple[Raw, str]:
    """Decoded arrays plus a content hash; cached because several studies load per process."""
    spec = DATASETS[name]
    blobs = {f: (folder / f).read_bytes() for f in spec.files}
    digest = hashlib.sha256()
    for f in spec.files:
        digest.update(f.encode() + b"\0" + hashlib.sha256(blobs[f]).digest())
    arrays = spec.decode(blobs)
    for a in arrays:
        a.flags.writeable = False  # shared between callers; must never be mutated
    return arrays, digest.hexdigest()


def _check_per_class(part: str, y: np.ndarray, n_classes: int) -> None:
    counts = np.bincount(y, minlength=n_classes)
    if counts.min() < 2:
        raise ValueError(f"{part} set has only {counts.min()} sample(s) of class "
                         f"{int(counts.argmin())}; need at least 2 per class — use more samples")


def _subsample(y: np.ndarray, n: int | None, what: str, seed: int, n_classes: int) -> np.ndarray:
    """Indices of a stratified subsample of size n (None = all), in a seed-determined order."""
    total = len(y)
    if n is None or n == total:
        return np.arange(total)
    if n < 1 or n > total:
        raise ValueError(f"{what}={n} is out of range: 1..{total} available")
    if n < 2 * n_classes:
        raise ValueError(f"{what}={n} is too small to stratify: need at least "
                         f"{2 * n_classes} (2 per class for {n_classes} classes)")
    idx, _ = train_test_split(np.arange(total), train_size=n, stratify=y, random_state=seed)
    return idx


def load(name: str, *, train_samples: int | None, test_samples: int | None,
         validation_split: float, seed: int) -> Splits:
    """Train/val drawn from the training files only; the test files are never used for validation."""
    spec = _spec(name)
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be strictly between 0 and 1, got {validation_split}")
    folder = locate(name)
    (x_tr_raw, y_tr_raw, x_te_raw, y_te_raw), content = _read_raw(
        name, folder, _stat_key(folder, spec.files))
    k = len(spec.class_names)

    pool = _subsample(y_tr_raw, train_samples, "train_samples", seed, k)
    n_val = math.ceil(validation_split * len(pool))  # sklearn rounds the test share up
    if min(n_val, len(pool) - n_val) < 2 * k:
        raise ValueError(
            f"train_samples={len(pool)} with validation_split={validation_split} gives "
            f"{len(pool) - n_val} train / {n_val} val; need at least {2 * k} in each (2 per class)")
    tr, va = train_test_split(pool, test_size=n_val, stratify=y_tr_raw[pool], random_state=seed)
    te = _subsample(y_te_raw, test_samples, "test_samples", seed, k)
    for part, y in (("train", y_tr_raw[tr]), ("validation", y_tr_raw[va]), ("test", y_te_raw[te])):
        _check_per_class(part, y, k)

    params = {"dataset": name, "train_samples": train_samples, "test_samples": test_samples,
              "validation_split": validation_split, "seed": seed, "content_sha256": content}
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    info = {"dataset": name, "source": str(folder), "train": len(tr), "val": len(va),
            "test": len(te), "shape": list(x_tr_raw.shape[1:]), "classes": k,
            "preprocessing": spec.preprocessing}
    return Splits(
        x_train=spec.preprocess(x_tr_raw[tr]), y_train=y_tr_raw[tr],
        x_val=spec.preprocess(x_tr_raw[va]), y_val=y_tr_raw[va],
        x_test=spec.preprocess(x_te_raw[te]), y_test=y_te_raw[te],
        class_names=list(spec.class_names), fingerprint=fingerprint, info=info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.data")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="report where a dataset's raw files are, exit 2 if missing")
    check.add_argument("name", choices=sorted(DATASETS))
    args = parser.parse_args(argv)
    try:
        folder = locate(args.name)
    except DatasetMissing as e:
        print(e, file=sys.stderr)
        return 2
    print(f"{args.name}: found in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

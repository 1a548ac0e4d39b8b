"""Dataset registry: where each dataset's raw files live, how to fetch and fingerprint them.

Raw files are looked up in a fixed list of folders (the Keras cache layout). A missing file is
fetched the way Keras would (its origin URL, checksum verified) unless downloads are off
(STUDYBOOK_OFFLINE=1 or ``locate(..., download=False)``); if it is still missing the error is a
single line saying which file and where to put it. The format readers live in helpers.data.readers,
splitting in helpers.data.splits, feeding Keras in helpers.data.feed.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import os
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

from helpers.data import readers
from helpers.data.readers import RawData

# Module-level so tests can point it at a nonexistent folder.
DEBIAN_DATA_DIR = Path("/usr/share/datasets")
ENV_DATA_DIR = "STUDYBOOK_DATA_DIR"
ENV_OFFLINE = "STUDYBOOK_OFFLINE"
DOWNLOAD_TIMEOUT_S = 10
DENSE, SPARSE = "dense float32", "sparse uint8 (CSR), densified per batch"


class DatasetMissing(Exception):
    """A raw dataset file is not in any searched folder; str() is a single line."""



@dataclass(frozen=True)
class Download:
    """One file of Keras's own download, relative to the Keras datasets folder."""
    url: str
    target: str                 # where it lands under <keras home>/datasets
    file_hash: str              # sha256 (64 hex digits) or md5 (32), as in keras.datasets
    extract_to: str | None = None  # a .tar.gz: unpack into this folder under datasets/


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, read and preprocess one dataset; the registry holds these."""
    layouts: tuple[str, ...]      # candidate folders inside each search root, in order ("" = the root)
    files: tuple[str, ...]        # required raw files; the fingerprint hashes exactly these
    read: Callable[..., RawData]  # (folder, **options) -> arrays as stored
    preprocess: Callable          # stored x -> model input (per split)
    preprocessing: str            # human-readable, shown in reports; may use {options}
    class_names: tuple[str, ...]
    apt_package: str | None = None
    optional_files: tuple[str, ...] = ()      # used when present (IMDB's word index)
    downloads: tuple[Download, ...] = ()      # Keras's origin for the files, in order
    options: tuple[str, ...] = ()             # load() keywords the reader takes
    storage: str = DENSE
    bundled_with: str | None = None           # a package shipping the files (no search roots)

    @property
    def subdir(self) -> str:
        return self.layouts[0]


def _scale(divisor: float):
    def scale(x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32) / np.float32(divisor)
    return scale


def _as_is(x):
    return x


_KERAS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_MD5 = ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")
_CIFAR_TARGET = "cifar-10-batches-py-target"  # keras 3's get_file(extract=True) folder

DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        layouts=("fashion-mnist",), files=readers.FASHION_FILES, read=readers.read_fashion_mnist,
        preprocess=_scale(255), preprocessing="pixels scaled to [0, 1] (÷255)",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        apt_package="dataset-fashion-mnist",
        downloads=tuple(Download(_KERAS + f, f"fashion-mnist/{f}", h)
                        for f, h in zip(readers.FASHION_FILES, _FASHION_MD5)),
    ),
    "mnist": DatasetSpec(
        layouts=("",), files=("mnist.npz",), read=readers.read_mnist,
        preprocess=_scale(255), preprocessing="pixels scaled to [0, 1] (÷255)",
        class_names=tuple("0123456789"),
        downloads=(Download(_KERAS + "mnist.npz", "mnist.npz",
                            "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),),
    ),
    "cifar10": DatasetSpec(
        layouts=("cifar-10-batches-py", f"{_CIFAR_TARGET}/cifar-10-batches-py"),
        files=readers.CIFAR_FILES, optional_files=("batches.meta",), read=readers.read_cifar10,
        preprocess=_scale(255), preprocessing="pixels scaled to [0, 1] (÷255), channels last (32×32×3 RGB)",
        class_names=("airplane", "automobile", "bird", "cat", "deer",
                     "dog", "frog", "horse", "ship", "truck"),
        downloads=(Download("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                            f"{_CIFAR_TARGET}_archive",
                            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                            extract_to=_CIFAR_TARGET),),
    ),
    "imdb": DatasetSpec(
        layouts=("",), files=("imdb.npz",), optional_files=("imdb_word_index.json",), read=readers.read_imdb,
        preprocess=_as_is, options=("num_words",), storage=SPARSE,
        preprocessing=("each review as a multi-hot 0/1 vector of {num_words:,} word indices, indexed as "
                       "keras.datasets.imdb.load_data(num_words={num_words}) does (1 = start, rarer words "
                       "share the out-of-vocabulary index 2)"),
        class_names=("negative", "positive"),
        downloads=(Download(_KERAS + "imdb.npz", "imdb.npz",
                            "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"),
                   Download(_KERAS + "imdb_word_index.json", "imdb_word_index.json",
                            "bfafd718b763782e994055a2d397834f")),
    ),
    "digits": DatasetSpec(
        layouts=("",), files=("digits.csv.gz",), read=readers.read_digits, bundled_with="scikit-learn",
        preprocess=_scale(16), preprocessing=("intensities 0..16 scaled to [0, 1] (÷16); test set: a fixed "
                                              "stratified 360 of the 1,797 images (seed 0)"),
        class_names=tuple("0123456789"),
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def keras_datasets_dir() -> Path:
    """Where Keras (and our downloads) keep datasets: $KERAS_HOME/datasets or ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home).expanduser() / "datasets"


def search_dirs(name: str) -> list[Path]:
    """Candidate folders in priority order (env override, Keras cache, Debian package)."""
    spec = dataset_spec(name)
    if spec.bundled_with == "scikit-learn":
        import sklearn.datasets
        return [Path(sklearn.datasets.__file__).parent / "data"]
    roots = []
    if os.environ.get(ENV_DATA_DIR):
        roots.append(Path(os.environ[ENV_DATA_DIR]))
    if os.environ.get("KERAS_HOME"):
        roots.append(Path(os.environ["KERAS_HOME"]) / "datasets")
    roots.append(Path.home() / ".keras" / "datasets")
    if spec.apt_package:
        roots.append(DEBIAN_DATA_DIR)
    return list(dict.fromkeys(root.expanduser() / sub if sub else root.expanduser()
                              for root in roots for sub in spec.layouts))


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: Path, expected: str, name: str | None = None) -> None:
    """Raise ValueError unless the file's sha256 (64 hex digits) or md5 (32) is `expected`;
    the message names `name` (default: the file's name)."""
    algorithm = {64: "sha256", 32: "md5"}.get(len(expected))
    if algorithm is None:
        raise ValueError(f"{expected!r} is neither a sha256 nor an md5 hex digest")
    got = file_hash(path, algorithm)
    if got != expected.lower():
        raise ValueError(f"{name or path.name}: {algorithm} checksum mismatch: expected {expected}, got {got}")


def _fetch(d: Download, datasets_dir: Path) -> None:
    dest = datasets_dir / d.target
    try:
        verify_checksum(dest, d.file_hash)  # an archive fetched earlier only needs unpacking again
    except (OSError, ValueError):
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        print(f"helpers.data: downloading {d.url} -> {dest}", file=sys.stderr, flush=True)
        try:
            with urllib.request.urlopen(d.url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(part, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
            verify_checksum(part, d.file_hash, name=dest.name)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
    if d.extract_to:
        with tarfile.open(dest, "r:*") as tar:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(datasets_dir / d.extract_to, **kwargs)


def _download(name: str) -> str | None:
    """Fetch the dataset's files into the Keras cache; None on success, else why not (one line)."""
    spec = DATASETS[name]
    target = keras_datasets_dir()
    required = set(spec.files)
    for d in spec.downloads:
        if (target / d.target).is_file() and not d.extract_to:
            continue
        try:
            _fetch(d, target)
        except Exception as e:  # noqa: BLE001 - network, disk and checksum failures all end the same way
            if Path(d.target).name in required or d.extract_to:
                return f"download of {d.url} failed: {' '.join(str(e).split())}"
    return None


def _complete(folder: Path, files) -> bool:
    return all((folder / f).is_file() for f in files)


def locate(name: str, *, download: bool = True) -> Path:
    """First searched folder holding every raw file of `name`; if none, download the files into the
    Keras cache (unless `download` is False or STUDYBOOK_OFFLINE=1), else DatasetMissing."""
    spec = dataset_spec(name)
    dirs = search_dirs(name)
    for d in dirs:
        if _complete(d, spec.files):
            return d
    why = ""
    if spec.downloads:
        if not download:
            why = "; downloads disabled"
        elif offline():
            why = f"; downloads disabled ({ENV_OFFLINE}=1)"
        else:
            why = _download(name)
            if why is None:
                for d in search_dirs(name):
                    if _complete(d, spec.files):
                        return d
                why = "download finished but the files are not where expected"
            why = f"; {why}"
    # Point at a half-filled folder if there is one: that is where the user was heading.
    target = next((d for d in dirs if any((d / f).is_file() for f in spec.files)), dirs[0])
    missing = [f for f in spec.files if not (target / f).is_file()]
    more = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    hint = f", or run `apt-get install {spec.apt_package}`" if spec.apt_package else ""
    if spec.bundled_with:
        hint = f", or reinstall {spec.bundled_with}"
    source = f" (Keras source: {spec.downloads[0].url})" if spec.downloads else ""
    raise DatasetMissing(
        f"{name}: missing {missing[0]}{more}; put {'it' if len(missing) == 1 else 'them'} in {target}{hint}"
        f"{source}{why} (searched: {', '.join(map(str, dirs))})")


def stat_key(folder: Path, files) -> tuple:
    # Part of the cache key so a file replaced on disk mid-process is re-read, not served stale.
    out = []
    for f in files:
        try:
            st = (folder / f).stat()
            out.append((f, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            out.append((f, None, None))
    return tuple(out)


@functools.lru_cache(maxsize=8)
def read_raw(name: str, folder: Path, stat_key: tuple, options: tuple) -> tuple[RawData, str]:
    """Decoded arrays plus a content hash; cached because several studies load per process."""
    spec = DATASETS[name]
    digest = hashlib.sha256()
    for f in spec.files:
        digest.update(f.encode() + b"\0" + bytes.fromhex(file_hash(folder / f)))
    raw = spec.read(folder, **dict(options))
    for a in (raw.x_train, raw.y_train, raw.x_test, raw.y_test):
        for arr in ((a.data, a.indices, a.indptr) if sp.issparse(a) else (a,)):
            arr.flags.writeable = False  # shared between callers; must never be mutated
    return raw, digest.hexdigest()


# --- command line -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _files_hash(folder: Path, stat_key: tuple, files: tuple) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.encode() + b"\0" + bytes.fromhex(file_hash(folder / f)))
    return digest.hexdigest()


def content_hash(name: str) -> str:
    """A hash of a dataset's raw files (without decoding them), for run cache keys; re-read only
    when a file's size or modification time changes. Load options are part of the run's config,
    not of this hash."""
    spec = dataset_spec(name)
    folder = locate(name)
    files = tuple(spec.files)
    h = _files_hash(folder, stat_key(folder, files), files)
    if spec.bundled_with:
        h += f"+{spec.bundled_with}-{metadata.version(spec.bundled_with)}"
    return h


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.data")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="report where datasets' raw files are (downloading what is "
                                         "missing unless --offline), exit 2 if any is missing")
    check.add_argument("name", nargs="+", choices=sorted(DATASETS))
    check.add_argument("--offline", action="store_true", help="never download")
    args = parser.parse_args(argv)
    status = 0
    for name in args.name:
        try:
            folder = locate(name, download=not args.offline)
        except DatasetMissing as e:
            print(e, file=sys.stderr)
            status = 2
            continue
        print(f"{name}: found in {folder}")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Readers for the raw dataset files: one function per on-disk format, each returning a RawData.

They only decode and check; finding the files lives in helpers.data.registry, splitting and preprocessing in helpers.data.splits.
Every reader fails with a ValueError that names the offending file.
"""
from __future__ import annotations

import gzip
import itertools
import json
import math
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp


@dataclass
class RawData:
    """Decoded arrays of one dataset as stored (uint8 images, CSR multi-hot rows, int64 labels)."""
    x_train: object
    y_train: np.ndarray
    x_test: object
    y_test: np.ndarray
    class_names: tuple[str, ...] | None = None  # when the files name the classes themselves
    info: dict = field(default_factory=dict)    # extra report facts (e.g. a decoded example)


def _check_labels(name: str, y: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise ValueError(f"{name}: {n} samples but {len(y)} labels")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name}: label {int(y.max()) if y.max() >= n_classes else int(y.min())} "
                         f"out of range 0..{n_classes - 1}")
    return y.astype(np.int64)


# --- Fashion-MNIST: gzip'd IDX files ----------------------------------------------------------

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


FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def read_fashion_mnist(folder: Path) -> RawData:
    out = []
    for img, lbl in (FASHION_FILES[:2], FASHION_FILES[2:]):
        x = _read_idx(img, (folder / img).read_bytes(), 0x00000803, 3)
        y = _read_idx(lbl, (folder / lbl).read_bytes(), 0x00000801, 1).astype(np.int64)
        if x.shape[1:] != (28, 28):
            raise ValueError(f"{img}: expected 28x28 images, got {x.shape[1:]}")
        if len(x) != len(y):
            raise ValueError(f"{img} has {len(x)} images but {lbl} has {len(y)} labels")
        if y.size and y.max() >= 10:
            raise ValueError(f"{lbl}: label {y.max()} out of range 0..9")
        out += [x, y]
    return RawData(*out)


# --- MNIST: Keras's mnist.npz -------------------------------------------------------------------

def _open_npz(path: Path, allow_pickle: bool = False):
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path.name}: not a readable .npz file ({e})") from None


def _npz_arrays(path: Path, f, keys=("x_train", "y_train", "x_test", "y_test")) -> list:
    missing = [k for k in keys if k not in f.files]
    if missing:
        raise ValueError(f"{path.name}: no array {missing[0]!r} (has: {', '.join(f.files)})")
    try:
        return [f[k] for k in keys]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error, pickle.UnpicklingError) as e:
        raise ValueError(f"{path.name}: corrupt array data ({e})") from None


def read_mnist(folder: Path) -> RawData:
    path = folder / "mnist.npz"
    with _open_npz(path) as f:
        x_tr, y_tr, x_te, y_te = _npz_arrays(path, f)
    for part, x in (("x_train", x_tr), ("x_test", x_te)):
        if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
            raise ValueError(f"{path.name}: {part} must be uint8 (n, 28, 28), got {x.dtype} {x.shape}")
    return RawData(x_tr, _check_labels(f"{path.name} y_train", y_tr, len(x_tr), 10),
                   x_te, _check_labels(f"{path.name} y_test", y_te, len(x_te), 10))


# --- CIFAR-10: the python-pickle batches ---------------------------------------------------------

CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise ValueError(f"{path.name}: not a readable CIFAR pickle ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path.name}: expected a pickled dict, got {type(d).__name__}")
    return {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in d.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    if "data" not in d or "labels" not in d:
        raise ValueError(f"{path.name}: missing 'data' or 'labels' entry")
    x = np.asarray(d["data"])
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path.name}: data must be uint8 (n, 3072), got {x.dtype} {x.shape}")
    y = _check_labels(path.name, d["labels"], len(x), 10)
    # Rows are channel-first (1024 red, 1024 green, 1024 blue, each row-major): make them HWC.
    return np.ascontiguousarray(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), y


def read_cifar10(folder: Path) -> RawData:
    train = [_cifar_batch(folder / f) for f in CIFAR_FILES[:5]]
    x_te, y_te = _cifar_batch(folder / "test_batch")
    names = None
    if (folder / "batches.meta").is_file():
        meta = _unpickle(folder / "batches.meta").get("label_names")
        if meta is not None and len(meta) == 10:
            names = tuple(n.decode("utf8") if isinstance(n, bytes) else str(n) for n in meta)
    return RawData(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                   x_te, y_te, class_names=names)


# --- IMDB: Keras's imdb.npz, multi-hot --------------------------------------------------------------
# The file holds each review as a list of word ranks (1 = most frequent word). keras.datasets.imdb
# .load_data shuffles train and test (RandomState(113)), prepends the start index 1, adds
# index_from=3 and maps every index >= num_words to the OOV index 2; done the same here, so that
# "the first 10,000 training reviews" are the same reviews as in Keras.
IMDB_SEED, START, OOV, INDEX_FROM = 113, 1, 2, 3


def _flatten(path: Path, seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ragged object array -> (flat int32 values, per-row lengths), without a Python int per value."""
    try:
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum()))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path.name}: reviews must be lists of integers ({e})") from None
    if flat.size and (flat.min() < 0 or flat.max() >= 2**31 - INDEX_FROM):
        raise ValueError(f"{path.name}: word index out of range ({int(flat.min())}..{int(flat.max())})")
    return flat.astype(np.int32), lengths


def keras_indices(flat: np.ndarray, num_words: int | None) -> np.ndarray:
    """Raw word ranks -> the indices keras.datasets.imdb.load_data(num_words=...) returns (minus
    the start index): rank + 3, and OOV (2) for anything >= num_words."""
    idx = flat + INDEX_FROM
    if num_words is not None:
        idx[idx >= num_words] = OOV
    return idx


def multi_hot(flat: np.ndarray, lengths: np.ndarray, n_cols: int) -> sp.csr_matrix:
    """CSR uint8 rows with a 1 at the start index and at every (already mapped) index of the row."""
    n = len(lengths)
    keys = np.empty(n + len(flat), dtype=np.int64)  # row * n_cols + column, one per token
    keys[:n] = np.arange(n, dtype=np.int64) * n_cols + START
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    rows *= n_cols
    rows += flat
    keys[n:] = rows
    del rows
    keys.sort()  # row-major order; then drop repeats: canonical CSR
    keep = np.empty(len(keys), dtype=bool)
    keep[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    keys = keys[keep]
    del keep
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_cols, minlength=n), out=indptr[1:])
    index_dtype = np.int32 if max(len(keys), n_cols) < 2**31 else np.int64
    x = sp.csr_matrix((np.ones(len(keys), dtype=np.uint8), (keys % n_cols).astype(index_dtype),
                       indptr.astype(index_dtype)), shape=(n, n_cols))
    x.has_canonical_format = True
    return x


def decode(indices, word_index: dict[str, int], *, index_from: int = INDEX_FROM) -> str:
    """Keras-style IMDB indices -> text: 0 (padding) and 1 (start) are dropped, 2 is [OOV]."""
    inverse = {rank + index_from: word for word, rank in word_index.items()}
    words = []
    for i in indices:
        i = int(i)
        if i in (0, START):
            continue
        words.append("[OOV]" if i == OOV else inverse.get(i, "[?]"))
    return " ".join(words)


def read_word_index(path: Path) -> dict[str, int]:
    try:
        word_index = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path.name}: not a readable JSON word index ({e})") from None
    if not isinstance(word_index, dict):
        raise ValueError(f"{path.name}: expected a JSON object mapping words to ranks")
    return word_index


def read_imdb(folder: Path, *, num_words: int | None) -> RawData:
    path = folder / "imdb.npz"
    with _open_npz(path, allow_pickle=True) as f:
        y_tr, y_te = _npz_arrays(path, f, ("y_train", "y_test"))
        rng = np.random.RandomState(IMDB_SEED)   # the exact draws keras' load_data makes
        order = {}
        for part, y in (("train", y_tr), ("test", y_te)):
            order[part] = np.arange(len(y))
            rng.shuffle(order[part])
        labels = {"train": y_tr, "test": y_te}
        flat, lengths, xs, first = {}, {}, {}, None
        for part in ("train", "test"):   # one ragged array alive at a time: they are the memory peak
            (seqs,) = _npz_arrays(path, f, (f"x_{part}",))
            if len(seqs) != len(labels[part]):
                raise ValueError(f"{path.name}: x_{part} has {len(seqs)} reviews but y_{part} has "
                                 f"{len(labels[part])} labels")
            seqs = seqs[order[part]]
            if part == "train" and len(seqs):
                first = list(seqs[0])
            flat[part], lengths[part] = _flatten(path, seqs)
            del seqs
            if num_words is not None:
                xs[part] = multi_hot(keras_indices(flat.pop(part), num_words), lengths[part], num_words)
    if num_words is None:  # the whole vocabulary
        num_words = max((int(v.max()) + INDEX_FROM + 1 for v in flat.values() if v.size), default=INDEX_FROM + 1)
        for part in ("train", "test"):
            xs[part] = multi_hot(keras_indices(flat.pop(part), num_words), lengths[part], num_words)
    y_tr = _check_labels(f"{path.name} y_train", y_tr, len(y_tr), 2)[order["train"]]
    y_te = _check_labels(f"{path.name} y_test", y_te, len(y_te), 2)[order["test"]]
    info = {"num_words": num_words}
    if first is not None and (folder / "imdb_word_index.json").is_file():
        word_index = read_word_index(folder / "imdb_word_index.json")
        seq = [START, *keras_indices(np.asarray(first[:40], dtype=np.int64), num_words)]
        label = ("negative", "positive")[int(y_tr[0])]
        info["example"] = f"{decode(seq, word_index)} … ({label})"
    return RawData(xs["train"], y_tr, xs["test"], y_te, info=info)


# --- scikit-learn's digits ------------------------------------------------------------------------
DIGITS_TEST_SIZE, DIGITS_TEST_SEED = 360, 0


def read_digits(folder: Path) -> RawData:
    """All 1,797 images; a fixed stratified 360-image test set (seed 0) stands in for test files,
    so the test set is the same for every study seed, as with the other datasets."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = np.rint(d.images).astype(np.uint8)  # integer intensities 0..16
    y = d.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=DIGITS_TEST_SIZE, stratify=y,
                              random_state=DIGITS_TEST_SEED)
    tr, te = np.sort(tr), np.sort(te)
    return RawData(x[tr], y[tr], x[te], y[te])

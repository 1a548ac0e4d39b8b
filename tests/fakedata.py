"""Small datasets in the real on-disk formats, written into the Keras cache layout under a folder,
so that STUDYBOOK_DATA_DIR=<folder> (or KERAS_HOME=<x>, folder=<x>/datasets) finds them.

Each has a learnable signal (class-dependent pixel stripes / class-dependent words) so that a
model trained for an epoch or two beats chance, and traceable samples: image writers put the
sample's index in pixels (0,0),(0,1) and a file marker in (0,2) (0 = training file, 255 = test file).
Every writer returns the arrays it wrote (as stored, before any loader processing).
"""
from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np

K = 10
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_RED, CIFAR_GREEN, CIFAR_BLUE = 200, 50, 10  # pixel (0, 2) of every CIFAR image, per channel


def balanced_labels(n: int, k: int, rng) -> np.ndarray:
    """Random order, but every block of k consecutive samples holds each class once, so that any
    prefix (a "head" validation split) is balanced too."""
    blocks = -(-n // k)
    return rng.permuted(np.tile(np.arange(k), (blocks, 1)), axis=1).ravel()[:n].astype(np.int64)


def images(y: np.ndarray, size: int, test: bool, rng) -> np.ndarray:
    """uint8 (n, size, size): noise plus a bright band of rows that depends on the class."""
    n = len(y)
    x = rng.integers(0, 100, size=(n, size, size), dtype=np.uint8)
    band = max(1, (size - 2) // K)
    for c in range(K):
        rows = slice(2 + c * band, 2 + (c + 1) * band)
        x[y == c, rows, :] += 150
    x[:, 0, 0] = np.arange(n) % 256
    x[:, 0, 1] = np.arange(n) // 256
    x[:, 0, 2] = 255 if test else 0
    return x


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


def _image_arrays(n_train: int, n_test: int, size: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    y_train, y_test = balanced_labels(n_train, K, rng), balanced_labels(n_test, K, rng)
    return {"x_train": images(y_train, size, False, rng), "y_train": y_train,
            "x_test": images(y_test, size, True, rng), "y_test": y_test}


def write_fashion_mnist(dir: Path, n_train: int, n_test: int, seed: int = 0) -> dict:
    """<dir>/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz"""
    arrays = _image_arrays(n_train, n_test, 28, seed)
    folder = Path(dir) / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for fname, key, magic in zip(FASHION_FILES, ["x_train", "y_train", "x_test", "y_test"],
                                 [0x803, 0x801, 0x803, 0x801]):
        (folder / fname).write_bytes(idx_bytes(arrays[key], magic))
    return arrays


def write_mnist(dir: Path, n_train: int, n_test: int, seed: int = 0) -> dict:
    """<dir>/mnist.npz with uint8 x_train (n, 28, 28), uint8 y_train, x_test, y_test."""
    arrays = _image_arrays(n_train, n_test, 28, seed)
    arrays["y_train"], arrays["y_test"] = (arrays[k].astype(np.uint8) for k in ("y_train", "y_test"))
    Path(dir).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(Path(dir) / "mnist.npz", **arrays)
    return arrays


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_folder(dir: Path, layout: str = "keras3") -> Path:
    if layout not in ("keras3", "classic"):
        raise ValueError(f"layout must be 'keras3' or 'classic', got {layout!r}")
    sub = "cifar-10-batches-py-target/cifar-10-batches-py" if layout == "keras3" else "cifar-10-batches-py"
    return Path(dir) / sub


def write_cifar10(dir: Path, n_per_batch: int, n_test: int, layout: str = "keras3",
                  seed: int = 0, with_meta: bool = True) -> dict:
    """data_batch_1..5 and test_batch (pickled dicts: b"data" uint8 (n, 3072) channel-first,
    b"labels" list) and batches.meta, in <dir>/cifar-10-batches-py-target/cifar-10-batches-py/
    (layout="keras3") or <dir>/cifar-10-batches-py/ ("classic"). Returns channel-last arrays
    x_train (5 * n_per_batch, 32, 32, 3) etc. Red carries the class band and the index; pixel (0,2)
    is (200, 50, 10) in (R, G, B) so a wrong channel order is visible."""
    folder = cifar_folder(dir, layout)
    arrays = _image_arrays(5 * n_per_batch, n_test, 32, seed)
    rng = np.random.default_rng(seed + 1)
    for key in ("x_train", "x_test"):
        red = arrays[key]
        green = rng.integers(0, 256, size=red.shape, dtype=np.uint8)
        blue = (255 - red).astype(np.uint8)
        x = np.stack([red, green, blue], axis=-1)
        x[:, 0, 2] = (CIFAR_RED, CIFAR_GREEN, CIFAR_BLUE)
        arrays[key] = x
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name, x, y):
        chw = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": [int(v) for v in y],
                         b"data": np.ascontiguousarray(chw), b"filenames": [b"x.png"] * len(x)}, f)

    for i in range(5):
        part = slice(i * n_per_batch, (i + 1) * n_per_batch)
        dump(f"data_batch_{i + 1}", arrays["x_train"][part], arrays["y_train"][part])
    dump("test_batch", arrays["x_test"], arrays["y_test"])
    if with_meta:
        with open(folder / "batches.meta", "wb") as f:
            pickle.dump({b"num_cases_per_batch": n_per_batch, b"label_names": [n.encode() for n in CIFAR_NAMES],
                         b"num_vis": 3072}, f)
    return arrays


# IMDB: ranks 1..len(COMMON) are filler words both classes use; then the sentiment words.
COMMON = ["the", "and", "a", "of", "to", "is", "br", "in", "it", "i", "this", "that", "was", "as",
          "for", "with", "movie", "but", "film", "on"]
POSITIVE = ["great", "excellent", "wonderful", "loved", "best", "brilliant", "perfect", "beautiful"]
NEGATIVE = ["bad", "worst", "awful", "boring", "waste", "terrible", "poor", "stupid"]


def imdb_vocabulary(vocab: int) -> list[str]:
    """Word of rank r at position r - 1."""
    named = COMMON + POSITIVE + NEGATIVE
    return named[:vocab] + [f"w{r}" for r in range(len(named) + 1, vocab + 1)]


def write_imdb(dir: Path, n_train: int, n_test: int, vocab: int = 12000, with_word_index: bool = True,
               seed: int = 0, length: tuple[int, int] = (20, 60)) -> dict:
    """<dir>/imdb.npz as Keras stores it: object arrays x_train/x_test of lists of word ranks
    (1 = most frequent; no start index, no index_from offset: keras.datasets.imdb.load_data adds
    those), int64 y_train/y_test 0/1; and <dir>/imdb_word_index.json (word -> rank).
    Ranks go up to `vocab`, so with vocab > num_words - 3 some words become OOV. Positive reviews
    use POSITIVE words, negative ones NEGATIVE words (ranks 21..36)."""
    rng = np.random.default_rng(seed)
    pos = np.arange(len(COMMON) + 1, len(COMMON) + len(POSITIVE) + 1)
    neg = pos + len(POSITIVE)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        y = balanced_labels(n, 2, rng)
        seqs = np.empty(n, dtype=object)
        for i, label in enumerate(y):
            m = int(rng.integers(*length))
            words = rng.integers(1, len(COMMON) + 1, size=m)
            rare = rng.random(m) < 0.3
            words[rare] = rng.integers(1, vocab + 1, size=int(rare.sum()))
            signal = rng.random(m) < 0.15
            words[signal] = rng.choice(pos if label else neg, size=int(signal.sum()))
            seqs[i] = [int(w) for w in words]
        arrays[f"x_{part}"], arrays[f"y_{part}"] = seqs, y
    Path(dir).mkdir(parents=True, exist_ok=True)
    np.savez(Path(dir) / "imdb.npz", **arrays)
    if with_word_index:
        index = {w: r for r, w in enumerate(imdb_vocabulary(vocab), start=1)}
        (Path(dir) / "imdb_word_index.json").write_text(json.dumps(index))
    return arrays

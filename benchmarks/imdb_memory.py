"""Peak memory of loading full-size IMDB (multi-hot over 10,000 words) and feeding one epoch.

Writes an IMDB-shaped imdb.npz (25,000 + 25,000 reviews of ~230 word ranks on average, ranks up
to 88,000 with a Zipf-like distribution, stored as Keras stores it) into a temporary folder, then
in fresh subprocesses measures peak RSS (ru_maxrss) after the imports (baseline) and after
helpers.data.splits.load("imdb", ..., validation_method="head") plus one shuffled epoch of 512-review batches.
The dense float32 matrices this replaces would be 50,000 x 10,000 x 4 bytes = 2 GB.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_TRAIN = N_TEST = 25_000
MEAN_LEN, MAX_RANK, NUM_WORDS = 230, 88_000, 10_000
FLOAT32_DENSE_GB = (N_TRAIN + N_TEST) * NUM_WORDS * 4 / 1e9

PROBE = r"""
import json, resource, sys, time
def rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9   # Linux: KiB
with_keras = sys.argv[1] == "keras"
import numpy, scipy.sparse
from helpers.data import feed, splits
if with_keras:
    import keras
baseline = rss_gb()
t0 = time.perf_counter()
s = splits.load("imdb", train_samples=None, test_samples=None, validation_split=0.4,
              validation_method="head", seed=42, num_words=10000)
t1 = time.perf_counter()
y = s.y_train.astype("float32")
batches = (feed.feed if with_keras else feed.Batches)(s.x_train, y, batch_size=512, shuffle=True, seed=0)
rows = 0
for i in range(len(batches)):
    xb, yb = batches[i]
    assert xb.dtype == numpy.float32 and xb.shape[1] == 10000
    rows += len(xb)
batches.on_epoch_end()
t2 = time.perf_counter()
assert rows == s.x_train.shape[0] == 15000 and s.x_val.shape[0] == 10000
print(json.dumps({"baseline": baseline, "peak": rss_gb(), "load_s": t1 - t0, "epoch_s": t2 - t1,
                  "sparse_mb": sum(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes
                                   for x in (s.x_train, s.x_val, s.x_test)) / 1e6}))
"""


def write_imdb_npz(folder: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", N_TRAIN), ("test", N_TEST)):
        # Review lengths: log-normal like the real ones (median ~175, mean ~230, a long tail).
        lengths = np.clip(rng.lognormal(np.log(175), 0.75, size=n), 10, 2500).astype(np.int64)
        # Ranks with P(r) ~ 1/r (Zipf's law) over 1..MAX_RANK, as word frequencies are.
        ranks = np.floor(np.exp(rng.random(int(lengths.sum())) * np.log(MAX_RANK + 1))).astype(np.int64)
        seqs = np.empty(n, dtype=object)
        for i, review in enumerate(np.split(ranks, np.cumsum(lengths)[:-1])):
            seqs[i] = review.tolist()
        arrays[f"x_{part}"] = seqs
        arrays[f"y_{part}"] = rng.permutation(np.arange(n) % 2)
    np.savez(folder / "imdb.npz", **arrays)


def probe(folder: Path, mode: str) -> dict:
    env = {**os.environ, "STUDYBOOK_DATA_DIR": str(folder), "STUDYBOOK_OFFLINE": "1",
           "KERAS_HOME": str(folder / "keras-home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"imdb memory probe ({mode}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="imdb-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        # In a child process: a child's ru_maxrss starts at its parent's peak (Linux keeps the
        # high-water mark across fork/exec), so the parent must never hold the generated data.
        subprocess.run([sys.executable, __file__, "--write", str(folder)], check=True, timeout=900)
        write_s = time.perf_counter() - t0
        file_mb = (folder / "imdb.npz").stat().st_size / 1e6
        plain = probe(folder, "plain")
        with_keras = probe(folder, "keras")
    return {
        "imdb_file_mb": round(file_mb, 1),
        "imdb_generate_seconds": round(write_s, 1),
        "imdb_baseline_rss_gb": round(plain["baseline"], 3),
        "imdb_peak_rss_gb": round(plain["peak"], 3),
        "imdb_peak_delta_gb": round(plain["peak"] - plain["baseline"], 3),
        "imdb_float32_dense_gb": round(FLOAT32_DENSE_GB, 3),
        "imdb_peak_ratio_vs_float32": round(plain["peak"] / FLOAT32_DENSE_GB, 3),
        "imdb_sparse_storage_mb": round(plain["sparse_mb"], 1),
        "imdb_load_seconds": round(plain["load_s"], 2),
        "imdb_epoch_seconds": round(plain["epoch_s"], 2),
        "imdb_keras_import_rss_gb": round(with_keras["baseline"], 3),
        "imdb_keras_feed_peak_rss_gb": round(with_keras["peak"], 3),
        "imdb_keras_feed_delta_gb": round(with_keras["peak"] - with_keras["baseline"], 3),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_imdb_npz(Path(sys.argv[2]))
        sys.exit(0)
    for key, value in main().items():
        print(f"{key}: {value}")

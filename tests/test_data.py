"""Tests for helpers.data against small synthetic IDX files written in the real format."""
import gzip
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import data

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
N_TRAIN, N_TEST, K = 200, 60, 10
REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


def make_images(n: int, test: bool, rng) -> np.ndarray:
    # Pixels (0,0),(0,1) encode the image index and (0,2) marks the file, so any
    # returned image can be traced back to exactly one raw image.
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    x[:, 0, 0] = np.arange(n) % 256
    x[:, 0, 1] = np.arange(n) // 256
    x[:, 0, 2] = 255 if test else 0
    return x


def write_dataset(root: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": make_images(N_TRAIN, False, rng), "y_train": rng.permutation(np.arange(N_TRAIN) % K),
        "x_test": make_images(N_TEST, True, rng), "y_test": rng.permutation(np.arange(N_TEST) % K),
    }
    folder = root / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for fname, key, magic in zip(FILES, ["x_train", "y_train", "x_test", "y_test"],
                                 [0x803, 0x801, 0x803, 0x801]):
        (folder / fname).write_bytes(idx_bytes(arrays[key], magic))
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real dataset folder is visible: empty HOME, KERAS_HOME, data dir; no Debian dir."""
    for name in ("home", "keras", "data"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("STUDYBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(data, "DEBIAN_DATA_DIR", tmp_path / "no-such-debian-dir")
    return tmp_path


@pytest.fixture
def synth(isolated):
    return write_dataset(isolated / "data")


def load(**kw):
    args = dict(train_samples=100, test_samples=30, validation_split=0.2, seed=1)
    args.update(kw)
    return data.load("fashion_mnist", **args)


@pytest.mark.parametrize("train_samples,test_samples,vsplit,sizes", [
    (None, None, 0.2, (160, 40, 60)),
    (100, 30, 0.2, (80, 20, 30)),
    (150, None, 0.4, (90, 60, 60)),
    (200, 20, 0.5, (100, 100, 20)),
])
def test_shapes_sizes_and_stratification(synth, isolated, train_samples, test_samples, vsplit, sizes):
    s = load(train_samples=train_samples, test_samples=test_samples, validation_split=vsplit)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == sizes
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == sizes
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert x.shape[1:] == (28, 28) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert y.dtype == np.int64
        assert set(y.tolist()) == set(range(K))
    assert s.info == {"dataset": "fashion_mnist", "source": str(isolated / "data" / "fashion-mnist"),
                      "train": sizes[0], "val": sizes[1], "test": sizes[2], "shape": [28, 28],
                      "classes": 10, "preprocessing": "pixels scaled to [0, 1] (÷255)"}
    assert s.class_names[0] == "T-shirt/top" and s.class_names[-1] == "Ankle boot"
    assert len(s.class_names) == 10 and len(s.fingerprint) == 64


def test_deterministic_for_seed(synth):
    a, b, c = load(seed=7), load(seed=7), load(seed=8)
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_val, c.x_val)


@pytest.mark.parametrize("change", [
    {"train_samples": 120}, {"test_samples": 40}, {"validation_split": 0.25}, {"seed": 2},
])
def test_fingerprint_tracks_parameters(synth, change):
    assert load().fingerprint != load(**change).fingerprint


def trace(x: np.ndarray):
    """Raw uint8 images, their file marker, and their encoded indices."""
    raw = np.rint(x * 255).astype(np.uint8)
    return raw, raw[:, 0, 2], raw[:, 0, 0].astype(int) + 256 * raw[:, 0, 1].astype(int)


def test_validation_comes_from_training_images_only(synth):
    s = load(train_samples=None, test_samples=None)
    raw_val, marker_val, idx_val = trace(s.x_val)
    raw_tr, marker_tr, idx_tr = trace(s.x_train)
    raw_te, marker_te, idx_te = trace(s.x_test)
    assert (marker_val == 0).all() and (marker_tr == 0).all() and (marker_te == 255).all()
    np.testing.assert_array_equal(raw_val, synth["x_train"][idx_val])
    np.testing.assert_array_equal(s.y_val, synth["y_train"][idx_val])
    np.testing.assert_array_equal(raw_te, synth["x_test"][idx_te])
    assert not set(idx_val) & set(idx_tr)
    assert len(set(idx_val)) == len(idx_val)
    assert sorted(set(idx_val) | set(idx_tr)) == list(range(N_TRAIN))


def test_fingerprint_follows_file_content_not_location(synth, isolated, monkeypatch):
    before = load().fingerprint
    copy = isolated / "copy"
    shutil.copytree(isolated / "data", copy)
    monkeypatch.setenv("STUDYBOOK_DATA_DIR", str(copy))
    assert load().fingerprint == before  # same bytes elsewhere: same data

    x = synth["x_train"].copy()
    x[:, 5, 5] ^= 1
    (copy / "fashion-mnist" / FILES[0]).write_bytes(idx_bytes(x, 0x803))
    os.utime(copy / "fashion-mnist" / FILES[0], ns=(1, 1))  # defeat same-mtime caching on coarse clocks
    assert load().fingerprint != before


def test_returned_arrays_are_independent_of_cache(synth):
    a = load()
    a.x_train[:] = 0
    a.y_train[:] = 0
    b = load()
    assert b.x_train.max() > 0 and set(b.y_train.tolist()) == set(range(K))


@pytest.mark.parametrize("kw,match", [
    ({"train_samples": 201}, "out of range"),
    ({"train_samples": 0}, "out of range"),
    ({"train_samples": 15}, "too small to stratify"),
    ({"train_samples": 60, "validation_split": 0.2}, "need at least 20"),
    ({"train_samples": 100, "validation_split": 0.9}, "need at least 20"),
    ({"test_samples": 61}, "out of range"),
    ({"test_samples": 10}, "too small to stratify"),
    ({"validation_split": 0.0}, "strictly between 0 and 1"),
    ({"validation_split": 1.0}, "strictly between 0 and 1"),
])
def test_bad_sizes_raise_clear_errors(synth, kw, match):
    with pytest.raises(ValueError, match=match):
        load(**kw)


def test_unknown_dataset(isolated):
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*fashion_mnist"):
        data.load("nope", train_samples=None, test_samples=None, validation_split=0.2, seed=0)


def test_missing_everything_names_file_folder_and_package(isolated):
    with pytest.raises(data.DatasetMissing) as e:
        data.locate("fashion_mnist")
    msg = str(e.value)
    assert "\n" not in msg
    assert "train-images-idx3-ubyte.gz" in msg
    assert str(isolated / "data" / "fashion-mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    with pytest.raises(data.DatasetMissing):
        load()


@pytest.mark.parametrize("missing", FILES)
def test_partial_folder_names_the_missing_file(isolated, missing):
    folder = isolated / "keras" / "datasets"
    write_dataset(folder)
    (folder / "fashion-mnist" / missing).unlink()
    with pytest.raises(data.DatasetMissing) as e:
        data.locate("fashion_mnist")
    msg = str(e.value)
    assert f"missing {missing};" in msg and f"put it in {folder / 'fashion-mnist'}" in msg
    assert "\n" not in msg


def test_search_order(isolated, monkeypatch):
    home, keras, d = isolated / "home", isolated / "keras", isolated / "data"
    assert data.search_dirs("fashion_mnist") == [
        d / "fashion-mnist", keras / "datasets" / "fashion-mnist",
        home / ".keras" / "datasets" / "fashion-mnist", isolated / "no-such-debian-dir" / "fashion-mnist"]
    monkeypatch.delenv("STUDYBOOK_DATA_DIR")
    monkeypatch.delenv("KERAS_HOME")
    assert data.search_dirs("fashion_mnist")[0] == home / ".keras" / "datasets" / "fashion-mnist"
    write_dataset(home / ".keras" / "datasets")
    assert data.locate("fashion_mnist") == home / ".keras" / "datasets" / "fashion-mnist"


def test_first_complete_folder_wins(isolated):
    write_dataset(isolated / "keras" / "datasets")
    assert data.locate("fashion_mnist") == isolated / "keras" / "datasets" / "fashion-mnist"
    write_dataset(isolated / "data")
    assert data.locate("fashion_mnist") == isolated / "data" / "fashion-mnist"


def corrupt(path: Path, how: str) -> None:
    raw = gzip.decompress(path.read_bytes())
    if how == "magic":
        path.write_bytes(gzip.compress(b"\x00\x00\x08\x04" + raw[4:]))
    elif how == "truncated":
        path.write_bytes(gzip.compress(raw[:-5]))  # labels files are tiny
    elif how == "truncated_gzip":
        path.write_bytes(path.read_bytes()[:50])
    elif how == "not_gzip":
        path.write_bytes(raw)


@pytest.mark.parametrize("fname", [FILES[0], FILES[1], FILES[2], FILES[3]])
@pytest.mark.parametrize("how,match", [
    ("magic", "bad IDX magic number"),
    ("truncated", "corrupt or truncated"),
    ("truncated_gzip", "not a valid gzip file"),
    ("not_gzip", "not a valid gzip file"),
])
def test_corrupt_files_raise_clear_errors(synth, isolated, fname, how, match):
    corrupt(isolated / "data" / "fashion-mnist" / fname, how)
    with pytest.raises(ValueError, match=match) as e:
        load()
    assert fname in str(e.value)


def test_label_count_mismatch(synth, isolated):
    (isolated / "data" / "fashion-mnist" / FILES[1]).write_bytes(
        idx_bytes(synth["y_train"][:-1], 0x801))
    with pytest.raises(ValueError, match="200 images but .* 199 labels"):
        load()


def run_cli(env_overrides, *args):
    env = {**os.environ, **env_overrides}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_check_found(synth, isolated):
    r = run_cli({"STUDYBOOK_DATA_DIR": str(isolated / "data")}, "-m", "helpers.data", "check", "fashion_mnist")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"fashion_mnist: found in {isolated / 'data' / 'fashion-mnist'}"


def test_cli_check_missing(isolated):
    # The Debian constant can only be redirected in-process, so drive main() via -c.
    code = ("import sys, pathlib, helpers.data as d; "
            f"d.DEBIAN_DATA_DIR = pathlib.Path({str(isolated / 'no-such-debian-dir')!r}); "
            "sys.exit(d.main(['check', 'fashion_mnist']))")
    r = run_cli({k: os.environ[k] for k in ("HOME", "KERAS_HOME", "STUDYBOOK_DATA_DIR")}, "-c", code)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing train-images-idx3-ubyte.gz" in lines[0]
    assert "apt-get install dataset-fashion-mnist" in lines[0]


def test_cli_unknown_name_exits_2(isolated):
    r = run_cli({}, "-m", "helpers.data", "check", "nope")
    assert r.returncode == 2


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.delenv("STUDYBOOK_DATA_DIR", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_DATA_DIR", REAL_DIR.parent)
    s = data.load("fashion_mnist", train_samples=1000, test_samples=500, validation_split=0.2, seed=0)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (800, 200, 500)
    assert s.info["source"] == str(REAL_DIR) and s.info["shape"] == [28, 28]
    for y in (s.y_train, s.y_val, s.y_test):
        assert set(y.tolist()) == set(range(10))
    assert s.x_train.dtype == np.float32 and 0 <= s.x_train.min() and s.x_train.max() <= 1

"""Tests for helpers.data (registry, readers, splits, feed) against small synthetic files written in
the real formats (tests/fakedata.py).

Never the network: STUDYBOOK_OFFLINE=1 for every test here."""
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import fakedata
from fakedata import idx_bytes
from helpers.data import feed, readers, registry, splits

FILES = list(fakedata.FASHION_FILES)
N_TRAIN, N_TEST, K = 200, 60, 10
REAL_DIR = Path("/usr/share/datasets/fashion-mnist")


def write_dataset(root: Path, seed: int = 0) -> dict:
    return fakedata.write_fashion_mnist(root, N_TRAIN, N_TEST, seed=seed)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setenv("STUDYBOOK_OFFLINE", "1")
    monkeypatch.setattr(registry.urllib.request, "urlopen", _no_urlopen)


def _no_urlopen(*args, **kwargs):
    raise AssertionError("tests must not touch the network")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real dataset folder is visible: empty HOME, KERAS_HOME, data dir; no Debian dir."""
    for name in ("home", "keras", "data"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("STUDYBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "DEBIAN_DATA_DIR", tmp_path / "no-such-debian-dir")
    return tmp_path


@pytest.fixture
def synth(isolated):
    return write_dataset(isolated / "data")


def load(**kw):
    args = dict(train_samples=100, test_samples=30, validation_split=0.2, seed=1)
    args.update(kw)
    return splits.load("fashion_mnist", **args)


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
    for x, y, source in ((s.x_train, s.y_train, "y_train"), (s.x_val, s.y_val, "y_train"),
                         (s.x_test, s.y_test, "y_test")):
        assert x.shape[1:] == (28, 28) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert y.dtype == np.int64
        assert set(y.tolist()) == set(range(K))
        # Stratified: each split holds the classes in the proportions of the file it was drawn
        # from, up to rounding each class's share to a whole sample (less than one sample off).
        share = np.bincount(synth[source], minlength=K) / len(synth[source])
        counts = np.bincount(y, minlength=K)
        assert np.abs(counts - len(y) * share).max() < 1, (source, counts.tolist())
    assert s.info == {"dataset": "fashion_mnist", "source": str(isolated / "data" / "fashion-mnist"),
                      "train": sizes[0], "val": sizes[1], "test": sizes[2], "shape": [28, 28],
                      "classes": 10, "preprocessing": "pixels scaled to [0, 1] (÷255)",
                      "input_shape": [28, 28], "storage": "dense float32"}
    assert s.task == "multiclass"
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
        splits.load("nope", train_samples=None, test_samples=None, validation_split=0.2, seed=0)


def test_missing_everything_names_file_folder_and_package(isolated):
    with pytest.raises(registry.DatasetMissing) as e:
        registry.locate("fashion_mnist")
    msg = str(e.value)
    assert "\n" not in msg
    assert "train-images-idx3-ubyte.gz" in msg
    assert str(isolated / "data" / "fashion-mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    with pytest.raises(registry.DatasetMissing):
        load()


@pytest.mark.parametrize("missing", FILES)
def test_partial_folder_names_the_missing_file(isolated, missing):
    folder = isolated / "keras" / "datasets"
    write_dataset(folder)
    (folder / "fashion-mnist" / missing).unlink()
    with pytest.raises(registry.DatasetMissing) as e:
        registry.locate("fashion_mnist")
    msg = str(e.value)
    assert f"missing {missing};" in msg and f"put it in {folder / 'fashion-mnist'}" in msg
    assert "\n" not in msg


def test_search_order(isolated, monkeypatch):
    home, keras, d = isolated / "home", isolated / "keras", isolated / "data"
    assert registry.search_dirs("fashion_mnist") == [
        d / "fashion-mnist", keras / "datasets" / "fashion-mnist",
        home / ".keras" / "datasets" / "fashion-mnist", isolated / "no-such-debian-dir" / "fashion-mnist"]
    monkeypatch.delenv("STUDYBOOK_DATA_DIR")
    monkeypatch.delenv("KERAS_HOME")
    assert registry.search_dirs("fashion_mnist")[0] == home / ".keras" / "datasets" / "fashion-mnist"
    write_dataset(home / ".keras" / "datasets")
    assert registry.locate("fashion_mnist") == home / ".keras" / "datasets" / "fashion-mnist"


def test_first_complete_folder_wins(isolated):
    write_dataset(isolated / "keras" / "datasets")
    assert registry.locate("fashion_mnist") == isolated / "keras" / "datasets" / "fashion-mnist"
    write_dataset(isolated / "data")
    assert registry.locate("fashion_mnist") == isolated / "data" / "fashion-mnist"


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
    code = ("import sys, pathlib, helpers.data.registry as d; "
            f"d.DEBIAN_DATA_DIR = pathlib.Path({str(isolated / 'no-such-debian-dir')!r}); "
            "sys.exit(d.main(['check', 'fashion_mnist']))")
    r = run_cli({k: os.environ[k] for k in ("HOME", "KERAS_HOME", "STUDYBOOK_DATA_DIR", "STUDYBOOK_OFFLINE")},
                "-c", code)
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
    monkeypatch.setattr(registry, "DEBIAN_DATA_DIR", REAL_DIR.parent)
    s = splits.load("fashion_mnist", train_samples=1000, test_samples=500, validation_split=0.2, seed=0)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (800, 200, 500)
    assert s.info["source"] == str(REAL_DIR) and s.info["shape"] == [28, 28]
    for y in (s.y_train, s.y_val, s.y_test):
        assert set(y.tolist()) == set(range(10))
    assert s.x_train.dtype == np.float32 and 0 <= s.x_train.min() and s.x_train.max() <= 1


# --- the other datasets -------------------------------------------------------------------------

def load_ds(name, **kw):
    args = dict(train_samples=None, test_samples=None, validation_split=0.2, seed=1)
    args.update(kw)
    return splits.load(name, **args)


def write(name: str, folder: Path, **kw) -> dict:
    """Each dataset's small fake files under `folder`: 200 train / 60 test samples."""
    if name == "fashion_mnist":
        return fakedata.write_fashion_mnist(folder, 200, 60, **kw)
    if name == "mnist":
        return fakedata.write_mnist(folder, 200, 60, **kw)
    if name == "cifar10":
        return fakedata.write_cifar10(folder, 40, 60, **kw)
    if name == "imdb":
        return fakedata.write_imdb(folder, 200, 60, **kw)
    assert name == "digits"  # bundled with scikit-learn
    return {}


SIZES = {"fashion_mnist": (200, 60), "mnist": (200, 60), "cifar10": (200, 60), "imdb": (200, 60),
         "digits": (1797 - 360, 360)}


@pytest.mark.parametrize("name,input_shape,storage,task,first_class", [
    ("fashion_mnist", [28, 28], registry.DENSE, "multiclass", "T-shirt/top"),
    ("mnist", [28, 28], registry.DENSE, "multiclass", "0"),
    ("cifar10", [32, 32, 3], registry.DENSE, "multiclass", "airplane"),
    ("imdb", [10000], registry.SPARSE, "binary", "negative"),
    ("digits", [8, 8], registry.DENSE, "multiclass", "0"),
])
def test_every_dataset_shapes_dtypes_ranges(isolated, name, input_shape, storage, task, first_class):
    write(name, isolated / "data")
    s = load_ds(name)
    n_train, n_test = SIZES[name]
    n_val = -(-n_train // 5)
    assert (s.x_train.shape[0], s.x_val.shape[0], s.x_test.shape[0]) == (n_train - n_val, n_val, n_test)
    assert s.task == task and s.class_names[0] == first_class
    assert len(s.class_names) == (2 if task == "binary" else 10)
    assert s.info["input_shape"] == input_shape == s.info["shape"] and s.info["storage"] == storage
    assert (s.info["train"], s.info["val"], s.info["test"]) == (n_train - n_val, n_val, n_test)
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert list(x.shape[1:]) == input_shape and len(y) == x.shape[0]
        assert y.dtype == np.int64 and set(y.tolist()) == set(range(len(s.class_names)))
        if storage == registry.SPARSE:
            assert isinstance(x, sp.csr_matrix) and x.dtype == np.uint8
            assert set(np.unique(x.data).tolist()) == {1}
        else:
            assert isinstance(x, np.ndarray) and x.dtype == np.float32
            assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert len(s.fingerprint) == 64


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10", "imdb", "digits"])
def test_every_dataset_deterministic_and_fingerprinted(isolated, name):
    write(name, isolated / "data")
    a, b = load_ds(name, seed=3), load_ds(name, seed=3)
    assert a.fingerprint == b.fingerprint
    dense = (lambda x: x.toarray()) if sp.issparse(a.x_train) else (lambda x: x)
    np.testing.assert_array_equal(dense(a.x_train), dense(b.x_train))
    changes = [{"seed": 4}, {"validation_split": 0.25}, {"validation_method": "head"}, {"train_samples": 150}]
    prints = {load_ds(name, **{"seed": 3, **c}).fingerprint for c in changes}
    assert len(prints) == len(changes) and a.fingerprint not in prints


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10", "imdb"])
def test_fake_data_is_learnable(isolated, name):
    """A linear model beats chance clearly: the end-to-end tests can expect learning."""
    from sklearn.linear_model import LogisticRegression
    write(name, isolated / "data")
    s = load_ds(name)
    flat = (lambda x: x) if sp.issparse(s.x_train) else (lambda x: x.reshape(len(x), -1))
    clf = LogisticRegression(max_iter=300).fit(flat(s.x_train), s.y_train)
    assert clf.score(flat(s.x_test), s.y_test) > 1.0 / len(s.class_names) + 0.25


def test_mnist_values_are_the_raw_pixels(isolated):
    raw = fakedata.write_mnist(isolated / "data", 200, 60)
    s = load_ds("mnist")
    for x, y, key in ((s.x_val, s.y_val, "train"), (s.x_test, s.y_test, "test")):
        pixels, marker, idx = trace(x)
        assert (marker == (255 if key == "test" else 0)).all()
        np.testing.assert_array_equal(pixels, raw[f"x_{key}"][idx])
        np.testing.assert_array_equal(y, raw[f"y_{key}"][idx])


@pytest.mark.parametrize("layout", ["keras3", "classic"])
@pytest.mark.parametrize("root", ["data", "keras/datasets"])
def test_cifar_layouts_and_channel_order(isolated, layout, root):
    raw = fakedata.write_cifar10(isolated / root, 40, 60, layout=layout)
    assert registry.locate("cifar10") == fakedata.cifar_folder(isolated / root, layout)
    s = load_ds("cifar10")
    for x, key in ((s.x_train, "train"), (s.x_test, "test")):
        assert x.shape[1:] == (32, 32, 3)
        px = np.rint(x * 255).astype(np.uint8)
        np.testing.assert_array_equal(px[:, 0, 2], np.tile([fakedata.CIFAR_RED, fakedata.CIFAR_GREEN,
                                                            fakedata.CIFAR_BLUE], (len(x), 1)))
        idx = px[:, 0, 0, 0].astype(int) + 256 * px[:, 0, 1, 0].astype(int)  # the index is in red
        np.testing.assert_array_equal(px, raw[f"x_{key}"][idx])
        # Red carries the class band: channel 0 of the returned images is the red plane.
        np.testing.assert_array_equal(px[..., 0], raw[f"x_{key}"][idx][..., 0])


def test_cifar_class_names_come_from_meta_or_default(isolated):
    fakedata.write_cifar10(isolated / "data", 40, 60, with_meta=False)
    assert load_ds("cifar10").class_names == fakedata.CIFAR_NAMES
    meta = fakedata.cifar_folder(isolated / "data") / "batches.meta"
    import pickle
    meta.write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))
    assert load_ds("cifar10").class_names == [f"c{i}" for i in range(10)]


def test_cifar_classic_layout_wins_within_a_root(isolated):
    fakedata.write_cifar10(isolated / "data", 40, 60, layout="keras3")
    fakedata.write_cifar10(isolated / "data", 40, 60, layout="classic")
    assert registry.locate("cifar10") == isolated / "data" / "cifar-10-batches-py"
    assert registry.search_dirs("cifar10")[:2] == [isolated / "data" / "cifar-10-batches-py",
                                               isolated / "data" / "cifar-10-batches-py-target" / "cifar-10-batches-py"]


def test_search_dirs_of_keras_files_skip_debian(isolated):
    assert registry.search_dirs("mnist") == [isolated / "data", isolated / "keras" / "datasets",
                                         isolated / "home" / ".keras" / "datasets"]


@pytest.mark.parametrize("fname,content,match", [
    ("mnist.npz", b"not a zip", "mnist.npz: not a readable .npz file"),
    ("cifar-10-batches-py/data_batch_3", b"garbage", "data_batch_3: not a readable CIFAR pickle"),
    ("imdb.npz", b"", "imdb.npz: not a readable .npz file"),
])
def test_corrupt_keras_files(isolated, fname, content, match):
    name = {"mnist.npz": "mnist", "imdb.npz": "imdb"}.get(fname, "cifar10")
    write(name, isolated / "data", **({"layout": "classic"} if name == "cifar10" else {}))
    (isolated / "data" / fname).write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_ds(name)


# --- IMDB -----------------------------------------------------------------------------------------

def keras_imdb(path: Path, monkeypatch, **kw):
    """What keras.datasets.imdb.load_data returns for this file (no download: get_file patched)."""
    from keras.src.datasets import imdb
    monkeypatch.setattr(imdb, "get_file", lambda *a, **k: str(path))
    return imdb.load_data(**kw)


def rows_as_sets(x: sp.csr_matrix) -> list[set]:
    return [set(x.indices[x.indptr[i]:x.indptr[i + 1]].tolist()) for i in range(x.shape[0])]


@pytest.mark.parametrize("num_words", [10000, 30])
def test_imdb_matches_keras_load_data(isolated, monkeypatch, num_words):
    fakedata.write_imdb(isolated / "data", 200, 60, vocab=12000)
    (k_xtr, k_ytr), (k_xte, k_yte) = keras_imdb(isolated / "data" / "imdb.npz", monkeypatch, num_words=num_words)
    s = load_ds("imdb", num_words=num_words, validation_split=0.4, validation_method="head")
    assert s.x_train.shape[1] == num_words and s.info["input_shape"] == [num_words]
    # head split without subsampling: validation = Keras's first 40 %, train = the rest, same order
    assert rows_as_sets(s.x_val) == [set(r) for r in k_xtr[:80]]
    assert rows_as_sets(s.x_train) == [set(r) for r in k_xtr[80:]]
    np.testing.assert_array_equal(s.y_val, k_ytr[:80])
    np.testing.assert_array_equal(s.y_train, k_ytr[80:])
    assert rows_as_sets(s.x_test) == [set(r) for r in k_xte]
    np.testing.assert_array_equal(s.y_test, k_yte)


def test_imdb_num_words_rule(isolated):
    raw = fakedata.write_imdb(isolated / "data", 200, 60, vocab=12000)
    s = load_ds("imdb", num_words=11000, validation_split=0.4, validation_method="head")
    x = sp.vstack([s.x_val, s.x_train]).tocsr()
    assert x.shape[1] == 11000 and x.indices.max() < 11000
    assert (x[:, 1].toarray() == 1).all()  # the start index is kept in every review
    assert (x[:, 0].toarray() == 0).all()  # padding index never set
    # Reviews with a word of rank >= 11000 - 3 have the OOV column; the others don't.
    order = np.arange(200)
    np.random.RandomState(113).shuffle(order)
    has_rare = np.array([max(raw["x_train"][i]) + 3 >= 11000 for i in order])
    np.testing.assert_array_equal(x[:, 2].toarray().ravel() == 1, has_rare)
    assert has_rare.any() and not has_rare.all()


def test_imdb_num_words_none_is_the_whole_vocabulary(isolated):
    raw = fakedata.write_imdb(isolated / "data", 200, 60, vocab=500)
    s = load_ds("imdb", num_words=None)
    top = max(max(r) for part in ("x_train", "x_test") for r in raw[part])
    assert s.x_train.shape[1] == top + 3 + 1 and s.info["input_shape"] == [top + 4]
    assert s.x_train[:, 2].nnz == 0  # nothing is out of vocabulary
    assert f"vector of {top + 4:,} word indices" in s.info["preprocessing"]


def test_imdb_head_split_counts_full_size(isolated):
    """R1's split on IMDB-sized data: 10,000 validation / 15,000 train / 25,000 test."""
    fakedata.write_imdb(isolated / "data", 25000, 25000, length=(1, 4), with_word_index=False)
    s = load_ds("imdb", validation_split=0.4, validation_method="head", seed=42)
    assert (s.x_val.shape[0], s.x_train.shape[0], s.x_test.shape[0]) == (10000, 15000, 25000)
    assert (s.info["val"], s.info["train"], s.info["test"]) == (10000, 15000, 25000)
    assert s.x_train.dtype == np.uint8 and isinstance(s.x_train, sp.csr_matrix)
    assert "example" not in s.info


def test_head_split_of_a_subsample_keeps_file_order(isolated):
    fakedata.write_mnist(isolated / "data", 200, 60)
    s = load_ds("mnist", train_samples=100, validation_split=0.4, validation_method="head")
    _, _, idx_val = trace(s.x_val)
    _, _, idx_tr = trace(s.x_train)
    assert len(idx_val) == 40 and len(idx_tr) == 60
    assert list(idx_val) == sorted(idx_val) and list(idx_tr) == sorted(idx_tr)
    assert idx_val.max() < idx_tr.min()


def test_imdb_decode_and_example(isolated):
    fakedata.write_imdb(isolated / "data", 200, 60, vocab=12000)
    word_index = {w: r for r, w in enumerate(fakedata.imdb_vocabulary(12000), start=1)}
    assert readers.decode([1, 3 + 1, 3 + 11, 2, 3 + 21, 0], word_index) == "the this [OOV] great"
    assert readers.decode([3 + 99999], word_index) == "[?]"
    s = load_ds("imdb")
    ex = s.info["example"]
    words, label = ex.rsplit(" … ", 1)
    assert label in ("(negative)", "(positive)") and len(words.split()) == 40
    assert set(words.split()) <= set(word_index) | {"[OOV]"}
    (isolated / "data" / "imdb_word_index.json").unlink()
    assert "example" not in load_ds("imdb").info


@pytest.mark.parametrize("num_words", [0, 3, 2.5, "10000", True])
def test_imdb_bad_num_words(isolated, num_words):
    fakedata.write_imdb(isolated / "data", 200, 60)
    with pytest.raises(ValueError, match="num_words must be an integer"):
        load_ds("imdb", num_words=num_words)


def test_num_words_changes_imdb_fingerprint_only(isolated):
    fakedata.write_imdb(isolated / "data", 200, 60)
    fakedata.write_mnist(isolated / "data", 200, 60)
    assert load_ds("imdb", num_words=100).fingerprint != load_ds("imdb", num_words=200).fingerprint
    assert load_ds("mnist", num_words=100).fingerprint == load_ds("mnist", num_words=200).fingerprint


def test_bad_validation_method(isolated):
    with pytest.raises(ValueError, match="validation_method must be one of stratified, head"):
        load_ds("digits", validation_method="tail")


# --- digits -----------------------------------------------------------------------------------------

def test_digits_needs_no_files_and_has_a_fixed_test_set(isolated, monkeypatch):
    a, b = load_ds("digits", seed=1), load_ds("digits", seed=2)
    np.testing.assert_array_equal(a.x_test, b.x_test)  # carved with its own fixed seed
    assert a.x_test.shape == (360, 8, 8) and np.bincount(a.y_test).min() >= 35
    assert a.x_train.shape[0] + a.x_val.shape[0] == 1437
    assert np.isclose(a.x_train.max(), 1.0) and set(np.unique(a.x_train * 16).tolist()) <= set(range(17))
    assert registry.locate("digits").name == "data"
    before = a.fingerprint
    monkeypatch.setattr(registry.metadata, "version", lambda pkg: "0.0-other")
    assert load_ds("digits", seed=1).fingerprint != before


# --- missing files, downloads, checksums ----------------------------------------------------------------

@pytest.mark.parametrize("name,fname,folder", [
    ("fashion_mnist", "train-images-idx3-ubyte.gz", "fashion-mnist"),
    ("mnist", "mnist.npz", ""),
    ("cifar10", "data_batch_1", "cifar-10-batches-py"),
    ("imdb", "imdb.npz", ""),
])
def test_missing_file_error_per_dataset(isolated, name, fname, folder):
    with pytest.raises(registry.DatasetMissing) as e:
        registry.locate(name)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{name}: missing {fname}")
    assert f"in {isolated / 'data' / folder}" in msg and "STUDYBOOK_OFFLINE=1" in msg
    with pytest.raises(registry.DatasetMissing):
        load_ds(name)


def test_missing_word_index_is_fine(isolated):
    fakedata.write_imdb(isolated / "data", 200, 60, with_word_index=False)
    assert registry.locate("imdb") == isolated / "data"


class FakeResponse:
    def __init__(self, payload: bytes):
        self.payload = payload

    def __enter__(self):
        import io
        return io.BytesIO(self.payload)

    def __exit__(self, *exc):
        return False


def serve(monkeypatch, files: dict[str, bytes]):
    """urlopen answered from `files` by URL; records the URLs asked for."""
    asked = []

    def urlopen(url, timeout):
        asked.append(url)
        assert timeout == registry.DOWNLOAD_TIMEOUT_S
        if url not in files:
            raise registry.urllib.error.URLError("no route to host")
        return FakeResponse(files[url])
    monkeypatch.delenv("STUDYBOOK_OFFLINE")
    monkeypatch.setattr(registry.urllib.request, "urlopen", urlopen)
    return asked


def with_downloads(monkeypatch, name: str, *downloads: registry.Download):
    import dataclasses
    monkeypatch.setitem(registry.DATASETS, name, dataclasses.replace(registry.DATASETS[name], downloads=downloads))


def test_download_into_keras_home_verified(isolated, monkeypatch, tmp_path):
    fakedata.write_mnist(tmp_path / "src", 200, 60)
    payload = (tmp_path / "src" / "mnist.npz").read_bytes()
    import hashlib
    with_downloads(monkeypatch, "mnist", registry.Download("https://x/mnist.npz", "mnist.npz",
                                                       hashlib.sha256(payload).hexdigest()))
    asked = serve(monkeypatch, {"https://x/mnist.npz": payload})
    assert registry.locate("mnist") == isolated / "keras" / "datasets"
    assert (isolated / "keras" / "datasets" / "mnist.npz").read_bytes() == payload
    assert load_ds("mnist").x_train.shape[1:] == (28, 28)
    assert asked == ["https://x/mnist.npz"]


def test_download_with_bad_checksum_leaves_nothing(isolated, monkeypatch):
    with_downloads(monkeypatch, "mnist", registry.Download("https://x/mnist.npz", "mnist.npz", "0" * 64))
    serve(monkeypatch, {"https://x/mnist.npz": b"tampered"})
    with pytest.raises(registry.DatasetMissing, match="download of https://x/mnist.npz failed: mnist.npz: "
                                                  "sha256 checksum mismatch") as e:
        registry.locate("mnist")
    assert "\n" not in str(e.value)
    assert list((isolated / "keras" / "datasets").iterdir()) == []


def test_download_cifar_archive_is_extracted_in_keras3_layout(isolated, monkeypatch, tmp_path):
    import hashlib
    import tarfile
    fakedata.write_cifar10(tmp_path / "src", 40, 60, layout="classic")
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    payload = archive.read_bytes()
    with_downloads(monkeypatch, "cifar10", registry.Download(
        "https://x/c.tar.gz", "cifar-10-batches-py-target_archive", hashlib.sha256(payload).hexdigest(),
        extract_to="cifar-10-batches-py-target"))
    serve(monkeypatch, {"https://x/c.tar.gz": payload})
    assert registry.locate("cifar10") == fakedata.cifar_folder(isolated / "keras" / "datasets", "keras3")


def test_imdb_word_index_download_failure_is_not_fatal(isolated, monkeypatch, tmp_path):
    import hashlib
    fakedata.write_imdb(tmp_path / "src", 200, 60)
    payload = (tmp_path / "src" / "imdb.npz").read_bytes()
    with_downloads(monkeypatch, "imdb",
                   registry.Download("https://x/imdb.npz", "imdb.npz", hashlib.sha256(payload).hexdigest()),
                   registry.Download("https://x/imdb_word_index.json", "imdb_word_index.json", "0" * 32))
    asked = serve(monkeypatch, {"https://x/imdb.npz": payload})
    assert registry.locate("imdb") == isolated / "keras" / "datasets"
    assert asked == ["https://x/imdb.npz", "https://x/imdb_word_index.json"]
    assert not (isolated / "keras" / "datasets" / "imdb_word_index.json").exists()


def test_real_keras_origins_fail_fast_with_one_line(isolated, monkeypatch):
    asked = serve(monkeypatch, {})
    with pytest.raises(registry.DatasetMissing) as e:
        registry.locate("imdb")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("imdb: missing imdb.npz; put it in")
    assert "download of https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz failed" in msg
    assert asked[0].endswith("/imdb.npz")


def test_no_download_when_disabled_by_argument(isolated, monkeypatch):
    asked = serve(monkeypatch, {})
    with pytest.raises(registry.DatasetMissing, match="downloads disabled"):
        registry.locate("mnist", download=False)
    assert asked == []


def test_keras_origins_and_hashes_match_installed_keras():
    import inspect
    from keras.src.datasets import cifar10, imdb, mnist
    sources = {m: inspect.getsource(m) for m in (mnist, imdb, cifar10)}
    for name, module in (("mnist", mnist), ("imdb", imdb), ("cifar10", cifar10)):
        for d in registry.DATASETS[name].downloads:
            assert d.file_hash in sources[module], (name, d.file_hash)
            assert d.url.rsplit("/", 1)[-1] in sources[module]


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_verify_checksum(tmp_path, algorithm):
    import hashlib
    f = tmp_path / "blob.bin"
    f.write_bytes(b"studybook" * 1000)
    good = hashlib.new(algorithm, f.read_bytes()).hexdigest()
    registry.verify_checksum(f, good)
    registry.verify_checksum(f, good.upper())
    assert registry.file_hash(f, algorithm) == good
    bad = ("f" if good[0] != "f" else "e") + good[1:]
    with pytest.raises(ValueError, match=f"blob.bin: {algorithm} checksum mismatch: expected {bad}, got {good}"):
        registry.verify_checksum(f, bad)
    with pytest.raises(ValueError, match="neither a sha256 nor an md5"):
        registry.verify_checksum(f, good[:20])


def test_cli_check_several_datasets(isolated):
    fakedata.write_imdb(isolated / "data", 200, 60)
    r = run_cli({}, "-m", "helpers.data", "check", "imdb", "cifar10", "digits", "--offline")
    assert r.returncode == 2
    out = r.stdout.strip().splitlines()
    assert out[0] == f"imdb: found in {isolated / 'data'}" and out[1].startswith("digits: found in ")
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cifar10: missing data_batch_1")
    assert str(isolated / "data" / "cifar-10-batches-py") in err[0]


# --- feeding Keras ----------------------------------------------------------------------------------

def make_xy(kind: str, n: int = 23, d: int = 7):
    rng = np.random.default_rng(0)
    x = (rng.random((n, d)) < 0.3).astype(np.uint8)
    x[:, 0] = np.arange(n)  # traceable: column 0 is the sample index
    y = np.arange(n, dtype=np.float32)
    return (sp.csr_matrix(x) if kind == "sparse" else x.astype(np.float32)), y, x


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [5, 23, 64])
def test_batches_cover_every_sample_once_per_epoch(kind, shuffle, batch_size):
    x, y, dense = make_xy(kind)
    b = feed.Batches(x, y, batch_size=batch_size, shuffle=shuffle, seed=3)
    assert len(b) == -(-23 // batch_size)
    orders = []
    for _ in range(2):
        seen = []
        for i in range(len(b)):
            xb, yb = b[i]
            assert isinstance(xb, np.ndarray) and xb.dtype == np.float32 and xb.shape[1] == 7
            assert len(xb) == (batch_size if i < len(b) - 1 else 23 - batch_size * (len(b) - 1))
            np.testing.assert_array_equal(xb, dense[yb.astype(int)])  # x and y stay paired
            seen += yb.astype(int).tolist()
        assert sorted(seen) == list(range(23))
        orders.append(seen)
        b.on_epoch_end()
    if shuffle and batch_size < 23:
        assert orders[0] != list(range(23)) and orders[0] != orders[1]
    if not shuffle:
        assert orders[0] == orders[1] == list(range(23))
    with pytest.raises(IndexError):
        b[len(b)]


def test_batches_shuffle_is_deterministic_for_a_seed():
    x, y, _ = make_xy("sparse")
    def epochs(seed):
        b = feed.Batches(x, y, batch_size=4, shuffle=True, seed=seed)
        out = []
        for _ in range(3):
            out.append(np.concatenate([b[i][1] for i in range(len(b))]).tolist())
            b.on_epoch_end()
        return out
    assert epochs(5) == epochs(5) and epochs(5) != epochs(6)


def test_batches_without_y_yield_x_only():
    x, _, dense = make_xy("sparse")
    b = feed.Batches(x, batch_size=10)
    got = np.concatenate([b[i] for i in range(len(b))])
    np.testing.assert_array_equal(got, dense.astype(np.float32))
    with pytest.raises(ValueError, match="x has 23 samples but y has 3"):
        feed.Batches(x, np.zeros(3), batch_size=4)


def test_feed_trains_keras_on_sparse_imdb(isolated):
    import keras
    fakedata.write_imdb(isolated / "data", 600, 200)
    s = load_ds("imdb", num_words=200, validation_split=0.4, validation_method="head")
    f = feed.feed(s.x_train, s.y_train.astype(np.float32), batch_size=32, shuffle=True, seed=0)
    assert isinstance(f, keras.utils.PyDataset) and isinstance(f, feed.Batches)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((200,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(f, epochs=2, verbose=0,
              validation_data=feed.feed(s.x_val, s.y_val.astype(np.float32), batch_size=64))
    _, acc = model.evaluate(feed.feed(s.x_test, s.y_test.astype(np.float32), batch_size=64), verbose=0)
    assert acc > 0.6
    proba = model.predict(feed.feed(s.x_test, batch_size=64), verbose=0)
    assert proba.shape == (200, 1)

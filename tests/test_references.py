"""Reference figures (issue 12, item 12): a parameter file carries the figures of the reference
study a configuration reproduces; they are validated like every other key, travel on the runs
without touching any run key, and the report puts them beside our mean ± std and 95 % CI with a
verdict (inside, above, below), says that one run cannot reproduce a figure and that a reduced
profile cannot be compared with a full-data figure."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from conftest import make_record, run_build
from helpers.build import notebooks as generator
from helpers.config import load
from helpers.config.errors import ConfigError
from helpers.config.kinds import KINDS
from helpers.present import references
from helpers.run import cache as run_cache, training

DIGITS = ("title: t\ndataset: digits\n"
          "profiles: {smoke: {train_samples: 400, test_samples: 100, epochs: 1}, full: {}}\n"
          "base: {model: {hidden: [8]}, training: {epochs: 2}}\n")


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(load.ROOT)  # errors name files relative to the working directory


def write(tmp_path: Path, studies: str) -> Path:
    path = tmp_path / "ref.yaml"
    path.write_text(DIGITS + "studies:\n" + studies)
    return path


# ---------------------------------------------------------------- validation: one line, exit 2
BAD = [
    # a study's mapping: the label must be one of its configurations
    ('  width: {units: [8, 16], reference: {"16 unit": {test_accuracy: 0.9, source: R5}}}\n',
     r"ref\.yaml: studies\.width\.reference\.16 unit: no configuration '16 unit' in this study "
     r"\(did you mean '16 units'\?\); its configurations: 8 units, 16 units$"),
    # an unknown metric, with a suggestion and the allowed keys
    ('  width: {units: [8], reference: {"8 units": {test_acc: 0.9, source: R5}}}\n',
     r"ref\.yaml: studies\.width\.reference\.8 units\.test_acc: unknown key 'test_acc' "
     r"\(did you mean 'test_accuracy'\?\); allowed: .*f1_macro.*test_accuracy"),
    # not a number
    ('  width: {units: [8], reference: {"8 units": {test_accuracy: high, source: R5}}}\n',
     r"ref\.yaml: studies\.width\.reference\.8 units\.test_accuracy = 'high': must be a number between 0 and 1"),
    ('  width: {units: [8], reference: {"8 units": {test_accuracy: true, source: R5}}}\n',
     r"studies\.width\.reference\.8 units\.test_accuracy = True: must be a number between 0 and 1"),
    # a percentage instead of a fraction
    ('  width: {units: [8], reference: {"8 units": {test_accuracy: 85.7, source: R5}}}\n',
     r"test_accuracy = 85\.7: must be between 0 and 1 \(85\.7 looks like a percentage: write 0\.857\)$"),
    # where the figure comes from is required, and at least one figure
    ('  width: {units: [8], reference: {"8 units": {test_accuracy: 0.9}}}\n',
     r"ref\.yaml: studies\.width\.reference\.8 units: give source: where the figures come from"),
    ('  width: {units: [8], reference: {"8 units": {source: R5}}}\n',
     r"studies\.width\.reference\.8 units: give at least one figure: test_accuracy, val_accuracy"),
    ('  width: {units: [8], reference: {"8 units": 0.9}}\n',
     r"studies\.width\.reference\.8 units = 0\.9: must be a mapping of figures and their source"),
    # a study's reference is a mapping by label, not one configuration's figures
    ("  width: {units: [8], reference: {test_accuracy: 0.9, source: R5}}\n",
     r"studies\.width\.reference: a study's reference maps each configuration's label to its figures.*"
     r"'test_accuracy' is no label"),
    # in a variant: the same checks, named under the variant
    ("  optimizer: {variants: {SGD: {optimizer: sgd, reference: {test_accuracy: '0.9x', source: R5}}}}\n",
     r"studies\.optimizer\.variants\.SGD\.reference\.test_accuracy = '0\.9x': must be a number"),
    ("  optimizer:\n    reference: {SGD: {test_accuracy: 0.8, source: R5}}\n"
     "    variants: {SGD: {optimizer: sgd, reference: {test_accuracy: 0.9, source: R5}}}\n",
     r"studies\.optimizer: the reference of 'SGD' is given twice"),
    # a robustness study's configurations are not known in advance
    ("  depth: {layers: [1]}\n  robustness: {reference: {x: {test_accuracy: 0.9, source: R1}}}\n",
     r"studies\.robustness\.reference\.x: a robustness study chooses its configurations after the other studies"),
]


@pytest.mark.parametrize("studies, match", BAD, ids=range(len(BAD)))
def test_bad_reference_is_one_line_naming_file_key_value(tmp_path, studies, match):
    with pytest.raises(ConfigError, match=match) as info:
        load.load(write(tmp_path, studies), profile="smoke")
    assert "\n" not in str(info.value)


def test_bad_reference_exits_2_before_training(tmp_path):
    proc = run_build(write(tmp_path, '  width: {units: [8], reference: {"8 units": {test_accuracy: x, source: R5}}}\n'),
                     "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "studies.width.reference.8 units.test_accuracy = 'x'" in lines[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.html"))


# ---------------------------------------------------------------- the plan carries them
def test_references_travel_on_every_run_of_their_configuration(tmp_path):
    plan = load.load(write(tmp_path, (
        '  width: {units: [8, 16], repeats: 2, reference: {"16 units": {test_accuracy: 0.9, source: R5, note: n}}}\n'
        "  optimizer:\n    variants:\n      SGD: {optimizer: sgd, reference: {f1_macro: 0.8, source: R3}}\n"
        "      Adam: {optimizer: adam}\n")), profile="smoke")
    width = plan.studies["width"].runs
    assert all("reference" in r for r in width)  # always present: a cache hit copies it (training.IDENTITY)
    assert [r["reference"] is None for r in width] == [True, True, False, False]
    ref = width[-1]["reference"]
    assert ref == {"source": "R5", "note": "n", "figures": {"test_accuracy": 0.9}, "profile": "smoke",
                   "reduced": {"train_samples": 400, "test_samples": 100, "epochs": 1}}
    opt = {r["label"]: r["reference"] for r in plan.studies["optimizer"].runs}
    assert opt["SGD"]["figures"] == {"f1_macro": 0.8} and opt["Adam"] is None
    # the variant's reference is no model or training key: the configuration is the same as without it
    assert "reference" not in plan.studies["optimizer"].runs[0]["config"]["training"]
    full = load.load(write(tmp_path, '  width: {units: [8], reference: {"8 units": {test_accuracy: 0.9, source: R5}}}\n'),
                     profile="full")
    assert full.studies["width"].runs[0]["reference"]["reduced"] == {}


def test_adding_a_reference_does_not_change_any_run_key(tmp_path):
    studies = ("  width: {units: [8, 16]}\n  optimizer:\n    variants:\n"
               "      SGD: {optimizer: sgd}\n      Adam: {optimizer: adam}\n")
    with_refs = ('  width: {units: [8, 16], reference: {"8 units": {test_accuracy: 0.9, source: R5}}}\n'
                 "  optimizer:\n    variants:\n      SGD: {optimizer: sgd, reference: {test_accuracy: 0.8, source: R5}}\n"
                 "      Adam: {optimizer: adam}\n")
    keys = []
    for text in (studies, with_refs):
        plan = load.load(write(tmp_path, text), profile="smoke")
        keys.append([run_cache.run_key(r, "data") for s in plan.studies.values() for r in s.runs])
    assert keys[0] == keys[1] and len(set(keys[0])) == 4
    assert "reference" in training.IDENTITY  # stored without it, given back from the plan on a hit


def test_a_cache_hit_shows_the_current_reference(tmp_path):
    plan = load.load(write(tmp_path, '  width: {units: [8], reference: {"8 units": {test_accuracy: 0.9, source: R5}}}\n'),
                     profile="smoke")
    spec = copy.deepcopy(plan.studies["width"].runs[0])
    (first,) = training.run_all([spec], cache_dir=str(tmp_path / "cache"), threads=1)
    assert first["cached"] is False and first["reference"]["figures"] == {"test_accuracy": 0.9}
    spec["reference"] = dict(spec["reference"], figures={"test_accuracy": 0.7})
    (hit,) = training.run_all([spec], cache_dir=str(tmp_path / "cache"), threads=1)
    assert hit["cached"] is True and hit["key"] == first["key"]
    assert hit["reference"]["figures"] == {"test_accuracy": 0.7}


def test_robustness_reruns_keep_their_configurations_reference(tmp_path):
    from helpers.config.plan import expand_robustness
    plan = load.load(write(tmp_path, ('  width: {units: [8, 16], reference: {"16 units": {test_accuracy: 0.9, source: R1}}}\n'
                                      "  robustness: {top: 1}\n")), profile="smoke")
    done = [dict(r, status="ok", metrics={"val_accuracy": 0.9 if r["label"] == "16 units" else 0.5, "params": 1})
            for r in plan.studies["width"].runs]
    runs = expand_robustness(plan.studies["robustness"], done)
    assert len(runs) == 3 and all(r["reference"]["figures"] == {"test_accuracy": 0.9} for r in runs)


# ---------------------------------------------------------------- the report's words
def ref(figure: float, reduced: dict | None = None, **more) -> dict:
    return {"source": "R5", "note": "", "figures": {"test_accuracy": figure, **more}, "profile": "full",
            "reduced": reduced or {}}


def seeds(label: str, tests: list[float], reference: dict) -> list[dict]:
    return [dict(make_record(label, 0.85, test=t, seed=42 + i, study="batch_size"), reference=reference)
            for i, t in enumerate(tests)]


@pytest.mark.parametrize("figure, verdict, words", [
    (0.857, references.INSIDE, "the reference lies inside our interval, so we reproduce it within the noise of 3 seeds"),
    (0.900, references.ABOVE, "the reference lies above our interval"),
    (0.800, references.BELOW, "the reference lies below our interval"),
])
def test_reference_inside_above_or_below_our_interval(figure, verdict, words):
    records = seeds("batch 32", [0.834, 0.848, 0.859], ref(figure))  # the three seeds
    (row,) = references.rows(records)
    assert row["verdict"] == verdict and row["n"] == 3
    assert row["mean"] == pytest.approx(0.847) and row["low"] < 0.847 < row["high"]
    text = " ".join(references.summary(records).split())
    assert words in text and "over 3 seeds ours is 0.8470 ± 0.0125, 95 % CI [" in text
    html = references.table(records)
    assert 'data-label="tab:batch_size:references"' in html and "3/3" in html
    assert {"inside": "inside our CI", "above": "above our CI", "below": "below our CI"}[verdict] in html


def test_verdict_counts_every_figure_and_names_the_source():
    records = (seeds("batch 32", [0.834, 0.848, 0.859], ref(0.857))
               + seeds("batch 512", [0.70, 0.71, 0.72], ref(0.790)))
    text = references.summary(records)
    assert text.startswith("1 of 2 reference figures lie inside our 95 % confidence interval over seeds.")
    assert "R5 reports a test accuracy of 0.857 for <b>batch 32</b>" in text
    assert "R5 reports a test accuracy of 0.79 for <b>batch 512</b>" in text


def test_one_seed_cannot_reproduce_a_figure():
    records = seeds("batch 32", [0.834], ref(0.857))
    (row,) = references.rows(records)
    assert row["verdict"] == references.ONE
    text = " ".join(references.summary(records).split())
    assert "our one run gives 0.8340 (2.3 points below it). One run cannot reproduce a figure" in text
    assert "<code>repeats: 3</code>" in text and "inside" not in text and "above our" not in text
    assert "one run: no interval" in references.table(records)


def test_a_cv_refit_is_one_run_and_says_how_to_repeat_it():
    refit = dict(make_record("[64, 32] relu SGD", 0.85, test=0.852, study="designs", kind="cv"), reference=ref(0.855))
    refit["config"]["data"]["refit"] = True
    fold = dict(make_record("[64, 32] relu SGD · fold 1", 0.85, study="designs", kind="cv"), reference=ref(0.855))
    fold["config"]["data"].update(fold=1, folds=5)
    (row,) = references.rows([fold, refit])  # a fold has no test split: never compared
    assert row["label"] == "[64, 32] relu SGD" and row["verdict"] == references.ONE
    assert "retrains its selected configuration once" in references.summary([fold, refit])


def test_a_reduced_profile_cannot_be_compared_with_a_full_data_reference():
    reduced = ref(0.857, {"train_samples": 12000, "test_samples": 5000, "epochs": 5}) | {"profile": "quick"}
    records = seeds("batch 32", [0.834], reduced)
    text = " ".join(references.summary(records).split())
    assert text.startswith("This build uses the <b>quick</b> profile (12,000 training samples, 5,000 test samples, "
                           "at most 5 epochs)")
    assert "its numbers cannot be compared with a full-data reference" in text and "--profile full" in text
    assert "one run cannot reproduce a figure" in text  # and one seed on top of it
    assert "lies inside" not in text and "lies above" not in text and "lies below" not in text
    assert "not comparable: quick profile" in references.table(records)
    three = seeds("batch 32", [0.834, 0.848, 0.859], reduced)
    assert "one run" not in references.summary(three) and "not comparable" in references.table(three)


def test_no_reference_shows_nothing_and_failed_seeds_are_counted():
    assert references.table([make_record("a", 0.8)]) == "" and references.summary([make_record("a", 0.8)]) == ""
    records = seeds("batch 32", [0.834, 0.848], ref(0.857))
    records.append(dict(make_record("batch 32", 0.8, seed=44, status="failed", study="batch_size"), reference=ref(0.857)))
    (row,) = references.rows(records)
    assert (row["n"], row["runs"]) == (2, 3) and "2/3" in references.table(records)
    none = [dict(make_record("batch 32", 0.8, status="failed", study="batch_size"), reference=ref(0.857))]
    assert "no run of it finished" in references.summary(none)


def test_every_study_notebook_shows_the_references_before_its_findings():
    for name, kind in KINDS.items():
        code = [c.source for c in generator.notebook(name, kind, ()).cells if c.cell_type == "code"]
        assert "section.references(records)" in code, name
        heads = [c.source for c in generator.notebook(name, kind, ()).cells]
        assert heads.index("section.references(records)") < heads.index("### Findings"), name


# The reference studies' figures as SEEDS.md gives them: (file, study, configuration, metric, figure, source).
SEEDS_MD = [
    ("report.yaml", "batch_size", "batch 32", "test_accuracy", 0.857, "R5"),
    ("report.yaml", "batch_size", "batch 128", "test_accuracy", 0.831, "R5"),
    ("report.yaml", "batch_size", "batch 512", "test_accuracy", 0.790, "R5"),
    ("report.yaml", "regularization", "none", "test_accuracy", 0.886, "R5"),
    ("fashion_cnn.yaml", "architecture", "dense baseline", "test_accuracy", 0.841, "R3"),
    ("fashion_cnn.yaml", "architecture", "dense baseline", "f1_macro", 0.840, "R3"),
    ("fashion_cnn.yaml", "architecture", "dense baseline", "auc_ovr", 0.984, "R3"),
    ("fashion_cnn.yaml", "architecture", "CNN", "test_accuracy", 0.909, "R3"),
    ("fashion_cnn.yaml", "learning_rate", "learning rate 0.01", "test_accuracy", 0.869, "R3"),
    ("fashion_cnn.yaml", "initializer", "he_normal", "test_accuracy", 0.903, "R3"),
    ("fashion_cnn.yaml", "initializer", "truncated_normal (std 1)", "test_accuracy", 0.107, "R3"),
    ("fashion_cnn.yaml", "regularization", "batch normalization", "test_accuracy", 0.900, "R3"),
    ("fashion_cnn.yaml", "regularization", "dropout 0.2", "test_accuracy", 0.920, "R3"),
    ("imdb.yaml", "regularization", "dropout 0.5", "test_accuracy", 0.8849, "R1"),
    ("imdb.yaml", "regularization", "dropout 0.5", "roc_auc", 0.9515, "R1"),
    ("imdb.yaml", "optimizer", "SGD", "test_accuracy", 0.8307, "R1"),
    ("imdb_models.yaml", "models", "1x16 relu, BCE, RMSprop", "test_accuracy", 0.8803, "R2"),
    ("imdb_models.yaml", "models", "3x32 tanh, MSE, Adam", "test_accuracy", 0.8474, "R2"),
    ("imdb_models.yaml", "models", "2x64 relu, L2 + dropout 0.5, Adam, 5 epochs", "test_accuracy", 0.8774, "R2"),
    ("cifar10.yaml", "scale_up", "[512, 256, 128, 64]", "test_accuracy", 0.5258, "R4"),
    ("cifar10.yaml", "regularization", "L2 1e-5", "test_accuracy", 0.5101, "R4"),
    ("cifar10.yaml", "search_3", "best trial", "test_accuracy", 0.5517, "R4"),
    ("fashion_mnist_cv.yaml", "single_split", "[64, 32] relu SGD", "test_accuracy", 0.852, "R5"),
    ("fashion_mnist_cv.yaml", "designs", "[64, 32] relu SGD · fold 1", "test_accuracy", 0.855, "R5"),
]
# Where each file reproduces with repeats: (file, study) trained with three seeds.
REPEATED = [("report.yaml", "batch_size"), ("fashion_cnn.yaml", "architecture"), ("imdb.yaml", "regularization"),
            ("imdb.yaml", "optimizer"), ("imdb_models.yaml", "models"), ("cifar10.yaml", "scale_up"),
            ("fashion_mnist_cv.yaml", "single_split")]


@pytest.fixture(scope="module")
def shipped():
    return {name: load.load(load.PARAMS / name, profile="full") for name in {row[0] for row in SEEDS_MD}}


@pytest.mark.parametrize("name, study, label, metric, figure, source", SEEDS_MD)
def test_shipped_files_carry_the_seeds_md_figures(shipped, name, study, label, metric, figure, source):
    (run, *_) = [r for r in shipped[name].studies[study].runs if r["label"] == label]
    assert run["reference"]["figures"][metric] == figure and run["reference"]["source"] == source


@pytest.mark.parametrize("name, study", REPEATED)
def test_shipped_files_reproduce_with_repeats(shipped, name, study):
    runs = shipped[name].studies[study].runs
    assert {len([r for r in runs if r["label"] == label]) for label in {r["label"] for r in runs}} == {3}
    assert any(r["reference"] for r in runs)

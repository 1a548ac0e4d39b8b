"""Tests for helpers.config (load, layers, errors): every bad parameter is one ConfigError line naming the file and key."""
import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers.config import layers, load
from helpers.config.errors import ConfigError
from helpers.config.kinds import KINDS
from helpers.config.plan import run_ids


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    # Error messages name files relative to the working directory; pin it so they read params/...
    monkeypatch.chdir(load.ROOT)


def write(tmp_path: Path, text: str, name: str = "report.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def raises(match: str, **kwargs) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        load.load(**kwargs)
    msg = str(info.value)
    assert "\n" not in msg, f"error is not one line: {msg!r}"
    return msg


# --- bad values given with --set ---------------------------------------------------------------

BAD_SETS = [
    # unknown keys, with a suggestion
    (["titel=x"], r"^--set: titel: unknown key 'titel' \(did you mean 'title'\?\)"),
    (["base.training.epochz=3"], r"^--set: base\.training\.epochz: unknown key 'epochz' \(did you mean 'epochs'\?\)"),
    (["base.model.hiden=[8]"], r"^--set: base\.model\.hiden: unknown key 'hiden' \(did you mean 'hidden'\?\)"),
    (["width.unitz=[3]"], r"^--set: studies\.width\.unitz: unknown key 'unitz' \(did you mean 'units'\?\)"),
    (["optimizer.variants.SGD.optimzer=sgd"],
     r"^--set: studies\.optimizer\.variants\.SGD\.optimzer: unknown key 'optimzer' \(did you mean 'optimizer'\?\)"),
    # wrong types
    (["base.hidden=abc"], r"^--set: base\.model\.hidden = 'abc': must be a valid list"),
    (["base.epochs=2.5"], r"^--set: base\.training\.epochs = 2\.5: .*integer"),
    (["base.batch_size=big"], r"^--set: base\.training\.batch_size = 'big': .*integer"),
    (["depth.units=abc"], r"^--set: studies\.depth\.units = 'abc': .*integer"),
    # out of range
    (["width.units=[0]"], r"^--set: studies\.width\.units\[0\] = 0: must be greater than 0"),
    (["width.units=[-4]"], r"^--set: studies\.width\.units\[0\] = -4: must be greater than 0"),
    (["depth.units=0"], r"^--set: studies\.depth\.units = 0: must be greater than 0"),
    (["base.hidden=[128, 0]"], r"^--set: base\.model\.hidden\[1\] = 0: must be greater than 0"),
    (["base.dropout=1.0"], r"^--set: base\.model\.dropout = 1\.0: must be less than 1"),
    (["base.dropout=-0.1"], r"^--set: base\.model\.dropout = -0\.1: must be greater than or equal to 0"),
    (["regularization.variants.none.dropout=1.0"],
     r"^--set: studies\.regularization\.variants\.none\.dropout = 1\.0: must be less than 1"),
    (["base.learning_rate=0"], r"^--set: base\.training\.learning_rate = 0: must be greater than 0"),
    (["base.learning_rate=-0.1"], r"^--set: base\.training\.learning_rate = -0\.1: must be greater than 0"),
    (["base.batch_size=0"], r"^--set: base\.training\.batch_size = 0: must be greater than 0"),
    (["base.epochs=0"], r"^--set: base\.training\.epochs = 0: must be greater than 0"),
    (["data.validation_split=1.0"], r"^--set: data\.validation_split = 1\.0: must be less than 1"),
    (["seed=-1"], r"^--set: seed = -1: must be greater than or equal to 0"),
    # unknown names, with a suggestion where one is close
    (["dataset=mnistt"], r"^--set: dataset = 'mnistt': unknown dataset \(did you mean 'mnist'\?\); allowed: fashion_mnist, "),
    (["base.activation=rleu"], r"^--set: base\.model\.activation = 'rleu': must be one of .* \(did you mean 'relu'\?\)"),
    (["activation.activations=[relu, tanhh]"],
     r"^--set: studies\.activation\.activations\[1\] = 'tanhh': must be one of .* \(did you mean 'tanh'\?\)"),
    (["base.loss=mse2"], r"^--set: base\.training\.loss = 'mse2': must be one of .* \(did you mean 'mse'\?\)"),
    (["base.optimizer=adamm"], r"^--set: base\.training\.optimizer = 'adamm': must be one of sgd, adam, rmsprop \(did you mean 'adam'\?\)"),
    (["base.early_stopping.monitor=loss"],
     r"^--set: base\.training\.early_stopping\.monitor = 'loss': must be one of val_loss, val_accuracy"),
    (["profile=fast"], r"^--set: profile = 'fast': must be one of smoke, quick, full"),
    # duplicate axis values, a baseline that is not a configuration
    (["width.units=[8, 16, 8]"], r"^--set: studies\.width: units lists 8 twice"),
    (["loss.losses=[mse, mse]"], r"^--set: studies\.loss: losses lists 'mse' twice"),
    (["depth.baseline=7 layers"], r"^--set: studies\.depth: baseline '7 layers' is not one of the configurations: 1 layer, "),
    # a cnn without filters
    (["cnn_vs_baseline.variants.CNN.filters=[]"],
     r"^--set: studies\.cnn_vs_baseline\.variants\.CNN\.filters = \[\]: a cnn needs at least one entry in filters"),
    # malformed --set items
    (["base.epochs"], r"^--set base\.epochs: expected KEY=VALUE"),
    (["=3"], r"^--set =3: empty key"),
    (["depth.layers=[1"], r"^--set depth\.layers=\[1: the value '\[1' is not valid YAML"),
    (["nosuchkey.x=3"], r"^--set: nosuchkey: unknown key 'nosuchkey'"),
    # YAML oddities in a value: a key given twice, a key that is no name, a word read as a boolean
    (["depth={layers: [1], layers: [2]}"], r"^--set depth=.*: layers: given twice \(lines 1 and 1\)"),
    (["depth={1: x}"], r"^--set depth=\{1: x\}: .*the key 1 reads as a number, not a name; quote it: '1'"),
    (["title=yes"], r"^--set: title = True: must be a valid string \(YAML 1\.1 reads yes, no, on, off unquoted"),
]


@pytest.mark.parametrize("sets, match", BAD_SETS, ids=[";".join(s) for s, _ in BAD_SETS])
def test_bad_set(sets, match):
    raises(match, sets=sets)


def test_bad_value_from_set_names_set_even_when_the_file_is_fine(tmp_path):
    report = write(tmp_path, "studies: [depth, width]\n")
    raises(r"^--set: base\.training\.epochs = 2\.5", params_file=report, sets=["base.epochs=2.5"])


def test_set_for_a_study_not_in_the_report(tmp_path):
    report = write(tmp_path, "studies: {depth: {}}\n")
    raises(r"^--set width\.units=\[8\]: the report has no study 'width'; it has depth",
           params_file=report, sets=["width.units=[8]"])


@pytest.mark.parametrize("sets", [["depth=3"], ["depth=[1, 2]"]])
def test_study_entry_that_is_not_a_mapping_via_set(sets):
    raises(r"^--set depth=.*: a study is a mapping; set one of its keys", sets=sets)


def test_cnn_without_filters_from_base_set_names_set():
    # The check spans kind and filters: the key the user set last (kind, via --set) is blamed.
    raises(r"^--set: base\.model\.kind = 'cnn': a cnn needs at least one entry in filters",
           sets=["base.kind=cnn"])


# --- bad report files --------------------------------------------------------------------------

BAD_FILES = [
    ("title: x\nstudies: [depth\n", r"malformed YAML \(line 3, column 1\)"),
    ("studies:\n  depth: {}\n bad: 1\n", r"malformed YAML \(line 3, column 2\)"),
    ("- 1\n- 2\n", r"the top level must be a mapping of keys, got list"),
    ("studies: {depth: {}}\ntitel: x\n", r"titel: unknown key 'titel' \(did you mean 'title'\?\)"),
    ("studies: {depth: {}}\nbase: {training: {epochz: 3}}\n",
     r"base\.training\.epochz: unknown key 'epochz' \(did you mean 'epochs'\?\)"),
    ("studies: {width: {unitz: [3]}}\n", r"studies\.width\.unitz: unknown key 'unitz' \(did you mean 'units'\?\)"),
    ("studies: {regularization: {variants: {none: {}, x: {dropot: 0.1}}}}\n",
     r"studies\.regularization\.variants\.x\.dropot: unknown key 'dropot' \(did you mean 'dropout'\?\)"),
    ("studies: {loss: {}}\nbase: {model: {hidden: abc}}\n", r"base\.model\.hidden = 'abc': must be a valid list"),
    ("studies: {depth: {}}\nbase: {training: {epochs: 2.5}}\n", r"base\.training\.epochs = 2\.5: .*integer"),
    ("studies: {depth: {}}\nbase: {training: {batch_size: big}}\n", r"base\.training\.batch_size = 'big': .*integer"),
    ("studies: {dpeth: {}}\n", r"studies\.dpeth: unknown study 'dpeth' \(did you mean 'depth'\?\); allowed: depth, "),
    ("studies: {mine: {kind: widht}}\n", r"studies\.mine\.kind: unknown study 'widht' \(did you mean 'width'\?\)"),
    ("title: x\n", r"studies: missing: list the studies to run"),
    ("", r"studies: missing"),
    ("studies: {}\n", r"studies = \{\}: must be a non-empty mapping"),
    ("studies: {depth: {}}\nprofile: fast\n", r"profile = 'fast': must be one of smoke, quick, full"),
    ("studies: {depth: {}}\ndataset: fashion_mnst\n",
     r"dataset = 'fashion_mnst': unknown dataset \(did you mean 'fashion_mnist'\?\); allowed: "),
    ("studies: {optimizer: {variants: {SGD: {optimizer: sgdd}}}}\n",
     r"studies\.optimizer\.variants\.SGD\.optimizer = 'sgdd': must be one of .* \(did you mean 'sgd'\?\)"),
    ("studies: {width: {units: [4, 4]}}\n", r"studies\.width: units lists 4 twice"),
    ("studies: {depth: {baseline: 5 layers}}\n", r"studies\.depth: baseline '5 layers' is not one of the configurations"),
    ("studies: {cnn_vs_baseline: {variants: {c: {kind: cnn}}}}\n",
     r"studies\.cnn_vs_baseline\.variants\.c\.kind = 'cnn': a cnn needs at least one entry in filters"),
    ("studies: {depth: {layers: []}}\n", r"studies\.depth\.layers = \[\]: list should have at least 1 item"),
    # a key given twice: PyYAML would keep the last silently, and a study would vanish
    ("studies:\n  depth: {}\n  width: {}\n  depth:\n    layers: [1]\n",
     r"studies\.depth: given twice \(lines 2 and 4\); YAML would keep only the last: keep one"),
    ("title: a\ntitle: b\nstudies: [depth]\n", r"title: given twice \(lines 1 and 2\)"),
    ("studies: {depth: {}}\nbase:\n  model: {dropout: 0.1}\n  model: {l2: 0.1}\n", r"base\.model: given twice \(lines 3 and 4\)"),
    ("studies: {regularization: {variants: {x: {dropout: 0.1, dropout: 0.2}}}}\n",
     r"studies\.regularization\.variants\.x\.dropout: given twice \(lines 1 and 1\)"),
    ("studies: [depth, depth]\n", r"studies lists 'depth' twice; keep one"),
    # keys that are not names
    ("studies:\n  1: {}\n", r"studies \(line 2\): the key 1 reads as a number, not a name; quote it: '1'"),
    ("studies:\n  null: {}\n", r"studies \(line 2\): the key null reads as null, not a name; quote it: 'null'"),
    ("no: 1\nstudies: [depth]\n", r"\(top level\) \(line 1\): the key no reads as a boolean, not a name"),
    ("studies:\n  depth:\n    ? [a]\n    : 1\n", r"studies\.depth \(line 3\): a key must be a name, not a list"),
    ("studies: [depth, {width: {}}]\n", r"studies\[1\] = \{'width': \{\}\}: must be a study's name, from depth, "),
    # YAML 1.1 reads yes/no/on/off as booleans where a word is meant
    ("studies: {depth: {}}\ntitle: yes\n", r"title = True: must be a valid string \(YAML 1\.1 reads yes, no, on, off unquoted"),
    ("studies: {depth: {}}\nbase: {model: {activation: on}}\n",
     r"base\.model\.activation = True: must be one of .* \(YAML 1\.1 reads yes, no, on, off unquoted"),
    # not a mapping, not YAML
    ("just some text\n", r"the top level must be a mapping of keys, got str"),
    ("42\n", r"the top level must be a mapping of keys, got int"),
    ("studies:\n\tdepth: {}\n", r"malformed YAML \(line 2, column 1\): found character '\\t' that cannot start any token"),
    ("studies: {depth: {}}\x00\n", r"malformed YAML: unacceptable character #x0000"),
]


@pytest.mark.parametrize("text, match", BAD_FILES)
def test_bad_report_file(tmp_path, text, match):
    report = write(tmp_path, text)
    # The report file set the bad value, so it is the file named (outside the cwd: in full).
    raises(rf"^{re.escape(str(report))}: .*{match}", params_file=report)


UNREADABLE = [
    (b"\xff\xfe\x00garbage", r"not UTF-8 text \(byte 0xff at offset 0\); a parameter file is YAML text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"not UTF-8 text \(byte 0x89 at offset 0\)"),
    (None, r"is a folder, not a parameter file"),  # None: a folder where the file should be
]


@pytest.mark.parametrize("content, match", UNREADABLE, ids=["utf16-bom", "png", "folder"])
def test_unreadable_report_file(tmp_path, content, match):
    report = tmp_path / "report.yaml"
    if content is None:
        report.mkdir()
    else:
        report.write_bytes(content)
    raises(rf"^{re.escape(str(report))}: {match}", params_file=report)


# The layers a report draws from are read by the same reader: their faults name their own file.
BAD_LAYERS = [
    ("defaults.yaml", lambda text: text + "seed: 7\n", r"^params/defaults\.yaml: seed: given twice \(lines \d+ and \d+\)"),
    ("defaults.yaml", lambda text: b"\xff" + text.encode(), r"^params/defaults\.yaml: not UTF-8 text"),
    ("studies/width.yaml", lambda text: text + "layers: 3\n", r"^params/studies/width\.yaml: layers: given twice"),
    ("studies/width.yaml", lambda text: text.encode("utf-16"), r"^params/studies/width\.yaml: not UTF-8 text"),
    ("studies/width.yaml", lambda text: "- " + text, r"^params/studies/width\.yaml: malformed YAML \(line 2"),
    ("studies/width.yaml", lambda text: "1: x\n" + text, r"^params/studies/width\.yaml: \(top level\) \(line 1\): the key 1"),
]


@pytest.mark.parametrize("name, spoil, match", BAD_LAYERS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_LAYERS)])
def test_bad_layer_file(tmp_path, monkeypatch, name, spoil, match):
    params = tmp_path / "params"
    shutil.copytree(load.PARAMS, params)
    content = spoil((params / name).read_text())
    (params / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    monkeypatch.chdir(tmp_path)  # the copy reads params/..., as the real files do
    monkeypatch.setattr(load, "PARAMS", params)
    raises(match, params_file=params / "report.yaml")


def test_anchors_and_merge_keys_are_fine(tmp_path):
    # `<<: *d` then `layers:` is an override, not a key given twice.
    report = write(tmp_path, "studies:\n  depth: &d {layers: [1, 2]}\n  deep: {<<: *d, kind: depth, layers: [3]}\n")
    plan = load.load(report)
    assert [r["axis"]["layers"] for r in plan.studies["depth"].runs] == [1, 2]
    assert [r["axis"]["layers"] for r in plan.studies["deep"].runs] == [3]


def test_studies_argument_naming_no_study():
    raises(r"^--studies: names no study; this report has depth, ", studies=[])


def test_unknown_profile_argument_names_profile(tmp_path):
    report = write(tmp_path, "studies: {depth: {}}\n")
    raises(r"^--profile: profile = 'fast': must be one of smoke, quick, full", params_file=report, profile="fast")


def test_study_listed_with_empty_yaml_entry_uses_its_study_file(tmp_path):
    report = write(tmp_path, "studies:\n  depth:\n  width:\n")
    plan = load.load(report)
    assert [r["axis"]["layers"] for r in plan.studies["depth"].runs] == [1, 2, 3, 4]


def test_study_entry_that_is_not_a_mapping_in_file(tmp_path):
    report = write(tmp_path, "studies: {depth: 3}\n")
    raises(r"studies\.depth = 3: must be a mapping of the study's keys", params_file=report)


def test_bad_base_value_is_rejected_even_when_every_study_overrides_it(tmp_path):
    report = write(tmp_path, "studies: {depth: {}}\nbase: {model: {hidden: abc}}\n")
    raises(r"base\.model\.hidden = 'abc'", params_file=report)


def test_study_error_names_the_report_path_and_key(tmp_path):
    report = write(tmp_path, "studies: {width: {units: [0]}}\n")
    raises(rf"^{re.escape(str(report))}: studies\.width\.units\[0\] = 0: must be greater than 0",
           params_file=report)


def test_report_error_names_params_report_yaml(tmp_path):
    # Only the notebook folder differs, so the default report's own entry is to blame.
    msg = raises(r"^params/report\.yaml: studies\.depth: the study 'depth' has no notebook",
                 notebooks=tmp_path)
    assert "depth.ipynb is missing" in msg


def test_source_of_names_the_highest_layer_that_set_the_key():
    stack = layers.Layers()
    stack.add("params/defaults.yaml", {"base": {"training": {"epochs": 10}}})
    stack.add("params/studies/width.yaml", {"studies": {"width": {"units": [8], "layers": 2}}})
    stack.add("params/report.yaml", {"studies": {"width": {"layers": 3}}})
    stack.add("--set", {"base": {"training": {"epochs": 3}}})
    assert stack.source_of(("studies", "width", "units", 0)) == "params/studies/width.yaml"
    assert stack.source_of(("studies", "width", "layers")) == "params/report.yaml"
    assert stack.source_of(("base", "training", "epochs")) == "--set"
    # Missing everywhere: a required key, blamed on the top layer.
    assert stack.source_of(("studies", "width", "nope")) == "--set"


def test_unknown_key_error_lists_allowed_keys():
    msg = raises(r"unknown key", sets=["base.training.epochz=3"])
    allowed = msg.split("allowed: ")[1].split(", ")
    assert "epochs" in allowed and "learning_rate" in allowed


def test_studies_argument_naming_an_unknown_study():
    raises(r"^--studies: unknown study 'dpeth' \(did you mean 'depth'\?\); this report has depth, ",
           studies=["depth", "dpeth"])


def test_study_without_a_notebook(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(load.NOTEBOOKS / "depth.ipynb", notebooks)
    report = write(tmp_path, "studies: {depth: {}, width: {}}\n")
    raises(r"studies\.width: the study 'width' has no notebook \(.*width\.ipynb is missing\)",
           params_file=report, notebooks=notebooks)
    # The same folder is fine for a report that only needs the notebooks it has.
    assert list(load.load(write(tmp_path, "studies: {depth: {}}\n", "ok.yaml"), notebooks=notebooks).studies) == ["depth"]


# --- what valid parameters become --------------------------------------------------------------

@pytest.fixture(scope="module")
def default_plan():
    return load.load()


def test_exponent_without_dot_is_a_float(tmp_path):
    # PyYAML reads 1e-3 (no dot) as the string '1e-3'; it must still mean 0.001.
    report = write(tmp_path, "studies: {depth: {}}\nbase: {training: {learning_rate: 1e-3}, model: {l2: 1e-4}}\n")
    run = load.load(report).studies["depth"].runs[0]
    assert run["config"]["training"]["learning_rate"] == pytest.approx(0.001)
    assert isinstance(run["config"]["training"]["learning_rate"], float)
    assert run["config"]["model"]["l2"] == pytest.approx(1e-4)
    variant = write(tmp_path, "studies: {regularization: {variants: {L2: {l2: 1e-3}}}}\n", "variant.yaml")
    runs = {r["label"]: r for r in load.load(variant).studies["regularization"].runs}
    assert runs["L2"]["config"]["model"]["l2"] == pytest.approx(0.001)


def test_set_base_epochs_is_training_epochs():
    plan = load.load(sets=["base.epochs=3"], profile="full")
    epochs = {r["config"]["training"]["epochs"] for s in plan.studies.values() for r in s.runs}
    assert epochs == {3}


def test_set_base_model_shorthand():
    plan = load.load(sets=["base.activation=tanh"], studies=["depth"])
    assert {r["config"]["model"]["activation"] for r in plan.studies["depth"].runs} == {"tanh"}


def test_set_width_units():
    runs = load.load(sets=["width.units=[8,16]"]).studies["width"].runs
    assert [r["config"]["model"]["hidden"] for r in runs] == [[8, 8], [16, 16]]
    assert sum(r["baseline"] for r in runs) == 1


def test_set_width_units_with_matching_baseline():
    runs = load.load(sets=["width.units=[8,16]", "width.baseline=16 units"]).studies["width"].runs
    assert [r["config"]["model"]["hidden"] for r in runs] == [[8, 8], [16, 16]]
    assert [r["axis"] for r in runs] == [{"units": 8}, {"units": 16}]
    assert [r["baseline"] for r in runs] == [False, True]


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_profiles(profile):
    plan = load.load(profile=profile)
    prof = plan.report.profiles[profile]
    assert plan.report.profile == profile
    for study in plan.studies.values():
        for run in study.runs:
            data = run["config"]["data"]
            assert data["train_samples"] == prof.train_samples
            assert data["test_samples"] == prof.test_samples
            if prof.epochs:
                assert run["config"]["training"]["epochs"] <= prof.epochs


def test_smoke_caps_epochs_at_the_smoke_value():
    plan = load.load(profile="smoke", sets=["base.epochs=50"])
    cap = plan.report.profiles["smoke"].epochs
    assert cap is not None
    assert {r["config"]["training"]["epochs"] for s in plan.studies.values() for r in s.runs} == {cap}
    assert plan.data["train_samples"] == plan.report.profiles["smoke"].train_samples


def test_profile_cap_never_raises_epochs():
    plan = load.load(profile="quick", sets=["base.epochs=1"])
    assert {r["config"]["training"]["epochs"] for s in plan.studies.values() for r in s.runs} == {1}


def test_studies_argument_keeps_the_report_order():
    plan = load.load(studies=["width", "depth"])
    assert list(plan.studies) == ["depth", "width"]


def test_default_report(default_plan):
    assert list(default_plan.studies) == list(layers.read_yaml(load.PARAMS / "report.yaml")["studies"])
    assert default_plan.source == "params/report.yaml"
    for name, study in default_plan.studies.items():
        ids = run_ids(study.runs)  # a label, plus its seed where the study repeats (batch_size: R5 over 3 seeds)
        assert study.runs and len(ids) == len(set(ids)), name
        assert len({r["label"] for r in study.runs if r["baseline"]}) == 1, name  # one baseline configuration
        assert study.title and study.question, name
        for run in study.runs:
            assert run["study"] == name and run["kind"] in KINDS
            assert run["seed"] in (default_plan.report.seed, default_plan.report.seed + 1, default_plan.report.seed + 2)
            assert run["config"]["data"] == {
                "dataset": default_plan.report.dataset, "validation_split": 0.2,
                "validation_method": "stratified",
                "train_samples": default_plan.report.profiles["quick"].train_samples,
                "test_samples": default_plan.report.profiles["quick"].test_samples,
                "seed": default_plan.report.seed}
            assert set(run["config"]) == {"model", "training", "data"}


def baseline(plan, study: str) -> str:
    (label,) = [r["label"] for r in plan.studies[study].runs if r["baseline"]]
    return label


def test_baseline_is_the_study_base_configuration(default_plan):
    # depth's 4x128 and optimizer's Adam at 1e-3 are exactly the base network, wherever they are listed.
    assert baseline(default_plan, "depth") == "4 layers"
    assert baseline(default_plan, "optimizer") == "Adam"
    assert baseline(default_plan, "regularization") == "none"


def test_baseline_falls_back_to_the_first_run():
    # No 2-layer width run equals the 4-layer base, so the first configuration is the reference...
    plan = load.load(studies=["width"])
    assert baseline(plan, "width") == plan.studies["width"].runs[0]["label"]
    # ...until the study's depth matches the base.
    plan = load.load(studies=["width"], sets=["width.layers=4"])
    assert baseline(plan, "width") == "128 units"


def test_explicit_baseline_wins():
    plan = load.load(studies=["depth"], sets=["depth.baseline=2 layers"])
    assert baseline(plan, "depth") == "2 layers"


def test_study_file_overrides(default_plan):
    for run in default_plan.studies["batch_size"].runs:
        assert run["config"]["training"]["optimizer"] == "sgd"
        assert run["config"]["training"]["learning_rate"] == pytest.approx(0.01)
        assert run["config"]["training"]["early_stopping"] is None
        assert run["config"]["model"]["hidden"] == [64, 32]
    assert [r["config"]["training"]["batch_size"] for r in default_plan.studies["batch_size"].runs] == [32] * 3 + [128] * 3 + [512] * 3
    for run in default_plan.studies["depth"].runs:
        assert run["config"]["training"]["optimizer"] == "adam"
        assert run["config"]["model"]["hidden"] == [128] * run["axis"]["layers"]


def test_variants_patch_only_what_they_name(default_plan):
    runs = {r["label"]: r["config"] for r in default_plan.studies["optimizer"].runs}
    assert runs["SGD"]["training"]["optimizer"] == "sgd"
    assert runs["SGD"]["training"]["learning_rate"] == pytest.approx(0.01)
    assert runs["RMSprop"]["training"]["optimizer"] == "rmsprop"
    assert runs["SGD"]["model"] == runs["Adam"]["model"]
    cnn = {r["label"]: r["config"]["model"] for r in default_plan.studies["cnn_vs_baseline"].runs}["CNN"]
    assert cnn["kind"] == "cnn" and cnn["filters"]


def test_report_file_overrides_the_study_file(tmp_path):
    report = write(tmp_path, "studies: {width: {layers: 3}}\n")
    runs = load.load(report).studies["width"].runs
    study_file = layers.read_yaml(load.PARAMS / "studies" / "width.yaml")
    assert [r["axis"]["units"] for r in runs] == study_file["units"]
    assert all(r["config"]["model"]["hidden"] == [r["axis"]["units"]] * 3 for r in runs)


def test_report_file_overrides_the_study_axis(tmp_path):
    report = write(tmp_path, "studies: {width: {units: [4]}}\n")
    runs = load.load(report).studies["width"].runs
    assert [r["config"]["model"]["hidden"] for r in runs] == [[4, 4]]


def test_study_listed_by_name_only(tmp_path):
    report = write(tmp_path, "studies: [width, depth]\n")
    plan = load.load(report)
    assert list(plan.studies) == ["width", "depth"]
    assert plan.studies["depth"].runs == load.load().studies["depth"].runs


def test_two_studies_of_one_kind(tmp_path):
    report = write(tmp_path, "studies: {wide: {kind: width, units: [512], baseline: 512 units}, width: {}}\n")
    plan = load.load(report, sets=["wide.layers=1"])
    assert [(r["study"], r["kind"], r["config"]["model"]["hidden"]) for r in plan.studies["wide"].runs] == [
        ("wide", "width", [512])]
    assert len(plan.studies["width"].runs) > 1


def test_merge_is_deep_and_does_not_alias():
    low = {"a": {"b": 1, "c": [1]}, "d": 1}
    high = {"a": {"b": 2}, "e": {"f": 1}}
    out = layers.merge(low, high)
    assert out == {"a": {"b": 2, "c": [1]}, "d": 1, "e": {"f": 1}}
    out["e"]["f"] = 9
    assert high == {"a": {"b": 2}, "e": {"f": 1}}
    assert layers.merge({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}  # lists are replaced, not joined
    assert layers.merge({"a": {"b": 1}}, {"a": None}) == {"a": None}


@pytest.mark.parametrize("item, path, value", [
    ("base.epochs=3", ["base", "training", "epochs"], 3),
    ("base.hidden=[8, 8]", ["base", "model", "hidden"], [8, 8]),
    ("width.units=[8,16]", ["studies", "width", "units"], [8, 16]),
    ("dataset=fashion_mnist", ["dataset"], "fashion_mnist"),
    ("base.training.learning_rate=1e-3", ["base", "training", "learning_rate"], "1e-3"),
])
def test_parse_set(item, path, value):
    assert load.parse_set(item, {"width"}) == (path, value)


def test_every_error_is_one_line_and_names_a_source():
    for sets, _ in BAD_SETS:
        with pytest.raises(ConfigError) as info:
            load.load(sets=sets)
        msg = str(info.value)
        assert "\n" not in msg
        assert re.match(r"^(--set|params/)", msg), msg


# --- --show-config: the merged parameters, each value with the layer that set it ----------------

def comments(text: str) -> dict[tuple, str]:
    """key path -> the end-of-line comment of its line, in show's block-style YAML."""
    out, path = {}, []
    for line in text.splitlines():
        code, _, comment = line.partition("  # ")
        depth = (len(code) - len(code.lstrip())) // 2
        path = path[:depth] + [code.strip().split(":")[0]]
        if comment:
            out[tuple(path)] = comment
    return out


# (the report file, --set items, the study shown, a key path, the layer its value comes from)
PROVENANCE = [
    # set only in defaults
    ("studies: {width: {}}\n", [], "width", ("base", "training", "optimizer"), "params/defaults.yaml"),
    ("studies: {width: {}}\n", [], "width", ("profiles", "smoke", "epochs"), "params/defaults.yaml"),
    # set by the study kind file, over nothing and over the defaults' base
    ("studies: {width: {}}\n", [], "width", ("studies", "width", "units"), "params/studies/width.yaml"),
    ("studies: {batch_size: {}}\n", [], "batch_size", ("studies", "batch_size", "training", "optimizer"),
     "params/studies/batch_size.yaml"),
    # the report file over the defaults and over the study file
    ("title: Mine\nstudies: {width: {}}\n", [], "width", ("title",), "{report}"),
    ("studies: {width: {layers: 3}}\n", [], "width", ("studies", "width", "layers"), "{report}"),
    ("studies: {width: {}}\nbase: {model: {hidden: [8]}}\n", [], "width", ("base", "model", "hidden"), "{report}"),
    # --set over each of them
    ("studies: {width: {layers: 3}}\n", ["width.layers=4"], "width", ("studies", "width", "layers"), "--set"),
    ("studies: {width: {}}\n", ["width.units=[8]"], "width", ("studies", "width", "units"), "--set"),
    ("studies: {width: {}}\n", ["base.epochs=3"], "width", ("base", "training", "epochs"), "--set"),
    ("studies: {width: {}}\n", ["seed=1"], None, ("seed",), "--set"),
    # a mapping replaced by a value: its old keys leave no trace
    ("studies: {width: {}}\nbase: {training: {early_stopping: null}}\n", [], None,
     ("base", "training", "early_stopping"), "{report}"),
]


@pytest.mark.parametrize("text, sets, study, path, layer", PROVENANCE,
                         ids=[f"{'.'.join(p)}<-{layer}" for _, _, _, p, layer in PROVENANCE])
def test_show_config_names_the_layer_of_each_value(tmp_path, text, sets, study, path, layer):
    from helpers.config.show import show
    report = write(tmp_path, text)
    shown = show(load.load(report, sets=sets), study)
    assert comments(shown)[path] == layer.format(report=report)
    assert not any(p[:len(path)] == path and p != path for p in comments(shown))


@pytest.mark.parametrize("params_file, sets, profile", [
    ("report.yaml", [], None),
    ("report.yaml", ["width.units=[8,16]", "base.epochs=3", "title=\"Two lines,\\na colon: and # a hash\""], "smoke"),
    ("imdb.yaml", [], None),
    ("digits.yaml", ["depth.units=8"], None),
])
def test_show_config_parses_back_to_the_merged_parameters_the_build_validates(tmp_path, params_file, sets, profile):
    from helpers.config.show import show
    plan = load.load(load.PARAMS / params_file, sets=sets, profile=profile)
    text = show(plan)
    assert yaml.safe_load(text) == plan.merged
    for study in plan.studies:  # one study: the same, with only that study
        assert yaml.safe_load(show(plan, study)) == dict(plan.merged, studies={study: plan.merged["studies"][study]})
    # Given back as a report file, it is the same plan, run for run.
    again = load.load(write(tmp_path, text))
    assert {n: s.runs for n, s in again.studies.items()} == {n: s.runs for n, s in plan.studies.items()}


def test_show_config_of_an_unknown_study():
    from helpers.config.show import show
    with pytest.raises(ConfigError, match=r"^--show-config dpeth: no study 'dpeth' \(did you mean 'depth'\?\); "
                                          r"this report has depth, width, "):
        show(load.load(), "dpeth")


# --- a notebook run by hand (no runs injected) takes its study from a parameter file


@pytest.mark.parametrize("study, source", [("depth", "report.yaml"), ("cv", "examples.yaml"),
                                           ("robustness", "examples.yaml")])
def test_by_hand_takes_the_default_report_else_the_built_in_example(study, source):
    plan = load.by_hand(study)
    assert Path(plan.source).name == source and study in plan.studies
    # a robustness study re-trains the others' best runs: the plan keeps every study of the file
    assert set(plan.studies) == set(load.load(load.PARAMS / source).studies)


def test_by_hand_examples_are_smoke_sized_on_digits():
    plan = load.by_hand("cv", profile="smoke")
    assert plan.report.dataset == "digits"
    runs = [r for s in plan.studies.values() for r in s.runs]
    assert len(runs) <= 25 and max(r["config"]["training"]["epochs"] for r in runs) <= 3


def test_by_hand_params_file_relative_to_the_working_directory_or_the_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Jupyter's working directory is notebooks/, not the root
    assert load.by_hand("designs", "params/fashion_mnist_cv.yaml").studies["designs"].kind == "cv"
    (tmp_path / "mine.yaml").write_text("dataset: digits\nstudies: {wide: {kind: width, units: [8, 16]}}\n")
    assert [r["label"] for r in load.by_hand("wide", "mine.yaml").studies["wide"].runs] == ["8 units", "16 units"]


@pytest.mark.parametrize("study, params_file, match", [
    ("depht", None, (r"^params/examples\.yaml: no study 'depht' \(did you mean 'depth'\?\); it has compare, .*; "
                     r"params/report\.yaml has depth, ")),
    ("cv", "params/digits.yaml", (r"^params/digits\.yaml: no study 'cv'; it has depth, width, activation, optimizer, "
                                  r"cnn_vs_baseline$")),
])
def test_by_hand_unknown_study(study, params_file, match, monkeypatch):
    monkeypatch.chdir(load.ROOT)
    with pytest.raises(ConfigError, match=match):
        load.by_hand(study, params_file)

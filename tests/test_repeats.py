"""Repeats over seeds: parameters, expansion, run identity, the robustness study, tables and the
"within noise" wording (on synthetic records), the seed really applied (a small training run),
and one small end-to-end build."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, config, make_record, run_build
from scipy import stats as st

from helpers.analysis import repeats, stats
from helpers.analysis.summary import summary
from helpers.build import state as build_state
from helpers.config import load
from helpers.config.errors import ConfigError
from helpers.config.plan import StudyPlan, expand_robustness, run_ids
from helpers.present import discussion, findings, overview, section
from helpers.present import format as fmt
from helpers.present import repeats as repeat_words

DIGITS = load.PARAMS / "digits.yaml"


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # error messages name files relative to the working directory


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "report.yaml"
    path.write_text(text)
    return path


ROBUST = """title: t
dataset: digits
studies:
  width: {units: [8, 16], layers: 1}
  robustness: {top: 2}
"""

# --- bad parameters: one line naming file, key, value and what is allowed --------------------------

BAD = [
    (DIGITS, ["repeats=3", "seeds=[1, 2]"], r"^--set: repeats = 3: give either seeds \(a list\) or repeats \(a count\), not both$"),
    (DIGITS, ["seeds=[1, 1]"], r"^--set: seeds = \[1, 1\]: seeds lists 1 twice$"),
    (DIGITS, ["seeds=[]"], r"^--set: seeds = \[\]: list at least one seed"),
    (DIGITS, ["seeds=[-1]"], r"^--set: seeds\[0\] = -1: must be greater than or equal to 0$"),
    (DIGITS, ["seeds=5"], r"^--set: seeds = 5: must be a valid list$"),
    (DIGITS, ["repeats=0"], r"^--set: repeats = 0: must be greater than 0$"),
    (DIGITS, ["repeats=two"], r"^--set: repeats = 'two': .*integer"),
    (DIGITS, ["depth.repeats=1.5"], r"^--set: studies\.depth\.repeats = 1\.5: .*integer"),
    (DIGITS, ["depth.seeds=[3]", "depth.repeats=2"], r"^--set: studies\.depth\.repeats = 2: give either seeds"),
    (DIGITS, ["depth.seeds=[3, 3]"], r"^--set: studies\.depth\.seeds = \[3, 3\]: seeds lists 3 twice$"),
    ("robust", ["robustness.repeats=1"], r"^--set: studies\.robustness: a robustness study needs at least two seeds"),
    ("robust", ["robustness.top=0"], r"^--set: studies\.robustness\.top = 0: must be greater than 0$"),
    ("robust", ["robustness.tpo=2"], r"^--set: studies\.robustness\.tpo: unknown key 'tpo' \(did you mean 'top'\?\)"),
]


@pytest.mark.parametrize("params, sets, match", BAD)
def test_bad_seed_parameters(tmp_path, params, sets, match):
    params = write(tmp_path, ROBUST) if params == "robust" else params
    with pytest.raises(ConfigError, match=match) as info:
        load.load(params, sets=sets)
    assert "\n" not in str(info.value)


def test_a_file_value_names_the_file(tmp_path):
    path = write(tmp_path, ROBUST + "seeds: [4, 4]\n")
    with pytest.raises(ConfigError, match=r"report\.yaml: seeds = \[4, 4\]: seeds lists 4 twice$"):
        load.load(path)


def test_robustness_alone_has_nothing_to_retrain(tmp_path):
    with pytest.raises(ConfigError, match=r"^--studies: studies\.robustness: a robustness study re-trains"):
        load.load(write(tmp_path, ROBUST), studies=["robustness"])


# --- expansion and run identity ---------------------------------------------------------------------

def test_repeats_expand_every_configuration_over_seeds_with_a_fixed_split():
    plan = load.load(DIGITS, profile="smoke", sets=["repeats=3", "depth.seeds=[7, 9]"])
    width = plan.studies["width"].runs
    assert [(r["label"], r["seed"]) for r in width[:4]] == [("8 units", 42), ("8 units", 43), ("8 units", 44),
                                                            ("32 units", 42)]
    assert {r["config"]["data"]["seed"] for r in width} == {42}  # only training varies
    assert width[0]["config"] == width[1]["config"] and width[0]["config"] is not width[1]["config"]
    assert [r["seed"] for r in plan.studies["depth"].runs] == [7, 9, 7, 9, 7, 9]  # the study's own seeds win
    ids = run_ids(width)
    assert len(set(ids)) == len(ids) and ids[1] == "8 units · seed 43"
    assert sum(r["baseline"] for r in width) == 3  # the baseline configuration, once per seed


def test_a_single_seed_keeps_todays_identity():
    plan = load.load(DIGITS, profile="smoke")
    for p in plan.studies.values():
        assert run_ids(p.runs) == [r["label"] for r in p.runs]
        assert {r["seed"] for r in p.runs} == {42}


def test_study_state_keys_every_seed_apart():
    plan = load.load(DIGITS, profile="smoke", sets=["repeats=2"], studies=["width"]).studies["width"]
    state = build_state.study(plan)
    assert list(state["runs"]) == run_ids(plan.runs)
    assert len({v["key"] for v in state["runs"].values()}) == len(plan.runs)  # the seed is in the key
    one = build_state.study(load.load(DIGITS, profile="smoke", studies=["width"]).studies["width"])
    assert set(one["runs"]) == {"8 units", "32 units", "128 units"}
    assert "gained 8 units · seed 42" in build_state.why_changed(one, state)


# --- the robustness study ---------------------------------------------------------------------------

def rec(study, label, val, test=None, seed=42, status="ok", hidden=(8,), auc=None, **kw):
    """conftest.make_record with the study first and the configuration given by its hidden layers."""
    metrics = {} if auc is None else {"roc_auc": auc}
    return make_record(label, val, test=val - 0.01 if test is None else test, study=study, seed=seed,
                       status=status, cfg=config(hidden=hidden), **kw, **metrics)


def test_robustness_takes_the_top_distinct_configurations_by_validation():
    records = [rec("width", "8 units", 0.90, hidden=(8,)), rec("width", "16 units", 0.80, hidden=(16,)),
               rec("depth", "1 layer", 0.90, hidden=(8,)),  # the same configuration as "8 units"
               rec("depth", "2 layers", 0.85, hidden=(8, 8)),
               rec("lr", "huge", 0.99, status="diverged", hidden=(1,)),  # not ok: never a candidate
               rec("lr", "broken", 0.99, status="failed", hidden=(2,))]
    plan = StudyPlan("robust", "robustness", "R", "", [], {"top": 2, "seeds": [5, 6, 7]})
    runs = expand_robustness(plan, records)
    assert [(r["label"], r["seed"]) for r in runs] == [
        ("8 units (width)", 5), ("8 units (width)", 6), ("8 units (width)", 7),
        ("2 layers (depth)", 5), ("2 layers (depth)", 6), ("2 layers (depth)", 7)]
    assert all(r["study"] == "robust" and r["kind"] == "robustness" for r in runs)
    assert runs[0]["config"] == records[0]["config"] and runs[0]["config"] is not records[0]["config"]
    assert runs[3]["config"]["model"]["hidden"] == [8, 8]


def test_robustness_ranks_by_mean_validation_over_seeds():
    records = [rec("a", "lucky", 0.95, seed=1, hidden=(1,)), rec("a", "lucky", 0.70, seed=2, hidden=(1,)),
               rec("a", "steady", 0.85, seed=1, hidden=(2,)), rec("a", "steady", 0.84, seed=2, hidden=(2,))]
    plan = StudyPlan("r", "robustness", "R", "", [], {"top": 1, "seeds": [1, 2]})
    assert {r["label"] for r in expand_robustness(plan, records)} == {"steady (a)"}


# --- statistics: the best is chosen on validation, compared on test ---------------------------------

def test_against_best_compares_with_a_given_best():
    scores = {"a": {1: 0.80, 2: 0.82, 3: 0.81}, "b": {1: 0.90, 2: 0.91, 3: 0.93}}
    out = stats.against_best(scores, best="a")
    assert out["best"] == "a" and out["comparisons"][0]["label"] == "b"
    assert out["comparisons"][0]["diff"] == pytest.approx(np.mean([0.80, 0.82, 0.81]) - np.mean([0.90, 0.91, 0.93]))
    assert out["comparisons"][0]["p"] == pytest.approx(st.ttest_rel([0.80, 0.82, 0.81], [0.90, 0.91, 0.93]).pvalue)
    assert stats.against_best(scores)["best"] == "b"


def seeded(label, vals, tests, study="s", **kw):
    return [rec(study, label, v, test=t, seed=42 + i, **kw) for i, (v, t) in enumerate(zip(vals, tests))]


SEPARATED = (seeded("A", [0.90, 0.91, 0.92], [0.90, 0.91, 0.92])
             + seeded("B", [0.80, 0.81, 0.82], [0.80, 0.815, 0.82]))
OVERLAPPING = (seeded("A", [0.90, 0.87, 0.92], [0.90, 0.87, 0.92])
               + seeded("B", [0.88, 0.91, 0.89], [0.89, 0.91, 0.86]))


def test_table_shows_mean_std_and_the_t_interval():
    t = repeat_words.table(SEPARATED)
    s = stats.summarize([0.80, 0.815, 0.82])
    assert list(t.index) == ["A", "B"] and t.loc["B", "seeds"] == "3/3"
    assert t.loc["B", "test acc (mean ± std)"] == f"{s['mean']:.4f} ± {s['std']:.4f}"
    lo, hi = st.t.interval(0.95, 2, loc=np.mean([0.80, 0.815, 0.82]), scale=st.sem([0.80, 0.815, 0.82]))
    assert t.loc["B", "test acc 95 % CI"] == f"[{lo:.4f}, {hi:.4f}]"
    assert "ROC AUC (mean ± std)" not in t  # multi-class: no AUC column
    binary = seeded("A", [0.9, 0.91], [0.9, 0.9], auc=0.95) + seeded("B", [0.8, 0.8], [0.8, 0.8], auc=0.9)
    assert repeat_words.table(binary).loc["A", "ROC AUC (mean ± std)"] == "0.9500 ± 0.0000"


def test_separated_configurations_are_significant_and_named_with_p():
    text = findings.findings(SEPARATED)
    p = stats.paired_test([0.90, 0.91, 0.92], [0.80, 0.815, 0.82])
    assert "significantly better than **B**" in text
    assert fmt.p_is(stats.holm([p])[0]) in text and "paired t-test" in text
    assert "within noise" not in text


def test_overlapping_configurations_are_within_noise_and_not_ranked():
    text = findings.findings(OVERLAPPING)
    assert "within noise" in text and "does not rank" in text
    assert "significantly" not in text
    rows = repeats.comparisons(OVERLAPPING)["comparisons"]
    assert rows[0]["p_holm"] >= 0.05 and not rows[0]["significant"]


def test_within_noise_names_keep_study_order_not_rank():
    # C has a higher mean than B, but both are within noise of A: they are listed as the study lists them
    recs = (seeded("A", [0.95, 0.96, 0.97], [0.90, 0.94, 0.92]) + seeded("B", [0.80, 0.81, 0.82], [0.89, 0.93, 0.90])
            + seeded("C", [0.90, 0.91, 0.92], [0.91, 0.93, 0.91]) + seeded("D", [0.5, 0.51, 0.52], [0.50, 0.51, 0.52]))
    text = findings.findings(recs)
    assert "The differences to **B** and **C** are within noise" in text
    assert "significantly better than **D**" in text
    assert "As" not in text.split("Holm's method")[-1]  # no trend told through differences within noise


def test_best_is_chosen_on_mean_validation_never_test():
    # three seeds whose test differences vary: a constant difference would not be tested (issue 12)
    recs = seeded("A", [0.90, 0.90, 0.90], [0.70, 0.71, 0.69]) + seeded("B", [0.80, 0.80, 0.80], [0.95, 0.97, 0.96])
    assert repeats.best_label(recs) == "A"
    text = findings.findings(recs)
    assert "**A** (validation 0.9000" in text and "**B** has significantly higher test accuracy" in text


def test_a_configuration_with_one_successful_seed_is_not_called_within_noise():
    recs = seeded("A", [0.9, 0.91, 0.92], [0.9, 0.9, 0.91]) + [rec("s", "B", 0.3, seed=42)] + [
        rec("s", "B", 0.3, seed=s, status="diverged") for s in (43, 44)]
    text = findings.findings(recs)
    assert "**B** could not be tested" in text and "within noise" not in text
    assert "2 of 6 runs diverged (B · seed 43, B · seed 44)" in text and "failed" not in text
    assert repeat_words.comparison_table(recs).loc["B", "significant (α = 0.05)"].startswith("not tested")
    assert repeat_words.table(recs).loc["B", "status"] == "2 diverged"
    recs[-1].update(status="failed")
    assert repeat_words.table(recs).loc["B", "status"] == "1 diverged, 1 failed"
    assert "1 of 6 runs failed (B · seed 44)" in findings.findings(recs)


def test_single_seed_findings_say_there_is_no_noise_estimate():
    text = findings.findings([rec("s", "A", 0.90), rec("s", "B", 0.895)])
    assert "no estimate of run-to-run noise" in text and "Holm" not in text
    assert section.comparisons([rec("s", "A", 0.90), rec("s", "B", 0.8)]).data == ""


def test_report_level_text_uses_means_over_seeds():
    recs = SEPARATED + [rec("t", "x", 0.5, seed=s) for s in (42, 43, 44)]
    assert "trained with 3 seeds" in overview.abstract(recs)
    row = summary(recs).set_index("study").loc["s"]
    assert row["best"] == "A" and row["val_accuracy"] == pytest.approx(0.91) and row["runs"] == "6/6"
    assert "paired t-test" in discussion.discussion(recs) and "one seed" not in discussion.discussion(recs)
    assert "single seed" not in overview.conclusions(recs)
    assert "seeds 42, 43, 44" in repeat_words.methodology(recs, 42)
    assert repeat_words.methodology([rec("s", "A", 0.9)], 42) == "Seed 42; one run per configuration."


def test_section_shows_means_bands_and_error_bars():
    from helpers.analysis.records import frame
    from helpers.present import figures as plots
    recs = copy.deepcopy(SEPARATED)
    for i, r in enumerate(recs):
        r["history"] = {"accuracy": [0.5, 0.6 + i / 100], "val_accuracy": [0.5, 0.55 + i / 100],
                        "loss": [1.0, 0.8], "val_loss": [1.1, 0.9]}
    html = section.table(recs).data
    assert "over 3 seeds" in html and "0.9100 ± 0.0100" in html
    assert 'data-label="tab:s:comparisons"' in section.comparisons(recs).data
    fig = plots.mean_curves(recs)
    assert len(fig.axes[0].collections) == 4  # a band for training and validation of both configurations
    bars = plots.bars(frame(recs))
    bar = next(c for c in bars.axes[0].containers if hasattr(c, "patches"))
    assert len(bar.patches) == 2 and bar.errorbar is not None
    assert bars.axes[0].texts[0].get_text().strip() == "0.9100 ± 0.0100"


# --- the seed is really applied ---------------------------------------------------------------------

def test_the_seed_is_applied(monkeypatch):
    from helpers.data import splits as data
    from helpers.run import models, training
    spec = copy.deepcopy(load.load(DIGITS, profile="smoke", studies=["width"]).studies["width"].runs[0])
    spec["config"]["training"]["epochs"] = 1
    splits = data.load("digits", **{k: v for k, v in spec["config"]["data"].items() if k != "dataset"})
    first: list = []
    build = models.build

    def spy(*a, **kw):  # the weights a run starts from
        model = build(*a, **kw)
        first.append([w.copy() for w in model.get_weights()])
        return model
    monkeypatch.setattr(models, "build", spy)
    training.configure(1)
    a, b = training.run(spec, splits), training.run(spec, splits)
    c = training.run({**spec, "seed": 43}, splits)
    assert all(np.array_equal(x, y) for x, y in zip(first[0], first[1]))
    assert not np.array_equal(first[0][0], first[2][0])
    assert a["metrics"]["val_accuracy"] == b["metrics"]["val_accuracy"] and a["history"] == b["history"]
    assert a["history"] != c["history"]


# --- end to end -------------------------------------------------------------------------------------

E2E = """title: Seeds on digits
dataset: digits
repeats: 2
profiles:
  smoke: {train_samples: null, test_samples: null, epochs: 3}
base:
  model: {hidden: [16]}
  training: {epochs: 3, batch_size: 64}
studies:
  width: {units: [4, 16], layers: 1}
  robustness: {top: 1, seeds: [7, 8]}
"""


@pytest.mark.e2e
def test_build_with_seeds_and_a_robustness_section(tmp_path):
    params = write(tmp_path, E2E)
    out = tmp_path / "out"

    def build():
        return run_build(params, "--profile", "smoke", "--out", out, timeout=300, env={"PYTHONUNBUFFERED": "1"})
    proc = build()
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: a tiny model may diverge on some seed
    data = json.loads((out / "report.json").read_text())
    runs = data["runs"]
    width = [r for r in runs if r["study"] == "width"]
    robust = [r for r in runs if r["study"] == "robustness"]
    assert sorted((r["label"], r["seed"]) for r in width) == [("16 units", 42), ("16 units", 43),
                                                              ("4 units", 42), ("4 units", 43)]
    best = max((r for r in width if r["status"] == "ok"), key=lambda r: r["metrics"]["val_accuracy"])
    assert [r["seed"] for r in robust] == [7, 8] and all(r["config"] == best["config"] for r in robust)
    assert {r["label"] for r in robust} == {f"{best['label']} (width)"}
    html = (out / "report.html").read_text()
    assert "Comparisons with the best configuration" in html and "paired t-test" in html
    assert re.search(r"over 2 seeds", html) and "Robustness over seeds" in html
    again = build()
    assert again.returncode == proc.returncode
    assert "robustness: unchanged" in again.stderr and "width: unchanged" in again.stderr


# --- a reader's review: wording where only some studies repeat, and nothing ranked inside noise ------

def _axis_seeded(label, x, vals, tests):
    return [{**r, "axis": {"units": x}} for r in seeded(label, vals, tests)]


def test_conclusions_do_not_extend_a_range_whose_best_is_within_noise_of_the_runner_up():
    # 64 leads 32 by a mean that the paired test does not separate: "keeps improving" would rank them
    recs = (_axis_seeded("8", 8, [0.50, 0.51, 0.52], [0.50, 0.51, 0.52])
            + _axis_seeded("32", 32, [0.90, 0.87, 0.92], [0.90, 0.87, 0.92])
            + _axis_seeded("64", 64, [0.93, 0.88, 0.93], [0.89, 0.91, 0.86]))
    assert "within noise" in findings.findings(recs)
    assert "extend the range" not in overview.conclusions(recs)


def test_one_comparison_within_noise_is_not_called_every_difference():
    text = findings.findings(OVERLAPPING)
    assert "The difference to **B** is within noise" in text and "does not rank" in text
    assert "smallest" not in text and "Every difference" not in text


def test_a_confidence_interval_of_an_accuracy_stays_within_0_and_1():
    recs = seeded("A", [0.95, 0.99], [0.95, 0.99]) + seeded("B", [0.01, 0.06], [0.01, 0.06])
    t = repeat_words.table(recs)
    bounds = [float(x) for cell in t["val acc 95 % CI"] for x in cell.strip("[]").split(", ")]
    assert min(bounds) == 0.0 and max(bounds) == 1.0  # t(1) over two seeds reaches far past both ends


def test_text_about_seeds_names_the_only_study_that_repeats():
    # the robustness study alone repeats (seeds 1, 2); the others ran once with seed 42
    recs = ([rec("width", "8 units", 0.90), rec("width", "16 units", 0.80)]
            + [rec("robustness", "8 units (width)", 0.9 + s / 100, seed=s) for s in (1, 2)])
    abstract = overview.abstract(recs)
    assert "In the *robustness* study each configuration was trained with 2 seeds (1, 2)" in abstract
    assert "Each configuration was trained" not in abstract
    text = discussion.discussion(recs)
    assert "The *robustness* study trained its configurations over several seeds (1, 2)" in text
    assert "42" not in text.split("\n\n")[-1]
    assert "Outside the robustness study, each configuration was trained with a single seed" in overview.conclusions(recs)


def test_seeds_report_abstract_counts_configurations_stuck_at_chance():
    recs = SEPARATED + seeded("C", [0.10, 0.11, 0.10], [0.1, 0.1, 0.1])
    assert "(1 configuration stuck near chance level excluded)" in overview.abstract(recs)

"""Composite ranking (R1): normalisation, weights, ties, constant and missing components, schema."""
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, config, make_record
from helpers.analysis import ranking
from helpers.config.errors import ConfigError
from helpers.config.load import load
from helpers.config.specs import Ranking
from helpers.present.ranking import section_html, table

R1 = {"test_accuracy": 0.45, "auc": 0.25, "gap": 0.15, "params": 0.10, "seconds": 0.05}


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def rec(label, test, gap, params, seconds, auc=None, *, study="s", status="ok", seed=42, fold=None):
    cfg = config(dataset="imdb")
    if fold:
        cfg["data"].update(fold=fold, folds=5)
    extra = {"roc_auc": auc} if auc is not None else {}
    return make_record(label, test, test=test, train=test + gap, gap=gap, params=params, seconds=seconds,
                       study=study, status=status, seed=seed, cfg=cfg, **extra)


def test_normalise_orients_best_to_one():
    s = pd.Series([0.8, 0.9, 1.0])
    assert ranking.normalise(s, True).tolist() == pytest.approx([0, 0.5, 1])
    assert ranking.normalise(s, False).tolist() == pytest.approx([1, 0.5, 0])


def test_a_constant_column_tells_no_one_apart():
    out = ranking.normalise(pd.Series([3.0, 3.0, 3.0]), False)
    assert out.tolist() == [1.0, 1.0, 1.0] and not out.isna().any()
    frame, used, _ = ranking.rank([rec("a", 0.9, 0.01, 100, 5), rec("b", 0.8, 0.01, 100, 5)],
                                  {"test_accuracy": 1, "gap": 1, "params": 0, "seconds": 0, "auc": 0})
    assert frame["configuration"].tolist() == ["a", "b"]
    assert frame["score"].tolist() == pytest.approx([1.0, 0.5])  # the constant gap gives both 0.5


def test_missing_values_score_zero_on_that_component():
    out = ranking.normalise(pd.Series([0.9, np.nan, 0.7]), True)
    assert out.tolist() == pytest.approx([1.0, 0.0, 0.0])


def test_score_is_the_weighted_sum_of_normalised_components():
    rs = [rec("a", 0.88, 0.02, 1000, 10.0, 0.95), rec("b", 0.86, 0.00, 500, 20.0, 0.93),
          rec("c", 0.84, 0.04, 2000, 5.0, 0.90)]
    frame, used, notes = ranking.rank(rs, R1)
    assert used == pytest.approx(R1) and notes == []
    by = frame.set_index("configuration")
    expect = {"a": 0.45 * 1 + 0.25 * 1 + 0.15 * 0.5 + 0.10 * (1000 / 1500) + 0.05 * (10 / 15),
              "b": 0.45 * 0.5 + 0.25 * (3 / 5) + 0.15 * 1 + 0.10 * 1 + 0.05 * 0,
              "c": 0.45 * 0 + 0.25 * 0 + 0.15 * 0 + 0.10 * 0 + 0.05 * 1}
    for label, score in expect.items():
        assert by.loc[label, "score"] == pytest.approx(score)
    assert frame["configuration"].tolist() == ["a", "b", "c"] and frame["rank"].tolist() == [1, 2, 3]


def test_weights_change_the_order_and_scale_does_not():
    rs = [rec("accurate", 0.90, 0.05, 5000, 30.0, 0.95), rec("cheap", 0.85, 0.00, 100, 2.0, 0.90)]
    top = lambda w: ranking.rank(rs, w)[0]["configuration"].iloc[0]  # noqa: E731
    assert top(R1) == "accurate"
    assert top({"test_accuracy": 0.1, "auc": 0, "gap": 0.3, "params": 0.3, "seconds": 0.3}) == "cheap"
    doubled = ranking.rank(rs, {k: 2 * v for k, v in R1.items()})
    assert doubled[0]["score"].tolist() == pytest.approx(ranking.rank(rs, R1)[0]["score"].tolist())
    assert "rescaled" in " ".join(doubled[2])


def test_ties_share_a_rank_and_keep_the_report_order():
    rs = [rec("x", 0.80, 0.01, 100, 1.0, 0.9), rec("y", 0.90, 0.01, 100, 1.0, 0.9),
          rec("z", 0.90, 0.01, 100, 1.0, 0.9), rec("w", 0.85, 0.01, 100, 1.0, 0.9)]
    frame, _, _ = ranking.rank(rs, R1)
    assert frame["configuration"].tolist() == ["y", "z", "w", "x"]
    assert frame["rank"].tolist() == [1, 1, 3, 4]


def test_no_auc_in_a_multiclass_report_drops_its_weight_and_says_so():
    rs = [rec("a", 0.9, 0.01, 100, 1.0), rec("b", 0.8, 0.02, 200, 2.0)]
    frame, used, notes = ranking.rank(rs, R1)
    assert used["auc"] == 0 and sum(used.values()) == pytest.approx(1)
    assert used["test_accuracy"] == pytest.approx(0.45 / 0.75)
    assert any("ROC AUC (weight 0.25) is left out" in n for n in notes)
    html = section_html(rs, Ranking())
    assert "ROC AUC (weight 0.25) is left out" in html
    assert not any(c.startswith("ROC AUC") for c in table(frame, used, 10).columns)


def test_a_run_without_auc_in_a_binary_report_scores_zero_on_it():
    rs = [rec("a", 0.9, 0.01, 100, 1.0, 0.95), rec("b", 0.9, 0.01, 100, 1.0), rec("c", 0.9, 0.01, 100, 1.0, 0.90)]
    frame, used, notes = ranking.rank(rs, R1)
    assert used["auc"] == pytest.approx(0.25)
    assert frame.set_index("configuration").loc["b", "n_auc"] == 0.0
    assert any("1 configuration without ROC AUC scores 0" in n for n in notes)


def test_candidates_skip_folds_failures_and_average_seeds():
    rs = [rec("a", 0.80, 0.01, 100, 1.0, seed=1), rec("a", 0.90, 0.03, 100, 3.0, seed=2),
          rec("bad", 0.99, 0.0, 1, 0.1, status="failed"), rec("div", 0.10, 0.0, 1, 0.1, status="diverged"),
          rec("a · fold 1", 0.99, 0.0, 1, 0.1, fold=1)]
    df = ranking.candidates(rs)
    assert df["configuration"].tolist() == ["a"]
    row = df.iloc[0]
    assert row["runs"] == 2 and row["test_accuracy"] == pytest.approx(0.85) and row["seconds"] == pytest.approx(2.0)


def test_same_label_in_two_studies_is_two_configurations():
    df = ranking.candidates([rec("base", 0.8, 0, 1, 1, study="s1"), rec("base", 0.9, 0, 1, 1, study="s2")])
    assert df["study"].tolist() == ["s1", "s2"]


def test_section_states_the_weights_and_limits_the_rows():
    rs = [rec(f"c{i}", 0.80 + i / 100, 0.01 * i, 100 * (i + 1), 1.0 + i, 0.9 + i / 100) for i in range(6)]
    html = section_html(rs, Ranking(top=3))
    assert "0.45 × test accuracy + 0.25 × ROC AUC + 0.15 × low overfitting gap" in html
    assert 'data-label="tab:summary:ranking"' in html and 'data-label="fig:summary:ranking"' in html
    rows = html[html.index("<table"):html.index("</table>")]
    assert rows.count("<tr") == 1 + 3  # header and the top 3
    assert section_html(rs, Ranking(top=0)) == ""
    assert section_html([], Ranking()) == ""


def write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text("title: t\ndataset: digits\nstudies: {depth: {}}\n" + text)
    return path


BAD = [
    ("ranking: {weights: {test_accuracy: -1}}", r"ranking\.weights\.test_accuracy = -1: must be greater than or equal to 0"),
    ("ranking: {weights: {aucc: 1}}", r"ranking\.weights\.aucc: unknown key 'aucc' \(did you mean 'auc'\?\)"),
    ("ranking: {weights: {test_accuracy: 0, auc: 0, gap: 0, params: 0, seconds: 0}}",
     r"ranking\.weights: at least one ranking weight must be positive"),
    ("ranking: {weights: {gap: abc}}", r"ranking\.weights\.gap = 'abc': must be a valid number"),
    ("ranking: {top: -1}", r"ranking\.top = -1: must be greater than or equal to 0"),
    ("ranking: {tops: 3}", r"ranking\.tops: unknown key 'tops' \(did you mean 'top'\?\)"),
]


@pytest.mark.parametrize("text, match", BAD, ids=[b[0] for b in BAD])
def test_bad_ranking_parameters(tmp_path, text, match):
    with pytest.raises(ConfigError, match=r"r\.yaml: " + match) as info:
        load(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_ranking_defaults_are_r1s_and_a_report_changes_only_what_it_names(tmp_path):
    assert load(write(tmp_path, "")).report.ranking.weights.model_dump() == R1
    w = load(write(tmp_path, "ranking: {weights: {seconds: 1.0e-1}}")).report.ranking.weights
    assert w.seconds == 0.1 and w.test_accuracy == 0.45


def test_a_configuration_several_studies_share_is_one_row_and_robustness_is_not_ranked_again():
    # the base configuration trained once (the same cached runs) but listed by three studies
    shared = [{**rec(label, 0.9, 0.01, 100, 1.0, study=study), "key": "k1"}
              for study, label in (("depth", "2 layers"), ("activation", "relu"), ("optimizer", "Adam"))]
    other = {**rec("1 layer", 0.8, 0.02, 50, 1.0, study="depth"), "key": "k2"}
    again = {**rec("2 layers (depth)", 0.91, 0.01, 100, 1.0, study="robustness", seed=1), "key": "k3", "kind": "robustness"}
    frame, _, _ = ranking.rank(shared + [other, again], R1)
    assert frame["configuration"].tolist() == ["2 layers / relu / Adam", "1 layer"]
    assert frame["study"].tolist()[0] == "depth / activation / optimizer" and frame["rank"].tolist() == [1, 2]
    html = section_html(shared + [other, again], Ranking())
    assert "names joined by “/”" in html and "re-runs are not ranked again" in html

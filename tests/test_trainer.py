"""helpers.run.trainer run by hand (no runs injected): where its study, its cache and its records
go. Training is replaced by a stand-in that records what it was asked; the notebooks themselves run
by hand in tests/test_notebooks_by_hand.py."""
from __future__ import annotations

import pytest

from conftest import make_record
from helpers.run import cache, trainer


@pytest.fixture
def asked(monkeypatch, tmp_path):
    """What the stand-in for training was asked: (study, number of runs, cache_dir) per call."""
    calls = []

    def fake(runs, **how):
        calls.append((runs[0]["study"], len(runs), how["cache_dir"]))
        return [dict(make_record(r["label"], val=0.9 - 0.01 * i, study=r["study"], kind=r["kind"], cfg=r["config"],
                                 seed=r["seed"]), cached=True) for i, r in enumerate(runs)]
    monkeypatch.setattr(trainer, "_train", fake)
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # a results file would land here
    return calls


def test_by_hand_trains_the_study_in_the_default_cache_and_writes_nothing(asked, tmp_path, capsys):
    records = trainer.train("initializer")
    assert asked == [("initializer", 3, str(tmp_path / "cache"))] and len(records) == 3
    assert list(tmp_path.iterdir()) == []
    out = capsys.readouterr().out
    assert "study 'initializer' of params/examples.yaml, smoke profile, a small built-in example" in out
    assert out.endswith("3 runs: 0 trained, 3 from the cache.\n")


def test_by_hand_names_the_cache_it_is_given(asked, tmp_path):
    trainer.train("depth", cache_dir=str(tmp_path / "mine"))
    assert asked == [("depth", 4, str(tmp_path / "mine"))]


def test_by_hand_robustness_trains_the_other_studies_first(asked):
    records = trainer.train("robustness")
    others = ["compare", "grid", "initializer", "learning_rate", "cv", "search"]
    assert [study for study, _, _ in asked] == [*others, "robustness"]
    # top 2 configurations, two seeds each
    assert asked[-1][1] == 4 and {r["seed"] for r in records} == {42, 43}

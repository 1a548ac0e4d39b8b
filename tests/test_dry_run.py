"""build_report.py --dry-run: what a build would train, reuse and re-execute, and about how long the
training takes, told from the output folder and the cache without writing to either.

Most cases forecast (helpers.build.dryrun) over a finished build faked from the plan's own run keys
(nothing trains); the command line is run for what only it shows (exit codes, nothing written), and
one end-to-end test holds the forecast against the real build that follows it."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, make_record, run_build
from helpers.build import dryrun, state
from helpers.config import load
from helpers.config.plan import run_ids
from helpers.run import cache

PARAMS = ROOT / "params" / "digits.yaml"
STUDIES = ("depth", "width")
SECONDS, EPOCHS = 2.0, 5  # each faked run's time, and the smoke profile's epochs


def plan_of(*sets: str, studies=STUDIES, params: Path = PARAMS):
    return load.load(params, profile="smoke", studies=list(studies) if studies else None, sets=list(sets))


def built(plan, out: Path, names=STUDIES, status: str = "ok") -> None:
    """A finished build of the studies ``names`` in ``out`` as state.reuse reads one: each run cached
    (SECONDS over EPOCHS epochs, its ``status``), the study's state, results and notebook."""
    work, store = out / "digits", cache.RunCache(out / ".cache")
    work.mkdir(parents=True, exist_ok=True)
    for name in names:
        study = plan.studies[name]
        saved = state.study(study)
        records = []
        for spec, run in zip(study.runs, saved["runs"].values()):
            record = {**make_record(spec["label"], study=name, cfg=spec["config"], status=status, seconds=SECONDS,
                                    epochs_run=EPOCHS),
                      **spec, "key": run["key"]}
            store.put(run["key"], record, run["inputs"])
            records.append(record)
        (work / f"{name}.study.json").write_text(json.dumps(saved))
        (work / f"{name}.results.json").write_text(json.dumps(records))
        (work / f"{name}.ipynb").write_text("{}")


def forecast(plan, out: Path, force=False) -> dict[str, dryrun.Forecast]:
    return {f.name: f for f in dryrun.forecast(plan, out / "digits", out / ".cache", force)}


def actions(f: dryrun.Forecast) -> dict[str, str]:
    return {r.id: r.action for r in f.runs}


def snapshot(out: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file's bytes and modification time, and every folder (None), under ``out``."""
    return {p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else None
            for p in sorted(out.rglob("*"))}


RUN_LINE = re.compile(r"^  (train|reuse|search)\s+(.+?)  ")


def to_train(stdout: str) -> set[tuple[str, str]]:
    """(study, run id) of every run the dry run's text says would train."""
    found, study = set(), None
    for line in stdout.splitlines():
        if not line.startswith(" ") and ": " in line:
            study = line.split(":", 1)[0]
        elif (m := RUN_LINE.match(line)) and m[1] == dryrun.TRAIN:
            found.add((study, m[2]))
    return found


def test_a_never_built_folder_trains_every_run(tmp_path):
    out = tmp_path / "out"
    plan = plan_of()
    seen = forecast(plan, out)
    assert [f.why for f in seen.values()] == ["first build", "first build"]
    for name, f in seen.items():
        assert actions(f) == dict.fromkeys(run_ids(plan.studies[name].runs), dryrun.TRAIN)
        assert all(r.guess.seconds is None and r.note.startswith("no estimate") for r in f.runs)
    assert not out.exists()


def test_a_changed_study_trains_only_its_new_runs_and_says_why(tmp_path):
    out = tmp_path / "out"
    built(plan_of(), out)
    plan = plan_of("width.units=[8,16,32,64]")
    seen = forecast(plan, out)
    assert seen["depth"].executed is False and seen["depth"].why == "unchanged"
    width = seen["width"]
    assert width.executed and width.why == state.why_changed(state.previous(out / "digits", "width"),
                                                             state.study(plan.studies["width"]))
    assert width.why.startswith("gained 16 units, 64 units")
    # 64 units at two layers is depth's "2 layers": cached, as 8 and 32 units are
    assert actions(width) == {"8 units": "reuse", "16 units": "train", "32 units": "reuse", "64 units": "reuse"}
    # no run of 16 units is cached: read between those of 8 and 32 units
    guess = next(r for r in width.runs if r.action == dryrun.TRAIN).guess
    assert guess.how == "rough: interpolated between cached runs of the sizes around it"
    assert guess.seconds == pytest.approx(SECONDS)


def test_a_study_executed_again_for_what_it_shows_says_so_in_the_summary_s_words(tmp_path):
    out, notebooks = tmp_path / "out", tmp_path / "notebooks"
    built(plan_of(), out)
    shutil.copytree(load.NOTEBOOKS, notebooks)
    (notebooks / "width.ipynb").write_text((notebooks / "width.ipynb").read_text().replace("Network width", "Width"))
    (out / "digits" / "depth.results.json").unlink()  # as a build interrupted in depth's kernel leaves it
    seen = {f.name: f for f in dryrun.forecast(plan_of(), out / "digits", out / ".cache", False, notebooks)}
    assert seen["depth"].why == "previous build did not finish"
    assert seen["width"].why == "notebook template changed"
    assert {r.action for f in seen.values() for r in f.runs} == {dryrun.REUSE}  # every run is cached


def test_a_forced_study_trains_every_run_estimated_from_runs_of_its_size(tmp_path):
    out = tmp_path / "out"
    built(plan_of(), out)
    seen = forecast(plan_of(), out, force={"width"})
    assert seen["depth"].why == "unchanged" and seen["width"].why == "forced"
    for run in seen["width"].runs:
        assert run.action == dryrun.TRAIN and run.guess.seconds == pytest.approx(SECONDS)
    # two layers of 64 units: width has no such run, depth has one
    assert {r.note for r in seen["width"].runs} == {"1 cached run of this size and batch size"}


def test_a_damaged_cache_entry_is_to_train_and_left_as_it_is(tmp_path):
    out = tmp_path / "out"
    built(plan_of(), out)
    plan = plan_of("width.units=[8,16]")
    key = state.study(plan.studies["width"])["runs"]["8 units"]["key"]
    record = out / ".cache" / "runs" / key / "record.json"
    record.write_text("{}")
    before = snapshot(out)
    assert actions(forecast(plan, out)["width"]) == {"8 units": "train", "16 units": "train"}
    assert snapshot(out) == before


def robust_plan(tmp_path: Path):
    """A plan of depth and a robustness study that re-trains depth's best configuration over two seeds."""
    params = tmp_path / "robust.yaml"
    params.write_text("dataset: digits\nprofiles: {smoke: {train_samples: null, test_samples: null, epochs: 5}}\n"
                      "base: {model: {hidden: [64, 64]}, training: {epochs: 40}}\n"
                      "studies:\n  depth: {layers: [1, 2], units: 64}\n  robustness: {top: 1, seeds: [42, 43]}\n")
    return plan_of(studies=None, params=params)


def test_robustness_waits_for_the_studies_it_ranks_unless_they_are_unchanged(tmp_path):
    plan, out = robust_plan(tmp_path), tmp_path / "out"
    robust = forecast(plan, out)["robustness"]
    assert robust.executed is None and robust.runs == []
    assert robust.why == "depends on the other studies' results (depth executed again)"
    assert "robustness: depends on the other studies' results" in dryrun.render(list(forecast(plan, out).values()), "")

    built(plan, out, ["depth"])
    robust = forecast(plan, out)["robustness"]
    assert robust.executed and robust.why == "first build"
    # the best configuration again: its own seed is depth's cached run, the other trains
    assert sorted(actions(robust).values()) == ["reuse", "train"]
    assert next(r for r in robust.runs if r.action == dryrun.TRAIN).guess.seconds == pytest.approx(SECONDS)


def test_robustness_with_nothing_to_rank_says_it_will_fail(tmp_path):
    plan, out = robust_plan(tmp_path), tmp_path / "out"
    built(plan, out, ["depth"], status="failed")
    seen = forecast(plan, out)
    assert seen["depth"].why == "unchanged"
    assert seen["robustness"].why.startswith("no candidates") and seen["robustness"].runs == []
    assert "\nrobustness: no candidates: it fails" in dryrun.render(list(seen.values()), "")


def test_the_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    built(plan_of(), out)
    before = snapshot(out)
    proc = run_build(PARAMS, "--profile", "smoke", "--studies", ",".join(STUDIES), "--out", out,
                     "--set", "width.units=[8,16]", "--dry-run", timeout=120, shared=False)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(out) == before
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"Dry run of {out / 'digits.html'}: 2 studies, 5 runs")
    assert lines[1] == "depth: unchanged, 3 runs reused"
    assert lines[2].startswith("width: executed (gained 16 units; lost 32 units, 128 units): 1 to train, 1 reused, ≈ ")
    assert lines[-1].startswith("Total: 1 to train, 4 reused, ≈ ")
    assert to_train(proc.stdout) == {("width", "16 units")}


@pytest.mark.parametrize("args, match", [
    (["--set", "width.units=[8,-1]"], r"^error: .*width.*units"),
    (["--studies", "dpeth"], r"^error: .*dpeth"),
    (["--clear-cache"], r"^error: argument --clear-cache: not allowed with argument --dry-run"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, match):
    out = tmp_path / "out"
    built(plan_of(), out)
    before = snapshot(out)
    proc = run_build(PARAMS, "--profile", "smoke", "--out", out, "--dry-run", *args, timeout=120, shared=False)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert re.search(match, proc.stderr), proc.stderr
    assert proc.stdout == "" and snapshot(out) == before


@pytest.mark.e2e
def test_the_dry_run_lists_exactly_the_runs_the_following_build_trains(tmp_path, digits_report):
    out = tmp_path / "out"
    shutil.copytree(digits_report.out, out)
    (out / ".build.lock").unlink(missing_ok=True)
    args = ("--profile", "smoke", "--studies", ",".join(STUDIES), "--set", "width.units=[8,16,32,64]", "--out", out)
    before = snapshot(out)
    dry = run_build(PARAMS, *args, "--dry-run", timeout=120, shared=False)
    assert dry.returncode == 0, dry.stderr
    assert snapshot(out) == before
    listed = to_train(dry.stdout)
    assert listed == {("width", "16 units")}, dry.stdout

    real = run_build(PARAMS, *args, env={"PYTHONUNBUFFERED": "1"})
    assert real.returncode == 0, real.stderr[-3000:]
    runs = json.loads((out / "digits.json").read_text())["runs"]
    trained = set()
    for name in STUDIES:
        mine = [r for r in runs if r["study"] == name]
        trained |= {(name, i) for r, i in zip(mine, run_ids(mine)) if not r["cached"]}
    assert trained == listed


def test_runs_a_study_chooses_as_it_runs_are_counted_not_listed(tmp_path):
    params = tmp_path / "cv.yaml"
    params.write_text("dataset: digits\nprofiles: {smoke: {train_samples: null, test_samples: null, epochs: 5}}\n"
                      "studies:\n  cv: {}\n")
    plan = plan_of(studies=None, params=params)
    cv = forecast(plan, tmp_path / "out")["cv"]
    assert cv.chosen == 1 and len(cv.runs) == len(plan.studies["cv"].runs)  # the refit of the best candidate
    assert ", 1 chosen by results as it runs (not estimated)," in dryrun.render([cv], "")


def test_a_size_not_cached_is_read_off_the_others_by_work():
    from conftest import config
    runs = [(config(hidden=(units,)), seconds) for units, seconds in ((8, 1.0), (32, 2.0), (128, 8.0))]
    work = lambda units: dryrun._cost(config(hidden=(units,)))  # noqa: E731
    between, how = dryrun._by_work(runs, work(16))
    assert 1.0 < between < 2.0 and how.startswith("interpolated")
    assert dryrun._by_work(runs, work(4)) == (1.0, "as the smallest cached run on this data")
    above, how = dryrun._by_work(runs, work(512))
    assert above == pytest.approx(8.0 * work(512) / work(128)) and how.endswith("scaled by multiply-adds")

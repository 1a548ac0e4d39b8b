"""Every study notebook run by hand as a new user runs it (Jupyter's Run All): papermill without
parameters, the kernel in notebooks/ as Jupyter starts it, on a temporary copy of the notebook. It
must finish with its defaults (the default report's study, else the built-in digits example), write
nothing into notebooks/, and take runs from the run cache instead of training them again.

The cache is a temporary folder (STUDYBOOK_CACHE), never the user's reports/.cache: a copy of the
session's default report build's (conftest.default_report), so the default report's notebooks train
nothing, as for a user who ran `make report`; where Fashion-MNIST is not installed, a small fake one
(tests/fakedata.py) and an empty cache. Runs train in the kernel: no Dask scheduler is named, as
when a user runs a notebook."""
from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

import fakedata
from conftest import ROOT
from helpers.config import kinds, load
from helpers.data import registry
from helpers.run import cache

pytestmark = pytest.mark.e2e

NOTEBOOKS = ROOT / "notebooks"
# A robustness study re-trains the others' best runs: last, it finds the example studies' runs cached.
KINDS = sorted(kinds.KINDS, key=kinds.after_others)
EXAMPLES = load.examples()


def listing() -> dict:
    # The folder's own mtime too: a file written and removed again changes it.
    return {p: p.stat().st_mtime_ns for p in [NOTEBOOKS, *NOTEBOOKS.rglob("*")]}


def outputs(nb) -> str:
    """The text a notebook printed, and its errors."""
    return "".join(o.get("text", "") + o.get("evalue", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.output_type in ("stream", "error"))


class ByHand:
    def __init__(self, folder):
        self.folder, self.cache = folder, folder / "cache"

    def run(self, kind: str, name: str = "") -> nbformat.NotebookNode:
        """Execute a temporary copy of notebooks/<kind>.ipynb with its defaults; the executed notebook."""
        import papermill as pm

        copy = self.folder / f"{kind}{name}.ipynb"
        shutil.copyfile(NOTEBOOKS / f"{kind}.ipynb", copy)
        out = self.folder / f"{kind}{name}.out.ipynb"
        pm.execute_notebook(str(copy), str(out), kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOKS))
        return nbformat.read(out, as_version=4)

    def entries(self) -> dict:
        return {p.parent.name: p.stat().st_mtime_ns for p in (self.cache / "runs").glob("*/meta.json")}


def fashion_mnist_installed() -> bool:
    try:
        registry.locate("fashion_mnist", download=False)
        return True
    except registry.DatasetMissing:
        return False


@pytest.fixture(scope="module")
def by_hand(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("by-hand")
    env = {cache.ENV_CACHE: str(folder / "cache"), "STUDYBOOK_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    if fashion_mnist_installed():
        # As a user who built the default report first: its smoke build's cache (a copy), so the
        # default report's notebooks find every run there.
        built = request.getfixturevalue("default_report")
        shutil.copytree(built.out / ".cache", folder / "cache")
    else:
        fakedata.write_fashion_mnist(folder / "data", 1000, 500)
        env["STUDYBOOK_DATA_DIR"] = str(folder / "data")
    saved = {k: os.environ.get(k) for k in [*env, "STUDYBOOK_SCHEDULER"]}
    os.environ.update(env)
    os.environ.pop("STUDYBOOK_SCHEDULER", None)
    try:
        yield ByHand(folder)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def executed(by_hand):
    """Every notebook run by hand once, two kernels at a time (the robustness study after the others):
    {kind: the executed notebook, or the exception}, and notebooks/ before and after."""
    import IPython  # noqa: F401 - imported before the threads (see helpers.build.execute.run_studies)
    import jupyter_client.manager  # noqa: F401
    import papermill  # noqa: F401

    def one(kind):
        try:
            return by_hand.run(kind)
        except Exception as e:  # noqa: BLE001 - reported by the kind's own test
            return e
    before = listing()
    first = [k for k in KINDS if not kinds.after_others(k)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(first, pool.map(one, first)))
    done.update({k: one(k) for k in KINDS if k not in done})
    return done, before, listing()


@pytest.mark.parametrize("kind", KINDS)
def test_notebook_runs_by_hand_with_its_defaults(executed, kind):
    nb = executed[0][kind]
    assert not isinstance(nb, Exception), f"notebooks/{kind}.ipynb failed run by hand:\n{nb}"
    text = outputs(nb)
    source = "params/examples.yaml" if kind in EXAMPLES else "params/report.yaml"
    assert f"Run by hand: study {kind!r} of {source}, smoke profile" in text, text
    # The example's numbers are never shown as anything but an example.
    assert ("a small built-in example: its numbers illustrate this notebook" in text) == (kind in EXAMPLES)


def test_running_by_hand_writes_nothing_into_notebooks(executed):
    _, before, after = executed
    assert after == before


def test_the_default_reports_notebooks_take_its_build_s_runs(executed):
    if not fashion_mnist_installed():
        pytest.skip("Fashion-MNIST is not installed: the default report was not built")
    for kind in KINDS:
        if kind not in EXAMPLES:
            text = outputs(executed[0][kind])
            assert re.search(r"(\d+) runs: 0 trained, \1 from the cache\.", text), (kind, text)


def test_a_second_run_by_hand_trains_nothing(executed, by_hand):
    entries = by_hand.entries()
    nb = by_hand.run("initializer", "-again")
    assert "3 runs: 0 trained, 3 from the cache." in outputs(nb)
    assert by_hand.entries() == entries

"""Static checks on notebooks/*.ipynb: generated from the kinds registry, papermill-ready, and thin
(no definitions or loops, one call per cell: the logic lives in src/helpers)."""
import ast
import importlib
import io
import re
import tokenize

import nbformat
import pytest

from conftest import ROOT
from helpers.build import notebooks as generator
from helpers.config import load
from helpers.config.kinds import KINDS

NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
PARAMETERS = {"study", "title", "question", "runs", "params_file", "profile", "results_path", "events_path", "threads",
              "cache_dir", "force"}
EXAMPLES = load.examples()
BANNED = ("def ", "for ", "while ", "class ", "lambda")


def read(path):
    return nbformat.read(path, as_version=4)


def tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def without_comments(source: str) -> str:
    # A comment may say "for"; only the code itself must stay free of loops and definitions.
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type != tokenize.COMMENT]
    return tokenize.untokenize(tokens)


def test_one_notebook_per_study_kind():
    assert {p.stem for p in PATHS} == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_committed_notebook_is_what_the_generator_writes(kind):
    # `python -m helpers.build.notebooks` (make notebooks) rewrites them after a registry change.
    assert (NOTEBOOKS / f"{kind}.ipynb").read_text(encoding="utf-8") == generator.text(
        generator.notebook(kind, KINDS[kind], EXAMPLES)), f"notebooks/{kind}.ipynb is stale: run make notebooks"


def test_generator_check_reports_a_stale_notebook(tmp_path):
    for kind in KINDS:
        (tmp_path / f"{kind}.ipynb").write_text(generator.text(generator.notebook(kind, KINDS[kind], EXAMPLES)),
                                                encoding="utf-8")
    assert generator.main(["--check"], folder=tmp_path) == 0
    (tmp_path / "depth.ipynb").write_text("{}", encoding="utf-8")
    assert generator.main(["--check"], folder=tmp_path) == 1
    assert (tmp_path / "depth.ipynb").read_text(encoding="utf-8") == "{}"  # --check writes nothing
    assert generator.main([], folder=tmp_path) == 0
    assert generator.main(["--check"], folder=tmp_path) == 0


def test_importing_the_generator_writes_nothing(tmp_path):
    import subprocess
    import sys
    before = {p: p.stat().st_mtime_ns for p in PATHS}
    subprocess.run([sys.executable, "-c", "import helpers.build.notebooks"], check=True, cwd=tmp_path)
    assert {p: p.stat().st_mtime_ns for p in PATHS} == before and not list(tmp_path.iterdir())


@pytest.fixture(params=PATHS, ids=lambda p: p.stem)
def notebook(request):
    return request.param, read(request.param)


def test_valid_nbformat(notebook):
    _, nb = notebook
    nbformat.validate(nb)


def test_kernelspec(notebook):
    _, nb = notebook
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_header_cell(notebook):
    _, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith("# ")
    assert "header" in tags(first)


def test_parameters_cell(notebook):
    path, nb = notebook
    cells = [c for c in nb.cells if "parameters" in tags(c)]
    assert len(cells) == 1
    cell = cells[0]
    assert cell.cell_type == "code"
    tree = ast.parse(cell.source)
    assigned = {}
    for node in tree.body:
        # Papermill injects its own cell after this one: plain literal assignments only.
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        assigned[node.targets[0].id] = ast.literal_eval(node.value)
    assert set(assigned) == PARAMETERS
    assert assigned["study"] == path.stem
    assert assigned["runs"] == []
    assert isinstance(assigned["title"], str) and assigned["title"]
    # Run by hand, it writes nothing beside the notebook and takes its study from a parameter file.
    assert assigned["results_path"] is None and assigned["events_path"] is None and assigned["threads"] is None
    assert assigned["params_file"] is None and assigned["cache_dir"] is None and assigned["profile"] == "smoke"


def test_every_kind_has_a_study_to_run_by_hand():
    # The default report's study of the kind, else a built-in example (helpers.config.load.by_hand).
    report = load.load(ROOT / "params" / "report.yaml", profile="smoke")
    examples = load.load(load.EXAMPLES, profile="smoke")
    assert set(KINDS) <= set(report.studies) | set(examples.studies)
    assert all(examples.studies[name].kind == name for name in EXAMPLES)


def test_header_says_what_runs_by_hand(notebook):
    path, nb = notebook
    header = nb.cells[0].source
    assert ("built-in example" in header) == (path.stem in EXAMPLES)
    assert "reports/.cache" in header and "python build_report.py params/<yours>.yaml --studies" in header


def test_code_is_thin(notebook):
    _, nb = notebook
    for cell in code_cells(nb):
        code = without_comments(cell.source)
        for word in BANNED:
            assert word not in code, f"{word!r} in cell:\n{cell.source}"
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                                         ast.For, ast.AsyncFor, ast.While, ast.comprehension)), cell.source


def test_cells_after_parameters_are_short(notebook):
    _, nb = notebook
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in tags(c))
    for cell in nb.cells[index + 1:]:
        if cell.cell_type == "code":
            assert len(cell.source.strip().splitlines()) <= 3, cell.source


def calls(nb) -> list[str]:
    """The code cells after the training cell."""
    code = [c.source for c in code_cells(nb)]
    train = next(i for i, s in enumerate(code) if "trainer.train(" in s)
    return code[train + 1:]


def test_each_call_exists(notebook):
    path, nb = notebook
    source = "\n".join(c.source for c in code_cells(nb))
    modules = dict(re.findall(r"^from (helpers[.\w]*) import (\w+)$", source, flags=re.M))
    bound = {alias: importlib.import_module(f"{package}.{alias}") for package, alias in modules.items()}
    assert "trainer" in bound and "section" in bound
    for module, name in re.findall(r"\b(\w+)\.(\w+)\(", source):
        if module in bound:
            assert callable(getattr(bound[module], name, None)), f"{bound[module].__name__} has no {name}()"


def test_trains_then_shows(notebook):
    path, nb = notebook
    code = [c.source for c in code_cells(nb)]
    train = next(i for i, s in enumerate(code) if "trainer.train(" in s)
    assert "from helpers.run import trainer" in "\n".join(code[:train])
    assert code[train].startswith("records = trainer.train(study, runs,")
    # Every call after training is one call that works on the records training produced, on a
    # module the notebook imported (section, or the kind's own view).
    view = KINDS[path.stem].view
    for s in calls(nb):
        assert re.fullmatch(r"(\w+)\.\w+\(records[,)].*", s.strip(), flags=re.S), s
        assert s.split(".")[0] in ("section", view), s
        assert len(ast.parse(s).body) == 1, s


def test_no_outputs_are_committed(notebook):
    _, nb = notebook
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None

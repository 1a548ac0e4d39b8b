"""Static checks on notebooks/*.ipynb: papermill-ready, and thin (the logic lives in src/helpers)."""
import ast
import io
import re
import tokenize
from pathlib import Path

import nbformat
import pytest

from helpers import section
from helpers.schema import StudyKinds

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
PARAMETERS = {"study", "title", "question", "runs", "results_path", "events_path", "threads", "cache_dir", "force"}
BANNED = ("def ", "for ", "while ", "class ", "lambda")


def read(path: Path):
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
    assert {p.stem for p in PATHS} == set(StudyKinds)


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
    assert assigned["results_path"] == f"{path.stem}.results.json"
    assert assigned["events_path"] is None and assigned["threads"] is None


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


def test_section_calls_exist(notebook):
    _, nb = notebook
    source = "\n".join(c.source for c in code_cells(nb))
    called = set(re.findall(r"\bsection\.(\w+)\(", source))
    assert "train" in called
    for name in called:
        assert callable(getattr(section, name, None)), f"helpers.section has no {name}()"


def test_trains_then_shows(notebook):
    _, nb = notebook
    code = [c.source for c in code_cells(nb)]
    train = next(i for i, s in enumerate(code) if "section.train(" in s)
    assert "from helpers import section" in "\n".join(code[:train])
    assert code[train].startswith("records = section.train(study, runs,")
    # Every call after training works on the records it produced.
    for s in code[train + 1:]:
        assert re.fullmatch(r"section\.\w+\(records[,)].*", s.strip(), flags=re.S), s


def test_no_outputs_are_committed(notebook):
    _, nb = notebook
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None

"""The helpers' architecture, read from their source: imports point one way only, from a higher
layer to a lower one (data < config < run < analysis < present < build), with no import circles,
counting imports made inside functions too."""
import ast
from pathlib import Path

import pytest

from conftest import ROOT

HELPERS = ROOT / "src" / "helpers"
LAYERS = ("data", "config", "run", "analysis", "present", "build")


def modules() -> dict[str, Path]:
    out = {}
    for path in HELPERS.rglob("*.py"):
        parts = ("helpers",) + path.relative_to(HELPERS).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The helpers modules ``name`` imports anywhere in its source (functions included)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_every_helper_module_sits_in_a_layer():
    stray = [m for m in GRAPH if m != "helpers" and layer(m) < 0]
    assert not stray, f"modules outside the layered packages {LAYERS}: {stray}"


def test_every_layer_says_what_it_owns_and_may_import():
    for name in LAYERS:
        doc = ast.get_docstring(ast.parse((HELPERS / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc.lower(), f"helpers/{name}/__init__.py needs a docstring on what it owns and may import"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_from_a_higher_layer(module):
    upward = [t for t in GRAPH[module] if layer(t) > layer(module)]
    assert not upward, f"{module} (layer {LAYERS[layer(module)]}) imports higher layers: {upward}"


def test_no_import_circles():
    # Tarjan's strongly connected components: any component of more than one module is a circle.
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))
    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_checks_catch_what_they_guard(tmp_path):
    # The parser must see imports inside functions, relative imports and package imports.
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from helpers.build import report\nfrom . import x\n", encoding="utf-8")
    found = imports("helpers.data.m", src, {"helpers.build.report", "helpers.build", "helpers.data.x"})
    assert found == {"helpers.build", "helpers.build.report", "helpers.data.x"}
    assert layer("helpers.build.report") > layer("helpers.data.m")


def test_longest_chain_is_short():
    """The depth of the import graph (the longest chain of imports), printed for the record."""
    memo: dict[str, int] = {}

    def depth(v, seen=()):
        if v not in memo:
            memo[v] = 1 + max((depth(w, seen + (v,)) for w in GRAPH[v] if w not in seen), default=0)
        return memo[v]
    longest = max(depth(v) for v in GRAPH)
    print(f"longest import chain: {longest} modules")
    assert longest <= 16

"""The packages' import graph: the layers import one way and no package imports itself in a circle.

Read from the source (every ``import`` and ``from ... import`` statement, those inside
functions included, since a lazy import is still a dependency), not from what Python happens
to have loaded:

* ``harness -> suites -> servers``: servers/ imports nothing from harness/ or suites/;
  suites/ nothing from harness/; none of the three imports tests/ (an installed package has
  no tests/), nor do the scripts left in benchmarks/ (they run on the shipped modules);
* no cycle among the modules of servers/, harness/ or suites/;
* inside harness/, the run view (``harness.runview``) imports no other harness module, and the
  report package (``harness.report``) only the run view and itself: the readers of a run stand
  below everything that measures; the reader of a published page (``harness.published``) only
  the report (the page's headings) and the matrix (the built-in one an older page names), so
  the advisor above it can use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("servers", "harness", "suites")
#: what each package may not import (the layers above it, and the project's own tests)
FORBIDDEN = {"servers": ("harness", "suites", "tests"), "suites": ("harness", "tests"), "harness": ("tests",),
             "benchmarks": ("tests",)}
#: inside harness/: a module (or package) -> the only harness modules it may import
HARNESS_LAYERS = {"harness.runview": (), "harness.report": ("harness.runview", "harness.report"),
                  "harness.published": ("harness.report", "harness.matrix")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every module name an import statement in ``path`` may refer to (absolute, resolved)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)  # "from pkg import module"
    return out


def import_graph(package: str) -> dict[str, set[str]]:
    """{module: the modules of ``package`` it imports}."""
    files = {_module_name(p): p for p in (ROOT / package).rglob("*.py")}
    return {m: {t for t in _imports(p, m) if t in files and t != m} for m, p in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets, each as [a, b, ..., a]."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return cycles


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package):
    cycles = find_cycles(import_graph(package))
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_one_way(package):
    bad = []
    for path in (ROOT / package).rglob("*.py"):
        module = _module_name(path)
        for target in _imports(path, module):
            if target.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {target}")
    assert bad == []


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("layer", sorted(HARNESS_LAYERS))
def test_harness_layers(layer):
    graph = import_graph("harness")
    allowed = HARNESS_LAYERS[layer]
    bad = [f"{m} imports {t}" for m, targets in graph.items() if _within(m, layer)
           for t in sorted(targets) if t != "harness" and not any(_within(t, a) for a in allowed)]
    assert bad == []


def test_the_checker_sees_a_cycle():
    """The walk itself: a two-module cycle and a lazy import are found."""
    assert find_cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []

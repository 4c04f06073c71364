"""The dependency rules of the layout, checked on the source: who may import whom, and no cycles."""

import ast
import os

import metamusic

PKG = os.path.dirname(metamusic.__file__)


def _modules():
    out = {}
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), os.path.dirname(PKG))[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = os.path.join(dirpath, f)
    return out


def _imports(path):
    """Every metamusic module a file imports (module level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.startswith("metamusic")}


MODULES = _modules()
GRAPH = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def test_evaluation_and_generation_never_import_training():
    for m, deps in GRAPH.items():
        if m.startswith("metamusic.eval") or m == "metamusic.generate":
            assert not any(d.startswith("metamusic.train") for d in deps), (m, deps)


def test_meta_core_imports_neither_models_nor_data_and_data_no_jax():
    for m, deps in GRAPH.items():
        if m.startswith("metamusic.meta"):
            assert not any(d.startswith(("metamusic.models", "metamusic.data")) for d in deps), (m, deps)
    for m, p in MODULES.items():
        if m.startswith("metamusic.data"):
            src = open(p).read()
            assert "import jax" not in src and "from jax" not in src, m


def test_no_import_cycles():
    # a package's __init__ re-exporting its own modules is not a cycle of meaning: drop parent -> child edges
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in GRAPH.items()}
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for d in graph[m]:
            if state.get(d) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d, stack + [d])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert len(state) == len(MODULES) > 40

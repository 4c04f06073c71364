"""No module compares algorithm or family names outside the registries: what the rest of the code needs to
know about an algorithm or a family is an attribute of its registry entry (meta.registry.Entry,
meta.episodic.HEADS, experiments.family.Family), so a new one is one registration."""

import ast
import os

import metamusic
from metamusic.experiments import EXPERIMENTS
from metamusic.meta.episodic import HEADS
from metamusic.meta.registry import ALGORITHMS

PACKAGE = os.path.dirname(metamusic.__file__)
# where the names are defined and may be read by name
REGISTRIES = {os.path.join("meta", "registry.py"), os.path.join("meta", "episodic.py"),
              os.path.join("experiments", "__init__.py"), os.path.join("experiments", "family.py")}


def _string_constants(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for elt in node.elts:
            yield from _string_constants(elt)


def name_comparisons(source: str, names: set) -> list:
    """(line, name) of every comparison (==, !=, in, not in) of a value with a literal registered name.
    Comparisons of a command-line mode or of an `init` setting are not about a registered name, even where
    a value coincides with one (--mode=classify, gan.init=melody, meta.init=pretrain)."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            segment = ast.get_source_segment(source, node) or ""
            if "mode" in segment or "init" in segment:
                continue
            for side in [node.left] + node.comparators:
                for s in _string_constants(side):
                    if s in names:
                        hits.append((node.lineno, s))
    return hits


def test_the_check_finds_a_comparison():
    assert name_comparisons('if name == "mamlpp":\n    pass\n', {"mamlpp"}) == [(1, "mamlpp")]
    assert name_comparisons('x = "cavia" in names or f in ("melody", "gan")\n', {"cavia", "gan"}) == [
        (1, "cavia"), (1, "gan")]
    assert name_comparisons('label = LABELS.get("mamlpp")\n', {"mamlpp"}) == []


def test_no_algorithm_or_family_name_is_compared_outside_its_registry():
    names = set(ALGORITHMS) | set(HEADS) | set(EXPERIMENTS)
    found = []
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            rel = os.path.relpath(os.path.join(folder, f), PACKAGE)
            if f.endswith(".py") and rel not in REGISTRIES:
                found += [f"{rel}:{line}: {name!r}" for line, name in
                          name_comparisons(open(os.path.join(folder, f)).read(), names)]
    assert not found, "compared by name outside a registry:\n" + "\n".join(found)

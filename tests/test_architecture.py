"""The package's shape, checked from its own source: one-way imports between modules, a pure
core, and code that speaks of the code (the sizes of modules and functions are a report,
``scripts/size_report.py``, not a rule: a concept is not split to fit a line count).

The import graph is read with ``ast`` (module-level and function-level imports alike: a lazy
import that closes a circle is still a circle), so this needs no Paddle.
"""
import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "paddlex_interpret")


def _modules():
    out = {}
    for d, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                name = rel[:-len(".__init__")] if rel.endswith(".__init__") else rel
                out[name] = path
    return out


MODULES = _modules()


def _resolve(module, node):
    """Package modules named by an import node inside ``module``."""
    is_pkg = MODULES[module].endswith("__init__.py")
    names = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_pkg else module.split(".")[:-1]
            base = base[:len(base) - node.level + 1]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [prefix] + ["%s.%s" % (prefix, a.name) for a in node.names]
    found = set()
    for n in names:
        while n and n not in MODULES:
            n = n.rpartition(".")[0]
        if n and n != module:
            found.add(n)
    return found


def _graph():
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(open(path, encoding="utf8").read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _resolve(name, node)
        # a package's __init__ is imported with any of its modules: not a dependency edge back
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_circle():
    assert _cycles(_graph()) == []


#: what the whole tree's import graph leaves out: environments, caches, builds
SKIPPED_DIRS = ("build", "dist", "output", "demo_output")


def _tree_modules():
    """Every module of the checkout by the name it is imported as: the package, the test support
    (pxi_testing), bench/ and examples/ by their dotted path from the root, tests/ by their file
    name (pytest imports them so: ``conftest`` puts tests/ on ``sys.path``)."""
    out = {}
    for d, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(x for x in dirs if not x.startswith((".", "__"))
                         and x not in SKIPPED_DIRS)
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(d, f)
            rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            if rel[0] == "tests":
                name = rel[-1]
            else:
                name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
            assert name not in out, "two modules named %s: %s, %s" % (name, out[name], path)
            out[name] = path
    return out


def _tree_graph(modules):
    """``{module: modules it imports}`` over ``modules`` (module-level and lazy imports)."""
    graph = {}
    for name, path in modules.items():
        is_pkg = path.endswith("__init__.py")
        deps = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf8").read())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                prefix = node.module or ""
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                names = [prefix] + ["%s.%s" % (prefix, a.name) for a in node.names]
            else:
                continue
            for n in names:
                while n and n not in modules:
                    n = n.rpartition(".")[0]
                if n and n != name and not name.startswith(n + "."):
                    deps.add(n)
        graph[name] = deps
    return graph


def test_the_whole_tree_has_no_import_circle():
    """The package, the benches, the tests and the examples: no module imports one that imports
    it back (a shared part goes into a module of its own)."""
    modules = _tree_modules()
    assert {"bench.bench_quality", "helpers", "paddlex_interpret.core.lime",
            "pxi_testing.recipes"} <= set(modules)
    assert _cycles(_tree_graph(modules)) == []


#: the clone's parts that are not installed (setup.cfg finds ``paddlex_interpret`` only)
NOT_SHIPPED = ("pxi_testing", "bench", "examples", "tests")


def _roots(names):
    return {n.split(".")[0] for n in names}


def test_the_wheel_holds_the_package_only():
    """What setup.cfg's ``[options.packages.find]`` finds from the root: ``paddlex_interpret``
    and its sub-packages, none of the test support, the benches, the examples or the tests."""
    import configparser

    from setuptools import find_packages

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    find = cfg["options.packages.find"]
    split = lambda key: [x.strip() for x in find.get(key, "").split(",") if x.strip()]  # noqa
    found = find_packages(ROOT, include=split("include") or ("*",), exclude=split("exclude"))
    assert "paddlex_interpret.core" in found and "paddlex_interpret" in found
    assert _roots(found) == {"paddlex_interpret"}
    # and what is excluded is also never found by another pattern
    assert not _roots(find_packages(ROOT, include=split("include") or ("*",))) & set(NOT_SHIPPED)


def test_what_is_not_installed_stays_outside_the_package():
    """The package never imports the test support, the benches, the examples or the tests (an
    installed package would fail there); the test support imports the package only (not the
    tests or the benches), so that the tests, the benches and the examples share it."""
    graph = _tree_graph(_tree_modules())
    tests = {n for n, path in _tree_modules().items()
             if os.path.relpath(path, ROOT).split(os.sep)[0] == "tests"}
    bad = {}
    for name, deps in graph.items():
        root = name.split(".")[0]
        if root == "paddlex_interpret":
            wrong = {d for d in deps if d.split(".")[0] in NOT_SHIPPED or d in tests}
        elif root == "pxi_testing":
            wrong = {d for d in deps if d.split(".")[0] not in ("pxi_testing", "paddlex_interpret")}
        else:
            continue
        if wrong:
            bad[name] = sorted(wrong)
    assert bad == {}


def _sys_path_edits(source):
    """Lines of ``source`` that change ``sys.path`` (a method call on it, an assignment to it or
    into it)."""
    def is_sys_path(node):
        return (isinstance(node, ast.Attribute) and node.attr == "path"
                and isinstance(node.value, ast.Name) and node.value.id == "sys")

    lines = set()
    for node in ast.walk(ast.parse(source)):
        targets = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            targets = [node.func.value]
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            targets = [t.value if isinstance(t, ast.Subscript) else t for t in targets]
        if any(is_sys_path(t) for t in targets):
            lines.add(node.lineno)
    return sorted(lines)


def test_benches_examples_and_test_support_leave_sys_path_alone():
    """They run from the repository root (``python -m bench.bench_x``) or in the project's
    environments, which read the clone's root: none puts a directory on ``sys.path`` to find
    another part of the clone."""
    found = {}
    for name, path in _tree_modules().items():
        if name.split(".")[0] in ("bench", "examples", "pxi_testing"):
            lines = _sys_path_edits(open(path, encoding="utf8").read())
            if lines:
                found[name] = lines
    assert found == {}
    probe = ("import sys\nsys.path.insert(0, 'x')\nsys.path[:0] = ['y']\nsys.path += ['z']\n"
             "sys.argv.append('a')\nn = len(sys.path)\n")
    assert _sys_path_edits(probe) == [2, 3, 4]  # the finder finds what it looks for


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("room,forbidden", [
    ("paddlex_interpret.core", ("paddle", "paddlex", "visualdl", "paddlex_interpret.runtime",
                                "paddlex_interpret.adapters", "paddlex_interpret.api",
                                "paddlex_interpret.training", "paddlex_interpret.rendering")),
    ("paddlex_interpret.runtime", ("paddlex_interpret.adapters", "paddlex_interpret.api",
                                   "paddlex_interpret.training", "paddlex_interpret.core")),
    ("paddlex_interpret.adapters", ("paddlex_interpret.api", "paddlex_interpret.training")),
    ("paddlex_interpret.api", ("paddlex_interpret.training",)),
])
def test_rooms_import_one_way(room, forbidden):
    """The core knows nothing of Paddle, PaddleX or VisualDL; runtime knows nothing of models'
    meaning; adapters and the API know nothing of training."""
    bad = []
    for name, path in MODULES.items():
        if not (name == room or name.startswith(room + ".")):
            continue
        for node in ast.walk(ast.parse(open(path, encoding="utf8").read())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                targets = [node.module or ""]
            else:
                targets = sorted(_resolve(name, node)) if isinstance(node, ast.ImportFrom) else []
            for t in targets:
                if any(t == f or t.startswith(f + ".") for f in forbidden):
                    bad.append("%s imports %s" % (name, t))
    assert bad == []


NARRATION = re.compile(r"\b(issue|session)\s+#?\d+\b|\b20\d\d-\d\d-\d\d\b", re.IGNORECASE)


def test_code_speaks_of_the_code():
    """No issue numbers, session names or dates in the package (history lives in git)."""
    found = []
    for name, path in MODULES.items():
        for i, line in enumerate(open(path, encoding="utf8"), 1):
            if NARRATION.search(line):
                found.append("%s:%d: %s" % (name, i, line.strip()))
    assert found == []


# ---------------------------------------------------------------------------- name sets
#: Every set of names a user chooses from, at its one definition (module, attribute): anywhere
#: else it is imported. Read from the owners, so a set that grows is checked as it is.
NAME_SETS = [
    ("paddlex_interpret.core.fill", "FILLS"),
    ("paddlex_interpret.core.perturbation", "COMPOSE_METHODS"),
    ("paddlex_interpret.core.fill", "FILL_CHOICES"),
    ("paddlex_interpret.core.fill", "BLANKS"),
    ("paddlex_interpret.core.segmentation", "SEGMENTERS"),
    ("paddlex_interpret.core.sampling", "SAMPLER_NAMES"),
    ("paddlex_interpret.core.saliency", "METHODS"),
    ("paddlex_interpret.core.atlas", "ATLAS_METHODS"),
    ("paddlex_interpret.core.normlime", "MODES"),
    ("paddlex_interpret.core.normlime.aggregate", "VARIANTS"),
    ("paddlex_interpret.core.normlime.concepts", "DESCRIPTORS"),
]
#: Sources scanned for copies: the package, the test support and the benches (tests spell names
#: out on purpose).
SCANNED = ("paddlex_interpret", "pxi_testing", "bench")
#: Copies known and not yet replaced by an import, ``(module, owner attribute)``: the list may
#: only shrink (an entry whose copy is gone fails, so that it is taken out).
KNOWN_COPIES: set = set()


def _known_name_sets():
    import importlib

    return {"%s.%s" % (m, a): (m, frozenset(getattr(importlib.import_module(m), a)))
            for m, a in NAME_SETS}


def _string_sets(tree):
    """``(line, names)`` of every tuple, list or set literal made of at least two strings (and
    nothing else); a dict keyed by the names is a mapping of them, not a copy."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            continue
        items = node.elts
        if len(items) >= 2 and all(isinstance(e, ast.Constant) and isinstance(e.value, str)
                                   for e in items):
            yield node.lineno, frozenset(e.value for e in items)


def _name_set_copies(sources, known):
    """``{(module, owner attribute): [lines]}`` where ``sources`` (module -> source text) spells
    out a known set of names, or three or more of its names that are no other known set,
    outside its owner module."""
    whole = {names for _, names in known.values()}
    found = {}
    for module, text in sources.items():
        for line, names in _string_sets(ast.parse(text)):
            for attr, (owner, owned) in known.items():
                if module == owner:
                    continue
                if names == owned or (len(names) >= 3 and names < owned and names not in whole):
                    found.setdefault((module, attr), []).append(line)
    return found


def _scanned_sources():
    out = {}
    for top in SCANNED:
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(d, f)
                    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = \
                        open(path, encoding="utf8").read()
    return out


def test_every_set_of_names_is_defined_once():
    """Fills, segmenters, samplers, gradient methods, atlas methods, NormLIME modes: defined in
    the core module that owns the concept and imported elsewhere (a copy drifts: a name added
    to the owner is missing from the copy)."""
    copies = _name_set_copies(_scanned_sources(), _known_name_sets())
    assert {k: v for k, v in copies.items() if k not in KNOWN_COPIES} == {}
    assert sorted(KNOWN_COPIES - set(copies)) == []


def test_the_copy_finder_finds_copies():
    known = {"m.SEGMENTERS": ("m", frozenset({"quickshift", "coarse", "slic", "felzenszwalb"})),
             "m.BLANKS": ("m", frozenset({"black", "grey"}))}
    sources = {"m": "S = ('quickshift', 'coarse', 'slic', 'felzenszwalb')\nB = ['black', 'grey']",
               "a": "if x in ['slic', 'quickshift', 'felzenszwalb', 'coarse']: pass",
               "b": "if name not in ('quickshift', 'slic', 'felzenszwalb'): pass",
               "c": "d = {'black': 0, 'grey': 1}\nf(('slic', 'coarse'))\ng(S + ('x', 'y'))",
               "e": "x = 1\nfor fill in ['grey', 'black']: pass"}
    assert _name_set_copies(sources, known) == {("a", "m.SEGMENTERS"): [1],
                                                ("b", "m.SEGMENTERS"): [1],
                                                ("e", "m.BLANKS"): [2]}

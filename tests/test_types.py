"""The typed part of the package (the pure core, the public API, io and errors; setup.cfg
``[mypy]`` names it): mypy finds no error there, and every public function, method and class
signature there is annotated (mypy alone lets an unannotated function through unchecked)."""
import ast
import configparser
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _typed_files():
    """The ``.py`` files of setup.cfg's ``[mypy] files``."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    out = []
    for entry in cfg["mypy"]["files"].replace(",", " ").split():
        path = os.path.join(ROOT, entry)
        if os.path.isdir(path):
            out += sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
                          if f.endswith(".py"))
        else:
            out.append(path)
    return out


def _unannotated(source):
    """``[qualified name]`` of the public functions and methods of ``source`` (outside private
    classes and functions) with a parameter or the return (``__init__`` aside) unannotated."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                dunder = child.name.startswith("__") and child.name.endswith("__")
                if child.name.startswith("_") and not dunder:
                    continue
                a = child.args
                params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg)
                                                                   if p is not None]
                if (any(p.annotation is None for p in params if p.arg not in ("self", "cls"))
                        or (child.returns is None and child.name != "__init__")):
                    found.append(prefix + child.name)
            elif isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
                visit(child, prefix + child.name + ".")

    visit(ast.parse(source), "")
    return found


def test_the_typed_modules_are_all_there():
    files = _typed_files()
    assert all(os.path.isfile(f) for f in files), files
    names = {os.path.relpath(f, ROOT).replace(os.sep, "/") for f in files}
    assert {"paddlex_interpret/core/lime.py", "paddlex_interpret/api/lime.py",
            "paddlex_interpret/api/paddlex13.py", "paddlex_interpret/hooks.py",
            "paddlex_interpret/io.py", "paddlex_interpret/errors.py"} <= names


def test_every_public_signature_is_annotated():
    missing = {}
    for path in _typed_files():
        with open(path, encoding="utf8") as f:
            found = _unannotated(f.read())
        if found:
            missing[os.path.relpath(path, ROOT)] = found
    assert missing == {}


def test_the_annotation_check_finds_what_is_missing():
    source = '''
def ok(a: int, *rest: str, **kw: float) -> None: ...
def bare(a): ...
def no_return(a: int): ...
def _private(a): ...
class Thing:
    def __init__(self, a: int): ...
    def method(self, b) -> int: ...
    @classmethod
    def make(cls) -> "Thing": ...
    def __repr__(self): ...
class _Hidden:
    def method(self, b): ...
'''
    assert _unannotated(source) == ["bare", "no_return", "Thing.method", "Thing.__repr__"]


def test_mypy_finds_no_error(tmp_path):
    """``python -m mypy`` with setup.cfg's configuration (its cache in a temporary directory,
    so the checkout is left as it was)."""
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, "mypy (exit %d):\n%s%s" % (run.returncode, run.stdout,
                                                            run.stderr)

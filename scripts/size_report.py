"""The package's largest modules and functions, for a reader deciding what to split (a report, not
a rule: a module is drawn by concept, and a concept is not split to fit a line count).

    python3 scripts/size_report.py            # modules over 400 lines, functions over 60
    python3 scripts/size_report.py --all      # every module and function, largest first
"""
import argparse
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "paddlex_interpret")
MODULE_LINES = 400
FUNCTION_LINES = 60  # body lines, docstring excluded


def modules():
    """``{dotted name: path}`` of the package's modules."""
    out = {}
    for d, _, files in os.walk(PACKAGE):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(d, f)
                out[os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")] = path
    return out


def function_lengths(name, path):
    """``(module.function, body lines)`` of every function of a module."""
    with open(path, encoding="utf8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                start = body[1].lineno if len(body) > 1 else first.end_lineno
            else:
                start = first.lineno
            yield "%s.%s" % (name, node.name), node.end_lineno - start + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true", help="list everything, not only the largest")
    args = ap.parse_args()
    mods = modules()
    lines = {}
    for name, path in mods.items():
        with open(path, encoding="utf8") as f:
            lines[name] = sum(1 for _ in f)
    funcs = [fl for name, path in mods.items() for fl in function_lengths(name, path)]
    print("modules (lines):")
    for name, n in sorted(lines.items(), key=lambda kv: -kv[1]):
        if args.all or n > MODULE_LINES:
            print("  %5d  %s" % (n, name))
    print("functions (body lines):")
    for name, n in sorted(funcs, key=lambda kv: -kv[1]):
        if args.all or n > FUNCTION_LINES:
            print("  %5d  %s" % (n, name))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""The import graph between the project's folders, and the layer rule it must obey.

    python tools/import_graph.py            # print the folder-level graph (the block in ARCHITECTURE.md)
    python tools/import_graph.py --check    # exit 1 and list every import that points up a layer
    python tools/import_graph.py --dynamic  # list every import by name or path (the table in ARCHITECTURE.md)

Layers, bottom to top: util → envs → learning → (run.py, tools, grader). A module may import from its own
layer or any layer below, never above. tests/ may import anything.

The graph and the layer rule see only ``import`` statements. What they cannot see, a module reached by a string or
a file path (importlib.import_module, __import__, spec_from_file_location, runpy, or a folder put on sys.path),
``--dynamic`` lists, one row per (file, function, kind), from the code of every .py file but tests/fixtures/ (code
inside string literals, e.g. a test's child program, is not read).
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = {"util": 0, "envs": 1, "learning": 2, "run.py": 3, "tools": 3, "grader": 3}
PACKAGES = ("util", "envs", "learning", "tools", "grader")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level project package) for every absolute import of a project package in ``path``."""
    tree = parse(path)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree) if tree else ():
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        out += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in PACKAGES]
    return out


def parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return None


def source_files() -> list[Path]:
    files = [ROOT / "run.py"]
    for pkg in PACKAGES:
        files += sorted(p for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)
    return [f for f in files if f.is_file()]


def folder_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.name


def graph() -> dict[tuple[str, str], list[str]]:
    """(from folder, to folder) → the files behind that edge."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in source_files():
        src = folder_of(f)
        for _, dst in imports(f):
            if dst != src:
                rel = str(f.relative_to(ROOT))
                if rel not in edges[(src, dst)]:
                    edges[(src, dst)].append(rel)
    return dict(sorted(edges.items()))


def violations() -> list[str]:
    """Every import that points to a higher layer, as 'file:line imports package'."""
    out = []
    for f in source_files():
        src = folder_of(f)
        for line, dst in imports(f):
            if LAYER[dst] > LAYER[src]:
                out.append(f"{f.relative_to(ROOT)}:{line} imports {dst} (layer {LAYER[dst]} > {src}'s {LAYER[src]})")
    return out


def graph_lines() -> list[str]:
    """The folder-level graph as printed (and shown in ARCHITECTURE.md): one line per folder pair, with file counts."""
    return [f"{src:9s} → {dst:9s} ({len(files)} file{'s' if len(files) > 1 else ''})"
            for (src, dst), files in graph().items()]


# the last name of a call's function → the kind of dynamic import it is
DYNAMIC_CALLS = {"import_module": "import_module", "__import__": "__import__",
                 "spec_from_file_location": "spec_from_file_location", "run_path": "runpy", "run_module": "runpy"}
SYS_PATH_CALLS = ("insert", "append", "extend")


def dynamic_kind(call: ast.Call) -> str | None:
    """The kind of dynamic import ``call`` is (a DYNAMIC_CALLS value, or 'sys.path'), None for any other call."""
    f = call.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    if name in DYNAMIC_CALLS:
        return DYNAMIC_CALLS[name]
    if name in SYS_PATH_CALLS and isinstance(f, ast.Attribute) and ast.unparse(f.value) == "sys.path":
        return "sys.path"
    return None


def dynamic_imports_in(tree: ast.AST, scope: str = "<module>") -> list[tuple[str, str, int]]:
    """(enclosing function or class, kind, line) of every dynamic import call under ``tree``."""
    out = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner = node.name if scope == "<module>" else f"{scope}.{node.name}"
            out += dynamic_imports_in(node, inner)
            continue
        if isinstance(node, ast.Call) and (kind := dynamic_kind(node)):
            out.append((scope, kind, node.lineno))
        out += dynamic_imports_in(node, scope)
    return out


def all_py_files() -> list[Path]:
    """Every .py file of the repository but tests/fixtures/ (frozen files of a release); links, hidden folders
    (.git, .venv, ...) and __pycache__ are not entered."""
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__"
                             and (here / d).relative_to(ROOT).parts != ("tests", "fixtures"))
        out += [here / f for f in filenames if f.endswith(".py") and (here / f).is_file()]
    return sorted(out)


def dynamic_imports() -> list[tuple[str, str, str]]:
    """(file, enclosing function, kind) of every dynamic import in the repository, sorted, each once."""
    found = set()
    for f in all_py_files():
        tree = parse(f) or ast.Module(body=[], type_ignores=[])
        found |= {(str(f.relative_to(ROOT)), scope, kind) for scope, kind, _ in dynamic_imports_in(tree)}
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 if an import points up a layer")
    p.add_argument("--dynamic", action="store_true", help="list every import by name or path: file, function, kind")
    args = p.parse_args(argv)
    if args.dynamic:
        for row in dynamic_imports():
            print("\t".join(row))
        return 0
    if args.check:
        bad = violations()
        for b in bad:
            print(b)
        print(f"{len(bad)} import(s) point up a layer" if bad else "no import points up a layer")
        return 1 if bad else 0
    print("\n".join(graph_lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

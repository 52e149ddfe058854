#!/usr/bin/env python
"""The import graph between the project's folders, and the layer rule it must obey.

    python tools/import_graph.py            # print the folder-level graph (the one in ARCHITECTURE.md)
    python tools/import_graph.py --check    # exit 1 and list every import that points up a layer

Layers, bottom to top: util → envs → learning → (run.py, tools, grader). A module may import from its own
layer or any layer below, never above. tests/ may import anything.
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = {"util": 0, "envs": 1, "learning": 2, "run.py": 3, "tools": 3, "grader": 3}
PACKAGES = ("util", "envs", "learning", "tools", "grader")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level project package) for every absolute import of a project package in ``path``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return []
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        out += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in PACKAGES]
    return out


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 if an import points up a layer")
    args = p.parse_args(argv)
    if args.check:
        bad = violations()
        for b in bad:
            print(b)
        print(f"{len(bad)} import(s) point up a layer" if bad else "no import points up a layer")
        return 1 if bad else 0
    for (src, dst), files in graph().items():
        print(f"{src:9s} → {dst:9s} ({len(files)} file{'s' if len(files) > 1 else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build submissions from the student stubs: the reference solution, or variants with chosen methods.

The reference solution is the stubs with each TODO method (from the manifest, learning.agents.todo_manifest)
replaced by the function of the same name in grader/solution/ (one source of truth), so the full-marks
submission cannot drift from either.
"""
from __future__ import annotations

import ast
import inspect
import shutil
import textwrap
from pathlib import Path

from grader.solution import SOLUTION_METHODS
from learning.agents import todo_manifest
from util.config import REPO_ROOT


def replace_method(source: str, cls_name: str, method: str, new_def: str) -> str:
    """Return ``source`` with ``cls_name.method`` replaced by ``new_def`` (a top-level ``def`` text)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    lines = source.splitlines(keepends=True)
                    start = (item.decorator_list[0].lineno if item.decorator_list else item.lineno) - 1
                    body = textwrap.indent(textwrap.dedent(new_def).strip("\n") + "\n", "    ")
                    return "".join(lines[:start]) + body + "".join(lines[item.end_lineno:])
    raise KeyError(f"{cls_name}.{method} not found")


def solution_source(method: str) -> str:
    fn = next(v[method] for v in SOLUTION_METHODS.values() if method in v)
    return inspect.getsource(fn)


def write_submission(dest: Path, methods: dict[str, str] | None = None, reference: bool = True,
                     include_configs: bool = True) -> Path:
    """Write a submission folder: learning/*_agent.py (+ a1/*.yaml).

    ``reference`` fills every TODO with the reference solution; ``methods`` ({method: def-source})
    then overrides individual methods (e.g. a deliberately broken one).
    """
    dest = Path(dest)
    (dest / "learning").mkdir(parents=True, exist_ok=True)
    for spec in todo_manifest().values():
        src = (REPO_ROOT / "learning" / spec.file_name).read_text()
        for m in spec.methods:
            if methods and m in methods:
                src = replace_method(src, spec.class_name, m, methods[m])
            elif reference:
                src = replace_method(src, spec.class_name, m, solution_source(m))
        (dest / "learning" / spec.file_name).write_text(src)
    if include_configs:
        (dest / "a1").mkdir(exist_ok=True)
        for f in (REPO_ROOT / "a1").glob("*.yaml"):
            shutil.copyfile(f, dest / "a1" / f.name)
    return dest

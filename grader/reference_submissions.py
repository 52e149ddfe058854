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


def solution_source(method: str, agent: str | None = None) -> str:
    """The reference ``def`` text of ``agent``'s TODO ``method`` (any agent that has it when not given)."""
    fn = SOLUTION_METHODS[agent][method] if agent else next(v[method] for v in SOLUTION_METHODS.values()
                                                            if method in v)
    return inspect.getsource(fn)


def write_submission(dest: Path, methods: dict[str, str] | None = None, reference: bool = True,
                     include_configs: bool = True, scope: str = "full", assignment: str = "a1") -> Path:
    """Write a submission folder of ``assignment``: its learning/*_agent.py (+ <assignment>/*.yaml) as a student of
    ``scope`` hands it in.

    ``reference`` fills every TODO of the scope with the reference solution; ``methods`` ({method: def-source, or
    "agent.method": def-source for one file's}) then overrides individual methods (e.g. a deliberately broken one).
    The TODO methods outside the scope hold the reference, as in that scope's release.
    """
    dest = Path(dest)
    (dest / "learning").mkdir(parents=True, exist_ok=True)
    for agent, spec in todo_manifest("full", assignment).items():
        src = (REPO_ROOT / "learning" / spec.file_name).read_text()
        scoped = todo_manifest(scope, assignment)[agent].methods
        for m in spec.methods:
            own = (methods or {}).get(f"{agent}.{m}", (methods or {}).get(m))
            if own is not None:
                src = replace_method(src, spec.class_name, m, own)
            elif reference or m not in scoped:
                src = replace_method(src, spec.class_name, m, solution_source(m, agent))
        (dest / "learning" / spec.file_name).write_text(src)
    if include_configs:
        (dest / assignment).mkdir(exist_ok=True)
        for f in (REPO_ROOT / assignment).glob("*.yaml"):
            shutil.copyfile(f, dest / assignment / f.name)
    return dest


def earlier_release_submission(dest: Path, release: str) -> Path:
    """A submission written against an earlier release: its student files (tests/fixtures/<release>/learning) with the
    reference in their TODO methods, the core scope's (the only ones those releases had)."""
    dest = Path(dest)
    (dest / "learning").mkdir(parents=True, exist_ok=True)
    for agent, spec in todo_manifest("core").items():
        src = (REPO_ROOT / "tests" / "fixtures" / release / "learning" / spec.file_name).read_text()
        for m in spec.methods:
            src = replace_method(src, spec.class_name, m, solution_source(m, agent))
        (dest / "learning" / spec.file_name).write_text(src)
    return dest

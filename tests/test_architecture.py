"""Layers point down only, and ARCHITECTURE.md shows the import graph and every import by name or path as they are."""
import re

import pytest

from conftest import ROOT, run_cli
from tools.import_graph import dynamic_imports, graph_lines, violations


def test_no_import_points_up_a_layer():
    assert violations() == []


def architecture_block(name: str) -> str:
    """The text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ARCHITECTURE.md."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    found = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert found, f"ARCHITECTURE.md has no {name} block"
    return found.group(1)


def test_architecture_md_shows_the_current_import_graph():
    """The generated block, file counts included, is exactly what tools/import_graph.py prints."""
    block = architecture_block("import-graph")
    assert block == "```\n" + "\n".join(graph_lines()) + "\n```\n", \
        "regenerate the block with: python tools/import_graph.py"


def test_architecture_md_lists_every_import_by_name_or_path():
    """Each importlib.import_module / __import__ / spec_from_file_location / runpy / sys.path call in the code is a
    row (file, function, kind) of ARCHITECTURE.md's table, and each row is one in the code: none hides, none is
    stale."""
    rows = [[c.strip().strip("`") for c in ln.strip().strip("|").split("|")]
            for ln in architecture_block("dynamic-imports").splitlines() if ln.startswith("| `")]
    listed = sorted(tuple(r[:3]) for r in rows)
    assert len(set(listed)) == len(listed), "a row is listed twice"
    found = dynamic_imports()
    missing, stale = sorted(set(found) - set(listed)), sorted(set(listed) - set(found))
    assert not missing and not stale, (f"not in ARCHITECTURE.md: {missing}; listed but not in the code: {stale} "
                                       "(python tools/import_graph.py --dynamic lists them)")


def test_the_dynamic_import_finder_sees_every_kind(tmp_path):
    import ast

    from tools.import_graph import dynamic_imports_in

    code = ("import importlib, importlib.util, runpy, sys\n"
            "sys.path.insert(0, 'x')\n"
            "def f():\n    return importlib.import_module('a'), __import__('b')\n"
            "class C:\n    def m(self):\n        importlib.util.spec_from_file_location('c', 'c.py')\n"
            "        runpy.run_path('d.py'); runpy.run_module('e'); sys.path.append('y')\n"
            "def g():\n    return [p for p in sys.path], 'importlib.import_module(x)'\n")
    found = sorted((scope, kind) for scope, kind, _ in dynamic_imports_in(ast.parse(code)))
    assert found == [("<module>", "sys.path"), ("C.m", "runpy"), ("C.m", "runpy"), ("C.m", "spec_from_file_location"),
                     ("C.m", "sys.path"), ("f", "__import__"), ("f", "import_module")]


def test_learning_never_imports_the_grader_and_run_py_has_no_static_grader_import():
    for f in list((ROOT / "learning").rglob("*.py")) + [ROOT / "run.py"]:
        assert not re.search(r"^\s*(from|import)\s+grader\b", f.read_text(), re.M), f


def test_loading_the_expert_imports_no_trainer():
    """The student agents and the expert they query (as ImitationAgent.expert loads it) leave the trainer modules
    unimported; the trainer names still import on first use."""
    code = (
        "import sys\n"
        "import learning.bc_agent, learning.dagger_agent, learning.dart_agent\n"
        "from envs.builder import make_env, env_dims, resolve_env_config\n"
        "from learning.expert import load_expert\n"
        "cfg = resolve_env_config('cheetah')\n"
        "env = make_env(cfg)\n"
        "load_expert(cfg, *env_dims(env)).deterministic_actor()\n"
        "trainers = ('td3', 'sac', 'ars', 'off_policy', 'base')\n"
        "print(sorted(m for m in sys.modules if m.rsplit('.', 1)[-1] in trainers and m.startswith('learning.')))\n"
        "from learning.expert import TD3Trainer, save_compact\n"
        "print(TD3Trainer.__module__, save_compact.__module__)\n"
    )
    proc = run_cli("-c", code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "learning.expert.td3 learning.expert.base"]


def test_the_expert_package_exports_every_name_it_lists():
    import learning.expert as expert

    assert all(getattr(expert, name) is not None for name in expert.__all__)
    assert set(expert.__all__) <= set(dir(expert))
    with pytest.raises(AttributeError):
        expert.no_such_name  # noqa: B018

"""Layers point down only, and ARCHITECTURE.md shows the import graph as it is."""
import re

import pytest

from conftest import ROOT, run_cli
from tools.import_graph import graph, violations


def test_no_import_points_up_a_layer():
    assert violations() == []


def test_architecture_md_shows_the_current_import_graph():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    block = re.search(r"<!-- import-graph:start -->\n```\n(.*?)```\n<!-- import-graph:end -->", text, re.S).group(1)
    shown = [ln.split("(")[0].split() for ln in block.strip().splitlines()]
    actual = [[src, "→", dst] for src, dst in graph()]
    assert shown == actual, "regenerate the block with: python tools/import_graph.py"


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
        "trainers = ('td3', 'sac', 'ars', 'off_policy')\n"
        "print(sorted(m for m in sys.modules if m.rsplit('.', 1)[-1] in trainers and m.startswith('learning.')))\n"
        "from learning.expert import TD3Trainer, save_compact\n"
        "print(TD3Trainer.__module__, save_compact.__module__)\n"
    )
    proc = run_cli("-c", code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "learning.expert.td3 learning.expert.off_policy"]


def test_the_expert_package_exports_every_name_it_lists():
    import learning.expert as expert

    assert all(getattr(expert, name) is not None for name in expert.__all__)
    assert set(expert.__all__) <= set(dir(expert))
    with pytest.raises(AttributeError):
        expert.no_such_name  # noqa: B018

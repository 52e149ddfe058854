"""Layers point down only, and ARCHITECTURE.md shows the import graph as it is."""
import re

from conftest import ROOT
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

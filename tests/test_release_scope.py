"""The student release of each scope (tools/make_release.py --scope core|full): the TODO methods outside the scope
hold the reference, the rest are the untouched stubs; DEFAULT_SCOPE, the handout's rubric and the solution scanner
follow the scope; the built release's self-check scores the stubs 0 and its grader gives the reference full marks.
Instructor-only (needs grader/solution): tools/make_release.py EXCLUDEs it."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap

import pytest

from grader.reference_submissions import solution_source, write_submission
from grader.rubric import handout_for_scope, handout_table, strip_scope_sections
from learning.agents import todo_manifest
from tools.make_release import (DEFAULT_SCOPE_LINE, STUDENT_FILES, apply_scope, find_solution_code, manifests,
                                release_source)

from conftest import ROOT, run_cli


def _method(source: str, cls: str, name: str) -> ast.FunctionDef:
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == cls)
    return next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == name)


def _body(fn: ast.FunctionDef) -> str:
    """The statements after the docstring, as an AST dump (layout-free)."""
    body = fn.body[1:] if isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) else fn.body
    return ast.dump(ast.Module(body=body, type_ignores=[]))


def test_core_release_files_hold_the_reference_outside_the_scope_and_the_stubs_inside():
    core = todo_manifest("core")
    for agent, spec in todo_manifest("full").items():
        stub = (ROOT / "learning" / spec.file_name).read_text(encoding="utf-8")
        out = release_source(stub, spec, "core")
        assert release_source(stub, spec, "full") == stub
        compile(out, spec.file_name, "exec")
        outside = [m for m in spec.methods if m not in core[agent].methods]
        assert outside, agent       # every file has a full-scope method
        for m in spec.methods:
            new, old = _method(out, spec.class_name, m), _method(stub, spec.class_name, m)
            assert ast.get_docstring(new) == ast.get_docstring(old), (agent, m)
            if m in outside:
                ref = ast.parse(textwrap.dedent(solution_source(m, agent))).body[0]
                assert _body(new) == _body(ref), (agent, m)
            else:
                assert ast.unparse(new) == ast.unparse(old), (agent, m)
        banners = [ln for ln in out.splitlines() if "END TODO" in ln]
        assert len(banners) == len(core[agent].methods), agent
        listed = out.split("Methods to edit", 1)[1].split("\n\n", 1)[0]
        assert all(m in listed for m in core[agent].methods) and not any(f"    {m} " in listed for m in outside)


def _tree(tmp_path, scope: str):
    """learning/, a1/ and a2/ of this repository, turned into ``scope``'s release."""
    out = tmp_path / scope
    for d in ("learning", "a1", "a2"):
        shutil.copytree(ROOT / d, out / d, ignore=shutil.ignore_patterns("__pycache__"))
    apply_scope(out, scope)
    return out


@pytest.mark.parametrize("scope", ["core", "full"])
def test_the_scope_sets_default_scope_and_the_handout(scope, tmp_path):
    out = _tree(tmp_path, scope)
    assert DEFAULT_SCOPE_LINE.findall((out / "learning" / "agents.py").read_text()) == [scope]
    handout = (out / "a1" / "README.md").read_text()
    assert handout == handout_for_scope((ROOT / "a1" / "README.md").read_text(), scope)
    from grader.grade import UNIT_CHECKS, load_thresholds

    assert handout_table(UNIT_CHECKS, load_thresholds(), scope) in handout
    assert "<!-- scope:" not in handout and "<!-- /scope:" not in handout
    if scope == "full":
        assert strip_scope_sections((ROOT / "a1" / "README.md").read_text(), "full") == handout


def test_a_source_without_the_default_scope_line_is_an_error(tmp_path):
    out = tmp_path / "r"
    shutil.copytree(ROOT / "learning", out / "learning", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "a1", out / "a1")
    shutil.copytree(ROOT / "a2", out / "a2")
    agents = out / "learning" / "agents.py"
    agents.write_text(agents.read_text().replace('DEFAULT_SCOPE = "full"', 'DEFAULT_SCOPE = SCOPES[-1]'))
    with pytest.raises(ValueError, match="DEFAULT_SCOPE"):
        apply_scope(out, "core")


def test_the_solution_scanner_looks_at_the_scopes_methods_only(tmp_path):
    core_stubs = write_submission(tmp_path / "core_stubs", reference=False, scope="core")  # as the core release ships
    assert find_solution_code(core_stubs, "core") == []
    assert any("bc_agent.py" in p for p in find_solution_code(core_stubs, "full"))   # fit's reference is there
    core_ref = write_submission(tmp_path / "core_ref", scope="core")
    found = find_solution_code(core_ref, "core")
    assert {"bc_agent.py", "dagger_agent.py", "dart_agent.py"} <= {p.split("/")[-1].split(":")[0] for p in found}
    assert find_solution_code(write_submission(tmp_path / "full_stubs", reference=False), "full") == []


def test_a_bad_scope_is_one_error_line(tmp_path):
    p = run_cli("tools/make_release.py", str(tmp_path / "rel"), "--scope", "mid")
    assert p.returncode == 2 and "error:" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "rel").exists()


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["core", "full"])
def test_the_release_of_each_scope_builds_and_verifies(scope, tmp_path):
    """make_release's own verification passes (scanners, the self-check scores the stubs 0, the release's grader gives
    the reference every unit point); the release's stub tests pass in its scope."""
    rel = tmp_path / "release"
    p = run_cli("tools/make_release.py", str(rel), "--scope", scope, "--skip_tests", timeout=1200)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"({scope} scope)" in p.stdout
    assert DEFAULT_SCOPE_LINE.findall((rel / "learning" / "agents.py").read_text()) == [scope]
    for rel_path in STUDENT_FILES:
        text = (rel / rel_path).read_text()
        n = len(manifests(scope)[next(a for a, s in manifests("full").items()
                                      if rel_path.endswith(s.file_name))].methods)
        assert text.count("END TODO") == n, rel_path
    assert not (rel / "grader" / "solution").exists()
    assert not (rel / "tests" / "test_no_solution_leak.py").exists()
    assert not (rel / "tests" / "test_release_scope.py").exists()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_stubs.py"],
                       cwd=rel, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:]


def test_without_the_solutions_the_child_keeps_the_frameworks_methods(monkeypatch, tmp_path):
    """A student release has no grader/solution: its grader names no reference module (the child keeps the release's
    own methods, the reference outside its scope) instead of copying files that are not there."""
    import grader.context as context

    assert context.reference_modules("dagger", ("fit", "collect_round")) == {"fit": "bc_fit",
                                                                             "collect_round": "dagger_collect_round"}
    monkeypatch.setattr(context, "SOLUTIONS", tmp_path / "absent")
    assert not context.have_solutions() and context.reference_modules("dagger", ("fit", "collect_round")) == {}

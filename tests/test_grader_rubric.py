"""One declaration per unit check (grader.context.CheckSpec): the rubric tables generated from the declarations, the
hidden variants keyed to them, the child jobs they name, and one reader for every child answer (grader.answers)."""
from __future__ import annotations

import ast
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import rubric
from grader.context import Variant
from grader.grade import (CHECK_MODULES, UNIT_CHECKS, checks_of, DeclarationError, collect_checks, hidden_variants, load_thresholds,
                          validate_hidden)

A1_CHECKS = checks_of("a1")

ROOT = Path(__file__).resolve().parent.parent
GRADER = ROOT / "grader"


def test_readme_tables_are_generated_from_the_declarations():
    assert rubric.problems() == []


def test_rubric_check_cli_agrees():
    r = subprocess.run([sys.executable, "-m", "grader.rubric", "--check"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def _copies(tmp_path: Path) -> tuple[Path, Path]:
    g, h = tmp_path / "grader_README.md", tmp_path / "a1_README.md"
    shutil.copy(rubric.GRADER_README, g)
    shutil.copy(rubric.HANDOUT_README, h)
    return g, h


def test_a_changed_declaration_makes_the_readmes_stale_until_regenerated(tmp_path):
    g, h = _copies(tmp_path)
    spec = UNIT_CHECKS["dagger_aggregate"]
    part = dataclasses.replace(spec.parts[0], rubric="a new text")
    checks = dict(A1_CHECKS, dagger_aggregate=dataclasses.replace(spec, parts=(part,),
                                                                   handout=("DAgger aggregation", "other words")))
    thresholds = load_thresholds()
    found = rubric.problems(checks, thresholds, g, h)
    assert len(found) == 2 and all("differs from the declarations" in f for f in found)
    for path, text in rubric.generated(checks, thresholds, g, h).items():
        path.write_text(text, encoding="utf-8")
    assert rubric.problems(checks, thresholds, g, h) == []
    assert "| DAgger aggregation | 10 | a new text |" in g.read_text(encoding="utf-8")
    assert "| DAgger aggregation | 10 | other words |" in h.read_text(encoding="utf-8")


def test_changed_points_are_caught_in_the_tables_and_the_headings(tmp_path):
    g, h = _copies(tmp_path)
    spec = UNIT_CHECKS["dart_step"]
    checks = dict(A1_CHECKS, dart_step=dataclasses.replace(
        spec, parts=(spec.parts[0], dataclasses.replace(spec.parts[1], points=7.0))))
    thresholds = load_thresholds()
    found = rubric.problems(checks, thresholds, g, h)
    assert sum("differs from the declarations" in f for f in found) == 2, found
    assert sum("the heading says" in f for f in found) == 2, found
    for path, text in rubric.generated(checks, thresholds, g, h).items():     # tables and headings rewritten
        path.write_text(text, encoding="utf-8")
    assert rubric.problems(checks, thresholds, g, h) == []
    assert "## Checks (117 autograded points" in g.read_text(encoding="utf-8")


def test_missing_markers_are_one_clear_error(tmp_path):
    g, h = _copies(tmp_path)
    g.write_text(g.read_text(encoding="utf-8").replace(rubric.CHECKS_END, ""), encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        rubric.generated(None, None, g, h)


def test_every_declaration_is_complete_and_names_a_child_job():
    from grader.child import JOBS as jobs

    assert list(UNIT_CHECKS) == ["bc_loss", "bc_fit", "dagger_select", "dagger_aggregate", "dagger_collect",
                                 "dagger_round", "dart_step", "dart_collect", "dart_round",
                                 "cem_sample", "cem_refit", "cem_iteration", "pg_rtg", "pg_gae", "pg_actor_loss",
                                 "pg_critic_loss", "pg_estimate", "pg_update"]
    for key, spec in UNIT_CHECKS.items():
        assert spec.key == key and spec.job in jobs, key
        assert spec.public and not any(v.hidden for v in spec.public), key
        names = [p.name for p in spec.parts]
        assert len(names) == len(set(names)) and all(p.points > 0 and p.rubric for p in spec.parts), key
        assert (spec.handout is None) != (not spec.handout_parts), key
        home = next(m.__name__ for m in CHECK_MODULES if spec in m.CHECKS)    # the agent's module or package
        shared = {"grader.round_check"}          # DAgger's and noise injection's round checks: one scoring
        assert spec.run.__module__ in shared or spec.run.__module__ == home \
            or spec.run.__module__.startswith(home + "."), key


def test_a_key_declared_twice_is_an_error():
    mod = type(sys)("dup")
    mod.CHECKS = (UNIT_CHECKS["bc_loss"],)
    with pytest.raises(ValueError, match="declared twice"):
        collect_checks((*CHECK_MODULES, mod))


def test_hidden_variants_are_keyed_to_declarations():
    hidden = hidden_variants()
    assert set(hidden) == set(UNIT_CHECKS)       # every check has a hidden variant
    with pytest.raises(DeclarationError, match="no unit check is declared with key 'bc_los'"):
        validate_hidden({"bc_los": [Variant(1, "ant", 3, hidden=True)]}, UNIT_CHECKS)
    with pytest.raises(ValueError, match="not Variant"):
        validate_hidden({"bc_loss": [Variant(1, "ant", 3)]}, UNIT_CHECKS)


def _functions(path: Path) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.FunctionDef)]


def _calls(fn: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(fn) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def test_every_child_answer_is_read_by_the_one_reader():
    """The parent reads a child's result.npz only through grader.answers.read_answer (with a schema), and never
    opens a child's output with np.load; the child's own package (grader/child/) is the only code that np.loads
    inputs. Every module of the grader is read, the check packages' too."""
    readers = []
    for path in sorted(GRADER.rglob("*.py")):
        rel = path.relative_to(GRADER).as_posix()
        if rel.startswith("child/"):
            continue
        for fn in _functions(path):
            reads = [c for c in _calls(fn, "read_output")
                     if any(isinstance(a, ast.Constant) and a.value == "result.npz" for a in c.args)]
            if reads:
                readers.append(f"{rel}:{fn.name}")
                assert _calls(fn, "read_answer"), f"{rel}:{fn.name} reads result.npz without read_answer"
                assert not _calls(fn, "load"), f"{rel}:{fn.name} np.loads a child's answer"
            for c in _calls(fn, "read_answer"):
                assert len(c.args) == 2, f"{rel}:{fn.name}: read_answer without a schema"
    assert sorted(readers) == ["context.py:read_arrays", "grade.py:_inspect"]


def test_a_hidden_variant_of_no_declared_check_stops_the_grading_with_one_error_line(tmp_path, monkeypatch, capsys):
    import json

    import grader.hidden.variants
    from grader.__main__ import main

    monkeypatch.setattr(grader.hidden.variants, "HIDDEN_VARIANTS",
                        {"dagger_selct": [Variant(seed=1, env="ant", batch=3, hidden=True)]})
    out = tmp_path / "results.json"
    assert main([str(tmp_path), "--no-performance", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: grader/hidden/variants.py: no unit check is declared with key 'dagger_selct'" in err
    assert "Traceback" not in err
    assert json.loads(out.read_text())["tests"][0]["name"] == "Grader"


def _with_a_full_only_check() -> dict:
    """The declarations plus a check of a full-scope method (BC's fit), 7 points, so that the scopes differ."""
    spec = UNIT_CHECKS["bc_loss"]
    fit = dataclasses.replace(spec, key="bc_fit_test", methods=("fit",), handout=("BC training loop", "a test row"),
                              handout_parts=(), parts=(dataclasses.replace(spec.parts[0], name="BC fit", points=7.0),))
    return dict(A1_CHECKS, bc_fit_test=fit)


def test_the_handout_rubric_is_one_scopes():
    checks, thresholds = _with_a_full_only_check(), load_thresholds()
    assert "bc_fit_test" in rubric.scoped_checks(checks, "full") and "bc_fit_test" not in rubric.scoped_checks(
        checks, "core")
    core_keys = {"bc_loss", "dagger_select", "dagger_aggregate", "dart_step"}     # the four core methods' checks
    assert set(rubric.scoped_checks(A1_CHECKS, "core")) == core_keys
    assert rubric.scoped_checks(UNIT_CHECKS, "full") == A1_CHECKS      # another assignment's checks are not a1's
    full, core = rubric.handout_table(checks, thresholds, "full"), rubric.handout_table(checks, thresholds, "core")
    assert "| BC training loop | 7 | a test row |" in full and "BC training loop" not in core
    full_only = sum(p.points for k, c in checks.items() if k not in core_keys for p in c.parts)
    assert rubric.handout_points(checks, thresholds, "full") == rubric.handout_points(checks, thresholds, "core") \
        + full_only
    assert rubric.handout_points(A1_CHECKS, thresholds, "core") == 100    # the earlier releases' handout total
    text = rubric.HANDOUT_README.read_text(encoding="utf-8")
    for scope in ("core", "full"):
        out = rubric.handout_for_scope(text, scope, checks, thresholds)
        assert rubric.handout_table(checks, thresholds, scope) in out
        assert f"## Rubric ({rubric.handout_points(checks, thresholds, scope):g} points)" in out


def test_scope_sections_are_kept_in_their_scope_and_removed_with_their_content_in_the_other():
    text = ("intro\n<!-- scope:full -->\n| fit | the loop |\n| collect_round | the loop |\n<!-- /scope:full -->\n"
            "end: TODO 1a<!-- scope:full -->, 1b<!-- /scope:full --> and\n"
            "<!-- scope:core -->core only<!-- /scope:core -->\nlast\n")
    assert rubric.strip_scope_sections(text, "core") == "intro\nend: TODO 1a and\ncore only\nlast\n"
    assert rubric.strip_scope_sections(text, "full") == ("intro\n| fit | the loop |\n| collect_round | the loop |\n"
                                                         "end: TODO 1a, 1b and\nlast\n")
    for bad, what in (("<!-- scope:full -->x\n", "without its closing"), ("x<!-- /scope:core -->", "without its"),
                      ("<!-- scope:mid -->x<!-- /scope:mid -->", "unknown scope 'mid'"),
                      ("<!-- scope:full --><!-- scope:core -->x<!-- /scope:core --><!-- /scope:full -->", "nested")):
        with pytest.raises(ValueError, match=what):
            rubric.strip_scope_sections(bad, "core")

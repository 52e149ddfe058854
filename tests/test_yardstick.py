"""The yardstick (issue 22 item 6): independently written correct styles must get every unit point, realistic
single mistakes must lose exactly the points of the checks they name.

Entries (written blind, from the stubs' docstrings and a1/README.md): tests/fixtures/yardstick/entries.py; the
builder, grading and table: tests/fixtures/yardstick/build.py. Correct submission k carries the k-th correct
style of every TODO method; mistake submission k the k-th mistake of every TODO method (at most one per method,
naming disjoint checks).
Each is graded with unit checks only (public and hidden variants, jobs=2), one grading at a time; a correct
submission runs only the checks of the methods it varies (correct-01 grades the canonical fillers everywhere).

A failing submission prints its table (entry, expected, got, verdict, feedback). The whole table, for a closing
note (grades every submission, ~25 s each):

    python -m tests.yardstick_table                      # markdown table + summary on stdout
    python -m tests.yardstick_table --plans mistake-03   # some submissions only
    YARDSTICK_TABLE=table.md python -m pytest -m slow tests/test_yardstick.py   # the rows, appended as it runs
"""
import ast
import os
import sys
import textwrap

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from yardstick.build import CLASSES, build_file, grade_plan, judge, plans, table, varied_rows  # noqa: E402
from yardstick.entries import ENTRIES  # noqa: E402

PLANS = plans()


def test_yardstick_entries_are_well_formed_and_build(tmp_path):
    ids = [e.id for e in ENTRIES]
    assert len(ids) == len(set(ids))
    assert sum(e.kind == "correct" for e in ENTRIES) >= 22
    assert sum(e.kind == "mistake" for e in ENTRIES) >= 22
    readme = (ROOT / "grader" / "README.md").read_text()
    for e in ENTRIES:
        assert e.kind in ("correct", "mistake", "info"), e.id
        assert (e.kind == "correct") == (not e.loses), e.id
        assert all(f"| {prefix}" in readme for prefix in e.loses), (e.id, e.loses)
    for plan in PLANS:
        if plan.kind == "mistake":    # one mistake per method, disjoint checks: each costs only its own points
            methods = [e.method for e in plan.varied]
            named = [p for e in plan.varied for p in e.loses]
            assert len(methods) == len(set(methods)) and len(named) == len(set(named)), plan.id
        for e in plan.varied:         # every entry is in the file exactly as written
            cls = next(n for n in ast.parse(build_file(e.file, [e])).body
                       if isinstance(n, ast.ClassDef) and n.name == CLASSES[e.file])
            got = {n.name: ast.dump(n) for n in cls.body if isinstance(n, ast.FunctionDef)}
            for src in e.sources:
                fn = ast.parse(textwrap.dedent(src)).body[0]
                assert got[fn.name] == ast.dump(fn), (e.id, fn.name)
        written = plan.write(tmp_path / plan.id)
        for f in CLASSES:
            compile((written / "learning" / f).read_text(), f, "exec")


@pytest.mark.slow
@pytest.mark.parametrize("plan", PLANS, ids=[p.id for p in PLANS])
def test_yardstick_correct_styles_full_marks_mistakes_lose_exactly_their_checks(plan, tmp_path):
    rows = judge(plan, grade_plan(plan, tmp_path / plan.id, jobs=2))
    if os.environ.get("YARDSTICK_TABLE"):       # collect the table while the suite runs (for a closing note)
        with open(os.environ["YARDSTICK_TABLE"], "a", encoding="utf-8") as f:
            f.write(table(varied_rows(plan, rows)).split("\n", 2)[2] + "\n")
    if any(r.problems for r in rows):
        pytest.fail(f"{plan.id}: a correct style lost points or a mistake did not lose exactly its checks' points\n"
                    + table(rows), pytrace=False)


@pytest.mark.slow
def test_a_full_scope_submission_written_blind_gets_every_unit_point():
    """tests/fixtures/yardstick/blind_full: all nine TODO methods written by a tester from the handout and the stubs'
    hints alone (no grader, no reference, no tests read), in their own style (the last minibatch kept, the learner
    sampled only when the coin says so, preallocated buffers, no reset after the round's last step)."""
    from grader.grade import grade

    report = grade(ROOT / "tests" / "fixtures" / "yardstick" / "blind_full", include_hidden=True,
                   include_performance=False, scope="full")
    assert report.score == report.max_score == 85, [(t.name, t.output) for t in report.tests if not t.passed]


@pytest.mark.slow
def test_an_assignment_2_submission_written_blind_gets_every_unit_point():
    """tests/fixtures/yardstick/blind_a2: CEM's and PG's nine TODO methods written by a tester from a2/README.md and
    the stubs' hints alone (session 14's hints), in their own style (float64 copies of the inputs, explicit branches
    for termination and truncation, the std written out around the elites' mean)."""
    from grader.grade import grade

    report = grade(ROOT / "tests" / "fixtures" / "yardstick" / "blind_a2", include_hidden=True,
                   include_performance=False, scope="full", assignment="a2")
    assert report.score == report.max_score == 70, [(t.name, t.output) for t in report.tests if not t.passed]

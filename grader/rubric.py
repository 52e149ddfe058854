"""The rubric tables, generated from the unit checks' declarations (grader.context.CheckSpec, collected by
grader.grade) and the performance checks of grader/thresholds.yaml, so that a README never disagrees with what the
grader scores.

    python -m grader.rubric           # rewrite the tables between the markers
    python -m grader.rubric --check   # exit 1 and name each README whose table differs from the declarations

Two tables: grader/README.md's "## Checks" (one row per scored part; ``Part.rubric``) between ``<!-- checks:start -->``
and ``<!-- checks:end -->``, and a1/README.md's "## Rubric" (the handout's rows: ``CheckSpec.handout`` or
``handout_parts``, the performance points per agent, the hand-graded parts) between ``<!-- rubric:start -->`` and
``<!-- rubric:end -->``. The headings' point totals are generated too.

The handout's rubric is one scope's (core or full, learning.agents.SCOPES; default DEFAULT_SCOPE): a unit check is in
it when the student writes every method it tests in that scope (``CheckSpec.in_scope``). :func:`handout_for_scope`
turns the handout into one scope's (tools/make_release.py --scope): its rubric and heading total, and its scope-only
sections (``<!-- scope:full -->`` ... ``<!-- /scope:full -->``) kept without their markers in that scope and removed
with their content in the other.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from grader.context import CheckSpec
from learning.agents import ASSIGNMENTS, DEFAULT_ASSIGNMENT, DEFAULT_SCOPE, SCOPES, check_scope, todo_manifest
from util.config import REPO_ROOT
from util.fsio import atomic_write

GRADER_README = REPO_ROOT / "grader" / "README.md"
HANDOUT_README = REPO_ROOT / "a1" / "README.md"
HANDOUTS = {assignment: REPO_ROOT / assignment / "README.md" for assignment in ASSIGNMENTS}
CHECKS_START, CHECKS_END = "<!-- checks:start -->", "<!-- checks:end -->"
RUBRIC_START, RUBRIC_END = "<!-- rubric:start -->", "<!-- rubric:end -->"
# grader/README.md holds one checks table per assignment, each between its own markers under its own heading
CHECKS_MARKERS = {"a1": (CHECKS_START, CHECKS_END), "a2": ("<!-- checks-a2:start -->", "<!-- checks-a2:end -->")}
GRADER_HEADINGS = {"a1": r"## Checks \((\d+(?:\.\d+)?) autograded points",
                   "a2": r"## Checks of assignment 2 \((\d+(?:\.\d+)?) autograded points"}

STRUCTURE_ROW = ("Structure", "0", "files present, ≤ 64 KB each, importable, TODO methods defined (explains the zeros "
                                   "elsewhere)")
# the performance checks: agent → its name in grader/README.md's row and its row in the handout (name, text)
PERFORMANCE_NAMES = {"bc": "BC", "dagger": "DAgger", "dart": "noise-injection", "pg": "PG", "cem": "CEM"}
PERFORMANCE_TEXT_A2 = ("the grader trains the submission (the student's TODO methods, reference code for the others) with "
                       "its own config and seed; the supervisor steps the environment (the child has no simulator) "
                       "within the check's environment-step budget, through a hidden change of coordinates; the "
                       "grader evaluates the training's snapshots with its own code (mean action, hidden-seed episodes) "
                       "and the best counts; linear ramp from `low` to `full`")
PERFORMANCE_TEXT = ("the grader trains the submission (the student's TODO methods, reference code for the TODOs its "
                    "class inherits) with its own config and seed; BC from the demos alone, DAgger and noise injection "
                    "asking the expert oracle within the sample budget; then evaluates with its own code (mean action, "
                    "20 hidden-seed episodes); linear ramp from `low` to `full`")
HANDOUT_PERFORMANCE = {
    "bc": ("BC performance",
           "the grader trains your BC (its own hidden seeds, fixed budget) and evaluates it with its own code"),
    "dagger": ("DAgger performance", "as above for DAgger, on at least two tasks"),
    "dart": ("Noise-injection performance", "as above"),
    "pg": ("PG performance", "the grader trains your PG (its own hidden seeds, its environment-step budget) and "
                             "evaluates it with its own code"),
    "cem": ("CEM performance", "as above for CEM"),
}
HAND_GRADED = (("Report: experiments 1–3", 15.0, "plots and tables as asked, with seeds and sample counts"),
               ("Theory questions", 10.0, "2 points each"))
HAND_GRADED_BY_ASSIGNMENT = {
    "a1": HAND_GRADED,
    "a2": (("Report: experiments 1–5", 20.0, "plots and tables as asked, with seeds and environment steps"),
           ("Theory questions", 12.0, "2 points each")),
}


def _pts(x: float) -> str:
    return f"{x:g}"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def performance_points(thresholds: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """Agent → (points of its performance checks, number of checks), in the order of thresholds.yaml."""
    out: dict[str, tuple[float, int]] = {}
    for spec in thresholds["performance"]:
        pts, n = out.get(spec["agent"], (0.0, 0))
        out[spec["agent"]] = (pts + float(spec["points"]), n + 1)
    unknown = [a for a in out if a not in PERFORMANCE_NAMES or a not in HANDOUT_PERFORMANCE]
    if unknown:
        raise ValueError(f"performance checks of agent {unknown[0]!r} have no rubric row (grader/rubric.py)")
    return out


def scoped_checks(checks: dict[str, CheckSpec], scope: str | None = None,
                  assignment: str = DEFAULT_ASSIGNMENT) -> dict[str, CheckSpec]:
    """The unit checks of ``assignment`` graded in ``scope`` (default DEFAULT_SCOPE): those whose tested methods are
    all TODOs there."""
    manifest = todo_manifest(check_scope(scope or DEFAULT_SCOPE), assignment)
    return {k: c for k, c in checks.items() if c.agent in manifest and c.in_scope(manifest)}


def autograded_points(checks: dict[str, CheckSpec], thresholds: dict[str, Any]) -> float:
    return (sum(p.points for c in checks.values() for p in c.parts)
            + sum(pts for pts, _ in performance_points(thresholds).values()))


def checks_table(checks: dict[str, CheckSpec], thresholds: dict[str, Any]) -> str:
    """grader/README.md's checks table: structure, one row per unit check part, one row for the performance checks."""
    rows = [_row("check", "points", "what is verified"), "|---|---|---|", _row(*STRUCTURE_ROW)]
    rows += [_row(p.name, _pts(p.points), p.rubric) for c in checks.values() for p in c.parts]
    perf = performance_points(thresholds)
    if perf:
        names = [PERFORMANCE_NAMES[a] + (f" ({n} tasks)" if n > 1 else "") for a, (_, n) in perf.items()]
        a2 = all(a in ("pg", "cem") for a in perf)
        rows.append(_row(" / ".join(names) + " performance", " / ".join(_pts(p) for p, _ in perf.values()),
                         PERFORMANCE_TEXT_A2 if a2 else PERFORMANCE_TEXT))
    return "\n".join(rows)


def handout_table(checks: dict[str, CheckSpec], thresholds: dict[str, Any], scope: str | None = None,
                  assignment: str = DEFAULT_ASSIGNMENT) -> str:
    """The handout's rubric (``<assignment>/README.md``) in ``scope`` (default DEFAULT_SCOPE): each unit check's
    handout row(s), each agent's performance, the hand-graded parts."""
    rows = [_row("part", "points", "how it is checked"), "|---|---|---|"]
    for c in scoped_checks(checks, scope, assignment).values():
        if c.handout is not None:
            rows.append(_row(c.handout[0], _pts(sum(p.points for p in c.parts)), c.handout[1]))
            continue
        points = c.points()
        if [n for n, _ in c.handout_parts] != list(points):
            raise ValueError(f"unit check {c.key!r}: handout_parts must name its parts in order ({', '.join(points)})")
        rows += [_row(name, _pts(points[name]), text) for name, text in c.handout_parts]
    for agent, (pts, _) in performance_points(thresholds).items():
        name, text = HANDOUT_PERFORMANCE[agent]
        rows.append(_row(name, _pts(pts), text))
    rows += [_row(name, _pts(pts), text) for name, pts, text in HAND_GRADED_BY_ASSIGNMENT[assignment]]
    return "\n".join(rows)


def handout_points(checks: dict[str, CheckSpec], thresholds: dict[str, Any], scope: str | None = None,
                   assignment: str = DEFAULT_ASSIGNMENT) -> float:
    """The handout's total in ``scope``: the scope's autograded points and the hand-graded parts."""
    return (autograded_points(scoped_checks(checks, scope, assignment), thresholds)
            + sum(p for _, p, _ in HAND_GRADED_BY_ASSIGNMENT[assignment]))


SCOPE_OPEN = re.compile(r"<!-- scope:(\w+) -->")
SCOPE_SPAN = re.compile(r"<!-- scope:(\w+) -->(.*?)<!-- /scope:\1 -->", re.DOTALL)
HANDOUT_HEADING = r"## Rubric \((\d+(?:\.\d+)?) points\)"


def strip_scope_sections(text: str, scope: str, where: Path | str = "the handout") -> str:
    """``text`` for ``scope``: each ``<!-- scope:S -->`` ... ``<!-- /scope:S -->`` section is kept without its markers
    when S is ``scope`` and removed with its content otherwise; a line that held only markers and removed content
    goes away whole (so a section may be whole lines, e.g. a table's rows, or a span inside a line).

    Raises ValueError for an unknown scope name, nested sections or a marker without its partner."""
    check_scope(scope)

    def replace(m: re.Match) -> str:
        name, body = m.group(1), m.group(2)
        if name not in SCOPES:
            raise ValueError(f"{where}: unknown scope {name!r} in <!-- scope:{name} --> (scopes: {', '.join(SCOPES)})")
        if "<!-- scope:" in body or "<!-- /scope:" in body:
            raise ValueError(f"{where}: scope sections must not be nested or interleaved (<!-- scope:{name} -->)")
        return body if name == scope else ""

    out_lines = []
    spans = SCOPE_SPAN.sub(lambda m: "\0" + replace(m) + "\0", text)     # NUL marks where a marker stood
    if SCOPE_OPEN.search(spans) or "<!-- /scope:" in spans:
        raise ValueError(f"{where}: a <!-- scope:... --> marker without its closing <!-- /scope:... --> "
                         "(or the other way round)")
    for line in spans.split("\n"):
        if "\0" in line and not line.replace("\0", "").strip():
            continue      # only markers (and content that was removed) on this line: drop it
        out_lines.append(line.replace("\0", ""))
    return "\n".join(out_lines)


def handout_for_scope(text: str, scope: str, checks: dict[str, CheckSpec] | None = None,
                      thresholds: dict[str, Any] | None = None, where: Path | str = HANDOUT_README,
                      assignment: str = DEFAULT_ASSIGNMENT) -> str:
    """The handout ``text`` of ``assignment`` as a student of ``scope`` gets it: scope sections resolved, the scope's
    rubric between the markers, the heading's total the scope's. Raises ValueError (markers or heading missing)."""
    from grader.grade import checks_of, thresholds_of

    checks = checks_of(assignment) if checks is None else checks
    thresholds = thresholds_of(assignment) if thresholds is None else thresholds
    text = strip_scope_sections(text, scope, where)
    text = _splice(text, RUBRIC_START, RUBRIC_END, handout_table(checks, thresholds, scope, assignment), Path(where))
    if re.search(HANDOUT_HEADING, text) is None:
        raise ValueError(f"{where}: no heading matching {HANDOUT_HEADING!r}")
    total = handout_points(checks, thresholds, scope, assignment)
    return re.sub(HANDOUT_HEADING, f"## Rubric ({_pts(total)} points)", text, count=1)


def _splice(text: str, start: str, end: str, block: str, where: Path) -> str:
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{where} must hold the markers {start} and {end} once each, in that order")
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n" + block + "\n" + text[b:]


def _heading_total(text: str, pattern: str, want: float, where: Path) -> list[str]:
    m = re.search(pattern, text)
    if m is None:
        return [f"{where}: no heading matching {pattern!r}"]
    if abs(float(m.group(1)) - want) > 1e-9:
        return [f"{where}: the heading says {m.group(1)} points, the declarations give {_pts(want)}"]
    return []


def generated(checks: dict[str, CheckSpec] | None = None, thresholds: dict[str, Any] | None = None,
              grader_readme: Path = GRADER_README, handout_readme: Path | None = None,
              assignment: str = DEFAULT_ASSIGNMENT, grader_text: str | None = None) -> dict[Path, str]:
    """README path → its text with ``assignment``'s tables generated from the declarations (the files are not
    written; ``grader_text``: grader/README.md's text to start from, when another assignment's table was just
    generated into it)."""
    from grader.grade import checks_of, thresholds_of

    checks = checks_of(assignment) if checks is None else checks
    thresholds = thresholds_of(assignment) if thresholds is None else thresholds
    handout_readme = HANDOUTS[assignment] if handout_readme is None else handout_readme
    start, end = CHECKS_MARKERS[assignment]
    text = grader_readme.read_text(encoding="utf-8") if grader_text is None else grader_text
    grader_text = _splice(text, start, end, checks_table(checks, thresholds), grader_readme)
    handout_text = _splice(handout_readme.read_text(encoding="utf-8"), RUBRIC_START, RUBRIC_END,
                           handout_table(checks, thresholds, None, assignment), handout_readme)
    return {   # the headings' totals are generated too (a heading that is not there is reported by problems())
        grader_readme: _set_total(grader_text, GRADER_HEADINGS[assignment], autograded_points(checks, thresholds)),
        handout_readme: _set_total(handout_text, HANDOUT_HEADING, handout_points(checks, thresholds, None, assignment)),
    }


GRADER_HEADING = GRADER_HEADINGS["a1"]


def _set_total(text: str, pattern: str, total: float) -> str:
    """``text`` with the number in the first heading matching ``pattern`` (group 1) replaced by ``total``."""
    m = re.search(pattern, text)
    return text if m is None else text[:m.start(1)] + _pts(total) + text[m.end(1):]


def problems(checks: dict[str, CheckSpec] | None = None, thresholds: dict[str, Any] | None = None,
             grader_readme: Path = GRADER_README, handout_readme: Path | None = None,
             assignment: str | None = None) -> list[str]:
    """What differs between the READMEs and the declarations ([] when they agree); every assignment's unless one is
    named (or ``checks`` are given: then assignment 1's, or the one named)."""
    from grader.grade import checks_of, thresholds_of

    if assignment is None and checks is None and handout_readme is None:
        return [line for a in ASSIGNMENTS for line in problems(None, thresholds, grader_readme, None, a)]
    assignment = assignment or DEFAULT_ASSIGNMENT
    checks = checks_of(assignment) if checks is None else checks
    thresholds = thresholds_of(assignment) if thresholds is None else thresholds
    handout_readme = HANDOUTS[assignment] if handout_readme is None else handout_readme
    out = [f"{path}: its rubric table differs from the declarations (python -m grader.rubric rewrites it)"
           for path, text in generated(checks, thresholds, grader_readme, handout_readme, assignment).items()
           if path.read_text(encoding="utf-8") != text]
    auto = autograded_points(checks, thresholds)
    out += _heading_total(grader_readme.read_text(encoding="utf-8"), GRADER_HEADINGS[assignment], auto, grader_readme)
    out += _heading_total(handout_readme.read_text(encoding="utf-8"), HANDOUT_HEADING,
                          handout_points(checks, thresholds, None, assignment), handout_readme)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.rubric", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only compare; exit 1 if a README differs")
    args = p.parse_args(argv)
    try:
        if args.check:
            found = problems()
            for line in found:
                print(line, file=sys.stderr)
            return 1 if found else 0
        for assignment in ASSIGNMENTS:
            for path, text in generated(assignment=assignment).items():
                if path.read_text(encoding="utf-8") != text:
                    atomic_write(path, text, "README")
                    print(f"rewrote the rubric table of {path}")
        for line in problems():      # a heading's total the tables cannot fix
            print(f"error: {line}", file=sys.stderr)
            return 2
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

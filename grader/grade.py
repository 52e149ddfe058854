"""Grade one submission: structure, per-TODO unit checks, performance; write Gradescope results.json.

The parent process (this module) never imports student code. Each check runs in its own child under a
supervisor (grader.runner); the parent computes every score from plain data, verifies that its own files
did not change, and only then returns the report that the CLI writes atomically as results.json.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import yaml

from grader.answers import AnswerError, Field, read_answer
from grader import checks_bc, checks_cem, checks_dagger, checks_dart, checks_pg
from grader.context import CheckResult, CheckSpec, GradingContext, Variant, manifest_json, twice
from grader.feedback import describe_error
from grader.intake import MAX_STUDENT_FILE_BYTES, find_student_files, materialize
from grader.integrity import manifest, verify
from grader.isolation import SandboxError, sandbox_policy
from grader.performance import performance_check
from grader.runner import read_output
from grader.workspace import make_scratch, new_check_dir, remove_check_dir, remove_scratch
from learning.agents import DEFAULT_ASSIGNMENT, assignment_of, check_assignment, todo_manifest

GRADER_DIR = Path(__file__).resolve().parent
THRESHOLDS = GRADER_DIR / "thresholds.yaml"          # assignment 1's performance checks
THRESHOLD_FILES = {"a1": THRESHOLDS, "a2": GRADER_DIR / "thresholds_a2.yaml"}

# the unit checks are declared next to their code (grader.context.CheckSpec, a module's CHECKS); this list is the one
# place that says which modules hold them (their order is the gradebook's)
CHECK_MODULES = (checks_bc, checks_dagger, checks_dart, checks_cem, checks_pg)


class DeclarationError(ValueError):
    """The checks' declarations disagree (a key declared twice, a hidden variant of no declared check)."""


def collect_checks(modules: tuple[ModuleType, ...] = CHECK_MODULES) -> dict[str, CheckSpec]:
    """Key → declaration of every unit check the modules declare (a key declared twice is an error)."""
    specs: dict[str, CheckSpec] = {}
    for m in modules:
        for spec in m.CHECKS:
            if spec.key in specs:
                raise DeclarationError(f"unit check {spec.key!r} is declared twice ({m.__name__})")
            specs[spec.key] = spec
    return specs


UNIT_CHECKS = collect_checks()


def checks_of(assignment: str = DEFAULT_ASSIGNMENT, checks: dict[str, CheckSpec] | None = None) -> dict[str, CheckSpec]:
    """The unit checks of ``assignment``'s agents (a check belongs to the assignment of the agent it tests)."""
    check_assignment(assignment)
    return {k: c for k, c in (UNIT_CHECKS if checks is None else checks).items()
            if assignment_of(c.agent) == assignment}

# points per check and part (rubric: grader.rubric); a check's points are split evenly over its variants
UNIT_POINTS = {k: s.points() for k, s in UNIT_CHECKS.items()}
PUBLIC_VARIANTS = {k: list(s.public) for k, s in UNIT_CHECKS.items()}


def hidden_variants(checks: dict[str, CheckSpec] = UNIT_CHECKS) -> dict[str, list[Variant]]:
    """Hidden variants live in grader/hidden/ (absent from the student release), keyed by the checks' keys; a key no
    check declares, or a variant not marked hidden, is an error (DeclarationError)."""
    try:
        from grader.hidden.variants import HIDDEN_VARIANTS
    except ImportError:
        return {}
    return validate_hidden(HIDDEN_VARIANTS, checks)


def validate_hidden(variants: dict[str, list[Variant]], checks: dict[str, CheckSpec]) -> dict[str, list[Variant]]:
    unknown = sorted(set(variants) - set(checks))
    if unknown:
        raise DeclarationError(f"grader/hidden/variants.py: no unit check is declared with key {unknown[0]!r} "
                         f"(declared: {', '.join(checks)})")
    for key, vs in variants.items():
        if not all(isinstance(v, Variant) and v.hidden for v in vs):
            raise DeclarationError(f"grader/hidden/variants.py: {key!r} holds a variant that is not "
                                   "Variant(..., hidden=True)")
    return variants


@dataclass
class GradeReport:
    tests: list[CheckResult]
    seconds: float
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return float(sum(t.score for t in self.tests))

    @property
    def max_score(self) -> float:
        return float(sum(t.max_score for t in self.tests))


def load_thresholds(path: Path = THRESHOLDS) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def thresholds_of(assignment: str = DEFAULT_ASSIGNMENT) -> dict[str, Any]:
    """``assignment``'s performance checks (grader/thresholds.yaml for a1, thresholds_a2.yaml for a2)."""
    return load_thresholds(THRESHOLD_FILES[check_assignment(assignment)])


def grade(submission: str | os.PathLike, include_hidden: bool = True, include_performance: bool = True,
          unit_timeout: float = 60.0, train_timeout: float = 600.0, mem_mb: int = 2048,
          progress: bool = False, jobs: int = 2, only: set[str] | None = None,
          scope: str | None = None, assignment: str = DEFAULT_ASSIGNMENT) -> GradeReport:
    """Grade one submission of ``assignment`` (a1 or a2) in ``scope`` (core or full; default
    learning.agents.DEFAULT_SCOPE): the unit checks of the scope's TODO methods, and the performance checks with the
    student's methods of the scope and the reference for the rest (``only``: unit-check keys and/or agent names of
    performance checks to run).

    Raises SubmissionError (unreadable submission), SandboxError (the machine cannot isolate children) or
    IntegrityError (the grader's files changed during grading) or DeclarationError (the hidden variants name a check
    that is not declared)."""
    t0 = time.time()
    hidden = hidden_variants() if include_hidden else {}
    before = manifest()
    policy = sandbox_policy(max(1, jobs))
    scratch, private = make_scratch()
    try:
        spec = todo_manifest(scope, assignment)
        names = [s.file_name for s in spec.values()]
        sub = materialize(submission, private / "submission", names)
        files = find_student_files(sub, names)
        ctx = GradingContext(policy, scratch, private, files, spec, unit_timeout=unit_timeout,
                             train_timeout=train_timeout, mem_mb=mem_mb)
        tests = structure_checks(ctx)
        variants = {k: list(v) for k, v in PUBLIC_VARIANTS.items()}
        if include_hidden:
            for k, vs in hidden.items():
                variants.setdefault(k, []).extend(vs)
        work: list[tuple[Callable[[], list[CheckResult]], Callable[[CheckResult], None]]] = []
        for key, check in checks_of(assignment).items():
            if not check.in_scope(spec):
                continue
            for v in variants.get(key, []) if only is None or key in only else []:
                work.append((lambda check=check, v=v: _guarded(check.run, ctx, check.key, v),
                             _unit_scorer(check, v, len(variants[key]))))
        if include_performance:
            for pspec in thresholds_of(assignment)["performance"]:
                if only is not None and pspec["agent"] not in only:
                    continue
                work.append((lambda s=pspec: [performance_check(ctx, s)], lambda r: None))
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:   # each check is its own child process
            futures = [pool.submit(run) for run, _ in work]
            if progress:
                from tqdm import tqdm

                futures = list(tqdm(futures, desc="checks", unit="check"))
            for (_, score), fut in zip(work, futures, strict=True):
                for r in fut.result():
                    score(r)
                    tests.append(r)
        for i, t in enumerate(tests, 1):
            t.number = str(i)
        report = GradeReport(tests, time.time() - t0, notes=list(policy.notes))
    finally:
        remove_scratch(scratch)
    verify(before, "while this submission was graded")
    return report


def _guarded(fn: Callable[[GradingContext, Variant], list[CheckResult]], ctx: GradingContext, key: str,
             v: Variant) -> list[CheckResult]:
    """Run one unit check; any failure while scoring (an answer the check cannot interpret, a forged result file,
    MemoryError included) costs only this check, after one more run from a new child (grader.context.twice). Only
    the sandbox's own failure stops the grading."""
    try:
        return twice(lambda: fn(ctx, v), f"unit check {key} ({v.tag}, seed {v.seed})")
    except SandboxError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a forged answer makes the scoring raise is this check's 0
        why = f"the answer could not be interpreted ({type(e).__name__}): did your code write the grader's files?"
        return [CheckResult(name, 0, 1, why) for name in UNIT_CHECKS[key].part_names(v)]


def _unit_scorer(check: CheckSpec, v: Variant, n: int) -> Callable[[CheckResult], None]:
    points = check.points()

    def score(r: CheckResult) -> None:
        part = r.name.split(" (")[0]
        pts = points[part] / n
        r.score, r.max_score = r.score * pts, pts
        r.visibility = "after_published" if v.hidden else "visible"
        r.tags = ["unit", check.key] + (["hidden"] if v.hidden else [])

    return score


def structure_checks(ctx: GradingContext) -> list[CheckResult]:
    """Files present, importable, TODO methods defined (0 points: it explains the other checks' zeros)."""
    notes = []
    for name, path in ctx.student_files.items():
        ctx.present[name] = path is not None
        if path is None:
            ctx.problems[name] = f"learning/{name} is missing from the submission"
        elif path.stat().st_size > MAX_STUDENT_FILE_BYTES:
            ctx.present[name] = False
            ctx.problems[name] = f"learning/{name} is larger than {MAX_STUDENT_FILE_BYTES // 1024} KB"
    missing = [n for n, p in ctx.student_files.items() if p is None]
    # each student file is its own module beside the framework's (a broken bc_agent.py cannot break DAgger's
    # import: the student's DAggerAgent inherits from the framework's BCAgent)
    res, info = _inspect(ctx)
    if not info:
        for n in ctx.student_files:
            if ctx.present[n]:
                ctx.present[n] = False
                ctx.problems[n] = f"learning/{n} could not be inspected ({res})"
        notes.append(f"the submission could not be imported ({res})")
    for line in info:
        parts = line.split(":", 3)
        if len(parts) != 4 or parts[0] not in ctx.manifest:
            continue                      # the child's answer is untrusted data: ignore what it cannot mean
        agent, method, ok, detail = parts
        fname = ctx.manifest[agent].file_name
        if not ctx.present.get(fname) or (method != "IMPORT" and method not in ctx.manifest[agent].methods):
            continue
        if method == "IMPORT":
            ctx.present[fname] = False
            ctx.problems[fname] = f"learning/{fname} does not import: {describe_error(detail.encode(), True)}"
            notes.append(ctx.problems[fname])
        elif ok != "1":
            notes.append(f"learning/{fname}: method {method} is not defined")
    for n, why in ctx.problems.items():
        if why not in notes and ctx.student_files.get(n) is not None:
            notes.append(why)
    if missing:
        notes.insert(0, "missing: " + ", ".join(f"learning/{m}" for m in missing))
    ok = not notes
    return [CheckResult("Structure: files present, importable, TODO methods defined", 0.0, 0.0,
                        "all student files found and importable" if ok else "; ".join(notes), tags=["structure"])]


def _inspect(ctx: GradingContext) -> tuple[str, list[str]]:
    d = new_check_dir(ctx.scratch, "inspect")
    try:
        job = {"kind": "inspect", "manifest": manifest_json(ctx.manifest), "seed": 0}
        res = ctx.run(d, job, ctx.unit_timeout)
        raw = read_output(res, "result.npz")
        if raw is None or not res.finished:
            return res.message(), []
        lines = 4 * sum(len(s.methods) + 1 for s in ctx.manifest.values())   # one line per method or import error
        try:
            return "", [str(s) for s in read_answer(raw, {"info": Field((None,), "U", lines)})["info"]]
        except AnswerError:               # no readable answer: the submission could not be imported
            return "unreadable answer", []
    finally:
        remove_check_dir(d)


def _visible(report: GradeReport) -> tuple[float, float, bool]:
    """(score, max score) of the checks a student sees now, and whether there are checks published later."""
    shown = [t for t in report.tests if t.visibility != "after_published"]
    return (float(sum(t.score for t in shown)), float(sum(t.max_score for t in shown)),
            len(shown) < len(report.tests))


def summary_line(report: GradeReport) -> str:
    """The visible top-level line: visible points only; nothing about the hidden checks but that they exist."""
    score, top, hidden = _visible(report)
    if hidden:
        return f"Autograded {score:.1f} / {top:.1f} visible points; hidden checks are published later."
    return f"Autograded {score:.1f} / {top:.1f}."


def to_results_json(report: GradeReport) -> dict[str, Any]:
    """Gradescope results.json (score = sum of tests; the visible output names only the visible checks' points)."""
    return {
        "score": round(report.score, 3),
        "execution_time": round(report.seconds, 1),
        "output": (summary_line(report) + " " + (report.error or "")).strip(),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [{"name": t.name, "number": t.number, "score": round(t.score, 3), "max_score": round(t.max_score, 3),
                   "status": "passed" if t.passed else "failed", "output": t.output, "output_format": "text",
                   "tags": t.tags, "visibility": t.visibility} for t in report.tests],
    }


def error_results(message: str) -> dict[str, Any]:
    """A valid results.json that says the grader itself failed (written before anything runs)."""
    return {"score": 0, "output": f"Grader error: {message} Please contact the course staff.", "output_format": "text",
            "visibility": "visible", "tests": [{"name": "Grader", "score": 0, "max_score": 0, "status": "failed",
                                                "output": message, "visibility": "visible"}]}


def write_json_atomic(data: dict[str, Any], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results_", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def format_table(report: GradeReport, show_hidden: bool | None = None) -> str:
    """The console table. Hidden checks (published later) are left out with their total, unless ``show_hidden`` (or
    GRADER_SHOW_HIDDEN=1, for a TA's console): the Gradescope path prints this table too."""
    if show_hidden is None:
        show_hidden = os.environ.get("GRADER_SHOW_HIDDEN") == "1"
    tests = [t for t in report.tests if show_hidden or t.visibility != "after_published"]
    w = max([len(t.name) for t in tests] + [5])
    lines = [f"{'check'.ljust(w)}  points    max  feedback", "-" * (w + 40)]
    for t in tests:
        lines.append(f"{t.name.ljust(w)}  {t.score:6.2f} {t.max_score:6.2f}  {t.output}")
    lines.append("-" * (w + 40))
    score, top, hidden = _visible(report)
    if show_hidden or not hidden:
        lines.append(f"{'TOTAL'.ljust(w)}  {report.score:6.2f} {report.max_score:6.2f}  ({report.seconds:.0f} s)")
    else:
        lines.append(f"{'VISIBLE'.ljust(w)}  {score:6.2f} {top:6.2f}  ({report.seconds:.0f} s; hidden checks are "
                     "published later: GRADER_SHOW_HIDDEN=1 shows them here, results.json holds them)")
    return "\n".join(lines)

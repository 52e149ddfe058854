"""Grade one submission: structure, per-TODO unit checks, performance; write Gradescope results.json.

The parent process (this module) never imports student code. Each check runs in its own child under a
supervisor (grader.sandbox); the parent computes every score from plain data, verifies that its own files
did not change, and only then returns the report that the CLI writes atomically as results.json.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import yaml

from grader.checks import (UNIT_CHECKS, CheckResult, GradingContext, Variant, evaluate_trained, manifest_json,
                           part_names)
from grader.answers import AnswerError, Field, read_answer
from grader.feedback import describe_error
from grader.integrity import manifest, verify
from grader.sandbox import (SandboxError, make_scratch, new_check_dir, read_output, remove_check_dir, remove_scratch,
                            sandbox_policy)
from learning.agents import todo_manifest
from util.errors import UserError

GRADER_DIR = Path(__file__).resolve().parent
THRESHOLDS = GRADER_DIR / "thresholds.yaml"
MAX_STUDENT_FILE_BYTES = 64 * 1024      # the stubs are ~5 KB; room for comments, not for smuggled weights

# points per check (rubric in a1/README.md); a check's points are split evenly over its variants
UNIT_POINTS = {
    "bc_loss": {"BC loss: gradients": 10.0, "BC loss: value": 5.0},   # a constant offset keeps the gradient points
    "dagger_select": {"DAgger label": 5.0, "DAgger executed action": 5.0},
    "dagger_aggregate": {"DAgger aggregation": 10.0},
    "dart_step": {"Noise injection: clean label": 5.0, "Noise injection: noisy executed action": 5.0},
}

PUBLIC_VARIANTS = {
    "bc_loss": [Variant(seed=101, env="hopper", batch=32)],
    "dagger_select": [Variant(seed=202, env="hopper", batch=60)],
    "dagger_aggregate": [Variant(seed=303, env="hopper", batch=40)],
    "dart_step": [Variant(seed=404, env="hopper", batch=80)],
}


def hidden_variants() -> dict[str, list[Variant]]:
    """Hidden variants live in grader/hidden/ (absent from the student release)."""
    try:
        from grader.hidden.variants import HIDDEN_VARIANTS
    except ImportError:
        return {}
    return HIDDEN_VARIANTS


class SubmissionError(UserError):
    """The submission itself cannot be read (not a folder or zip, unsafe zip)."""


MAX_SUBMISSION_ENTRIES = 100_000       # files in a submission folder, members in a zip: listed, never unpacked


def _rank(rel: tuple[str, ...]) -> tuple[bool, int, str]:
    """How good a candidate path (its parts, relative to the submission) is for a student file: a parent folder
    named ``learning`` first, then the shallowest path, then the name (the one order for folders and zips)."""
    return (len(rel) < 2 or rel[-2] != "learning", len(rel), "/".join(rel))


MAX_FOLDER_DEPTH = 32     # folder levels searched below a submission folder (a deeper nest is refused)


def walk_bounded(root: Path, max_depth: int = MAX_FOLDER_DEPTH, skip: tuple[str, ...] = (".git", "__pycache__"),
                 strict: bool = True, onerror: Callable[[OSError], None] | None = None
                 ) -> Iterator[tuple[str, tuple[str, ...], list[str], list[str]]]:
    """Iterative, link-free os.walk: yields (dirpath, its parts relative to ``root``, real subfolder names, other
    entry names), top-down, each list sorted. Folders named in ``skip`` are not entered; folders ``max_depth``
    levels below ``root`` are listed but not entered: with ``strict`` their subfolders raise SubmissionError,
    otherwise they are ignored. Never recurses, so no nesting depth raises RecursionError. Listing errors go to
    ``onerror`` (default: that folder is skipped)."""
    stack: list[tuple[str, tuple[str, ...]]] = [(os.fspath(root), ())]
    while stack:
        dirpath, rel = stack.pop()
        try:
            with os.scandir(dirpath) as it:
                entries = list(it)
        except OSError as e:
            if onerror is not None:
                onerror(e)
            continue
        dirs, files = [], []
        for e in entries:
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(e.name)
        dirs = sorted(d for d in dirs if d not in skip)
        files.sort()
        yield dirpath, rel, dirs, files
        if dirs and len(rel) >= max_depth:
            if strict:
                raise SubmissionError(f"the submission nests folders more than {max_depth} levels deep "
                                      f"({'/'.join(rel[:3])}/...): flatten it")
            continue
        stack.extend((os.path.join(dirpath, d), (*rel, d)) for d in reversed(dirs))


def materialize(submission: str | os.PathLike, dest: Path, names: list[str]) -> Path:
    """Copy into ``dest`` the student files ``names`` from a submission folder or .zip: for each name ONE file, the
    best candidate by :func:`_rank` among the regular files of that name at any depth (folders: at most
    MAX_FOLDER_DEPTH levels, deeper nesting is refused), at most
    MAX_STUDENT_FILE_BYTES + 1 bytes of it, keeping its relative path. So what the grader writes is bounded by
    ``len(names)`` files of that size, whatever the submission holds, before and independent of any check;
    nothing else is copied or unpacked (links, FIFOs, devices, other files are never opened). Returns ``dest``.

    Raises SubmissionError for a submission the grader refuses."""
    src = Path(submission)
    dest.mkdir(parents=True)
    if src.is_dir():
        best: dict[str, tuple[str, ...]] = {}
        seen = 0
        for dirpath, rel_dir, dirnames, filenames in walk_bounded(src):          # never follows links
            seen += len(filenames) + len(dirnames)
            if seen > MAX_SUBMISSION_ENTRIES:
                raise SubmissionError(f"the submission folder holds more than {MAX_SUBMISSION_ENTRIES:,} files")
            for n in filenames:
                if n in names and (n not in best or _rank((*rel_dir, n)) < _rank(best[n])) \
                        and _is_regular(os.path.join(dirpath, n)):
                    best[n] = (*rel_dir, n)
        for rel in best.values():
            _copy_regular(src.joinpath(*rel), dest.joinpath(*rel))
        return dest
    if src.is_file() and zipfile.is_zipfile(src):
        try:
            if _zip_entries(src) > MAX_SUBMISSION_ENTRIES:     # before zipfile parses the whole central directory
                raise SubmissionError(f"the zip holds more than {MAX_SUBMISSION_ENTRIES:,} entries")
            with zipfile.ZipFile(src) as z:
                infos = z.infolist()
                if len(infos) > MAX_SUBMISSION_ENTRIES:
                    raise SubmissionError(f"the zip holds more than {MAX_SUBMISSION_ENTRIES:,} entries")
                chosen: dict[str, tuple[tuple[str, ...], zipfile.ZipInfo]] = {}
                for info in infos:
                    name = info.filename.replace("\\", "/")
                    parts = tuple(p for p in name.split("/") if p not in ("", "."))
                    if name.startswith("/") or ".." in parts:
                        raise SubmissionError(f"unsafe path in zip: {name[:100]}")
                    if not parts or parts[-1] not in names or info.is_dir():
                        continue
                    if (info.external_attr >> 16) & 0o170000 not in (0, 0o100000):
                        continue            # links and special files are never unpacked
                    if parts[-1] not in chosen or _rank(parts) < _rank(chosen[parts[-1]][0]):
                        chosen[parts[-1]] = (parts, info)
                for parts, info in chosen.values():
                    target = dest.joinpath(*parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as fin, open(target, "wb") as fout:
                        fout.write(fin.read(MAX_STUDENT_FILE_BYTES + 1))
        except SubmissionError:
            raise
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, ValueError, EOFError) as e:
            raise SubmissionError(f"the zip {src.name} could not be unpacked ({type(e).__name__})") from None
        return dest
    if not src.exists():
        raise SubmissionError(f"submission not found: {src}")
    raise SubmissionError(f"{src} is neither a folder nor a .zip file")


def _zip_entries(path: Path) -> int:
    """The number of entries a zip's end-of-central-directory record declares (0 if it cannot be read here; zipfile
    then raises its own error)."""
    try:
        with open(path, "rb") as f:
            end = zipfile._EndRecData(f)      # noqa: SLF001 - the record zipfile itself reads first
        return int(end[zipfile._ECD_ENTRIES_TOTAL]) if end else 0   # noqa: SLF001
    except (OSError, AttributeError, IndexError, TypeError, ValueError):
        return 0


def _copy_regular(src: Path, dst: Path) -> None:
    """Copy at most MAX_STUDENT_FILE_BYTES + 1 bytes of ``src`` if it is a regular file (not a link)."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.dup(fd), "rb") as fin, open(dst, "wb") as fout:
            fout.write(fin.read(MAX_STUDENT_FILE_BYTES + 1))
    finally:
        os.close(fd)


def _is_regular(path: str) -> bool:
    """A regular file (lstat: a link is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def find_student_files(root: Path, names: list[str]) -> dict[str, Path | None]:
    """Locate learning/<agent>_agent.py (at any depth up to MAX_FOLDER_DEPTH, e.g. inside a top-level project
    folder); regular files only, the best candidate by :func:`_rank` (the order :func:`materialize` keeps one file
    by)."""
    hits: dict[str, list[tuple[str, ...]]] = {n: [] for n in names}
    for dirpath, rel, _, filenames in walk_bounded(root, skip=(), strict=False):
        for n in filenames:
            if n in hits and _is_regular(os.path.join(dirpath, n)):
                hits[n].append((*rel, n))
    return {n: root.joinpath(*min(h, key=_rank)) if h else None for n, h in hits.items()}


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


def ramp(value: float, low: float, full: float) -> float:
    """0 at or below ``low``, 1 at or above ``full``, linear in between."""
    if not np.isfinite(value):
        return 0.0
    if full <= low:
        return float(value >= full)
    return float(np.clip((value - low) / (full - low), 0.0, 1.0))


def grade(submission: str | os.PathLike, include_hidden: bool = True, include_performance: bool = True,
          unit_timeout: float = 120.0, train_timeout: float = 600.0, mem_mb: int = 2048,
          progress: bool = False, jobs: int = 2, only: set[str] | None = None) -> GradeReport:
    """Grade one submission (``only``: unit-check keys and/or agent names of performance checks to run).

    Raises SubmissionError (unreadable submission), SandboxError (the machine cannot isolate children) or
    IntegrityError (the grader's files changed during grading)."""
    t0 = time.time()
    before = manifest()
    policy = sandbox_policy(max(1, jobs))
    scratch, private = make_scratch()
    try:
        spec = todo_manifest()
        names = [s.file_name for s in spec.values()]
        sub = materialize(submission, private / "submission", names)
        files = find_student_files(sub, names)
        ctx = GradingContext(policy, scratch, private, files, spec, unit_timeout=unit_timeout,
                             train_timeout=train_timeout, mem_mb=mem_mb)
        tests = structure_checks(ctx)
        variants = {k: list(v) for k, v in PUBLIC_VARIANTS.items()}
        if include_hidden:
            for k, vs in hidden_variants().items():
                variants.setdefault(k, []).extend(vs)
        work: list[tuple[Callable[[], list[CheckResult]], Callable[[CheckResult], None]]] = []
        for key, (_, fn) in UNIT_CHECKS.items():
            for v in variants.get(key, []) if only is None or key in only else []:
                work.append((lambda fn=fn, v=v, key=key: _guarded(fn, ctx, key, v),
                             _unit_scorer(key, v, len(variants[key]))))
        if include_performance:
            for pspec in load_thresholds()["performance"]:
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
    MemoryError included) costs only this check. Only the sandbox's own failure stops the grading."""
    try:
        return fn(ctx, v)
    except SandboxError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a forged answer makes the scoring raise is this check's 0
        why = f"the answer could not be interpreted ({type(e).__name__}): did your code write the grader's files?"
        return [CheckResult(name, 0, 1, why) for name in part_names(key, v)]


def _unit_scorer(key: str, v: Variant, n: int) -> Callable[[CheckResult], None]:
    def score(r: CheckResult) -> None:
        part = r.name.split(" (")[0]
        pts = UNIT_POINTS[key][part] / n
        r.score, r.max_score = r.score * pts, pts
        r.visibility = "after_published" if v.hidden else "visible"
        r.tags = ["unit", key] + (["hidden"] if v.hidden else [])

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


def performance_check(ctx: GradingContext, spec: dict[str, Any]) -> CheckResult:
    name, pts = str(spec["name"]), float(spec["points"])
    try:
        value, why = evaluate_trained(ctx, spec, int(spec["train_seed"]), int(spec["eval_seed"]))
    except SandboxError:
        raise
    except Exception as e:  # noqa: BLE001 - a model the grader cannot evaluate (MemoryError included) costs this check
        value, why = None, f"the trained model could not be evaluated ({type(e).__name__})"
    if value is None:
        return CheckResult(name, 0, pts, why, tags=["performance"])
    frac = ramp(value, float(spec["low"]), float(spec["full"]))
    return CheckResult(name, round(frac * pts, 3), pts,
                       f"{why} (0 points at ≤ {spec['low']:.0f}, full at ≥ {spec['full']:.0f})", tags=["performance"])


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

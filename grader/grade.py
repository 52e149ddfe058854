"""Grade one submission: structure, per-TODO unit checks, performance; write Gradescope results.json.

The parent process (this module) never imports student code. It writes a valid "grader error"
results.json before anything runs and replaces it atomically with the final one at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from grader.checks import (UNIT_CHECKS, CheckResult, GradingContext, Variant, load_trained_policy, train_in_child)
from grader.sandbox import STUDENT_FILES, make_workspace, run_child
from learning.evaluation import evaluate_policy
from util.config import REPO_ROOT

GRADER_DIR = Path(__file__).resolve().parent
THRESHOLDS = GRADER_DIR / "thresholds.yaml"

# points per check (rubric in a1/README.md); a check's points are split evenly over its variants
UNIT_POINTS = {
    "bc_loss": {"BC loss": 15.0},
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


class SubmissionError(ValueError):
    """The submission itself cannot be read (not a folder or zip, unsafe zip)."""


def materialize(submission: str | os.PathLike, dest: Path) -> Path:
    """Copy/unpack a submission folder or .zip into ``dest``; returns the folder holding it."""
    src = Path(submission)
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=False, ignore_dangling_symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".git"))
        return dest
    if src.is_file() and zipfile.is_zipfile(src):
        dest.mkdir(parents=True)
        total = 0
        with zipfile.ZipFile(src) as z:
            for info in z.infolist():
                name = info.filename
                if name.startswith("/") or ".." in Path(name).parts:
                    raise SubmissionError(f"unsafe path in zip: {name}")
                total += info.file_size
                if total > 200 * 1024 * 1024:
                    raise SubmissionError("the zip unpacks to more than 200 MB")
            z.extractall(dest)
        return dest
    if not src.exists():
        raise SubmissionError(f"submission not found: {src}")
    raise SubmissionError(f"{src} is neither a folder nor a .zip file")


def find_student_files(root: Path) -> dict[str, Path | None]:
    """Locate learning/<agent>_agent.py (at any depth, e.g. inside a top-level project folder)."""
    found: dict[str, Path | None] = {}
    for name in STUDENT_FILES:
        hits = sorted((p for p in root.rglob(name) if p.is_file() and not p.is_symlink()),
                      key=lambda p: (p.parent.name != "learning", len(p.parts)))
        found[name] = hits[0] if hits else None
    return found


@dataclass
class GradeReport:
    tests: list[CheckResult]
    seconds: float
    error: str = ""

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
          progress: bool = False, jobs: int = 2) -> GradeReport:
    t0 = time.time()
    scratch = Path(tempfile.mkdtemp(prefix="grade_"))
    try:
        sub = materialize(submission, scratch / "submission")
        files = find_student_files(sub)
        data = [REPO_ROOT / "data" / "envs" / f for f in os.listdir(REPO_ROOT / "data" / "envs")]
        perf = load_thresholds()["performance"] if include_performance else []
        for env in sorted({p["env"] for p in perf}):
            data += [REPO_ROOT / "data" / "demos" / f"{env}.npz", REPO_ROOT / "data" / "models" / f"expert_{env}.pt",
                     REPO_ROOT / "data" / "agents" / f"expert_{env}.yaml"]
        ws = make_workspace(scratch, files, data)
        ctx = GradingContext(ws, {}, {}, unit_timeout, train_timeout, mem_mb, scratch / "checks")
        ctx.scratch.mkdir()
        tests = structure_checks(ctx, files)
        variants = {k: list(v) for k, v in PUBLIC_VARIANTS.items()}
        if include_hidden:
            for k, vs in hidden_variants().items():
                variants.setdefault(k, []).extend(vs)
        work = [(key, fn, v, len(variants.get(key, []))) for key, (_, fn) in UNIT_CHECKS.items()
                for v in variants.get(key, [])]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:   # each check is its own child process
            futures = [pool.submit(fn, ctx, v) for _, fn, v, _ in work]
            if progress:
                from tqdm import tqdm

                futures_iter = tqdm(futures, desc="unit checks", unit="check")
            else:
                futures_iter = futures
            for (key, _, v, n), fut in zip(work, futures_iter):
                for r in fut.result():
                    part = r.name.split(" (")[0]
                    pts = UNIT_POINTS[key][part] / n
                    r.score, r.max_score = r.score * pts, pts
                    r.visibility = "after_published" if v.hidden else "visible"
                    r.tags = ["unit", key] + (["hidden"] if v.hidden else [])
                    tests.append(r)
        for spec in perf:
            tests.append(performance_check(ctx, spec))
        for i, t in enumerate(tests, 1):
            t.number = str(i)
        return GradeReport(tests, time.time() - t0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def structure_checks(ctx: GradingContext, files: dict[str, Path | None]) -> list[CheckResult]:
    """Files present, importable, TODO methods defined (0 points: it explains the other checks' zeros)."""
    missing = [n for n, p in files.items() if p is None]
    for n in STUDENT_FILES:
        ctx.present[n] = files[n] is not None
        if files[n] is None:
            ctx.problems[n] = f"learning/{n} is missing from the submission"
    res, info = _inspect(ctx)
    bc_broken = files["bc_agent.py"] is None or any(ln.startswith("bc:IMPORT:") for ln in info)
    if bc_broken and info:
        # DAgger and noise injection inherit from BCAgent: give them the framework's stub file (its TODO
        # method is replaced by the reference anyway), so a broken bc_agent.py costs only the BC points.
        shutil.copyfile(REPO_ROOT / "learning" / "bc_agent.py", ctx.workspace / "learning" / "bc_agent.py")
        res, info2 = _inspect(ctx)
        info = [ln for ln in info if ln.startswith("bc:")] + [ln for ln in info2 if not ln.startswith("bc:")]
    notes = []
    agent_file = {"bc": "bc_agent.py", "dagger": "dagger_agent.py", "dart": "dart_agent.py"}
    if not info:
        for n in STUDENT_FILES:
            if ctx.present[n]:
                ctx.present[n] = False
                ctx.problems[n] = f"learning/{n} could not be inspected ({res.message()})"
        notes.append(f"the submission could not be imported ({res.message()})")
    for line in info:
        agent, method, ok, detail = line.split(":", 3)
        fname = agent_file[agent]
        if not ctx.present.get(fname):
            continue
        if method == "IMPORT":
            ctx.present[fname] = False
            ctx.problems[fname] = f"learning/{fname} does not import: {detail}"
            notes.append(ctx.problems[fname])
        elif ok != "1":
            notes.append(f"learning/{fname}: method {method} is not defined")
    if missing:
        notes.insert(0, "missing: " + ", ".join(f"learning/{m}" for m in missing))
    ok = not notes
    return [CheckResult("Structure: files present, importable, TODO methods defined", 0.0, 0.0,
                        "all student files found and importable" if ok else "; ".join(notes), tags=["structure"])]


def _inspect(ctx: GradingContext):
    res = run_child(ctx.workspace, {"kind": "inspect"}, ctx.unit_timeout, ctx.mem_mb)
    try:
        with np.load(res.out_dir / "result.npz", allow_pickle=False) as f:
            return res, [str(s) for s in f["info"]]
    except Exception:  # noqa: BLE001 - no readable answer: the submission could not be imported
        return res, []


def performance_check(ctx: GradingContext, spec: dict[str, Any]) -> CheckResult:
    name = f"{spec['name']}"
    pts = float(spec["points"])
    student_file = {"bc": "bc_agent.py", "dagger": "dagger_agent.py", "dart": "dart_agent.py"}[spec["agent"]]
    if not ctx.present.get(student_file, False):
        return CheckResult(name, 0, pts, ctx.problems.get(student_file, f"learning/{student_file} missing"), tags=["performance"])
    config = {"agent": spec["agent"], "env": spec["env"], **spec["config"], "seed": int(spec["train_seed"])}
    model, why = train_in_child(ctx, spec["agent"], spec["env"], config, spec["student_methods"], student_file)
    if model is None:
        return CheckResult(name, 0, pts, why, tags=["performance"])
    policy, why = load_trained_policy(model, spec["env"])
    if policy is None:
        return CheckResult(name, 0, pts, why, tags=["performance"])
    if _looks_like_expert(policy, spec["env"]):
        return CheckResult(name, 0, pts, "the trained model carries the expert's weights instead of learned ones",
                           tags=["performance"])
    from envs.builder import make_env, resolve_env_config

    res = evaluate_policy(make_env(resolve_env_config(spec["env"])), policy, int(spec["eval_episodes"]),
                          int(spec["eval_seed"]), "grader")
    frac = ramp(res.mean, float(spec["low"]), float(spec["full"]))
    return CheckResult(name, round(frac * pts, 3), pts,
                       f"return {res.mean:.0f} ± {res.std:.0f} over {spec['eval_episodes']} hidden-seed episodes "
                       f"(0 points at ≤ {spec['low']:.0f}, full at ≥ {spec['full']:.0f})", tags=["performance"])


def _looks_like_expert(policy, env: str) -> bool:
    from learning.checkpoint import load_policy

    try:
        expert, _ = load_policy(REPO_ROOT / "data" / "models" / f"expert_{env}.pt")
    except Exception:  # noqa: BLE001
        return False
    a, b = policy.net[0].weight.detach(), expert.net[0].weight.detach()
    if a.shape != b.shape:
        return False
    cos = float((a * b).sum() / (a.norm() * b.norm() + 1e-12))
    return cos > 0.95


def to_results_json(report: GradeReport) -> dict[str, Any]:
    """Gradescope results.json (score = sum of tests)."""
    return {
        "score": round(report.score, 3),
        "execution_time": round(report.seconds, 1),
        "output": (f"Autograded {report.score:.1f} / {report.max_score:.1f}. " + (report.error or "")).strip(),
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


def format_table(report: GradeReport) -> str:
    w = max(len(t.name) for t in report.tests)
    lines = [f"{'check'.ljust(w)}  points    max  feedback", "-" * (w + 40)]
    for t in report.tests:
        lines.append(f"{t.name.ljust(w)}  {t.score:6.2f} {t.max_score:6.2f}  {t.output}")
    lines.append("-" * (w + 40))
    lines.append(f"{'TOTAL'.ljust(w)}  {report.score:6.2f} {report.max_score:6.2f}  ({report.seconds:.0f} s)")
    return "\n".join(lines)

#!/usr/bin/env python
"""Write the student release of this repository to OUT and verify it.

Left out: reference solutions (grader/solution), hidden checks (grader/hidden), calibration
(grader/calibrate.py, grader/thresholds.yaml), instructor tools (benchmarks, release/packaging scripts,
expert installation is kept), runs and outputs. Then, inside OUT: the tests pass, `python -m grader
--self-check` runs and scores the untouched stubs 0, and no solution code appears in any file.

    python tools/make_release.py ../a1-student-release
"""
from __future__ import annotations

import argparse
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

INCLUDE = ["README.md", "requirements.txt", "run.py", "pyproject.toml", ".gitignore", "a1", "data", "envs",
           "learning", "util", "tests", "tools", "grader", ".ci"]
EXCLUDE = ["grader/README.md", "grader/solution", "grader/hidden", "grader/calibrate.py", "grader/thresholds.yaml",
           "grader/batch.py", "grader/reference_submissions.py", "tools/make_release.py", "tools/make_gradescope.py",
           "tools/benchmark_a1.py", "tools/benchmark_speed.py", "tools/benchmark_grader.py",
           "tools/benchmark_expert_update.py", "tests/instructor", "tests/test_agents.py", "tests/test_grader.py",
           "tests/test_grader_attacks.py", "tests/test_architecture.py", "tests/test_benchmark_tables.py",
           "tests/test_grader_paths.py", "tests/test_grader_redteam.py", "tests/test_grader_splice.py",
           "tests/test_grader_calibrate.py", "tests/test_yardstick.py", "tests/yardstick_table.py",
           "tests/fixtures/yardstick", "tests/test_batch_dask.py", "tests/test_batch_robust.py", "tests/test_report.py",
           "grader/report.py", "grader/distributed.py", "grader/rubric.py", "tests/test_grader_rubric.py",
           "tests/test_optim.py",
           "data/training"]   # compact training checkpoints (several MB each) are for instructors retraining experts


def solution_lines() -> list[str]:
    """Distinctive lines of the reference solutions (what must never appear in the release)."""
    from grader.solution import SOLUTION_METHODS

    lines = set()
    for methods in SOLUTION_METHODS.values():
        for fn in methods.values():
            for ln in inspect.getsource(fn).splitlines()[1:]:
                s = ln.strip()
                if len(s) > 25 and not s.startswith(("#", '"""')):
                    lines.add(s)
    return sorted(lines)


def build(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)          # main() checked that it is an earlier release and --overwrite was given
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for item in INCLUDE:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, out / item, ignore=ignore)
        elif src.is_file():
            (out / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / item)
    for item in EXCLUDE:
        p = out / item
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in (out / "data" / "models").glob("*_train_log.txt"):
        p.unlink()


def find_solution_code(out: Path) -> list[str]:
    """Code lines (comments ignored) of any .py file under ``out`` that are lines of the reference solutions."""
    problems = []
    bad = set(solution_lines())
    for f in sorted(out.rglob("*.py")):
        try:
            code = {ln.split("#")[0].strip() for ln in f.read_text().splitlines() if not ln.strip().startswith("#")}
        except (UnicodeDecodeError, OSError):
            continue
        for ln in sorted(bad & code):
            problems.append(f"solution code in {f.relative_to(out)}: {ln}")
    return problems


def verify(out: Path, run_tests: bool = True) -> list[str]:
    problems = find_solution_code(out)
    for p in EXCLUDE:
        if (out / p).exists():
            problems.append(f"{p} should not be in the release")
    py = sys.executable
    r = subprocess.run([py, "-m", "grader", "--self-check", "--out", str(out / ".selfcheck.json")], cwd=out,
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        problems.append(f"self-check failed: {r.stderr.strip()[-500:]}")
    else:
        import json

        res = json.loads((out / ".selfcheck.json").read_text())
        if res["score"] != 0:
            problems.append(f"self-check gives the untouched stubs {res['score']} points (expected 0)")
        if not any(t["max_score"] > 0 for t in res["tests"]):
            problems.append("self-check ran no scored checks")
        (out / ".selfcheck.json").unlink()
    if run_tests:
        r = subprocess.run([py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"], cwd=out, capture_output=True,
                           text=True, timeout=1800)
        tail = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else [""]
        print(f"release tests: {tail[0]}")
        if r.returncode != 0:
            problems.append(f"release tests failed: {r.stdout[-1500:]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output folder (must not exist, or be an earlier release with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it holds an earlier release")
    p.add_argument("--skip_tests", action="store_true", help="verify without running the release's test suite")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if ROOT in out.parents or out == ROOT:
        print("error: write the release outside this repository", file=sys.stderr)
        return 2
    if out.exists() and any(out.iterdir()):
        if not args.overwrite:
            print(f"error: {out} already exists; pass --overwrite to replace an earlier release, "
                  "or choose another folder", file=sys.stderr)
            return 2
        if not (out / "learning" / "bc_agent.py").is_file() or (out / "grader" / "solution").exists():
            print(f"error: {out} does not look like an earlier student release; refusing to replace it",
                  file=sys.stderr)
            return 2
    build(out)
    problems = verify(out, run_tests=not args.skip_tests)
    if problems:
        print("Release verification FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"Wrote and verified the student release in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

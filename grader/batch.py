"""python -m grader batch DIR --jobs N --csv grades.csv

Grades every submission in DIR (one folder or .zip per student), each in its own grader process, and
writes results/<student>.json plus a CSV for the gradebook. Already graded submissions are skipped, so
an interrupted batch resumes where it stopped; one broken submission never stops the batch.

Integrity: the grader, framework and data are checked against a manifest taken at the start, before each
submission and after it; a change stops the batch and names the submission(s) graded last. As root, the
submissions and results folders are made private (chmod go-rwx) so student code cannot read other
students' files, and every grader process claims its own sandbox uids.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader.integrity import IntegrityError, changes, manifest

from util.config import REPO_ROOT


def submissions(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p.is_dir() or p.suffix == ".zip") and not p.name.startswith("."))


def student_id(p: Path) -> str:
    return p.stem if p.suffix == ".zip" else p.name


def grade_one(sub: Path, out: Path, extra: list[str], timeout: float) -> dict:
    t0 = time.time()
    try:
        proc = subprocess.run([sys.executable, "-m", "grader", str(sub), "--out", str(out), *extra], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=timeout)
        note = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["grader failed"])[-1]
    except subprocess.TimeoutExpired:
        note = f"grading took longer than {timeout:.0f} s"
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError):
        data = {"score": 0, "tests": [], "output": note or "no results"}
    return {"student": student_id(sub), "score": data.get("score", 0), "seconds": round(time.time() - t0, 1),
            "note": note or "", "tests": data.get("tests", [])}


class Guard:
    """Checks the grader's files against the manifest before and after every submission."""

    def __init__(self) -> None:
        self.before = manifest()
        self.lock = threading.Lock()
        self.last: list[str] = []       # submissions finished most recently (or in flight when it broke)
        self.broken = ""

    def check(self, when: str) -> None:
        with self.lock:
            if self.broken:
                raise IntegrityError(self.broken)
            diff = changes(self.before, manifest())
            if diff:
                who = ", ".join(self.last[-4:]) or "none yet"
                self.broken = (f"the grader's files changed {when} ({', '.join(diff[:3])}); last graded: {who}. "
                               "The batch stopped: restore the grader (git checkout / reinstall) and inspect those "
                               "submissions before grading again")
                raise IntegrityError(self.broken)


def _make_private(paths: list[Path]) -> list[str]:
    """As root: chmod go-rwx the given folders so that sandboxed student code cannot read them."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    done = []
    for p in paths:
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            os.chmod(p, mode & ~0o077)
            done.append(str(p))
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="folder holding one submission folder or .zip per student")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel (default 1)")
    p.add_argument("--csv", default="grades.csv", help="gradebook CSV (default grades.csv)")
    p.add_argument("--results_dir", default=None, help="per-student results.json folder (default DIR/../results)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per submission (default 3600)")
    p.add_argument("--regrade", action="store_true", help="grade again even if results exist")
    p.epilog = "Flags after a lone -- go to every python -m grader call, e.g. -- --no-hidden"
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # split by hand: argparse's REMAINDER would swallow our own flags
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    args = p.parse_args(argv)
    root = Path(args.dir)
    if not root.is_dir():
        print(f"error: {root} is not a folder of submissions", file=sys.stderr)
        return 2
    res_dir = Path(args.results_dir) if args.results_dir else root.parent / "results"
    try:
        res_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create --results_dir {res_dir} ({e.strerror})", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be >= 1", file=sys.stderr)
        return 2
    for made in _make_private([root, res_dir]):
        print(f"note: made {made} private to root (chmod go-rwx) so that student code cannot read other "
              "students' files")
    # ordinary-user mode with bubblewrap: hide both folders from the children (grader.sandbox.bwrap_argv)
    os.environ["GRADER_PRIVATE_PATHS"] = os.pathsep.join(
        [p for p in os.environ.get("GRADER_PRIVATE_PATHS", "").split(os.pathsep) if p]
        + [str(root.resolve()), str(res_dir.resolve())])
    subs = submissions(root)
    todo = [s for s in subs if args.regrade or not (res_dir / f"{student_id(s)}.json").is_file()
            or json.loads((res_dir / f"{student_id(s)}.json").read_text()).get("output", "").startswith("Grader error")]
    print(f"{len(subs)} submissions, {len(subs) - len(todo)} already graded, {len(todo)} to grade")
    from tqdm import tqdm

    guard = Guard()

    def run(s: Path) -> dict:
        guard.check(f"before {student_id(s)} was graded")
        with guard.lock:
            guard.last.append(student_id(s))
        r = grade_one(s, res_dir / f"{student_id(s)}.json", extra, args.timeout)
        guard.check(f"while {student_id(s)} was graded")
        return r

    stopped = ""
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run, s) for s in todo]
        for f in tqdm(futures, desc="batch", unit="sub", disable=not sys.stderr.isatty()):
            try:
                r = f.result()
            except IntegrityError as e:
                stopped = str(e)
                for other in futures:
                    other.cancel()
                continue
            if r["note"]:
                print(f"{r['student']}: {r['note']}")
    if stopped:
        print(f"error: {stopped}", file=sys.stderr)
        return 3
    rows, names = [], []
    for s in subs:
        path = res_dir / f"{student_id(s)}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {"score": 0, "tests": [], "output": "not graded"}
        tests = data.get("tests", [])
        for t in tests:
            if t.get("name") not in names:
                names.append(t["name"])
        rows.append((student_id(s), data.get("score", 0), {t["name"]: t.get("score", 0) for t in tests},
                     data.get("output", "")))
    with open(args.csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "total", *names, "note"])
        for sid, total, per, note in rows:
            w.writerow([sid, total, *[per.get(n, "") for n in names], note if note.startswith("Grader error") else ""])
    print(f"Wrote {args.csv} ({len(rows)} students) and {res_dir}/")
    return 0

"""python -m grader batch DIR --jobs N --csv grades.csv

Grades every submission in DIR (one folder or .zip per student), each in its own grader process, and
writes results/<student>.json plus a CSV for the gradebook. Already graded submissions are skipped, so
an interrupted batch resumes where it stopped; one broken submission never stops the batch.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
    res_dir.mkdir(parents=True, exist_ok=True)
    subs = submissions(root)
    todo = [s for s in subs if args.regrade or not (res_dir / f"{student_id(s)}.json").is_file()
            or json.loads((res_dir / f"{student_id(s)}.json").read_text()).get("output", "").startswith("Grader error")]
    print(f"{len(subs)} submissions, {len(subs) - len(todo)} already graded, {len(todo)} to grade")
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(grade_one, s, res_dir / f"{student_id(s)}.json", extra, args.timeout) for s in todo]
        for f in tqdm(futures, desc="batch", unit="sub"):
            r = f.result()
            if r["note"]:
                tqdm.write(f"{r['student']}: {r['note']}")
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

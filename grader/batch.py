"""python -m grader batch DIR [--assignment a1|a2] [--jobs N | --scheduler ADDRESS] --csv grades.csv

Grades every submission in DIR (one folder or .zip per student), each in its own grader process, and
writes results/<student>.json plus a CSV for the gradebook and a class report beside it (<csv>_report.md and
.png: score histogram, per-check full-marks rates, most frequent feedback; grader/report.py). Already graded
submissions are skipped, so an interrupted batch resumes where it stopped; one broken submission never stops
the batch.

Where it grades: with Dask installed (pip install -r requirements-optional.txt), on a local Dask cluster of
--jobs workers, or on an existing cluster with --scheduler ADDRESS (grader/distributed.py: each worker gets a
zip of the student files and returns results.json; the batch folder stays on this machine); without Dask, or
with --pool threads, in a pool of --jobs threads on this machine.

Integrity: the grader, framework and data are checked against a manifest taken at the start, before each
submission and after it (on every worker); a change stops the batch and names the submission(s) graded last. As
root, the submissions and results folders are made private (chmod go-rwx) so student code cannot read other
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader.integrity import IntegrityError, changes, manifest
from learning.agents import ASSIGNMENTS, DEFAULT_ASSIGNMENT, describe_assignments
from util.config import REPO_ROOT


def _kind(mode: int) -> str:
    """'' for a folder or regular file (the entries that can be submissions), else what the entry is."""
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return ""
    return {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
            stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}.get(stat.S_IFMT(mode), "not a regular file")


def list_submissions(root: Path) -> tuple[list[Path], list[str]]:
    """(the submissions in ``root``: real folders and regular .zip files, sorted; one line per entry skipped
    because it is a link, FIFO, device or socket). Entries are lstat-ed only, never followed or opened; hidden
    entries and other regular files are ignored."""
    subs, skipped = [], []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        try:
            mode = p.lstat().st_mode
        except OSError as e:
            skipped.append(f"{shown(p.name)}: error: cannot read this entry ({e.strerror}); not graded")
            continue
        kind = _kind(mode)
        if kind:
            skipped.append(f"{shown(p.name)}: error: {kind}, not a folder or a regular .zip file; not graded")
        elif stat.S_ISDIR(mode) or p.suffix == ".zip":
            subs.append(p)
    return subs, skipped


def submissions(root: Path) -> list[Path]:
    return list_submissions(root)[0]


def student_id(p: Path) -> str:
    """The submission's name in results/<student_id>.json and the gradebook: the folder's name, a zip's stem."""
    return p.stem if p.suffix == ".zip" else p.name


def shown(name: str) -> str:
    """A file name as text that can always be printed and written (bytes that are not UTF-8 as \\xNN)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def duplicates(subs: list[Path]) -> list[str]:
    """One line per student id shared by two submissions (a folder alice/ and alice.zip): they would share one
    results file."""
    by_id: dict[str, list[Path]] = {}
    for s in subs:
        by_id.setdefault(student_id(s), []).append(s)
    return [f"{' and '.join(shown(p.name) for p in ps)} are both the submission of {shown(sid)!r} "
            f"(results {shown(sid)}.json)" for sid, ps in by_id.items() if len(ps) > 1]


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn: the child gets SIGKILL when the thread that started it exits (a Dask worker lost mid-task).
    libc's prctl is looked up here, in the parent, so that the child only calls it between fork and exec."""
    if sys.platform != "linux":
        return None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(1, signal.SIGKILL, 0, 0, 0)          # PR_SET_PDEATHSIG


def run_grader(sub: Path, out: Path, extra: list[str], timeout: float, env: dict[str, str] | None = None,
               die_with_parent: bool = False) -> tuple[int | None, str]:
    """Run ``python -m grader SUB --out OUT *extra``; returns (its exit status, None on timeout; a note: the last
    line of its stderr when it failed)."""
    try:
        proc = subprocess.run([sys.executable, "-m", "grader", str(sub), "--out", str(out), *extra], cwd=REPO_ROOT,
                              capture_output=True, text=True, errors="backslashreplace", timeout=timeout, env=env,
                              preexec_fn=_die_with_parent() if die_with_parent else None)
    except subprocess.TimeoutExpired:
        return None, f"grading took longer than {timeout:.0f} s"
    return proc.returncode, "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["grader failed"])[-1]


def unreadable(sub: Path, assignment: str = "a1") -> str:
    """'' if this process can read the submission (its folders and ``assignment``'s student files, or the .zip),
    else why not.
    Nothing but regular files is opened (links, FIFOs, devices are not); folders deeper than MAX_FOLDER_DEPTH are
    not searched (the grading refuses them with its own error)."""
    from grader.intake import walk_bounded
    from learning.agents import todo_manifest

    names = {spec.file_name for spec in todo_manifest("full", assignment).values()}

    def fail(e: OSError) -> None:
        raise e

    def try_open(path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        os.close(fd)

    try:
        mode = sub.lstat().st_mode
        if not stat.S_ISDIR(mode):
            if _kind(mode):
                return f"{_kind(mode)}: {shown(str(sub))}"
            try_open(str(sub))
            return ""
        for dirpath, _, _, filenames in walk_bounded(sub, skip=(), strict=False, onerror=fail):
            for n in filenames:
                path = os.path.join(dirpath, n)
                if n in names and stat.S_ISREG(os.lstat(path).st_mode):
                    try_open(path)
    except OSError as e:
        return f"{e.strerror or type(e).__name__}: {shown(str(e.filename or sub))}"
    return ""


def grade_one(sub: Path, out: Path, extra: list[str], timeout: float) -> dict:
    t0 = time.time()
    _, note = run_grader(sub, out, extra, timeout)
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="folder holding one submission folder or .zip per student")
    p.add_argument("--jobs", type=int, default=None,
                   help="submissions graded in parallel on this machine (local Dask workers or threads; default 1)")
    p.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler (tcp://HOST:PORT) whose workers grade; needs Dask")
    p.add_argument("--pool", choices=("dask", "threads"), default=None,
                   help="without --scheduler: a local Dask cluster (the default when Dask is installed) or threads")
    p.add_argument("--csv", default="grades.csv", help="gradebook CSV (default grades.csv); the report goes beside it")
    p.add_argument("--results_dir", default=None, help="per-student results.json folder (default DIR/../results)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per submission (default 3600)")
    p.add_argument("--regrade", action="store_true", help="grade again even if results exist")
    p.add_argument("--assignment", default=DEFAULT_ASSIGNMENT, choices=tuple(ASSIGNMENTS),
                   help=f"the assignment the submissions are: {describe_assignments()}; default {DEFAULT_ASSIGNMENT}")
    p.epilog = "Flags after a lone -- go to every python -m grader call, e.g. -- --no-hidden"
    return p


def _needs_grading(path: Path) -> bool:
    """No results yet, or results that say the grading itself failed (those are graded again)."""
    try:
        return json.loads(path.read_text()).get("output", "").startswith("Grader error")
    except (OSError, ValueError, AttributeError):
        return True


def _grade_threads(todo: list[Path], res_dir: Path, extra: list[str], args: argparse.Namespace) -> str:
    """Grade ``todo`` in a pool of threads on this machine; returns '' or why the batch stopped (integrity)."""
    from tqdm import tqdm

    guard = Guard()

    def run(s: Path) -> dict:
        guard.check(f"before {shown(student_id(s))} was graded")
        with guard.lock:
            guard.last.append(shown(student_id(s)))
        r = grade_one(s, res_dir / f"{student_id(s)}.json", extra, args.timeout)
        guard.check(f"while {shown(student_id(s))} was graded")
        return r

    stopped = ""
    with ThreadPoolExecutor(max_workers=max(1, args.jobs or 1)) as pool:
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
                print(f"{shown(r['student'])}: {shown(r['note'])}")
    return stopped


def _grade_dask(todo: list[Path], res_dir: Path, extra: list[str], args: argparse.Namespace) -> None:
    """Grade ``todo`` on a Dask cluster (grader/distributed.py), writing each result as it comes back.

    Raises BatchError (exit 2) or IntegrityError (exit 3)."""
    from grader.distributed import check_workers, grade_all, open_client, pack_submission
    from grader.grade import error_results, write_json_atomic
    from grader.intake import SubmissionError

    items = []
    for s in todo:
        try:
            items.append((student_id(s), pack_submission(s, args.assignment)))
        except SubmissionError as e:      # what `python -m grader` would say about it, without a worker
            write_json_atomic(error_results(str(e)), res_dir / f"{student_id(s)}.json")
            print(f"{shown(student_id(s))}: error: {shown(str(e))}")
    if not items:
        return
    mine = manifest()

    def save(sid: str, results: dict, note: str) -> None:
        write_json_atomic(results, res_dir / f"{sid}.json")
        if note:
            print(f"{shown(sid)}: {shown(note)}")

    client, cluster, where = open_client(args.scheduler, args.jobs or 1)
    try:
        print(f"grading on {where}")
        check_workers(client, mine)
        grade_all(client, items, extra, args.timeout, mine, save, progress=sys.stderr.isatty())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: a string starting with = + - @ tab or CR gets a leading quote
    (OWASP CSV injection); numbers are kept."""
    if isinstance(value, str):
        value = shown(value)
        return "'" + value if value.startswith(FORMULA_START) else value
    return value


def write_csv(path: Path, subs: list[Path], res_dir: Path) -> int:
    """The gradebook: one row per submission (total, points per check, a note for failed gradings); every text cell
    through :func:`cell` (printable names, no formulas)."""
    rows, names = [], []
    for s in subs:
        try:
            data = json.loads((res_dir / f"{student_id(s)}.json").read_text(encoding="utf-8"))
            tests = [t for t in data.get("tests", []) if isinstance(t, dict) and isinstance(t.get("name"), str)]
        except (OSError, ValueError, AttributeError):
            data, tests = {"score": 0, "output": "not graded"}, []
        for t in tests:
            if t["name"] not in names:
                names.append(t["name"])
        rows.append((student_id(s), data.get("score", 0), {t["name"]: t.get("score", 0) for t in tests},
                     str(data.get("output", ""))))
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        w.writerow([cell(c) for c in ["student", "total", *names, "note"]])
        for sid, total, per, note in rows:
            w.writerow([cell(c) for c in [sid, total, *[per.get(n, "") for n in names],
                                          note if note.startswith("Grader error") else ""]])
    return len(rows)


def _report(csv_path: Path, subs: list[Path], res_dir: Path) -> None:
    """The class report beside the CSV (a failure here never fails the batch: grades are written)."""
    from grader.report import ReportError, write_report

    try:
        md, png = write_report(res_dir, csv_path.with_name(csv_path.stem + "_report"), [student_id(s) for s in subs])
    except (ReportError, OSError) as e:
        print(f"note: no class report ({e})")
        return
    print(f"Wrote the class report {md}" + (f" and {png}" if png.exists() else ""))


def _dask_choice(args: argparse.Namespace) -> tuple[bool, str]:
    """(grade on Dask?, '' or the error line for a choice this machine cannot honour)."""
    from grader.distributed import INSTALL_HINT, dask_available

    if args.scheduler is not None and args.pool == "threads":
        return False, "--scheduler grades on a Dask cluster: leave out --pool threads"
    if args.scheduler is not None or args.pool == "dask":
        if not dask_available():
            what = "--scheduler" if args.scheduler is not None else "--pool dask"
            return False, f"{what} needs Dask distributed, which is not installed: {INSTALL_HINT}"
        return True, ""
    return args.pool is None and dask_available(), ""


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # split by hand: argparse's REMAINDER would swallow our own flags
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    args = p.parse_args(argv)
    if "--assignment" in extra or any(a.startswith("--assignment=") for a in extra):
        print("error: give --assignment before the --, as a batch flag (it also chooses the files sent to workers)",
              file=sys.stderr)
        return 2
    extra = ["--assignment", args.assignment, *extra]
    root = Path(args.dir)
    if not root.is_dir():
        print(f"error: {root} is not a folder of submissions", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print("error: --jobs must be >= 1", file=sys.stderr)
        return 2
    use_dask, problem = _dask_choice(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.scheduler is not None and args.jobs is not None:
        print("note: --jobs is ignored with --scheduler: the cluster's workers decide how many grade at once")
    res_dir = Path(args.results_dir) if args.results_dir else root.parent / "results"
    try:
        res_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create --results_dir {res_dir} ({e.strerror})", file=sys.stderr)
        return 2
    for made in _make_private([root, res_dir]):
        print(f"note: made {made} private to root (chmod go-rwx) so that student code cannot read other "
              "students' files")
    # ordinary-user mode with bubblewrap: hide both folders from the children (grader.views.bwrap_argv)
    os.environ["GRADER_PRIVATE_PATHS"] = os.pathsep.join(
        [p for p in os.environ.get("GRADER_PRIVATE_PATHS", "").split(os.pathsep) if p]
        + [str(root.resolve()), str(res_dir.resolve())])
    subs, skipped = list_submissions(root)
    for line in skipped:
        print(line, file=sys.stderr)
    dup = duplicates(subs)
    if dup:
        print(f"error: {'; '.join(dup)}: keep one of each (remove or rename the other) and run the batch again; "
              "nothing was graded", file=sys.stderr)
        return 2
    todo = [s for s in subs if args.regrade or _needs_grading(res_dir / f"{student_id(s)}.json")]
    print(f"{len(subs)} submissions, {len(subs) - len(todo)} already graded, {len(todo)} to grade")
    for s in todo:
        why = unreadable(s, args.assignment)
        if why:
            print(f"error: cannot read the submission {shown(str(s))} ({why}): make it readable to the user running "
                  f"the batch (e.g. chmod -R u+rX {root}) or run the batch as root; results already written are kept",
                  file=sys.stderr)
            return 2
    if use_dask and todo:
        from grader.distributed import BatchError

        try:
            _grade_dask(todo, res_dir, extra, args)
        except BatchError as e:
            print(f"error: {e}; results already written are kept", file=sys.stderr)
            return 2
        except IntegrityError as e:
            print(f"error: {e}", file=sys.stderr)
            return 3
    elif todo:
        stopped = _grade_threads(todo, res_dir, extra, args)
        if stopped:
            print(f"error: {stopped}", file=sys.stderr)
            return 3
    n = write_csv(Path(args.csv), subs, res_dir)
    print(f"Wrote {args.csv} ({n} students) and {res_dir}/")
    _report(Path(args.csv), subs, res_dir)
    return 0

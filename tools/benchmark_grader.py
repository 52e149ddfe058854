#!/usr/bin/env python
"""Grader budget: grade one submission (the reference solution) on one thread and report what a Gradescope container
must hold: the CPU time of the whole process tree (user + system, the grader, its supervisors and every child), the
wall time, and the peak memory summed over the tree (PSS: shared pages split between the processes that map them,
sampled every 0.1 s from /proc/<pid>/smaps_rollup; root reads every sandbox uid's).

    python tools/benchmark_grader.py [--cores 0] [--stub] [--no-performance] [--assignment a2]

Gradescope's defaults are 10 minutes, 768 MB and half a CPU; the grading-budget target is 120 s of CPU and 500 MB.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

from learning.agents import ASSIGNMENTS, DEFAULT_ASSIGNMENT, describe_assignments

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")     # as run_autograder and python -m grader do


def tree_pss(root: int) -> list[tuple[str, float]]:
    """(role, PSS in MB) of ``root`` and each of its descendants (processes that vanish while read are skipped); the
    role is the script a process runs (grade, supervisor.py, grader_child.py, ...)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                kb = next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except (OSError, StopIteration, ValueError):
            continue
        script = next((Path(a).name for a in argv[1:] if a.endswith(".py")), "")
        out.append(("grader (parent)" if pid == root else script or Path(argv[0]).name if argv else "?", kb / 1024))
    return out


class PeakSampler(threading.Thread):
    """Samples :func:`tree_pss` of this process every ``period`` s; ``peak`` holds the largest sum seen and
    ``at_peak`` the processes that made it."""

    def __init__(self, period: float = 0.1):
        super().__init__(daemon=True)
        self.period, self.peak, self.stop = period, 0.0, threading.Event()
        self.at_peak: list[tuple[str, float]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            procs = tree_pss(os.getpid())
            total = sum(mb for _, mb in procs)
            if total > self.peak:
                self.peak, self.at_peak = total, procs
            self.stop.wait(self.period)


def cpu_seconds() -> float:
    """User + system CPU of this process and every waited-for descendant (supervisors wait for their children)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cores", default="0", help="CPU cores to pin to, comma separated (default: core 0 only)")
    p.add_argument("--stub", action="store_true", help="grade the untouched stubs instead of the reference")
    p.add_argument("--no-performance", dest="performance", action="store_false", help="unit checks only")
    p.add_argument("--assignment", default="a1", choices=tuple(ASSIGNMENTS),
                   help=f"whose submission: {describe_assignments()}; default {DEFAULT_ASSIGNMENT}")
    args = p.parse_args(argv)
    cores = {int(c) for c in args.cores.split(",")}
    os.sched_setaffinity(0, cores)  # children inherit the affinity
    sampler = PeakSampler()
    sampler.start()
    cpu0, t0 = cpu_seconds(), time.time()
    from grader.grade import format_table, grade
    from grader.reference_submissions import write_submission

    sub = write_submission(Path(tempfile.mkdtemp()) / "sub", reference=not args.stub, assignment=args.assignment)
    report = grade(sub, include_hidden=True, include_performance=args.performance, jobs=len(cores),
                   assignment=args.assignment)
    wall, cpu = time.time() - t0, cpu_seconds() - cpu0
    sampler.stop.set()
    sampler.join()
    print(format_table(report))
    print(f"\nGraded {args.assignment} on {len(cores)} core(s), --jobs {len(cores)}: CPU time {cpu:.0f} s (whole tree; target 120 s), "
          f"wall time {wall:.0f} s ({wall / 60:.1f} min; Gradescope's default limit 10 min)")
    print(f"Peak memory (PSS summed over the process tree): {sampler.peak:.0f} MB (target 500 MB; "
          "Gradescope's default 768 MB)")
    print("  at the peak: " + ", ".join(f"{role} {mb:.0f} MB" for role, mb in sampler.at_peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Grader budget: grade one submission (the reference solution) pinned to one CPU core and report the
wall time and the peak memory: grader process + the largest check child + the largest supervisor (with one
core, --jobs 1: one check at a time, so these three are the most that is ever resident together).

    python tools/benchmark_grader.py [--cores 0] [--stub]

Gradescope's defaults are 10 minutes, 768 MB and half a CPU.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")     # as run_autograder and python -m grader do


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cores", default="0", help="CPU cores to pin to, comma separated (default: core 0 only)")
    p.add_argument("--stub", action="store_true", help="grade the untouched stubs instead of the reference")
    args = p.parse_args(argv)
    cores = {int(c) for c in args.cores.split(",")}
    os.sched_setaffinity(0, cores)  # children inherit the affinity
    from grader.grade import format_table, grade
    from grader.sandbox import PEAK_SUPERVISOR_KB
    from grader.submissions import write_submission

    sub = write_submission(Path(tempfile.mkdtemp()) / "sub", reference=not args.stub)
    t0 = time.time()
    report = grade(sub, include_hidden=True, include_performance=True, jobs=len(cores))
    wall = time.time() - t0
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(format_table(report))
    print(f"\nGraded on {len(cores)} core(s): wall time {wall:.0f} s ({wall / 60:.1f} min; budget 10 min)")
    sup = PEAK_SUPERVISOR_KB[0] / 1024
    print(f"Peak memory: grader {parent:.0f} MB + largest child {child:.0f} MB + supervisor {sup:.0f} MB = "
          f"{parent + child + sup:.0f} MB (budget 768 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

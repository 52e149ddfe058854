"""Command line: python -m grader SUBMISSION | --self-check | calibrate | batch DIR | report RESULTS_DIR."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from learning.agents import ASSIGNMENTS, DEFAULT_ASSIGNMENT, describe_assignments

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")     # the grader's own work is light: BLAS threads would only cost memory

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "batch":
        from grader.batch import main as batch_main

        return batch_main(argv[1:])
    if argv and argv[0] == "report":
        from grader.report import main as report_main

        return report_main(argv[1:])
    if argv and argv[0] == "calibrate":
        from grader.calibrate import main as calibrate_main

        return calibrate_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m grader", description=(
        "Grade one submission (a folder or .zip holding learning/*_agent.py and its assignment's configs). "
        "Subcommands: 'batch DIR' grades a folder of submissions, 'report RESULTS_DIR' summarizes a batch's results, "
        "'calibrate' rewrites grader/thresholds.yaml."))
    p.add_argument("submission", nargs="?", help="submission folder or .zip")
    p.add_argument("--out", default="results.json",
                   help="where to write Gradescope results.json (default ./results.json)")
    p.add_argument("--self-check", action="store_true",
                   help="run the public unit checks on this working tree (for students; no performance checks)")
    p.add_argument("--no-performance", action="store_true", help="skip the training-based performance checks")
    p.add_argument("--no-hidden", action="store_true", help="skip the hidden unit-check variants")
    p.add_argument("--train-timeout", type=float, default=600.0, help="seconds per training run (default 600)")
    p.add_argument("--jobs", type=int, default=2, help="unit checks run in parallel (default 2)")
    p.add_argument("--mem-mb", type=int, default=2048,
                   help="memory limit of one check in MB: each process's address space, and the resident memory and "
                        "memfds of all its processes together (default 2048, at least 1024)")
    p.add_argument("--assignment", default=DEFAULT_ASSIGNMENT, choices=tuple(ASSIGNMENTS),
                   help=f"which assignment the submission is: {describe_assignments()}; default {DEFAULT_ASSIGNMENT}")
    p.add_argument("--scope", default=None, choices=("core", "full"),
                   help="which TODO methods the students wrote: core (the loss, DAgger's action choice and aggregation, "
                        "the noisy step) or full (also the training loop, the collection loops and the rounds); "
                        "default: this copy's scope")
    p.add_argument("--only", default=None,
                   help="comma-separated unit checks by key (e.g. bc_loss, pg_rtg: each check's key is in the "
                        "feedback and in grader/README.md) and/or agents (e.g. bc, pg) whose performance checks run; "
                        "default: all")
    args = p.parse_args(argv)
    from grader.grade import DeclarationError, error_results, format_table, grade, to_results_json, write_json_atomic
    from grader.intake import SubmissionError
    from grader.integrity import IntegrityError
    from grader.isolation import SandboxError, sandbox_policy

    if args.only is not None:
        from grader.grade import checks_of
        from learning.agents import STUDENT_AGENTS, assignment_of

        known = sorted(checks_of(args.assignment)) + [a for a in STUDENT_AGENTS if assignment_of(a) == args.assignment]
        unknown = [k for k in args.only.split(",") if k not in known]
        if unknown:
            print(f"error: --only {','.join(unknown)}: not a unit check or agent of {args.assignment}; choose from "
                  f"{', '.join(known)}", file=sys.stderr)
            return 2
    if args.self_check:
        args.submission, args.no_performance, args.no_hidden = str(ROOT), True, True
    if not args.submission:
        p.error("give a SUBMISSION folder or .zip (or --self-check)")
    if args.jobs < 1 or args.mem_mb < 1024 or args.train_timeout <= 0:
        print("error: --jobs must be >= 1, --mem-mb >= 1024 (a check imports torch) and --train-timeout > 0",
              file=sys.stderr)
        return 2
    try:
        write_json_atomic(error_results("grading did not finish."), args.out)
    except OSError as e:
        print(f"error: cannot write --out {args.out} ({e.strerror}); choose a writable path", file=sys.stderr)
        return 2
    try:
        policy = sandbox_policy(args.jobs)
        if not args.self_check:
            print(policy.describe(), file=sys.stderr)
            for w in policy.warnings:
                print(f"warning: {w}", file=sys.stderr)
        for n in policy.notes:
            print(f"note: {n}", file=sys.stderr)
        report = grade(args.submission, include_hidden=not args.no_hidden, include_performance=not args.no_performance,
                       train_timeout=args.train_timeout, mem_mb=args.mem_mb, progress=sys.stderr.isatty(),
                       jobs=args.jobs, only=set(args.only.split(",")) if args.only else None,
                       scope=args.scope, assignment=args.assignment)
    except SubmissionError as e:
        write_json_atomic(error_results(str(e)), args.out)
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SandboxError as e:
        write_json_atomic(error_results("the grader cannot isolate student code on this machine."), args.out)
        print(f"error: {e}", file=sys.stderr)
        return 2
    except DeclarationError as e:
        write_json_atomic(error_results("the grader's checks are misdeclared."), args.out)
        print(f"error: {e}", file=sys.stderr)
        return 2
    except IntegrityError as e:
        write_json_atomic(error_results("the grader's files changed during grading; this grade is void."), args.out)
        print(f"error: {e}. Restore the grader (e.g. git checkout / reinstall) before grading anything else.",
              file=sys.stderr)
        return 3
    write_json_atomic(to_results_json(report), args.out)
    print(format_table(report))
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

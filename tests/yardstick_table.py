"""Print the yardstick's whole table (issue 22 item 6): grade every yardstick submission with unit checks only,
one at a time, and print a markdown row per entry (entry, kind, method, expected, points per check, verdict,
feedback of the lost parts) and a summary.

    python -m tests.yardstick_table [--plans correct-01,mistake-03] [--feedback-width 200] [--jobs 2]

Verdicts: ok; UNFAIR (a correct style lost points); MISSED (a mistake kept every point of a check it names);
PARTIAL (it lost them on some variants only); COLLATERAL (it lost points of a check it does not name); info
(not asserted). See tests/test_yardstick.py.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from yardstick.build import Row, grade_plan, judge, plans, table, varied_rows  # noqa: E402


def summary(rows: list[Row]) -> str:
    def count(kind: str) -> str:
        group = [r for r in rows if r.entry.kind == kind]
        return f"{sum(not r.problems for r in group)}/{len(group)}"

    lines = [f"correct styles with full marks: {count('correct')}; mistakes losing exactly their checks: "
             f"{count('mistake')}; info rows: {sum(r.entry.kind == 'info' for r in rows)}"]
    lines += [f"- {r.entry.id}: {'; '.join(r.problems)}" for r in rows if r.problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plans", default="", help="comma-separated submission ids (default: all)")
    p.add_argument("--feedback-width", type=int, default=0, help="cut feedback cells to this many characters")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    wanted = {x for x in args.plans.split(",") if x}
    chosen = [pl for pl in plans() if not wanted or pl.id in wanted]
    if wanted - {pl.id for pl in chosen}:
        print(f"error: unknown submission ids: {', '.join(sorted(wanted - {pl.id for pl in chosen}))}",
              file=sys.stderr)
        return 2
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="yardstick_") as tmp:
        for pl in chosen:
            t0 = time.time()
            all_rows = judge(pl, grade_plan(pl, Path(tmp) / pl.id, jobs=args.jobs))
            fillers = [r for r in all_rows if r.problems and r not in varied_rows(pl, all_rows)]
            rows += varied_rows(pl, all_rows) + fillers
            print(f"{pl.id}: graded in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print(table(rows, args.feedback_width))
    print()
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

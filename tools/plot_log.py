#!/usr/bin/env python
"""Plot learning curves from one or more log.txt files.

Runs in folders that differ only by a ``_seed<N>`` suffix are drawn as one mean ± std band.

    python tools/plot_log.py output/bc_cheetah/log.txt output/dagger_cheetah/log.txt \
        --x Samples --y Test_Return --title "cheetah" --expert cheetah --out curve.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from util.cli import run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logs", nargs="+", help="log.txt files")
    p.add_argument("--x", default="Samples", help="column for the x axis (default Samples)")
    p.add_argument("--y", default="Test_Return", help="column for the y axis (default Test_Return)")
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--labels", nargs="+", default=None, help="one legend label per log (same label = same band)")
    p.add_argument("--expert", default=None,
                   help="draw the expert's return: an env name (reads data/models/expert_<env>.json) or a number")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=VALUE",
                   help="extra horizontal reference line, e.g. --reference BC=2800 (repeatable)")
    p.add_argument("--out", default="curve.png", help="output image (default curve.png)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from learning.imitation import expert_reference
    from util.fsio import check_output_file
    from util.plotting import plot_runs

    check_output_file(args.out, "--out")
    for log in args.logs:
        if not Path(log).is_file():
            raise FileNotFoundError(f"log file not found: {log}")
    if args.labels and len(args.labels) != len(args.logs):
        raise ValueError(f"--labels needs one label per log ({len(args.logs)}), got {len(args.labels)}")
    expert = None
    if args.expert is not None:
        try:
            expert = float(args.expert)
        except ValueError:
            expert = expert_reference(args.expert)
            if expert is None:
                raise ValueError(f"no documented expert return for '{args.expert}' "
                                 f"(data/models/expert_{args.expert}.json)") from None
    refs = {}
    for item in args.reference:
        name, sep, value = item.partition("=")
        try:
            refs[name] = float(value)
        except ValueError:
            raise ValueError(f"--reference expects NAME=VALUE (e.g. BC=2800), got '{item}'") from None
        if not sep or not name:
            raise ValueError(f"--reference expects NAME=VALUE (e.g. BC=2800), got '{item}'")
    out = plot_runs(args.logs, args.x, args.y, args.title, args.out, expert, args.labels, refs)
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

#!/usr/bin/env python
"""Build the Gradescope autograder zip: setup.sh + run_autograder + this repository (with the grader).

    python tools/make_gradescope.py autograder.zip --scope core
    python tools/make_gradescope.py autograder_a2.zip --assignment a2 --scope core

At grading time run_autograder grades /autograder/submission into /autograder/results/results.json
(a valid "grader error" result is written first, so a crash still yields a readable result) in the chosen scope
(--scope core|full, default full: the TODO methods the students wrote; give the scope of their release,
tools/make_release.py --scope) of one assignment (--assignment a1|a2, default a1: one Gradescope assignment per
course assignment). Its --train-timeout is the one the assignment's performance checks were calibrated for
(`train_timeout` in grader/thresholds.yaml, or grader/thresholds_a2.yaml, written by `python -m grader calibrate`:
6 × the slowest calibration training's CPU seconds).
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from learning.agents import ASSIGNMENTS, DEFAULT_ASSIGNMENT, describe_assignments

ROOT = Path(__file__).resolve().parent.parent

SETUP = """#!/usr/bin/env bash
# Gradescope setup: install Python and the pinned requirements (CPU-only torch), then set permissions so that
# the grader (root) can run student code as sandbox users that can execute the venv but read no secret.
# AUTOGRADER_ROOT (default /autograder) and AUTOGRADER_VENV (default $AUTOGRADER_ROOT/venv) exist for testing
# this script on a simulated layout; an existing venv is reused.
set -euo pipefail
ROOT=${AUTOGRADER_ROOT:-/autograder}
VENV=${AUTOGRADER_VENV:-$ROOT/venv}
if [ ! -x "$VENV/bin/python" ]; then
  if ! command -v python3 > /dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 python3-pip python3-venv > /dev/null
  fi
  # the system Python: a sandbox user must be able to execute the interpreter
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
  "$VENV/bin/pip" install -q -r "$ROOT/source/requirements.txt"
fi
# the venv: readable and executable by everyone; the grader's source (solutions, hidden checks, thresholds,
# the expert's weights): root only
chmod -R a+rX "$VENV"
chown -R root:root "$ROOT/source" 2> /dev/null || true
chmod -R go-rwx "$ROOT/source"
"""

# (a str.format template: {train_timeout}, {scope} and {assignment} are filled in, shell braces are doubled)
RUN = """#!/usr/bin/env bash
# Gradescope entry point: grade /autograder/submission into /autograder/results/results.json (as root; student
# code runs under sandbox uids). AUTOGRADER_ROOT / AUTOGRADER_VENV: see setup.sh; GRADER_EXTRA_ARGS: for tests.
ROOT=${{AUTOGRADER_ROOT:-/autograder}}
VENV=${{AUTOGRADER_VENV:-$ROOT/venv}}
cd "$ROOT/source"
mkdir -p "$ROOT/results"
chmod 755 "$ROOT/results"
export MUJOCO_GL=egl OMP_NUM_THREADS=1
"$VENV/bin/python" -m grader "$ROOT/submission" --out "$ROOT/results/results.json" \\
    --jobs 1 --mem-mb 2048 --train-timeout {train_timeout} --scope {scope} --assignment {assignment} \\
    ${{GRADER_EXTRA_ARGS:-}}
if [ ! -s "$ROOT/results/results.json" ]; then
  echo '{{"score": 0, "output": "Grader error: no results were produced. Please contact the course staff.", "tests": []}}' \\
    > "$ROOT/results/results.json"
fi
exit 0
"""  # noqa: E501 - a one-line JSON fallback in the shell script

INCLUDE = ["README.md", "requirements.txt", "run.py", "pyproject.toml", "a1", "a2", "data", "envs", "learning",
           "util", "grader"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output .zip")
    p.add_argument("--assignment", default=DEFAULT_ASSIGNMENT, choices=tuple(ASSIGNMENTS),
                   help=f"the assignment the package grades: {describe_assignments()}; default {DEFAULT_ASSIGNMENT}")
    p.add_argument("--scope", default="full", choices=("core", "full"),
                   help="the scope the package grades (the students' release's: tools/make_release.py --scope); "
                        "default full")
    args = p.parse_args(argv)
    out = Path(args.out)
    import yaml

    from grader.grade import THRESHOLD_FILES
    from learning.agents import todo_manifest

    thresholds_file = THRESHOLD_FILES[args.assignment]
    timeout = yaml.safe_load(thresholds_file.read_text()).get("train_timeout")
    if not isinstance(timeout, int) or timeout <= 0:
        print(f"error: grader/{thresholds_file.name} has no train_timeout; run: python -m grader calibrate "
              f"--assignment {args.assignment}", file=sys.stderr)
        return 2
    run_script = RUN.format(train_timeout=timeout, scope=args.scope, assignment=args.assignment)
    manifest = todo_manifest(args.scope, args.assignment)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("setup.sh", SETUP), ("run_autograder", run_script)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            z.writestr(info, text)
        for item in INCLUDE:
            src = ROOT / item
            files = [src] if src.is_file() else sorted(f for f in src.rglob("*")
                                                       if f.is_file() and "__pycache__" not in f.parts)
            for f in files:
                if f.name.endswith("_train_log.txt") or f.relative_to(ROOT).parts[:2] == ("data", "training"):
                    continue   # training logs and compact training checkpoints are not needed to grade
                z.write(f, str(f.relative_to(ROOT)))
    names = zipfile.ZipFile(out).namelist()
    for required in ("setup.sh", "run_autograder", "grader/__main__.py", f"grader/{thresholds_file.name}",
                     *(f"grader/solution/{agent}_solution.py" for agent in manifest)):
        if required not in names:
            print(f"error: {required} missing from {out}", file=sys.stderr)
            return 1
    files = ", ".join(f"learning/{spec.file_name}" for spec in manifest.values())
    print(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(names)} files; grades {args.assignment} in the "
          f"{args.scope} scope). Upload it as the Gradescope autograder of {args.assignment};"
          f" the submission must hold {files} ({args.assignment}/*.yaml optional). Training timeout: {timeout} s per "
          "performance check (calibrated); grader/README.md gives the Gradescope settings.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

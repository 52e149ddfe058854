#!/usr/bin/env python
"""Build the Gradescope autograder zip: setup.sh + run_autograder + this repository (with the grader).

    python tools/make_gradescope.py autograder.zip

At grading time run_autograder grades /autograder/submission into /autograder/results/results.json
(a valid "grader error" result is written first, so a crash still yields a readable result).
"""
from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SETUP = """#!/usr/bin/env bash
# Gradescope setup: install Python and the pinned requirements (CPU-only torch).
set -euo pipefail
apt-get update -qq && apt-get install -y -qq python3 python3-pip python3-venv > /dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
/autograder/venv/bin/pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
/autograder/venv/bin/pip install -q -r /autograder/source/requirements.txt
chmod -R a+rX /autograder/source /autograder/venv
"""

RUN = """#!/usr/bin/env bash
# Gradescope entry point: grade /autograder/submission into /autograder/results/results.json.
cd /autograder/source
mkdir -p /autograder/results
export MUJOCO_GL=egl OMP_NUM_THREADS=1
/autograder/venv/bin/python -m grader /autograder/submission --out /autograder/results/results.json \\
    --mem-mb 2048 --train-timeout 400
status=$?
if [ ! -s /autograder/results/results.json ]; then
  echo '{"score": 0, "output": "Grader error: no results were produced. Please contact the course staff.", "tests": []}' \\
    > /autograder/results/results.json
fi
exit 0
"""

INCLUDE = ["README.md", "requirements.txt", "run.py", "pyproject.toml", "a1", "data", "envs", "learning", "util",
           "grader"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output .zip")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("setup.sh", SETUP), ("run_autograder", RUN)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            z.writestr(info, text)
        for item in INCLUDE:
            src = ROOT / item
            files = [src] if src.is_file() else sorted(f for f in src.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
            for f in files:
                if f.name.endswith("_train_log.txt"):
                    continue
                z.write(f, str(f.relative_to(ROOT)))
    names = zipfile.ZipFile(out).namelist()
    for required in ("setup.sh", "run_autograder", "grader/__main__.py", "grader/thresholds.yaml", "grader/solution/bc_solution.py"):
        if required not in names:
            print(f"error: {required} missing from {out}", file=sys.stderr)
            return 1
    print(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(names)} files). Upload it as the Gradescope autograder;"
          " the submission must hold learning/*_agent.py (a1/*.yaml optional).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

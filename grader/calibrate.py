"""python -m grader calibrate: set the performance thresholds from the reference solution.

For every performance check in grader/thresholds.yaml, the reference solution is trained and evaluated
exactly as the grader does it (same sandbox, same expert oracle and sample budget), over ``--seeds``
training seeds (default 5); so are the untouched stubs, over ``--stub_seeds`` seeds (default 3). Both also run
once at the check's own grading seeds (its ``train_seed`` and ``eval_seed``: exactly what the grader runs), so the
shipped reference earns full marks and the shipped stubs nothing by construction; the other seeds give the margin
for submissions whose random streams differ.
  full = 0.95 × the worst reference return          (every reference run earns full marks)
  low  = the best stub return + 15% of the gap      (the stubs — e.g. DAgger without its TODOs, which is
                                                     BC on the round-0 demos — earn nothing, with a margin)
``--stubs_only`` keeps ``full`` and re-derives ``low`` from fresh stub runs. ``--envs`` recalibrates only
the checks on those tasks (e.g. after retraining one expert) and leaves the others as they are.
The file is rewritten with these values; each check records what it was calibrated against (the expert's
sha256 prefix, the command and the date) under ``calibration``.
"""
from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from learning.expert import expert_model_path, load_expert_config
from util.config import REPO_ROOT
from util.fsio import atomic_write, file_sha256

STUB_MARGIN = 0.15


def _one(args: tuple[dict, int, int, bool, Path, int]) -> float:
    spec, seed, eval_seed, reference, scratch_parent, jobs = args
    from grader.checks import GradingContext, evaluate_trained
    from grader.grade import find_student_files
    from grader.sandbox import make_scratch, remove_scratch, sandbox_policy
    from grader.submissions import write_submission
    from learning.agents import todo_manifest

    manifest = todo_manifest()
    root = Path(tempfile.mkdtemp(dir=scratch_parent))
    sub = write_submission(root / "sub", reference=reference)
    files = find_student_files(sub, [m.file_name for m in manifest.values()])
    scratch, private = make_scratch()
    try:
        ctx = GradingContext(sandbox_policy(jobs), scratch, private, files, manifest,
                             present={f: True for f in files}, train_timeout=1800)
        value, why = evaluate_trained(ctx, spec, seed, eval_seed)
    finally:
        remove_scratch(scratch)
        shutil.rmtree(root, ignore_errors=True)
    if value is None:
        raise RuntimeError(f"calibration run failed ({spec['name']}, seed {seed}, "
                           f"{'reference' if reference else 'stubs'}): {why}")
    return value


def _seed_plan(spec: dict, n: int, base: int) -> list[tuple[int, int]]:
    """(train_seed, eval_seed) pairs for one check: first its own grading seeds (exactly what the grader runs, so the
    shipped reference earns full marks and the stubs nothing by construction), then ``n`` calibration seeds offset
    by ``base`` (a margin for submissions with other random streams)."""
    train, ev = int(spec["train_seed"]), int(spec["eval_seed"])
    return [(train, ev)] + [(base + s, ev + base + s) for s in range(n)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5, help="reference training seeds (at least 5; default 5)")
    p.add_argument("--stub_seeds", type=int, default=3, help="stub training seeds (at least 3; default 3)")
    p.add_argument("--stubs_only", action="store_true", help="keep full; re-derive low from the stubs only")
    p.add_argument("--jobs", type=int, default=2, help="parallel training runs (default 2)")
    p.add_argument("--envs", nargs="+", default=None, metavar="ENV",
                   help="recalibrate only the checks on these tasks (default: every check)")
    p.add_argument("--thresholds", default=str(REPO_ROOT / "grader" / "thresholds.yaml"))
    args = p.parse_args(argv)
    if args.seeds < 5 or args.stub_seeds < 3:
        print("error: calibrate needs --seeds >= 5 and --stub_seeds >= 3", file=sys.stderr)
        return 2
    path = Path(args.thresholds)
    doc = yaml.safe_load(path.read_text())
    tasks = sorted({spec["env"] for spec in doc["performance"]})
    unknown = sorted(set(args.envs or []) - set(tasks))
    if unknown:
        print(f"error: --envs {' '.join(unknown)}: no performance check in {path} runs on "
              f"{'that task' if len(unknown) == 1 else 'those tasks'}; choose from {', '.join(tasks)}", file=sys.stderr)
        return 2
    specs = [spec for spec in doc["performance"] if args.envs is None or spec["env"] in args.envs]
    scratch = Path(tempfile.mkdtemp(prefix="calibrate_"))
    plans = []   # (check index, reference?, its (train_seed, eval_seed) pairs, the grading seeds first)
    for i, spec in enumerate(specs):
        if not args.stubs_only:
            plans.append((i, True, _seed_plan(spec, args.seeds, 10_000)))
        plans.append((i, False, _seed_plan(spec, args.stub_seeds, 20_000)))
    jobs = [(specs[i], train, ev, reference, scratch, args.jobs) for i, reference, plan in plans for train, ev in plan]
    try:
        from tqdm import tqdm

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            returns = iter(tqdm(pool.map(_one, jobs), total=len(jobs), desc="calibrate", unit="run"))
            # (return at the grading seeds, returns at the calibration seeds) of each plan, in the plans' order
            measured = {}
            for i, reference, plan in plans:
                at_grading, *rest = [next(returns) for _ in plan]
                measured[i, reference] = (at_grading, rest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    what = ("--stubs_only" if args.stubs_only else f"--seeds {args.seeds}") + f" --stub_seeds {args.stub_seeds}"
    today = datetime.date.today().isoformat()
    for i, spec in enumerate(specs):
        if args.stubs_only:
            old = spec["calibration"]
            ref_at_grading, ref = old.get("reference_at_grading_seeds"), old["reference_returns"]
        else:
            ref_at_grading, ref = measured[i, True]
        stub_at_grading, stub = measured[i, False]
        worst_ref = min(ref + ([ref_at_grading] if ref_at_grading is not None else []))
        full = 0.95 * worst_ref
        best_stub = max(stub + [stub_at_grading])
        low = best_stub + STUB_MARGIN * (full - best_stub)
        if low >= full:
            print(f"warning: {spec['name']}: stubs ({best_stub:.0f}) reach the reference ({worst_ref:.0f}); "
                  "the check cannot separate them — change its config", file=sys.stderr)
        spec.pop("student_methods", None)        # derived from the TODO manifest now
        spec["full"], spec["low"] = round(float(full), 1), round(float(min(low, full - 1)), 1)
        sha = file_sha256(expert_model_path(load_expert_config(spec["env"])[0]))[:16]
        if args.stubs_only and spec["calibration"].get("expert_sha256", sha) != sha:
            print(f"warning: {spec['name']}: `full` was measured with another expert "
                  f"({spec['calibration']['expert_sha256']}, now {sha}); recalibrate without --stubs_only",
                  file=sys.stderr)
        spec["calibration"] = {"reference_at_grading_seeds": None if ref_at_grading is None
                               else round(float(ref_at_grading), 1),
                               "stub_at_grading_seeds": round(float(stub_at_grading), 1),
                               "reference_returns": [round(float(r), 1) for r in ref],
                               "stub_returns": [round(float(r), 1) for r in stub],
                               "expert_sha256": sha,
                               "command": f"python -m grader calibrate {what}", "date": today}
        ref_grading = "kept" if ref_at_grading is None else round(ref_at_grading)
        print(f"{spec['name']}: reference {[round(r) for r in ref]} (grading seeds: {ref_grading}), "
              f"stubs {[round(r) for r in stub]} (grading seeds: {round(stub_at_grading)}) "
              f"→ low {spec['low']:.0f}, full {spec['full']:.0f}")
    doc["provenance"] = (f"python -m grader calibrate: full = 0.95 x worst reference return, low = best stub return "
                         f"+ {int(STUB_MARGIN * 100)}% of the gap, over the calibration seeds and the check's own "
                         "grading seeds; each check's `calibration` names the expert "
                         "(sha256 prefix), command and date it was calibrated with")
    header = "\n".join(ln for ln in path.read_text().splitlines() if ln.startswith("#"))
    atomic_write(path, header + "\n" + yaml.safe_dump(doc, sort_keys=False, width=120), "thresholds")
    print(f"Wrote {path}")
    return 0

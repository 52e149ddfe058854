"""python -m grader calibrate: set the performance thresholds from the reference solution, with a stated margin.

For every performance check of an assignment (--assignment a1: grader/thresholds.yaml; a2: grader/thresholds_a2.yaml),
the reference solution is trained and evaluated
exactly as the grader does it (same sandbox, same expert oracle and sample budget), over ``--seeds``
training seeds (at least 10), and so are the untouched stubs, over ``--stub_seeds`` seeds (at least 5). Both also
run at the check's own grading seeds (its ``train_seed`` and ``eval_seed``: exactly what the grader runs), once on
each numeric path: ``local`` (the grader's default, this process's threads, ``--jobs`` checks at a time) and
``gradescope`` (a fresh process with one BLAS/OpenMP thread, one check at a time, as the Gradescope package runs).
The paths compute the same numbers by construction (every training child runs torch on one thread; the parent
evaluates with the NumPy actor, float64 inside); a difference is printed and both values count.

  gap    = worst reference return − best stub return           (over every seed and path)
  margin = gap / the task's scale                               (must be ≥ MIN_MARGIN, 25%: else nothing is written;
                                                                  the scale is the expert's return in assignment 1,
                                                                  the check's `return_scale` in assignment 2)
  low    = best stub + 25% of the gap                           (the stubs earn nothing, with room)
  full   = worst reference − 50% of the gap                     (every reference run earns full marks, with room for
                                                                  other random streams and other CPUs' rounding: a
                                                                  correct style's shuffles are another seed, and BC's
                                                                  returns have a long lower tail)

When a check's margin is below MIN_MARGIN, calibrate refuses to write the file and says which check: change that
check's setup (task, demo count, budget, evaluation episodes) until the reference and the stubs are far apart.
``--stubs_only`` keeps the reference returns and re-measures the stubs; ``--rethreshold`` trains nothing and
recomputes every check's ``low``/``full`` from the returns its ``calibration`` holds (after a change of this rule). ``--envs`` recalibrates only the checks on
those tasks (e.g. after retraining one expert) and leaves the others as they are. Each check records what it was
calibrated against (the expert's sha256 prefix and return, or assignment 2's scale, the command and the date) under
``calibration``, and its margin; the assignment's margins table in grader/README.md is rewritten from the file.
"""
from __future__ import annotations

import argparse
import datetime
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from grader.grade import THRESHOLD_FILES
from grader.solution import reference
from learning.agents import ASSIGNMENTS, DEFAULT_ASSIGNMENT, POLICY_SEARCH_AGENTS
from learning.expert import expert_model_path, load_expert_config
from learning.imitation import expert_reference
from util.config import REPO_ROOT
from util.fsio import atomic_write, file_sha256

MIN_SEEDS, MIN_STUB_SEEDS = 10, 5
# The stubs a check must keep at 0 points: the strongest submission that does (almost) nothing and still runs. That is
# the core scope's (the reference's loops around the untouched methods), except DAgger's aggregation: the untouched
# aggregate adds no pairs, so the framework stops the run at round 1 (0 points whatever the thresholds); with the
# reference's aggregate the run goes on and trains on the untouched select_action's zero actions and labels. (The full
# scope's untouched loops collect nothing and stop the same way.)
STUB_KEEPS = {"a1": {"dagger.aggregate": inspect.getsource(reference("dagger", "aggregate"))},
              "a2": {}}   # the core-scope stubs of CEM and PG run end to end (the reference's loops, zero updates)
MIN_MARGIN = 0.25          # (worst reference − best stub) / expert return, at least
LOW_ROOM = 0.25            # low sits this share of the gap above the best stub
FULL_ROOM = 0.5            # full sits this share of the gap below the worst reference (correct styles are other seeds)
TIMEOUT_FACTOR = 6         # train_timeout = this × the most CPU seconds a calibration training took (train_timeout())
PATHS = ("local", "gradescope")
README = REPO_ROOT / "grader" / "README.md"
MARGINS_START, MARGINS_END = "<!-- margins:start -->", "<!-- margins:end -->"     # assignment 1's table


def margins_markers(assignment: str) -> tuple[str, str]:
    """The markers of ``assignment``'s margins table in grader/README.md."""
    if assignment == "a1":
        return MARGINS_START, MARGINS_END
    return f"<!-- margins-{assignment}:start -->", f"<!-- margins-{assignment}:end -->"


def return_scale(spec: dict) -> float | None:
    """What a check's margin is a share of: the expert's return (assignment 1's tasks have one), else the check's
    ``return_scale`` (the task's best return, e.g. 1000 on InvertedPendulum). None when neither is known."""
    if spec["agent"] in POLICY_SEARCH_AGENTS:
        scale = spec.get("return_scale")
        return float(scale) if isinstance(scale, (int, float)) and scale > 0 else None
    return expert_reference(spec["env"])


def _one(args: tuple[dict, int, int, bool, Path, int, str, str]) -> tuple[float, float | None]:
    """Train and evaluate one (check, seed) on one numeric path: the return the grader would measure, and (on the
    gradescope path, a process of its own) the CPU seconds of the training (its supervisor and child)."""
    spec, seed, eval_seed, reference, scratch_parent, jobs, path, assignment = args
    if path == "gradescope":
        return _one_single_threaded(spec, seed, eval_seed, reference, scratch_parent, assignment)
    from grader.context import GradingContext
    from grader.intake import find_student_files
    from grader.isolation import sandbox_policy
    from grader.performance import evaluate_trained
    from grader.reference_submissions import write_submission
    from grader.workspace import make_scratch, remove_scratch
    from learning.agents import todo_manifest

    scope = "full" if reference else "core"
    manifest = todo_manifest(scope, assignment)
    root = Path(tempfile.mkdtemp(dir=scratch_parent))
    sub = write_submission(root / "sub", reference=reference, scope=scope, assignment=assignment,
                           methods=None if reference else STUB_KEEPS[assignment])
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
    return value, None


def _one_single_threaded(spec: dict, seed: int, eval_seed: int, reference: bool, scratch_parent: Path,
                         assignment: str) -> tuple[float, float]:
    """The Gradescope path: a fresh process with one BLAS/OpenMP thread and one check at a time. Also returns the
    CPU seconds (user + system) of its training: that process's children are the check's supervisor and child."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = ("import json, resource, sys; from pathlib import Path; from grader.calibrate import _one; "
            "a = json.loads(sys.argv[1]); "
            "v = _one((a[0], a[1], a[2], a[3], Path(a[4]), 1, 'local', a[5]))[0]; "
            "ru = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(json.dumps([v, ru.ru_utime + ru.ru_stime]))")
    arg = json.dumps([spec, seed, eval_seed, reference, str(scratch_parent), assignment])
    p = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    if p.returncode != 0:
        raise RuntimeError(f"calibration run failed ({spec['name']}, seed {seed}, gradescope path): "
                           f"{(p.stderr.strip().splitlines() or ['?'])[-1]}")
    value, cpu = json.loads(p.stdout.strip().splitlines()[-1])
    return float(value), float(cpu)


def _seed_plan(spec: dict, n: int, base: int) -> list[tuple[int, int, str]]:
    """(train_seed, eval_seed, path) runs for one check: first its own grading seeds on every numeric path (exactly
    what the grader runs), then ``n`` calibration seeds offset by ``base`` on the local path (a margin for
    submissions with other random streams)."""
    train, ev = int(spec["train_seed"]), int(spec["eval_seed"])
    return [(train, ev, path) for path in PATHS] + [(base + s, ev + base + s, "local") for s in range(n)]


def thresholds(ref: list[float], stub: list[float], scale: float) -> dict[str, float]:
    """low, full, gap and margin (gap / ``scale``) from every reference and stub return (grading seeds included)."""
    worst_ref, best_stub = min(ref), max(stub)
    gap = worst_ref - best_stub
    return {"low": best_stub + LOW_ROOM * gap, "full": worst_ref - FULL_ROOM * gap, "gap": gap,
            "margin": gap / abs(scale), "worst_reference": worst_ref, "best_stub": best_stub}


def train_timeout(doc: dict) -> int:
    """The training timeout (s) the checks are calibrated for: TIMEOUT_FACTOR × the most CPU seconds a calibration
    training took (reference or stubs, at the grading seeds, one thread), rounded up to 10 s, at least 60 s.
    The factor covers half a CPU (Gradescope's default: wall ≈ 2 × CPU) and a correct submission three times as
    slow as the reference or a machine that much slower. ``tools/make_gradescope.py`` passes it as --train-timeout."""
    cpu = max(float(spec["calibration"].get("train_cpu_s", 0.0)) for spec in doc["performance"])
    return max(60, int(math.ceil(TIMEOUT_FACTOR * cpu / 10.0)) * 10)


def _scale_of(cal: dict) -> float:
    """The scale a stored calibration's margin is a share of (assignment 1: the expert's return)."""
    return float(cal.get("expert_return", cal.get("return_scale", 0.0)))


def margins_table(doc: dict, assignment: str = DEFAULT_ASSIGNMENT) -> str:
    """``assignment``'s margins table of grader/README.md, from its thresholds file."""
    scale = "expert" if assignment == "a1" else "scale"
    rows = [f"| check | {scale} | reference (worst of n) | stubs (best of n) | margin (gap / {scale}) | low → full |",
            "|---|---|---|---|---|---|"]
    for spec in doc["performance"]:
        cal = spec["calibration"]
        ref = cal["reference_returns"] + cal["reference_at_grading_seeds"]
        stub = cal["stub_returns"] + cal["stub_at_grading_seeds"]
        rows.append(f"| {spec['name']} | {_scale_of(cal):.0f} | {min(ref):.0f} (n={len(ref)}) | "
                    f"{max(stub):.0f} (n={len(stub)}) | {cal['margin']:.0%} | {spec['low']:.0f} → {spec['full']:.0f} |")
    return "\n".join(rows)


def write_margins_readme(doc: dict, readme: Path = README, assignment: str = DEFAULT_ASSIGNMENT) -> None:
    start, end = margins_markers(assignment)
    text = readme.read_text(encoding="utf-8")
    a, b = text.index(start) + len(start), text.index(end)
    atomic_write(readme, text[:a] + "\n" + margins_table(doc, assignment) + "\n" + text[b:], "grader README")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=MIN_SEEDS,
                   help=f"reference training seeds (at least {MIN_SEEDS}; default {MIN_SEEDS})")
    p.add_argument("--stub_seeds", type=int, default=MIN_STUB_SEEDS,
                   help=f"stub training seeds (at least {MIN_STUB_SEEDS}; default {MIN_STUB_SEEDS})")
    p.add_argument("--stubs_only", action="store_true", help="keep the reference returns; re-measure the stubs")
    p.add_argument("--rethreshold", action="store_true",
                   help="train nothing: recompute low/full from the returns each check's calibration holds")
    p.add_argument("--jobs", type=int, default=2, help="parallel training runs (default 2)")
    p.add_argument("--envs", nargs="+", default=None, metavar="ENV",
                   help="recalibrate only the checks on these tasks (default: every check)")
    p.add_argument("--assignment", default=DEFAULT_ASSIGNMENT, choices=ASSIGNMENTS,
                   help="whose performance checks: a1 (grader/thresholds.yaml, the default) or a2 "
                        "(grader/thresholds_a2.yaml)")
    p.add_argument("--thresholds", default=None, help="the thresholds file to rewrite (default: the assignment's)")
    p.add_argument("--readme", default=str(README), help="the README whose margins table is rewritten")
    args = p.parse_args(argv)
    if args.seeds < MIN_SEEDS or args.stub_seeds < MIN_STUB_SEEDS:
        print(f"error: calibrate needs --seeds >= {MIN_SEEDS} and --stub_seeds >= {MIN_STUB_SEEDS}", file=sys.stderr)
        return 2
    assignment = args.assignment
    path = Path(args.thresholds) if args.thresholds else THRESHOLD_FILES[assignment]
    doc = yaml.safe_load(path.read_text())
    if args.rethreshold:
        missing = [spec["name"] for spec in doc["performance"] if "calibration" not in spec]
        if missing:
            print(f"error: {', '.join(missing)}: no calibration stored in {path.name}; run python -m grader calibrate "
                  f"--assignment {assignment} (without --rethreshold) first", file=sys.stderr)
            return 2
        for spec in doc["performance"]:
            cal = spec["calibration"]
            t = thresholds(cal["reference_returns"] + cal["reference_at_grading_seeds"],
                           cal["stub_returns"] + cal["stub_at_grading_seeds"], _scale_of(cal))
            spec["low"], spec["full"] = round(float(t["low"]), 1), round(float(t["full"]), 1)
            cal["margin"] = round(float(t["margin"]), 3)
            print(f"{spec['name']}: low {t['low']:.0f}, full {t['full']:.0f} (gap {t['gap']:.0f})")
        return _write(doc, path, Path(args.readme), assignment)
    tasks = sorted({spec["env"] for spec in doc["performance"]})
    unknown = sorted(set(args.envs or []) - set(tasks))
    if unknown:
        print(f"error: --envs {' '.join(unknown)}: no performance check in {path} runs on "
              f"{'that task' if len(unknown) == 1 else 'those tasks'}; choose from {', '.join(tasks)}", file=sys.stderr)
        return 2
    specs = [spec for spec in doc["performance"] if args.envs is None or spec["env"] in args.envs]
    unscaled = [spec["name"] for spec in specs if return_scale(spec) is None]
    if unscaled:
        print(f"error: {', '.join(unscaled)}: no scale for the margin; "
              + ("reinstall the expert (data/models/expert_<env>.json has no return_mean)" if assignment == "a1" else
                 f"give the check a return_scale (the task's best return) in {path.name}"), file=sys.stderr)
        return 2
    if args.stubs_only and any("calibration" not in spec for spec in specs):
        print(f"error: --stubs_only needs the reference returns of an earlier calibration; {path.name} has none: "
              f"run python -m grader calibrate --assignment {assignment} without it", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="calibrate_"))
    plans = []   # (check index, reference?, its runs, the grading seeds first)
    for i, spec in enumerate(specs):
        if not args.stubs_only:
            plans.append((i, True, _seed_plan(spec, args.seeds, 10_000)))
        plans.append((i, False, _seed_plan(spec, args.stub_seeds, 20_000)))
    jobs = [(specs[i], train, ev, reference, scratch, args.jobs, run_path, assignment)
            for i, reference, plan in plans for train, ev, run_path in plan]
    try:
        from tqdm import tqdm

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            returns = iter(tqdm(pool.map(_one, jobs), total=len(jobs), desc="calibrate", unit="run"))
            # (returns at the grading seeds, one per path; returns at the calibration seeds) of each plan
            measured, train_cpu = {}, {}
            for i, reference, plan in plans:
                runs = [next(returns) for _ in plan]
                values = [v for v, _ in runs]
                measured[i, reference] = (values[:len(PATHS)], values[len(PATHS):])
                train_cpu[i, reference] = max(c for _, c in runs[:len(PATHS)] if c is not None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    what = ("--stubs_only" if args.stubs_only else f"--seeds {args.seeds}") + f" --stub_seeds {args.stub_seeds}"
    if assignment != DEFAULT_ASSIGNMENT:
        what = f"--assignment {assignment} " + what
    today = datetime.date.today().isoformat()
    refused = []
    for i, spec in enumerate(specs):
        if args.stubs_only:
            old = spec["calibration"]
            ref_grading, ref = list(old["reference_at_grading_seeds"]), old["reference_returns"]
        else:
            ref_grading, ref = measured[i, True]
        stub_grading, stub = measured[i, False]
        for kind, values in (("reference", ref_grading), ("stubs", stub_grading)):
            if len(set(values)) > 1:
                print(f"note: {spec['name']}: the {kind} at the grading seeds differ between the numeric paths "
                      f"({', '.join(f'{p} {v:.1f}' for p, v in zip(PATHS, values))}); both count", file=sys.stderr)
        scale = return_scale(spec)
        imitation = spec["agent"] not in POLICY_SEARCH_AGENTS
        of_what = "the expert's return" if imitation else "the check's return_scale"
        t = thresholds(list(ref) + list(ref_grading), list(stub) + list(stub_grading), scale)
        print(f"{spec['name']}: reference {[round(r) for r in ref]} (grading seeds: "
              f"{[round(r) for r in ref_grading]}), stubs {[round(r) for r in stub]} (grading seeds: "
              f"{[round(r) for r in stub_grading]}) → gap {t['gap']:.0f} = {t['margin']:.0%} of {of_what} "
              f"{scale:.0f}; low {t['low']:.0f}, full {t['full']:.0f}")
        if t["margin"] < MIN_MARGIN:
            refused.append(f"{spec['name']}: the worst reference ({t['worst_reference']:.0f}) and the best stub "
                           f"({t['best_stub']:.0f}) are {t['margin']:.0%} of {of_what} apart, less than "
                           f"{MIN_MARGIN:.0%}")
            continue
        spec.pop("student_methods", None)        # derived from the TODO manifest now
        ref_cpu = (float(spec["calibration"].get("train_cpu_s", 0.0)) if args.stubs_only else train_cpu[i, True])
        spec["low"], spec["full"] = round(float(t["low"]), 1), round(float(t["full"]), 1)
        sha = file_sha256(expert_model_path(load_expert_config(spec["env"])[0]))[:16] if imitation else None
        if imitation and args.stubs_only and spec["calibration"].get("expert_sha256", sha) != sha:
            print(f"warning: {spec['name']}: the reference was measured with another expert "
                  f"({spec['calibration']['expert_sha256']}, now {sha}); recalibrate without --stubs_only",
                  file=sys.stderr)
        spec["calibration"] = {"reference_at_grading_seeds": [round(float(r), 1) for r in ref_grading],
                               "stub_at_grading_seeds": [round(float(r), 1) for r in stub_grading],
                               "paths": list(PATHS),
                               "reference_returns": [round(float(r), 1) for r in ref],
                               "stub_returns": [round(float(r), 1) for r in stub],
                               **({"expert_return": round(float(scale), 1)} if imitation else
                                  {"return_scale": round(float(scale), 1)}),
                               "margin": round(float(t["margin"]), 3),
                               **({"expert_sha256": sha} if imitation else {}),
                               "train_cpu_s": round(max(ref_cpu, train_cpu[i, False]), 1),
                               "command": f"python -m grader calibrate {what}", "date": today}
    if refused:
        for line in refused:
            print(f"error: {line}; change this check's setup in {path.name} (task, demo count, budget, evaluation "
                  f"episodes) until they are at least {MIN_MARGIN:.0%} apart. Nothing was written.", file=sys.stderr)
        return 2
    doc["train_timeout"] = train_timeout(doc)
    return _write(doc, path, Path(args.readme), assignment)


def _write(doc: dict, path: Path, readme: Path, assignment: str = DEFAULT_ASSIGNMENT) -> int:
    """thresholds.yaml (its comment header kept) with the rule in its provenance, and the README's margins table."""
    doc["provenance"] = (f"python -m grader calibrate: over the calibration seeds and the check's own grading seeds "
                         f"(on both numeric paths), gap = worst reference - best stub must be >= "
                         f"{int(MIN_MARGIN * 100)}% of the expert's return (assignment 2: the check's return_scale); "
                         "low = best stub + "
                         f"{int(LOW_ROOM * 100)}% of the gap, full = worst reference - {int(FULL_ROOM * 100)}% of the "
                         "gap; each check's `calibration` names the expert (sha256 prefix) or scale, command and date")
    header = "\n".join(ln for ln in path.read_text().splitlines() if ln.startswith("#"))
    atomic_write(path, header + "\n" + yaml.safe_dump(doc, sort_keys=False, width=120), "thresholds")
    print(f"Wrote {path}")
    if readme.is_file() and margins_markers(assignment)[0] in readme.read_text(encoding="utf-8"):
        write_margins_readme(doc, readme, assignment)
        print(f"Updated the margins table in {readme}")
    return 0

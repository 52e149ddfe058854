"""python -m grader calibrate: set the performance thresholds from the reference solution.

For every performance check in grader/thresholds.yaml, the reference solution is trained and evaluated
exactly as the grader does it, over ``--seeds`` training seeds (default 5); so are the untouched stubs.
  full = 0.95 × the worst reference return          (every reference run earns full marks)
  low  = the best stub return + 10% of the gap      (the stubs — e.g. DAgger without its TODOs, which is
                                                     BC on the round-0 demos — earn nothing)
The file is rewritten with these values and their provenance.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from util.config import REPO_ROOT


def _one(args: tuple[dict, int, bool, str]) -> float:
    spec, seed, reference, scratch = args
    from grader.checks import GradingContext, load_trained_policy, train_in_child
    from grader.grade import materialize, find_student_files
    from grader.sandbox import make_workspace
    from grader.submissions import write_submission
    from envs.builder import make_env, resolve_env_config
    from learning.evaluation import evaluate_policy

    root = Path(tempfile.mkdtemp(dir=scratch))
    sub = write_submission(root / "sub", reference=reference)
    files = find_student_files(sub)
    env = spec["env"]
    data = [REPO_ROOT / "data" / "envs" / f"{env}.yaml", REPO_ROOT / "data" / "demos" / f"{env}.npz",
            REPO_ROOT / "data" / "models" / f"expert_{env}.pt", REPO_ROOT / "data" / "agents" / f"expert_{env}.yaml"]
    ws = make_workspace(root, files, data)
    ctx = GradingContext(ws, {f: True for f in files}, {}, train_timeout=1200)
    student_file = {"bc": "bc_agent.py", "dagger": "dagger_agent.py", "dart": "dart_agent.py"}[spec["agent"]]
    config = {"agent": spec["agent"], "env": env, **spec["config"], "seed": seed}
    model, why = train_in_child(ctx, spec["agent"], env, config, spec["student_methods"], student_file)
    if model is None:
        raise RuntimeError(f"calibration run failed ({spec['name']}, seed {seed}): {why}")
    policy, why = load_trained_policy(model, env)
    res = evaluate_policy(make_env(resolve_env_config(env)), policy, int(spec["eval_episodes"]), int(spec["eval_seed"]) + seed, "grader")
    shutil.rmtree(root, ignore_errors=True)
    return res.mean


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5, help="reference training seeds (at least 5; default 5)")
    p.add_argument("--stub_seeds", type=int, default=2, help="stub training seeds (default 2)")
    p.add_argument("--jobs", type=int, default=2, help="parallel training runs (default 2)")
    p.add_argument("--thresholds", default=str(REPO_ROOT / "grader" / "thresholds.yaml"))
    args = p.parse_args(argv)
    if args.seeds < 5:
        print("error: calibrate needs at least 5 reference seeds", file=sys.stderr)
        return 2
    path = Path(args.thresholds)
    doc = yaml.safe_load(path.read_text())
    scratch = tempfile.mkdtemp(prefix="calibrate_")
    jobs = []
    for spec in doc["performance"]:
        jobs += [(spec, 10_000 + s, True, scratch) for s in range(args.seeds)]
        jobs += [(spec, 20_000 + s, False, scratch) for s in range(args.stub_seeds)]
    try:
        from tqdm import tqdm

        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            returns = list(tqdm(pool.map(_one, jobs), total=len(jobs), desc="calibrate", unit="run"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    k = 0
    for spec in doc["performance"]:
        ref = returns[k:k + args.seeds]; k += args.seeds
        stub = returns[k:k + args.stub_seeds]; k += args.stub_seeds
        full = 0.95 * min(ref)
        low = max(stub) + 0.10 * (full - max(stub))
        if low >= full:
            print(f"warning: {spec['name']}: stubs ({max(stub):.0f}) reach the reference ({min(ref):.0f}); "
                  "the check cannot separate them — change its config", file=sys.stderr)
        spec["full"], spec["low"] = round(float(full), 1), round(float(min(low, full - 1)), 1)
        spec["calibration"] = {"reference_returns": [round(float(r), 1) for r in ref],
                               "stub_returns": [round(float(r), 1) for r in stub]}
        print(f"{spec['name']}: reference {[round(r) for r in ref]}, stubs {[round(r) for r in stub]} "
              f"→ low {spec['low']:.0f}, full {spec['full']:.0f}")
    experts = {}
    for spec in doc["performance"]:
        f = REPO_ROOT / "data" / "models" / f"expert_{spec['env']}.pt"
        experts[spec["env"]] = hashlib.sha256(f.read_bytes()).hexdigest()[:16]
    doc["provenance"] = (f"python -m grader calibrate --seeds {args.seeds} on "
                         f"{datetime.date.today().isoformat()}: full = 0.95 x worst reference return, "
                         f"low = best stub return + 10% of the gap; experts (sha256 prefix) {experts}")
    header = "\n".join(ln for ln in path.read_text().splitlines() if ln.startswith("#"))
    path.write_text(header + "\n" + yaml.safe_dump(doc, sort_keys=False, width=120))
    print(f"Wrote {path}")
    return 0

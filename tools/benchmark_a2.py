#!/usr/bin/env python
"""Benchmark assignment 2's reference solutions: the policy gradient and the cross-entropy method.

Each variant is trained with the reference TODO code and its a2/ config on ``--seeds`` training seeds and
evaluated with the deterministic action over ``--eval_episodes`` held-out episodes. Prints a Markdown table (final
return, the best evaluation during training and the steps it first reached ``--target`` where one is set, environment
steps, steps per second) and, with ``--update_docs``, writes it between the markers of ``a2/benchmark.md``: the
rows of the variants run replace theirs, the others stay, each with the command that measured it.

    python tools/benchmark_a2.py                                   # every variant, 3 seeds
    python tools/benchmark_a2.py --variants pg-pendulum cem-pendulum --seeds 1 --jobs 2
    python tools/benchmark_a2.py --compare_sb3 cheetah --steps 300000 --update_docs   # PG vs SB3's A2C and PPO

``--compare_sb3 TASK`` trains, side by side on this machine and at the same number of environment steps, the
reference PG (its a2/ config, ``iterations`` = steps / batch_size) and stable-baselines3's A2C and PPO (their default
hyperparameters, one env, CPU, one torch thread; ``pip install stable-baselines3==2.9.2``, not a dependency of the
project), and reports each one's held-out return and training steps per second.

Each finished cell (variant, seed) is stored in ``<out_dir>/cells/`` under a key made of everything that determines
it (the config, the reference TODO code, the seed, the number of episodes), so an interrupted benchmark continues
where it stopped (``--recompute`` recomputes all).
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tools.doc_tables import merge_measured_block

ROOT = Path(__file__).resolve().parent.parent

# name → (agent, env, the return the issue asks for, or None)
VARIANTS = {
    "pg-pendulum": ("pg", "pendulum", 1000.0),
    "pg-cheetah": ("pg", "cheetah", 300.0),
    "pg-walker": ("pg", "walker", None),
    "pg-hopper": ("pg", "hopper", None),
    "pg-ant": ("pg", "ant", None),
    "cem-pendulum": ("cem", "pendulum", 1000.0),
    "cem-cheetah": ("cem", "cheetah", None),
}
MARK_START, MARK_END = "<!-- benchmark-a2:start -->", "<!-- benchmark-a2:end -->"
SB3_START, SB3_END = "<!-- compare-sb3:start -->", "<!-- compare-sb3:end -->"
SB3_ALGOS = ("A2C", "PPO")


def run_one(job: tuple[str, int, int, str]) -> dict:
    """Train one reference agent in this (child) process and evaluate it; returns plain data."""
    variant, seed, episodes, out_root = job
    import torch

    torch.set_num_threads(1)
    from learning.agents import build_agent

    agent_name, env_name, _ = VARIANTS[variant]
    out = Path(out_root) / f"{variant}_seed{seed}"
    t0 = time.time()
    agent = build_agent(agent_name, env_name, {"seed": seed, "final_eval_episodes": episodes}, out_dir=out,
                        solution=True, quiet=True)
    res = agent.run(overwrite=True)
    wall = time.time() - t0
    lines = (out / "log.txt").read_text().splitlines()
    header = lines[0].split("\t")
    curve = [(int(float(r[header.index("Env_Steps")])), float(r[header.index("Test_Return")]))
             for r in (ln.split("\t") for ln in lines[1:])]
    return {"variant": variant, "seed": seed, "final": res.mean, "env_steps": agent.env_steps,
            "train_seconds": agent.wall_time, "wall": wall, "curve": [(s, v) for s, v in curve if v == v]}


def run_compare(job: tuple[str, str, int, int, int, str]) -> dict:
    """One learner of the comparison (``pg`` or an SB3 algorithm) on ``env_name`` for ``steps`` environment steps in
    this (child) process; returns its held-out return and its training speed."""
    learner, env_name, steps, seed, episodes, out_root = job
    import torch

    torch.set_num_threads(1)
    from envs.builder import make_env, resolve_env_config
    from learning.agents import build_agent
    from learning.evaluation import TEST_PURPOSE, evaluate

    env_cfg = resolve_env_config(env_name)
    if learner == "pg":
        agent = build_agent("pg", env_name, {"seed": seed, "final_eval_episodes": episodes}, out_dir=out_root,
                            solution=True, quiet=True)
        agent.cfg.iterations = max(1, steps // agent.cfg.batch_size)
        agent.cfg.eval_episodes = 0
        res = agent.run(overwrite=True)
        return {"learner": "pg", "seed": seed, "env_steps": agent.env_steps, "train_seconds": agent.wall_time,
                "final": res.mean}
    import stable_baselines3

    algo = getattr(stable_baselines3, learner)
    model = algo("MlpPolicy", make_env(env_cfg), seed=seed, device="cpu", verbose=0)
    t0 = time.time()
    model.learn(total_timesteps=steps)
    seconds = time.time() - t0
    res = evaluate(make_env(env_cfg), lambda o: model.predict(o, deterministic=True)[0], episodes, 0, TEST_PURPOSE)
    return {"learner": learner, "seed": seed, "env_steps": int(model.num_timesteps), "train_seconds": seconds,
            "final": res.mean}


def compare_table(results: list[dict], env_name: str) -> str:
    import numpy as np

    rows = ["| learner | task | env steps | held-out return | train steps/s | seeds |", "|---|---|---|---|---|---|"]
    for learner in ("pg", *SB3_ALGOS):
        cells = [r for r in results if r["learner"] == learner]
        if not cells:
            continue
        final = np.array([c["final"] for c in cells])
        speed = np.mean([c["env_steps"] / max(c["train_seconds"], 1e-9) for c in cells])
        name = "PG (this project, reference)" if learner == "pg" else f"stable-baselines3 {learner} (defaults)"
        rows.append(f"| {name} | {env_name} | {np.mean([c['env_steps'] for c in cells]) / 1000:.0f}k | "
                    f"{final.mean():.0f} ± {final.std():.0f} | {speed:,.0f} | {len(cells)} |")
    return "\n".join(rows) + "\n"


def cell_key(variant: str, seed: int, episodes: int) -> str:
    """Everything that determines a cell: its config file, the reference code, the seed and the episodes."""
    from grader.solution import SOLUTION_METHODS

    agent_name, env_name, _ = VARIANTS[variant]
    parts = [variant, str(seed), str(episodes),
             (ROOT / "a2" / f"{agent_name}_{env_name}.yaml").read_text(),
             (ROOT / "data" / "envs" / f"{env_name}.yaml").read_text()]
    parts += [inspect.getsource(f) for _, f in sorted(SOLUTION_METHODS[agent_name].items())]
    for module in ("policy_search", "policy_gradient", "parameter_search", "rollouts"):
        parts.append((ROOT / "learning" / f"{module}.py").read_text())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def summarize(results: list[dict], variants: list[str]) -> str:
    """The Markdown table: one row per variant, mean ± std over seeds."""
    import numpy as np

    rows = ["| agent | task | env steps | final return (held-out) | best evaluation | steps to target | "
            "steps/s | seeds |", "|---|---|---|---|---|---|---|---|"]
    for variant in variants:
        cells = [r for r in results if r["variant"] == variant]
        if not cells:
            continue
        agent_name, env_name, target = VARIANTS[variant]
        final = np.array([c["final"] for c in cells])
        best = np.array([max((v for _, v in c["curve"]), default=float("nan")) for c in cells])
        if target is None:
            reach = "–"
        else:
            firsts = [next((s for s, v in c["curve"] if v >= target), None) for c in cells]
            got = [f for f in firsts if f is not None]
            reach = (f"{target:g}: {len(got)}/{len(cells)} seeds"
                     + (f", median {np.median(got) / 1000:.0f}k" if got else ""))
        speed = np.mean([c["env_steps"] / max(c["train_seconds"], 1e-9) for c in cells])
        steps = np.mean([c["env_steps"] for c in cells]) / 1000
        mean_note = "" if agent_name == "pg" else " (mean)"
        rows.append(f"| {agent_name} | {env_name} | {steps:.0f}k{mean_note} | {final.mean():.0f} ± "
                    f"{final.std():.0f} | {best.mean():.0f} ± {best.std():.0f} | {reach} | {speed:,.0f} | "
                    f"{len(cells)} |")
    return "\n".join(rows) + "\n"


def update_docs(doc: Path, table: str, command: str, marks: tuple[str, str] = (MARK_START, MARK_END),
                merge: bool = False) -> None:
    """Write ``table`` and the command that measured it between ``marks`` in ``doc``; ``merge``: only the rows of
    ``table``'s variants change, the others stay with the command that measured them
    (:func:`tools.doc_tables.merge_measured_block`)."""
    start, end = marks
    text = doc.read_text(encoding="utf-8") if doc.is_file() else (
        "# Assignment 2: measured results of the reference\n\n" + start + "\n" + end + "\n")
    if start not in text or end not in text:
        raise SystemExit(f"error: {doc} lacks the markers {start} / {end}; add them where the table goes.")
    head, rest = text.split(start, 1)
    current, tail = rest.split(end, 1)
    date = time.strftime("%Y-%m-%d")
    body = (merge_measured_block(current, table, command, date, key_columns=2) if merge
            else f"Measured with `{command}` ({date}).\n\n{table}")
    doc.write_text(f"{head}{start}\n{body}{end}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 per variant (default 3)")
    p.add_argument("--eval_episodes", type=int, default=10, help="held-out episodes for the final return")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (one core each)")
    p.add_argument("--out_dir", default=str(ROOT / "output" / "benchmark_a2"))
    p.add_argument("--recompute", action="store_true", help="ignore stored cells")
    p.add_argument("--update_docs", action="store_true", help="write the table into a2/benchmark.md")
    p.add_argument("--compare_sb3", default=None, metavar="TASK",
                   help="instead: PG vs stable-baselines3's A2C and PPO on TASK at --steps environment steps")
    p.add_argument("--steps", type=int, default=300_000, help="--compare_sb3: environment steps per learner")
    args = p.parse_args(argv)
    for flag in ("seeds", "eval_episodes", "jobs"):
        if getattr(args, flag) < 1:
            print(f"error: --{flag} must be at least 1", file=sys.stderr)
            return 2
    if args.compare_sb3:
        return compare_sb3(args, argv)
    cells_dir = Path(args.out_dir) / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    results, todo = [], []
    for variant in args.variants:
        for seed in range(args.seeds):
            path = cells_dir / f"{variant}_seed{seed}_{cell_key(variant, seed, args.eval_episodes)}.json"
            if path.is_file() and not args.recompute:
                results.append(json.loads(path.read_text()))
            else:
                todo.append(((variant, seed, args.eval_episodes, str(Path(args.out_dir) / "runs")), path))
    print(f"{len(results)} cells stored, {len(todo)} to run", flush=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for (job, path), out in zip(todo, pool.map(run_one, [j for j, _ in todo])):
            path.write_text(json.dumps(out))
            results.append(out)
            print(f"{out['variant']} seed {out['seed']}: {out['final']:.1f} in {out['env_steps']} steps, "
                  f"{out['wall']:.0f} s", flush=True)
    return publish(summarize(results, args.variants), args, argv, merge=True)


def compare_sb3(args: argparse.Namespace, argv: list[str] | None) -> int:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        print("error: --compare_sb3 needs stable-baselines3: pip install stable-baselines3==2.9.2", file=sys.stderr)
        return 2
    if args.steps < 1:
        print("error: --steps must be at least 1", file=sys.stderr)
        return 2
    from envs.builder import resolve_env_config

    resolve_env_config(args.compare_sb3)          # an unknown task: one error before anything trains
    jobs = [(learner, args.compare_sb3, args.steps, seed, args.eval_episodes,
             str(Path(args.out_dir) / "compare" / f"pg_{args.compare_sb3}_seed{seed}"))
            for seed in range(args.seeds) for learner in ("pg", *SB3_ALGOS)]
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for out in pool.map(run_compare, jobs):
            results.append(out)
            print(f"{out['learner']} seed {out['seed']}: {out['final']:.1f} after {out['env_steps']} steps, "
                  f"{out['env_steps'] / max(out['train_seconds'], 1e-9):,.0f} steps/s", flush=True)
    return publish(compare_table(results, args.compare_sb3), args, argv, marks=(SB3_START, SB3_END))


def publish(table: str, args: argparse.Namespace, argv: list[str] | None, **where: Any) -> int:
    """Print ``table``; with --update_docs also write it into a2/benchmark.md with the command that measured it
    (``where``: :func:`update_docs`'s marks and merge)."""
    print(table)
    if args.update_docs:
        command = "python tools/benchmark_a2.py " + " ".join(argv if argv is not None else sys.argv[1:])
        update_docs(ROOT / "a2" / "benchmark.md", table, command.strip(), **where)
    return 0


if __name__ == "__main__":
    sys.exit(main())

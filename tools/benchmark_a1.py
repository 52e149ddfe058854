#!/usr/bin/env python
"""Benchmark the reference solutions: expert, BC with 1/5/25 demos, DAgger and noise injection.

Each variant is trained with the reference TODO code on ``--seeds`` training seeds, with the
a1/ configs (fixed sample budgets), and evaluated with the deterministic action over
``--eval_episodes`` held-out episodes. Prints a Markdown table (returns and % of expert) and
writes it to ``--out``.

    python tools/benchmark_a1.py                          # all tasks, 3 seeds, 50 episodes
    python tools/benchmark_a1.py --envs cheetah --seeds 1 --eval_episodes 10 --jobs 2
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = {  # name → (agent, config overrides)
    "BC (1 demo)": ("bc", {"demo_episodes": 1}),
    "BC (5 demos)": ("bc", {"demo_episodes": 5}),
    "BC (25 demos)": ("bc", {"demo_episodes": 25}),
    "DAgger": ("dagger", {}),
    "Noise injection": ("dart", {}),
}


def run_one(job: tuple[str, str, int, int, str]) -> dict:
    """Train one reference agent in this (child) process and evaluate it; returns plain data."""
    env_name, variant, seed, episodes, out_root = job
    import torch

    torch.set_num_threads(1)
    from envs.builder import resolve_env_config
    from learning.agents import build_agent

    agent, overrides = VARIANTS[variant]
    # per-iteration log evaluations are not needed for the table: 1 episode each keeps the runs fast
    settings = {**overrides, "seed": seed, "final_eval_episodes": episodes, "eval_episodes": 1}
    tag = variant.split(" (")[0].lower().replace(" ", "_") + ("_" + str(overrides["demo_episodes"]) if overrides else "")
    out = Path(out_root) / f"{env_name}_{tag}_seed{seed}"
    t0 = time.time()
    a = build_agent(agent, resolve_env_config(env_name), settings, out_dir=out, solution=True, quiet=True)
    res = a.run(overwrite=True)  # final evaluation: `episodes` held-out episodes (purpose "test"), deterministic action
    return {"env": env_name, "variant": variant, "seed": seed, "return": res.mean, "samples": len(a.dataset),
            "env_steps": a.env_steps, "seconds": time.time() - t0, "log": str(out / "log.txt")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=["cheetah", "walker", "hopper", "ant"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (default 3)")
    p.add_argument("--eval_episodes", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2, help="parallel child processes (default 2)")
    p.add_argument("--out_dir", default=str(ROOT / "output" / "benchmark"))
    p.add_argument("--out", default=str(ROOT / "output" / "benchmark" / "benchmark_a1.md"))
    args = p.parse_args(argv)
    import numpy as np

    from learning.imitation import expert_reference

    jobs = [(e, v, s, args.eval_episodes, args.out_dir) for e in args.envs for v in args.variants for s in range(args.seeds)]
    results = []
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for r in pool.map(run_one, jobs):
            results.append(r)
            print(f"[{len(results)}/{len(jobs)}] {r['env']:8s} {r['variant']:16s} seed {r['seed']}: "
                  f"{r['return']:8.1f}  ({r['samples']} samples, {r['seconds']:.0f}s)", flush=True)
    lines = [f"Reference solutions, {args.seeds} training seeds, deterministic action, {args.eval_episodes} held-out "
             f"episodes per seed; mean ± std over seeds (% of expert). Samples = expert-labelled training pairs.", "",
             "| task | expert | " + " | ".join(args.variants) + " |",
             "|---|---|" + "---|" * len(args.variants)]
    for e in args.envs:
        exp = expert_reference(e)
        cells = []
        for v in args.variants:
            rs = [r for r in results if r["env"] == e and r["variant"] == v]
            m, s = float(np.mean([r["return"] for r in rs])), float(np.std([r["return"] for r in rs]))
            pct = f" ({100 * m / exp:.0f}%)" if exp else ""
            cells.append(f"{m:.0f} ± {s:.0f}{pct}<br>{rs[0]['samples']} samples")
        lines.append(f"| {e} | {exp:.0f} | " + " | ".join(cells) + " |" if exp else f"| {e} | ? | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1))
    print(f"\nWrote {out} ({time.time() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

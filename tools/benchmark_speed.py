#!/usr/bin/env python
"""Speed benchmark of a student's run: a reference agent end to end (training, evaluation, files), per thread count.

Prints, for each agent and thread count, the wall time and the CPU time (user + system, all threads) of
``python run.py --agent AGENT --env ENV --solution`` (DAgger with ``--max_samples``), the split between collection,
training and evaluation, and the collection loop's time per environment step next to gymnasium's raw step time.

    python tools/benchmark_speed.py [--agents dagger bc] [--env cheetah] [--max_samples 20000] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(agent_name: str, env_cfg, max_samples: int, out_dir: str, threads: int) -> dict:
    """One reference run with ``threads`` torch threads: wall and CPU seconds, the time split, the final return."""
    import resource

    import torch

    from learning.agents import build_agent

    torch.set_num_threads(threads)
    overrides = {"max_samples": max_samples} if agent_name != "bc" else {}
    agent = build_agent(agent_name, env_cfg, overrides, out_dir=out_dir, solution=True, quiet=True)
    timers = {"rollout": 0.0, "fit": 0.0, "eval": 0.0}
    for name in ("rollout", "fit", "evaluate"):
        orig = getattr(agent, name)

        def timed(*a, _orig=orig, _key="eval" if name == "evaluate" else name, **k):
            t0 = time.perf_counter()
            try:
                return _orig(*a, **k)
            finally:
                timers[_key] += time.perf_counter() - t0

        setattr(agent, name, timed)
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    res = agent.run(overwrite=True)
    ru1, total = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {"wall": total, "cpu": cpu, "return": res.mean, "samples": len(agent.dataset), "steps": agent.env_steps,
            **timers}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", nargs="+", default=["dagger", "bc"], choices=["bc", "dagger", "dart"])
    p.add_argument("--env", default="cheetah")
    p.add_argument("--max_samples", type=int, default=20000, help="DAgger/noise injection sample budget")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch thread counts to measure")
    p.add_argument("--out_dir", default=str(ROOT / "output" / "benchmark_speed"))
    args = p.parse_args(argv)
    import numpy as np

    from envs.builder import make_env, resolve_env_config

    env_cfg = resolve_env_config(args.env)
    env = make_env(env_cfg)        # raw gymnasium step time with random actions
    env.reset(seed=0)
    acts = np.random.default_rng(0).uniform(env.action_space.low, env.action_space.high,
                                            (5000, env.action_space.shape[0]))
    t = time.perf_counter()
    for a in acts:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    raw = (time.perf_counter() - t) / len(acts)
    print(f"{'agent':8} {'threads':>7} {'wall s':>7} {'CPU s':>7} {'collect':>8} {'train':>7} {'eval':>6} "
          f"{'us/step':>8} {'return':>8}")
    for agent_name in args.agents:
        for threads in args.threads:
            r = run_once(agent_name, env_cfg, args.max_samples, f"{args.out_dir}_{agent_name}_{threads}", threads)
            per_step = r["rollout"] / max(1, r["steps"]) * 1e6
            print(f"{agent_name:8} {threads:7d} {r['wall']:7.1f} {r['cpu']:7.1f} {r['rollout']:8.1f} {r['fit']:7.1f} "
                  f"{r['eval']:6.1f} {per_step if r['steps'] else float('nan'):8.0f} {r['return']:8.0f}", flush=True)
    print(f"(raw gymnasium step on {env_cfg.env_id}: {raw * 1e6:.0f} us; samples: DAgger's labelled samples "
          f"{args.max_samples}, BC's config as shipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

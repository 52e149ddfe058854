#!/usr/bin/env python
"""Speed benchmark: reference DAgger on cheetah with 20k samples, evaluation included.

Prints the total wall time, the collection loop's time per environment step (learner + expert
forward passes + env step + bookkeeping) next to gymnasium's raw step time for the same task.

    python tools/benchmark_speed.py [--env cheetah] [--max_samples 20000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="cheetah")
    p.add_argument("--max_samples", type=int, default=20000)
    p.add_argument("--out_dir", default=str(ROOT / "output" / "benchmark_speed"))
    args = p.parse_args(argv)
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from envs.builder import make_env, resolve_env_config
    from learning.agents import build_agent

    env_cfg = resolve_env_config(args.env)
    # raw gymnasium step time with random actions
    env = make_env(env_cfg)
    env.reset(seed=0)
    acts = np.random.default_rng(0).uniform(env.action_space.low, env.action_space.high,
                                            (5000, env.action_space.shape[0]))
    t = time.perf_counter()
    for a in acts:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    raw = (time.perf_counter() - t) / len(acts)

    agent = build_agent("dagger", env_cfg, {"max_samples": args.max_samples}, out_dir=args.out_dir, solution=True,
                        quiet=True)
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
    t0 = time.perf_counter()
    res = agent.run(overwrite=True)
    total = time.perf_counter() - t0
    per_step = timers["rollout"] / max(1, agent.env_steps)
    print(f"DAgger (reference) on {env_cfg.env_id}: {len(agent.dataset)} samples, {agent.env_steps} learner env steps, "
          f"final return {res.mean:.1f}")
    print(f"Total wall time (training + evaluation): {total:.1f} s")
    print(f"  collection {timers['rollout']:.1f} s | training {timers['fit']:.1f} s | "
          f"evaluation {timers['eval']:.1f} s")
    print(f"Collection loop: {per_step * 1e6:.0f} us per env step vs raw gymnasium step {raw * 1e6:.0f} us "
          f"({per_step / raw:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

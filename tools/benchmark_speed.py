#!/usr/bin/env python
"""Speed benchmark of a student's run: a reference agent end to end (training, evaluation, files), per thread count.

Prints, for each agent and thread count, the wall time and the CPU time (user + system, all threads) of
``python run.py --agent AGENT --env ENV --solution`` (DAgger with ``--max_samples``), the split between collection,
training and evaluation, and the collection loop's time per environment step next to gymnasium's raw step time.

    python tools/benchmark_speed.py [--agents dagger bc] [--env cheetah] [--max_samples 20000] [--threads 1 2]

Trade-offs: ``--vary KEY VALUE...`` (repeatable; values in YAML) runs every combination of the config keys given,
over ``--seeds``, and prints a Markdown table of wall time, CPU time and final return (mean ± std over the seeds,
and % of the expert) for each, e.g.

    python tools/benchmark_speed.py --agents dagger --threads 1 --seeds 0 1 2 \
        --vary hidden_sizes "[64, 64]" "[256, 256]" --vary epochs_per_round 3 5 15
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(agent_name: str, env_cfg, max_samples: int, out_dir: str, threads: int,
             extra: dict | None = None) -> dict:
    """One reference run with ``threads`` torch threads (``extra``: config overrides): wall and CPU seconds, the time
    split, the final return."""
    import resource

    import torch

    from learning.agents import build_agent

    torch.set_num_threads(threads)
    overrides = {"max_samples": max_samples} if agent_name != "bc" else {}
    overrides.update(extra or {})
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
    p.add_argument("--vary", nargs="+", action="append", default=[], metavar="KEY VALUE",
                   help="a config key and the values to try (YAML), repeatable: every combination runs")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds per combination (with --vary)")
    args = p.parse_args(argv)
    if args.vary:
        return tradeoff_table(args)
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


def tradeoff_table(args: argparse.Namespace) -> int:
    """A Markdown row per (agent, threads, combination of --vary values): seconds and return over --seeds."""
    import itertools

    import numpy as np
    import yaml

    from envs.builder import resolve_env_config
    from learning.imitation import expert_reference

    env_cfg = resolve_env_config(args.env)
    keys = [v[0] for v in args.vary]
    if any(len(v) < 2 for v in args.vary):
        print("error: --vary needs a config key and at least one value, e.g. --vary epochs_per_round 3 5",
              file=sys.stderr)
        return 2
    values = [[yaml.safe_load(x) for x in v[1:]] for v in args.vary]
    expert = expert_reference(env_cfg.name) or float("nan")
    print(f"| agent | threads | {' | '.join(keys)} | wall s | CPU s | return | % expert |")
    print("|---|---|" + "---|" * len(keys) + "---|---|---|---|")
    for agent_name in args.agents:
        for threads in args.threads:
            for combo in itertools.product(*values):
                extra = dict(zip(keys, combo))
                runs = [run_once(agent_name, env_cfg, args.max_samples, f"{args.out_dir}_{agent_name}_{threads}",
                                 threads, {**extra, "seed": seed}) for seed in args.seeds]
                ret = np.array([r["return"] for r in runs])
                print(f"| {agent_name} | {threads} | {' | '.join(str(v) for v in combo)} | "
                      f"{np.mean([r['wall'] for r in runs]):.1f} | {np.mean([r['cpu'] for r in runs]):.1f} | "
                      f"{ret.mean():.0f} ± {ret.std():.0f} (n={len(runs)}) | {100 * ret.mean() / expert:.0f}% |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

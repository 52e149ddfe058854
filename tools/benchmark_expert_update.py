#!/usr/bin/env python
"""Speed benchmark of the expert trainers: milliseconds per gradient update (and per training step) on one thread.

Fills a replay with random transitions, then times ``--updates`` updates of each algorithm with the shipped
network sizes (256-256, batch 256; TQC: 2 critics x 25 quantiles), and one full training step (act, env step,
store, update) on the task. Numbers depend on the machine and on what else runs on it: report them with both.

    python -m tools.benchmark_expert_update [--env cheetah] [--updates 300] [--algos td3 sac tqc]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time

from util.cli import run_main
from util.errors import UserError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="cheetah")
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--algos", nargs="+", default=["td3", "sac", "tqc"], choices=["td3", "sac", "tqc"])
    args = p.parse_args(argv)
    if args.updates < 1:
        raise UserError(f"--updates must be at least 1 (got {args.updates}).")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from envs.builder import resolve_env_config
    from learning.expert import trainer_classes

    env_cfg = resolve_env_config(args.env)
    rng = np.random.default_rng(0)
    print(f"{env_cfg.env_id}, one torch thread, batch 256, 256-256 networks, {args.updates} updates each")
    for algo in args.algos:
        config_cls, trainer_cls = trainer_classes(algo)
        with tempfile.TemporaryDirectory() as tmp:
            t = trainer_cls(env_cfg, config_cls(algo=algo, total_steps=20_000, start_steps=0, learning_starts=0),
                            tmp, quiet=True)
            for _ in range(5000):
                t.replay.add(rng.normal(size=t.obs_dim), rng.uniform(-1, 1, t.act_dim), 1.0,
                             rng.normal(size=t.obs_dim), False)
            for _ in range(20):                       # warm-up
                t.update()
            t0 = time.perf_counter()
            for _ in range(args.updates):
                t.update()
            per_update = (time.perf_counter() - t0) / args.updates
            t._start_episode()
            t0 = time.perf_counter()
            for _ in range(args.updates):
                t._env_step()
            per_step = (time.perf_counter() - t0) / args.updates
        print(f"{algo}: {per_update * 1e3:.1f} ms per update, {per_step * 1e3:.1f} ms per training step "
              f"({1 / per_step:.0f} steps/s, {1e6 * per_step / 3600:.2f} core-hours per million steps)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

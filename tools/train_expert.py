#!/usr/bin/env python
"""Train (or resume) a TD3 expert for one task, and install it as data/models/expert_<env>.pt.

    python tools/train_expert.py --env cheetah                 # train from scratch into runs/expert_cheetah/
    python tools/train_expert.py --env cheetah --resume        # continue after an interruption
    python tools/train_expert.py --env cheetah --install       # evaluate candidates on 50 held-out episodes, ship the best
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from util.cli import run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="task short name (cheetah, walker, hopper, ant) or a data/envs-style YAML path")
    p.add_argument("--agent_config", default=None, help="expert config YAML (default: data/agents/expert_<env>.yaml)")
    p.add_argument("--run_dir", default=None, help="where checkpoints and log.txt go (default: runs/expert_<env>)")
    p.add_argument("--resume", action="store_true", help="continue from run_dir/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true", help="delete the run already in run_dir and start again")
    p.add_argument("--total_steps", type=int, default=None, help="override trainer.total_steps")
    p.add_argument("--max_steps", type=int, default=None, help="stop after this many more steps (a checkpoint is kept)")
    p.add_argument("--seed", type=int, default=None, help="override trainer.seed")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: run tasks in parallel instead)")
    p.add_argument("--no_progress", action="store_true", help="print one log line per iteration instead of a progress bar")
    p.add_argument("--install", action="store_true",
                   help="do not train: evaluate run_dir/best_model.pt and model.pt on --eval_episodes held-out episodes "
                        "and copy the better one to the config's model_file")
    p.add_argument("--eval_episodes", type=int, default=50, help="episodes for --install (default 50)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from util.config import check_seed

    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1 (got {args.threads}).")
    if args.seed is not None:
        check_seed(args.seed, "--seed")
    for flag, value in (("--total_steps", args.total_steps), ("--max_steps", args.max_steps)):
        if value is not None and value <= 0:
            raise ValueError(f"{flag} must be positive.")
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other: continue the run, or start it again.")
    import torch

    torch.set_num_threads(args.threads)
    from envs.builder import resolve_env_config
    from learning.agents import build_agent
    from util.config import REPO_ROOT

    env_cfg = resolve_env_config(args.env)
    run_dir = Path(args.run_dir) if args.run_dir else REPO_ROOT / "runs" / f"expert_{env_cfg.name}"
    if args.install:
        from learning.expert import load_expert_config
        from tools.expert_install import install_expert

        return install_expert(env_cfg, load_expert_config(env_cfg.name, args.agent_config)[0], run_dir, args.eval_episodes)
    overrides = {k: v for k, v in (("total_steps", args.total_steps), ("seed", args.seed)) if v is not None}
    trainer = build_agent("expert", env_cfg, overrides, out_dir=run_dir, config_path=args.agent_config,
                          progress=not args.no_progress)
    out = trainer.train(resume=args.resume, max_steps=args.max_steps, overwrite=args.overwrite)
    print(f"Done: {out['step']} steps, best evaluation return {out['best_eval']:.1f}. Files in {run_dir}.")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

#!/usr/bin/env python
"""Train (or resume) an expert for one task (TD3, SAC or TQC, as its config says; or ARS, which polishes a trained
actor), and install it.

    python tools/train_expert.py --env cheetah                 # train from scratch into runs/expert_cheetah/
    python tools/train_expert.py --env cheetah --resume        # continue after an interruption (same machine)
    python tools/train_expert.py --env cheetah --save_compact data/training/cheetah   # networks, no replay: commit it
    python tools/train_expert.py --env cheetah --warm_start data/training/cheetah     # continue on another machine
    python tools/train_expert.py --env cheetah --install       # ship the best candidate if it beats the shipped one
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from util.cli import run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True,
                   help="task short name (cheetah, walker, hopper, ant) or a data/envs-style YAML path")
    p.add_argument("--agent_config", default=None, help="expert config YAML (default: data/agents/expert_<env>.yaml)")
    p.add_argument("--run_dir", default=None, help="where checkpoints and log.txt go (default: runs/expert_<env>)")
    p.add_argument("--resume", action="store_true",
                   help="continue exactly from run_dir/checkpoint.pt and run_dir/replay.npz")
    p.add_argument("--warm_start", default=None, metavar="DIR",
                   help="start a new run in run_dir from a compact checkpoint folder (written by --save_compact) or "
                        "another run folder: networks, optimizers and counters are restored, the config's settings "
                        "(e.g. lower learning rates) apply; the replay is loaded from a run folder's replay.npz, "
                        "else refilled by the actor")
    p.add_argument("--save_compact", default=None, metavar="DIR",
                   help="do not train: copy run_dir's compact checkpoint (checkpoint.pt, log.txt, config.json, models; "
                        "no replay) into DIR, e.g. data/training/<env>")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run already in run_dir and start again (with --save_compact: replace DIR's files)")
    p.add_argument("--total_steps", type=int, default=None, help="override trainer.total_steps")
    p.add_argument("--max_steps", type=int, default=None, help="stop after this many more steps (a checkpoint is kept)")
    p.add_argument("--seed", type=int, default=None, help="override trainer.seed")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: run tasks in parallel instead)")
    p.add_argument("--no_progress", action="store_true",
                   help="print one log line per iteration instead of a progress bar")
    p.add_argument("--install", action="store_true",
                   help="do not train: pick the best of run_dir's models on selection episodes and, if it beats the "
                        "shipped expert there (and --min_return), measure it on --eval_episodes held-out episodes and "
                        "copy it to the config's model_file")
    p.add_argument("--min_return", type=float, default=None,
                   help="with --install: refuse a candidate whose selection mean is below this floor")
    p.add_argument("--min_survival", type=float, default=0.0,
                   help="with --install: only candidates whose selection episodes reach the time limit at least this "
                        "often (a fraction, e.g. 0.98) are eligible")
    p.add_argument("--select_episodes", type=int, default=20, help="with --install: selection episodes (default 20)")
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
    modes = [f for f, on in (("--install", args.install), ("--save_compact", args.save_compact is not None),
                             ("--warm_start", args.warm_start is not None), ("--resume", args.resume)) if on]
    if len(modes) > 1:
        raise ValueError(f"{' and '.join(modes)} exclude each other: give one of them.")
    if not args.install and (args.min_return is not None or args.min_survival or args.select_episodes != 20):
        raise ValueError("--min_return, --min_survival and --select_episodes apply to --install only.")
    if not 0.0 <= args.min_survival <= 1.0:
        raise ValueError(f"--min_survival is a fraction in [0, 1] (got {args.min_survival}).")
    if args.select_episodes < 1 or args.eval_episodes < 1:
        raise ValueError("--select_episodes and --eval_episodes must be at least 1.")
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

        cfg, source = load_expert_config(env_cfg.name, args.agent_config)
        return install_expert(env_cfg, cfg, run_dir, args.eval_episodes, select_episodes=args.select_episodes,
                              min_return=args.min_return, min_survival=args.min_survival, config_source=Path(source))
    if args.save_compact is not None:
        from learning.expert import save_compact

        written = save_compact(run_dir, args.save_compact, overwrite=args.overwrite)
        size = sum(p.stat().st_size for p in written)
        print(f"Compact checkpoint of {run_dir} written to {args.save_compact} ({size / 2**20:.1f} MiB: "
              f"{', '.join(p.name for p in written)}). Continue it anywhere with: python tools/train_expert.py "
              f"--env {env_cfg.name} --warm_start {args.save_compact}"
              + (f" --agent_config {args.agent_config}" if args.agent_config else ""))
        return 0
    overrides = {k: v for k, v in (("total_steps", args.total_steps), ("seed", args.seed)) if v is not None}
    trainer = build_agent("expert", env_cfg, overrides, out_dir=run_dir, config_path=args.agent_config,
                          progress=not args.no_progress)
    out = trainer.run(resume=args.resume, overwrite=args.overwrite, max_steps=args.max_steps,
                      warm_start=args.warm_start)
    print(f"Done: {out['step']} steps, best evaluation return {out['best_eval']:.1f}. Files in {run_dir}.")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

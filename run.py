#!/usr/bin/env python
"""Train or evaluate an agent on a MuJoCo task: assignment 1's imitation agents (BC, DAgger, noise injection),
assignment 2's policy search (the policy gradient, the cross-entropy method), or the expert.

Examples:
    python run.py --agent bc --env cheetah                       # train with a1/bc_cheetah.yaml
    python run.py --agent dagger --env hopper --max_samples 20000
    python run.py --agent pg --env pendulum                      # train with a2/pg_pendulum.yaml
    python run.py --agent bc --env cheetah --mode test --model_file output/bc_cheetah/model.pt
    python run.py --agent expert --env cheetah --mode test --test_episodes 50
Outputs go to output/<agent>_<env>/ (log.txt, model.pt, curve.png, checkpoint.pt).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent

from learning.agents import AGENT_NAMES, IMITATION_AGENTS
from util.cli import run_main
from util.config import check_seed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", required=True, choices=AGENT_NAMES, help="which agent to run")
    p.add_argument("--env", default=None,
                   help="task short name: cheetah, walker, hopper, ant, pendulum "
                        "(or any name with a data/envs/<name>.yaml)")
    p.add_argument("--mode", choices=["train", "test"], default="train",
                   help="train (default) or test: evaluate a saved model with its deterministic action")
    p.add_argument("--env_config", default=None,
                   help="explicit env YAML (overrides --env), e.g. for another gymnasium id")
    p.add_argument("--agent_config", default=None,
                   help="explicit agent YAML (default a1/<agent>_<env>.yaml, a2/ for pg and cem; "
                        "expert: data/agents/expert_<env>.yaml)")
    p.add_argument("--model_file", default=None,
                   help="model to evaluate in test mode (default: <out_dir>/model.pt; expert: the shipped expert)")
    p.add_argument("--max_samples", type=int, default=None,
                   help="cap on expert-labelled samples in the training set (overrides the config's max_samples)")
    p.add_argument("--total_steps", type=int, default=None,
                   help="--agent expert: environment steps of expert training "
                        "(overrides the config's trainer.total_steps)")
    p.add_argument("--test_episodes", type=int, default=None,
                   help="episodes for the final / test evaluation (default: config's final_eval_episodes, or 10)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (overrides the config's seed; test mode: default 0)")
    p.add_argument("--out_dir", default=None, help="output folder (default output/<agent>_<env>/)")
    p.add_argument("--device", default="cpu", help="torch device for training: cpu (default) or cuda")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from <out_dir>/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run already in <out_dir> and start again (without it, such a folder is refused)")
    p.add_argument("--solution", action="store_true",
                   help="(TAs) use the reference solutions in grader/solution/ instead of the TODO code")
    p.add_argument("--video", default=None, metavar="PATH",
                   help="test mode: render one held-out episode to PATH (.mp4; falls back to .gif without ffmpeg)")
    p.add_argument("--video_every", type=int, default=0, metavar="N",
                   help="train mode: record a video every N iterations into <out_dir>/videos/")
    p.add_argument("--visualize", action="store_true",
                   help="test mode: open MuJoCo's live viewer (needs a display; use --video on headless machines)")
    p.add_argument("--no_tensorboard", action="store_true",
                   help="do not write TensorBoard event files (written beside log.txt when tensorboard is installed)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1; small MLPs gain little from more)")
    p.add_argument("--no_progress", action="store_true", help="print log rows instead of a progress bar")
    return p


def _check_device(device: str) -> str:
    import torch

    if device == "cpu":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available on this machine. Use --device cpu.")
        return device
    raise ValueError(f"--device must be 'cpu' or 'cuda' (got '{device}').")


def _check_args(args: argparse.Namespace) -> None:
    """Flag values that need no file or env to be checked (one clear error each)."""
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1 (got {args.threads}).")
    if args.seed is not None:
        check_seed(args.seed, "--seed")
    if args.agent == "expert" and args.max_samples is not None:
        raise ValueError("--max_samples counts expert-labelled samples of the imitation agents; "
                         "for --agent expert use --total_steps (environment steps of expert training).")
    if args.agent != "expert" and args.total_steps is not None:
        raise ValueError("--total_steps is for --agent expert; the imitation agents' budget is --max_samples, "
                         "the policy-search agents' the config's iterations.")
    if args.agent not in IMITATION_AGENTS and args.agent != "expert" and args.max_samples is not None:
        raise ValueError(f"--max_samples caps the imitation agents' expert-labelled samples; --agent {args.agent} "
                         "learns from its own experience (set iterations in its config).")
    for flag, value in (("--test_episodes", args.test_episodes), ("--max_samples", args.max_samples),
                        ("--total_steps", args.total_steps)):
        if value is not None and value <= 0:
            raise ValueError(f"{flag} must be positive.")
    if args.video_every < 0:
        raise ValueError("--video_every must be >= 0.")
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite exclude each other: continue the run, or start it again.")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_args(args)
    import torch

    torch.set_num_threads(args.threads)
    from envs.builder import env_dims, make_env, resolve_env_config
    from learning.evaluation import TEST_PURPOSE, TEST_SEED, evaluate_policy
    from util.config import ConfigError

    if args.env is None and args.env_config is None:
        raise ConfigError("Pass --env (cheetah, walker, hopper, ant, pendulum) or --env_config PATH.")
    env_cfg = resolve_env_config(args.env_config or args.env)
    device = _check_device(args.device)
    out_dir = Path(args.out_dir) if args.out_dir else ROOT / "output" / f"{args.agent}_{env_cfg.name}"
    from envs.video import ensure_headless_gl, has_display

    ensure_headless_gl()
    if args.visualize and not has_display():
        raise ValueError("--visualize needs a display, and none was found (DISPLAY is not set). "
                         "Record a video instead: --video out.mp4")
    if args.video:
        from util.fsio import check_output_file

        check_output_file(args.video, "--video")

    if args.mode == "test":
        env = make_env(env_cfg)
        obs_dim, act_dim = env_dims(env)
        if args.agent == "expert" and args.model_file is None:
            from learning.expert import load_expert

            policy = load_expert(env_cfg, obs_dim, act_dim, args.agent_config)
            source = "shipped expert"
        else:
            from learning.imitation import load_learner

            model = Path(args.model_file) if args.model_file else out_dir / "model.pt"
            policy = load_learner(model, env_cfg, obs_dim, act_dim)
            source = str(model)
        episodes = args.test_episodes or 10
        seed = TEST_SEED if args.seed is None else args.seed
        res = evaluate_policy(env, policy, episodes, seed, TEST_PURPOSE, progress=not args.no_progress)
        print(f"{args.agent} on {env_cfg.env_id} ({source}), {episodes} episodes, seed {seed}")
        print(f"Mean Return: {res.mean:.2f}")
        print(f"Std Return: {res.std:.2f}")
        print(f"Episodes reaching the time limit: {100 * res.survival_rate:.0f}%")
        act = lambda o: policy.act(o, deterministic=True)  # noqa: E731
        if args.video:
            from envs.builder import episode_seed
            from envs.video import record_video

            path, ret = record_video(env_cfg, act, args.video, seed=episode_seed(seed, TEST_PURPOSE, 0),
                                     progress=not args.no_progress)
            print(f"Video: {path} (episode return {ret:.1f})")
        if args.visualize:
            from envs.video import visualize

            visualize(env_cfg, act, seed)
        return 0

    from learning.agents import build_agent

    overrides = {"seed": args.seed}
    if args.agent == "expert":
        overrides["total_steps"] = args.total_steps
    elif args.agent in IMITATION_AGENTS:
        overrides.update(max_samples=args.max_samples, final_eval_episodes=args.test_episodes)
    else:
        overrides.update(final_eval_episodes=args.test_episodes)
    agent = build_agent(args.agent, env_cfg, {k: v for k, v in overrides.items() if v is not None}, out_dir=out_dir,
                        config_path=args.agent_config, solution=args.solution, progress=not args.no_progress,
                        device=device, video_every=args.video_every, tensorboard=not args.no_tensorboard)
    if args.agent == "expert":
        out = agent.run(resume=args.resume, overwrite=args.overwrite)
        print(f"Expert training done: {out['step']} steps, best evaluation return {out['best_eval']:.2f}; "
              f"install it with: python tools/train_expert.py --env {env_cfg.name} --run_dir {out_dir} --install")
        return 0
    res = agent.run(resume=args.resume, overwrite=args.overwrite)
    labelled = f"{len(agent.dataset)} labelled samples, " if args.agent in IMITATION_AGENTS else ""
    print(f"{args.agent} on {env_cfg.env_id}: {labelled}{agent.env_steps} env steps; outputs in {out_dir}")
    if not res.returns:
        print("no final evaluation (final_eval_episodes: 0); evaluate the model with: python run.py --agent "
              f"{args.agent} --env {env_cfg.name} --mode test --model_file {out_dir / 'model.pt'}")
        return 0
    print(f"Mean Return: {res.mean:.2f}")
    print(f"Std Return: {res.std:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

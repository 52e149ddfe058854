#!/usr/bin/env python
"""Train or evaluate an imitation agent (BC, DAgger, noise injection) or the expert on a MuJoCo task.

Examples:
    python run.py --agent bc --env cheetah                       # train with a1/bc_cheetah.yaml
    python run.py --agent dagger --env hopper --max_samples 20000
    python run.py --agent bc --env cheetah --mode test --model_file output/bc_cheetah/model.pt
    python run.py --agent expert --env cheetah --mode test --test_episodes 50
Outputs go to output/<agent>_<env>/ (log.txt, model.pt, curve.png, checkpoint.pt).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from learning.agents import AGENT_NAMES  # noqa: E402
from util.cli import run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", required=True, choices=AGENT_NAMES, help="which agent to run")
    p.add_argument("--env", default=None,
                   help="task short name: cheetah, walker, hopper, ant (or any name with a data/envs/<name>.yaml)")
    p.add_argument("--mode", choices=["train", "test"], default="train",
                   help="train (default) or test: evaluate a saved model with its deterministic action")
    p.add_argument("--env_config", default=None, help="explicit env YAML (overrides --env), e.g. for another gymnasium id")
    p.add_argument("--agent_config", default=None,
                   help="explicit agent YAML (default a1/<agent>_<env>.yaml; expert: data/agents/expert_<env>.yaml)")
    p.add_argument("--model_file", default=None,
                   help="model to evaluate in test mode (default: <out_dir>/model.pt; expert: the shipped expert)")
    p.add_argument("--max_samples", type=int, default=None,
                   help="cap on expert-labelled samples in the training set (overrides the config's max_samples)")
    p.add_argument("--test_episodes", type=int, default=None,
                   help="episodes for the final / test evaluation (default: config's final_eval_episodes, or 10)")
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the config's seed; test mode: default 0)")
    p.add_argument("--out_dir", default=None, help="output folder (default output/<agent>_<env>/)")
    p.add_argument("--device", default="cpu", help="torch device for training: cpu (default) or cuda")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from <out_dir>/checkpoint.pt")
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
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; small MLPs gain little from more)")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from envs.builder import env_dims, make_env, resolve_env_config
    from learning.evaluation import TEST_PURPOSE, TEST_SEED, evaluate_policy
    from util.config import ConfigError, load_config

    if args.env is None and args.env_config is None:
        raise ConfigError("Pass --env (cheetah, walker, hopper, ant) or --env_config PATH.")
    env_cfg = resolve_env_config(args.env_config or args.env)
    device = _check_device(args.device)
    out_dir = Path(args.out_dir) if args.out_dir else ROOT / "output" / f"{args.agent}_{env_cfg.name}"
    from util.video import ensure_headless_gl, has_display

    ensure_headless_gl()
    if args.visualize and not has_display():
        raise ValueError("--visualize needs a display, and none was found (DISPLAY is not set). "
                         "Record a video instead: --video out.mp4")
    if args.video_every < 0:
        raise ValueError("--video_every must be >= 0.")
    if args.test_episodes is not None and args.test_episodes <= 0:
        raise ValueError("--test_episodes must be positive.")
    if args.max_samples is not None and args.max_samples <= 0:
        raise ValueError("--max_samples must be positive.")

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
            from util.video import record_video

            path, ret = record_video(env_cfg, act, args.video, seed=episode_seed(seed, TEST_PURPOSE, 0),
                                     progress=not args.no_progress)
            print(f"Video: {path} (episode return {ret:.1f})")
        if args.visualize:
            from util.video import visualize

            visualize(env_cfg, act, seed)
        return 0

    if args.agent == "expert":
        from learning.expert import load_expert_config, td3_config
        from learning.td3 import TD3Trainer

        cfg, source = load_expert_config(env_cfg.name, args.agent_config)
        tcfg = td3_config(cfg, source, {"seed": args.seed})
        if args.max_samples is not None:
            tcfg.total_steps = args.max_samples
        if not args.resume and (out_dir / "checkpoint.pt").exists():
            raise ValueError(f"{out_dir} already holds a checkpoint: add --resume to continue it, or pick another --out_dir.")
        out = TD3Trainer(env_cfg, tcfg, out_dir, progress=not args.no_progress).train(resume=args.resume)
        print(f"Expert training done: {out['step']} steps, best evaluation return {out['best_eval']:.2f}; "
              f"install it with: python tools/train_expert.py --env {env_cfg.name} --run_dir {out_dir} --install")
        return 0

    from learning.agents import agent_class, default_agent_config

    cls = agent_class(args.agent)
    if args.solution:
        if not (ROOT / "grader" / "solution").is_dir():
            raise ValueError("--solution: the reference solutions are not part of the student release.")
        from grader.solution import solution_class

        cls = solution_class(cls, args.agent)
    cfg_path = Path(args.agent_config) if args.agent_config else default_agent_config(args.agent, env_cfg.name)
    if not cfg_path.is_file():
        raise ConfigError(f"Agent config not found: {cfg_path}. Create it (copy a1/{args.agent}_cheetah.yaml) "
                          "or pass --agent_config PATH.")
    overrides = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.max_samples is not None:
        overrides["max_samples"] = args.max_samples
    if args.test_episodes is not None:
        overrides["final_eval_episodes"] = args.test_episodes
    cfg = load_config(cls.config_class, cfg_path, overrides)
    if cfg.agent != args.agent:
        raise ConfigError(f"{cfg_path} is a config for agent '{cfg.agent}', not '{args.agent}'. Pass the {args.agent} config.")
    agent = cls(env_cfg, cfg, out_dir, device=device, progress=not args.no_progress)
    agent.video_every = args.video_every
    agent.tensorboard = not args.no_tensorboard
    res = agent.run(resume=args.resume)
    print(f"{args.agent} on {env_cfg.env_id}: {len(agent.dataset)} labelled samples, "
          f"{agent.env_steps} env steps; outputs in {out_dir}")
    print(f"Mean Return: {res.mean:.2f}")
    print(f"Std Return: {res.std:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

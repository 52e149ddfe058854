#!/usr/bin/env python
"""Record expert demonstrations into data/demos/<env>.npz (compressed, no pickle).

    python tools/record_demos.py --env cheetah --episodes 25
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from util.cli import run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="task short name (cheetah, walker, hopper, ant) or env YAML path")
    p.add_argument("--episodes", type=int, default=25, help="number of expert episodes (default 25)")
    p.add_argument("--seed", type=int, default=0, help="base seed; episode i resets with episode_seed(seed, 'demo', i)")
    p.add_argument("--out", default=None, help="output file (default data/demos/<env>.npz)")
    p.add_argument("--agent_config", default=None, help="expert config (default data/agents/expert_<env>.yaml)")
    return p


def record(env_cfg, expert, episodes: int, seed: int, progress: bool = True) -> dict:
    """Roll out ``expert`` deterministically for ``episodes`` episodes; returns the arrays to save."""
    import numpy as np

    from envs.builder import episode_seed, make_env

    env = make_env(env_cfg)
    cols = {k: [] for k in ("obs", "actions", "rewards", "terminated", "truncated")}
    starts, lengths, returns, seeds = [], [], [], []
    it = range(episodes)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"record {env_cfg.name}", unit="ep")
    for i in it:
        s = episode_seed(seed, "demo", i)
        obs, _ = env.reset(seed=s)
        starts.append(len(cols["obs"]))
        seeds.append(s)
        total, n = 0.0, 0
        while True:
            a = expert.act(obs, deterministic=True)
            nobs, r, term, trunc, _ = env.step(a)
            cols["obs"].append(obs); cols["actions"].append(a); cols["rewards"].append(r)
            cols["terminated"].append(term); cols["truncated"].append(trunc)
            total += float(r); n += 1
            obs = nobs
            if term or trunc:
                break
        lengths.append(n)
        returns.append(total)
    return {
        "obs": np.asarray(cols["obs"], np.float32), "actions": np.asarray(cols["actions"], np.float32),
        "rewards": np.asarray(cols["rewards"], np.float32), "terminated": np.asarray(cols["terminated"], bool),
        "truncated": np.asarray(cols["truncated"], bool), "episode_starts": np.asarray(starts, np.int64),
        "episode_lengths": np.asarray(lengths, np.int64), "episode_returns": np.asarray(returns, np.float64),
        "episode_seeds": np.asarray(seeds, np.int64),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.episodes < 1:
        print("error: --episodes must be at least 1", file=sys.stderr)
        return 2
    import gymnasium
    import mujoco
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from envs.builder import env_dims, make_env, resolve_env_config
    from learning.demos import demo_path
    from learning.expert import expert_model_path, load_expert, load_expert_config
    from tools.expert_install import file_sha256

    env_cfg = resolve_env_config(args.env)
    obs_dim, act_dim = env_dims(make_env(env_cfg))
    expert = load_expert(env_cfg, obs_dim, act_dim, args.agent_config)
    cfg, _ = load_expert_config(env_cfg.name, args.agent_config)
    arrays = record(env_cfg, expert, args.episodes, args.seed)
    meta = {
        "env_name": env_cfg.name, "env_id": env_cfg.env_id, "max_episode_steps": env_cfg.max_episode_steps,
        "gymnasium_version": gymnasium.__version__, "mujoco_version": mujoco.__version__,
        "expert_file": str(cfg.model_file), "expert_sha256": file_sha256(expert_model_path(cfg)),
        "seed": args.seed, "seed_rule": "episode i resets with envs.builder.episode_seed(seed, 'demo', i)",
        "episodes": args.episodes, "action": "expert deterministic (mean) action, no noise",
        "return_mean": float(arrays["episode_returns"].mean()), "return_std": float(arrays["episode_returns"].std()),
    }
    out = Path(args.out) if args.out else demo_path(env_cfg.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, meta_json=np.array(json.dumps(meta)), **arrays)
    tmp.replace(out)
    r = arrays["episode_returns"]
    print(f"Wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {args.episodes} episodes, "
          f"{len(arrays['obs'])} steps, return {r.mean():.1f} ± {r.std():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

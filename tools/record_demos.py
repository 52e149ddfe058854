#!/usr/bin/env python
"""Record expert demonstrations into data/demos/<env>.npz (compressed, no pickle).

    python tools/record_demos.py --env cheetah --episodes 25              # new file
    python tools/record_demos.py --env cheetah --episodes 25 --overwrite  # replace an existing file
    python tools/record_demos.py --env cheetah --add_final_obs --overwrite  # upgrade a format-1 file in place

``--add_final_obs`` upgrades a file written before ``final_obs`` existed (format 1) without re-running the
expert: it replays the stored actions from the stored reset seeds, checks that the simulator reproduces every
stored observation, reward and end flag bit for bit, and only then adds each episode's final observation.
(Re-running the expert is not bit-reproducible across machines: its float32 matrix products may round
differently on another CPU or torch build, and the chaotic dynamics amplify a 1-ulp difference.)

The file layout is documented in learning/demos.py and data/README.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from util.cli import run_main
from util.errors import UserError

if TYPE_CHECKING:
    import numpy as np

    from envs.builder import EnvConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="task short name (cheetah, walker, hopper, ant) or env YAML path")
    p.add_argument("--episodes", type=int, default=25, help="number of expert episodes (default 25)")
    p.add_argument("--seed", type=int, default=0, help="base seed; episode i resets with episode_seed(seed, 'demo', i)")
    p.add_argument("--out", default=None, help="output file (default data/demos/<env>.npz)")
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    p.add_argument("--agent_config", default=None, help="expert config (default data/agents/expert_<env>.yaml)")
    p.add_argument("--add_final_obs", action="store_true",
                   help="upgrade the existing format-1 file (--out or data/demos/<env>.npz) by replaying its actions; "
                        "writes --upgraded_out, or the same file with --overwrite")
    p.add_argument("--upgraded_out", default=None, help="with --add_final_obs: where to write the upgraded file")
    return p


def record(env_cfg: "EnvConfig", expert, episodes: int, seed: int, progress: bool = True) -> "dict[str, np.ndarray]":
    """Roll out ``expert`` deterministically for ``episodes`` episodes; returns the arrays to save.

    Returns (N = total steps, E = ``episodes``): obs (N, obs_dim) float32 (observation *before* each step),
    actions (N, act_dim) float32, rewards (N,) float32, terminated / truncated (N,) bool, final_obs (E, obs_dim)
    float32 (the observation returned by each episode's last step), episode_starts / episode_lengths /
    episode_seeds (E,) int64 and episode_returns (E,) float64.
    """
    import numpy as np

    from envs.builder import episode_seed, make_env

    env = make_env(env_cfg)
    cols = {k: [] for k in ("obs", "actions", "rewards", "terminated", "truncated")}
    starts, lengths, returns, seeds, finals = [], [], [], [], []
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
        finals.append(obs)
        lengths.append(n)
        returns.append(total)
    return {
        "obs": np.asarray(cols["obs"], np.float32), "actions": np.asarray(cols["actions"], np.float32),
        "rewards": np.asarray(cols["rewards"], np.float32), "terminated": np.asarray(cols["terminated"], bool),
        "truncated": np.asarray(cols["truncated"], bool), "final_obs": np.asarray(finals, np.float32),
        "episode_starts": np.asarray(starts, np.int64), "episode_lengths": np.asarray(lengths, np.int64),
        "episode_returns": np.asarray(returns, np.float64), "episode_seeds": np.asarray(seeds, np.int64),
    }


class ReplayMismatch(UserError):
    """Replaying a demo file's actions does not reproduce its stored observations/rewards/flags."""


def replay_final_obs(env_cfg: "EnvConfig", arrays: "dict[str, np.ndarray]") -> "np.ndarray":
    """Replay each episode's stored actions from its stored reset seed; returns final_obs (E, obs_dim) float32.

    Raises :class:`ReplayMismatch` at the first step whose observation, reward or terminated/truncated flag
    differs (bit for bit) from the stored one.
    """
    import numpy as np

    from envs.builder import make_env

    env = make_env(env_cfg)
    finals = []
    for e, (seed, start, length) in enumerate(zip(arrays["episode_seeds"], arrays["episode_starts"],
                                                   arrays["episode_lengths"], strict=False)):
        obs, _ = env.reset(seed=int(seed))
        for t in range(int(length)):
            row = int(start) + t
            if np.asarray(obs, np.float32).tobytes() != arrays["obs"][row].tobytes():
                raise ReplayMismatch(f"episode {e}, step {t}: replayed observation differs from the stored one")
            obs, r, term, trunc, _ = env.step(arrays["actions"][row])
            if (np.float32(r).tobytes() != arrays["rewards"][row].tobytes()
                    or bool(term) != bool(arrays["terminated"][row])
                    or bool(trunc) != bool(arrays["truncated"][row])):
                raise ReplayMismatch(f"episode {e}, step {t}: replayed reward/terminated/truncated differ from the "
                                     "stored ones")
        finals.append(obs)
    return np.asarray(finals, np.float32)


def add_final_obs(src: Path, dst: Path, env_cfg: "EnvConfig") -> int:
    """Write ``dst``: the format-1 demo file ``src`` with ``final_obs`` (from :func:`replay_final_obs`) added."""
    import numpy as np

    from learning.demos import FORMAT_NAME, FORMAT_VERSION, DemoError, load_demos

    old_keys = ("obs", "actions", "rewards", "terminated", "truncated", "episode_starts", "episode_lengths",
                "episode_returns", "episode_seeds", "meta_json")
    try:
        with np.load(src, allow_pickle=False) as f:
            if "final_obs" in f.files:
                print(f"error: {src} already has final_obs; nothing to upgrade", file=sys.stderr)
                return 2
            missing = [k for k in old_keys if k not in f.files]
            if missing:
                print(f"error: {src} is not a demo file (missing arrays: {', '.join(missing)})", file=sys.stderr)
                return 2
            arrays = {k: f[k] for k in old_keys}
    except (OSError, ValueError) as e:
        print(f"error: cannot read {src} as a demo file ({e})", file=sys.stderr)
        return 2
    meta = json.loads(str(arrays.pop("meta_json")))
    if meta.get("env_id") != env_cfg.env_id:
        print(f"error: {src} holds demos for {meta.get('env_id')}, not {env_cfg.env_id}", file=sys.stderr)
        return 2
    try:
        final_obs = replay_final_obs(env_cfg, arrays)
    except ReplayMismatch as e:
        print(f"error: cannot add final_obs to {src}: {e}. This simulator does not reproduce the file; "
              f"re-record it instead (python tools/record_demos.py --env {env_cfg.name} --overwrite)", file=sys.stderr)
        return 2
    meta.update({"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                 "final_obs_source": "added by tools/record_demos.py --add_final_obs: replay of the stored actions "
                                     "from the stored seeds reproduced every stored obs/reward/flag bit for bit"})
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp.npz")
    np.savez_compressed(tmp, meta_json=np.array(json.dumps(meta)), final_obs=final_obs, **arrays)
    try:
        load_demos(tmp, env_cfg.env_id, env_name=env_cfg.name)
    except DemoError as e:
        tmp.unlink()
        print(f"error: the upgraded file does not validate: {e}", file=sys.stderr)
        return 2
    tmp.replace(dst)
    print(f"Wrote {dst} ({dst.stat().st_size / 1e6:.2f} MB): {src} plus final_obs {final_obs.shape}; "
          f"replay reproduced all {len(arrays['obs'])} stored steps bit for bit")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.episodes < 1:
        print("error: --episodes must be at least 1", file=sys.stderr)
        return 2
    from learning.demos import FORMAT_NAME, FORMAT_VERSION, demo_path

    if args.out:
        out = Path(args.out)
    else:
        from envs.builder import resolve_env_config

        out = demo_path(resolve_env_config(args.env).name)
    if args.add_final_obs:
        from envs.builder import resolve_env_config

        dst = Path(args.upgraded_out) if args.upgraded_out else out
        if not out.is_file():
            print(f"error: {out} does not exist; nothing to upgrade", file=sys.stderr)
            return 2
        if dst.exists() and not args.overwrite:
            print(f"error: {dst} already exists; pass --overwrite to replace it (or --upgraded_out to write elsewhere)",
                  file=sys.stderr)
            return 2
        return add_final_obs(out, dst, resolve_env_config(args.env))
    if out.exists() and not args.overwrite:
        print(f"error: {out} already exists; pass --overwrite to replace it (or --out to write elsewhere)",
              file=sys.stderr)
        return 2
    import gymnasium
    import mujoco
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from envs.builder import env_dims, make_env, resolve_env_config
    from learning.expert import expert_model_path, load_expert, load_expert_config
    from util.fsio import file_sha256

    env_cfg = resolve_env_config(args.env)
    obs_dim, act_dim = env_dims(make_env(env_cfg))
    expert = load_expert(env_cfg, obs_dim, act_dim, args.agent_config)
    cfg, _ = load_expert_config(env_cfg.name, args.agent_config)
    arrays = record(env_cfg, expert, args.episodes, args.seed)
    meta = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "env_name": env_cfg.name, "env_id": env_cfg.env_id, "max_episode_steps": env_cfg.max_episode_steps,
        "gymnasium_version": gymnasium.__version__, "mujoco_version": mujoco.__version__,
        "expert_file": str(cfg.model_file), "expert_sha256": file_sha256(expert_model_path(cfg)),
        "seed": args.seed, "seed_rule": "episode i resets with envs.builder.episode_seed(seed, 'demo', i)",
        "episodes": args.episodes, "action": "expert deterministic (mean) action, no noise",
        "return_mean": float(arrays["episode_returns"].mean()), "return_std": float(arrays["episode_returns"].std()),
    }
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

#!/usr/bin/env python
"""Export a demo file (data/demos/<env>.npz) to a standard offline-RL dataset format.

    python tools/export_demos.py --format minari --env cheetah
    python tools/export_demos.py --format minari --env cheetah --root /tmp/minari \\
        --dataset_id il-mujoco/cheetah/expert-v0
    python -c "import minari; print(minari.load_dataset('il-mujoco/cheetah/expert-v0'))"

Minari (https://minari.farama.org) is an optional dependency: pip install 'minari[hdf5]' (see
requirements-optional.txt). Each Minari episode holds T + 1 observations (the demo file's T plus its
``final_obs``), T actions (env units), rewards, terminations and truncations, the reset seed as the
episode's ``seed``, and empty ``infos``. The dataset goes to ``<root>/<dataset_id>``, where ``root`` is
``--root``, else $MINARI_DATASETS_PATH, else ~/.minari/datasets (Minari's own default, where
``minari.load_dataset`` looks). An existing dataset is replaced only with ``--overwrite``.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from util.cli import run_main

if TYPE_CHECKING:
    from envs.builder import EnvConfig
    from learning.demos import Demos

FORMATS = ("minari",)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", required=True, choices=FORMATS, help="output format")
    p.add_argument("--env", required=True, help="task short name (cheetah, walker, hopper, ant) or env YAML path")
    p.add_argument("--demo_file", default=None, help="demo file to export (default data/demos/<env>.npz)")
    p.add_argument("--dataset_id", default=None,
                   help="Minari dataset id, namespace/env/name-vN (default il-mujoco/<env>/expert-v0)")
    p.add_argument("--root", default=None,
                   help="Minari datasets folder (default $MINARI_DATASETS_PATH or ~/.minari/datasets)")
    p.add_argument("--data_format", default="hdf5", choices=("hdf5", "arrow"),
                   help="Minari storage backend (hdf5 needs h5py, arrow needs pyarrow; default hdf5)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset with the same id")
    return p


def minari_episode_buffers(demos: "Demos") -> list[Any]:
    """One ``minari.data_collector.EpisodeBuffer`` per demo episode (observations (T + 1, obs_dim) incl. final_obs)."""
    from minari.data_collector import EpisodeBuffer

    out = []
    for e in range(demos.num_episodes):
        ep = demos.episode(e)
        out.append(EpisodeBuffer(
            id=e, seed=int(demos.data["episode_seeds"][e]), observations=ep["observations"],
            actions=ep["actions"], rewards=ep["rewards"], terminations=ep["terminations"],
            truncations=ep["truncations"], infos={},
        ))
    return out


def export_minari(demos: "Demos", env_cfg: "EnvConfig", dataset_id: str, data_format: str = "hdf5") -> Any:
    """Write ``demos`` as the Minari dataset ``dataset_id`` under $MINARI_DATASETS_PATH; returns the MinariDataset."""
    import gymnasium as gym
    import minari
    import numpy as np

    from envs.builder import make_env

    env = make_env(env_cfg)
    obs_dim = int(demos.data["obs"].shape[1])
    meta = demos.meta
    requirements = [f"{pkg}=={meta[key]}"
                    for pkg, key in (("gymnasium", "gymnasium_version"), ("mujoco", "mujoco_version"))
                    if meta.get(key)]
    with warnings.catch_warnings():   # minari warns that author_email / eval_env are unset: both are optional
        warnings.filterwarnings("ignore", message=r".*(author_email|eval_env).*", category=UserWarning)
        return minari.create_dataset_from_buffers(
            dataset_id=dataset_id,
            buffer=minari_episode_buffers(demos),
            env=env,
            # the demo file stores float32 observations; declare what is stored
            observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
            action_space=env.action_space,
            algorithm_name="TD3 expert, deterministic (mean) action",
            description=(f"{demos.num_episodes} expert episodes on {env_cfg.env_id} exported from {demos.path.name} "
                         f"(expert sha256 {meta.get('expert_sha256', '?')}, reset seed of each episode stored as "
                         "its seed)."),
            requirements=requirements or None,
            data_format=data_format,
        )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import minari  # noqa: F401
    except ImportError:
        print("error: --format minari needs the optional package minari: pip install 'minari[hdf5]' "
              "(see requirements-optional.txt)", file=sys.stderr)
        return 2
    backend = {"hdf5": "h5py", "arrow": "pyarrow"}[args.data_format]
    try:
        __import__(backend)
    except ImportError:
        print(f"error: Minari's {args.data_format} storage needs {backend}: pip install 'minari[{args.data_format}]'",
              file=sys.stderr)
        return 2
    if args.root:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(args.root).resolve())

    from minari.storage.datasets_root_dir import get_dataset_path

    from envs.builder import env_dims, make_env, resolve_env_config
    from learning.demos import demo_path, load_demos

    env_cfg = resolve_env_config(args.env)
    dataset_id = args.dataset_id or f"il-mujoco/{env_cfg.name}/expert-v0"
    try:
        from minari.dataset.minari_dataset import parse_dataset_id

        parse_dataset_id(dataset_id)
    except Exception as e:  # minari raises ValueError / AssertionError / RegexError for malformed ids
        print(f"error: bad --dataset_id '{dataset_id}' ({e}); use namespace/env/name-vN, "
              f"e.g. il-mujoco/{env_cfg.name}/expert-v0", file=sys.stderr)
        return 2
    out = Path(get_dataset_path(dataset_id))
    if out.exists():
        if not args.overwrite:
            print(f"error: Minari dataset {dataset_id} already exists at {out}; pass --overwrite to replace it "
                  f"(or choose another --dataset_id / --root)", file=sys.stderr)
            return 2
        if not (out / "data" / "metadata.json").is_file():
            print(f"error: {out} exists but is not a Minari dataset; refusing to delete it even with --overwrite",
                  file=sys.stderr)
            return 2
        import shutil

        shutil.rmtree(out)
    obs_dim, act_dim = env_dims(make_env(env_cfg))
    path = Path(args.demo_file) if args.demo_file else demo_path(env_cfg.name)
    demos = load_demos(path, env_cfg.env_id, obs_dim, act_dim, env_cfg.name)
    ds = export_minari(demos, env_cfg, dataset_id, args.data_format)
    print(f"Wrote Minari dataset {dataset_id} at {out}: {ds.total_episodes} episodes, {ds.total_steps} steps "
          f"(load it with minari.load_dataset('{dataset_id}') and "
          f"MINARI_DATASETS_PATH={out.parents[len(Path(dataset_id).parts) - 1]})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

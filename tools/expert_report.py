#!/usr/bin/env python
"""Write data/README.md from the measurements stored next to the shipped experts and demos.

    python tools/expert_report.py            # regenerate data/README.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = """# Data: environments, experts and demonstrations

| folder | contents |
|---|---|
| `envs/` | one YAML per task: `name`, `env_id` (gymnasium id), `max_episode_steps`, `kwargs` |
| `agents/` | `expert_<env>.yaml`: the expert's model file and the TD3 settings that trained it |
| `models/` | `expert_<env>.pt` (weights only), `expert_<env>.json` (its measured return, checksum, cost), `expert_<env>_train_log.txt` (training curve) |
| `demos/` | `<env>.npz`: expert episodes, compressed, loadable with `np.load(..., allow_pickle=False)` |

Experts are TD3 actors (256-256 ReLU MLP, tanh-squashed mean) trained by `tools/train_expert.py`
(`learning/td3.py`). Each is evaluated with its deterministic (mean) action over 50 held-out episodes
(reset seeds `episode_seed(0, "test", i)`, disjoint from the training episodes' `episode_seed(0, "train", i)`).
`--install` picks the shipped policy among the run's candidates (`best_model.pt`, `model.pt`, `snapshots/*.pt`)
by its mean over 20 *selection* episodes (`episode_seed(0, "select", i)`) and reports the 50 test episodes,
so the reported number is not the maximum of noisy measurements. (cheetah and hopper were installed before
selection episodes existed: the better of two candidates on the test episodes; both clear their floors by
more than 6%.)
Training ran on a 2-core CPU with the four tasks in parallel (one thread each), so wall times are
roughly half of what one task alone would take.

## Experts

| task | env id | return (mean ± std, 50 ep.) | reached the 1000-step limit | training steps | training wall time | file size | floor |
|---|---|---|---|---|---|---|---|
"""

FLOORS = {"cheetah": 6000, "walker": 4000, "hopper": 3000, "ant": 3500}

COMMANDS = """
## Reproduce and re-measure

```bash
python tools/train_expert.py --env cheetah              # train (checkpoints to runs/expert_cheetah/, Ctrl-C safe)
python tools/train_expert.py --env cheetah --resume     # continue after an interruption
python tools/train_expert.py --env cheetah --install    # evaluate candidates on 50 held-out episodes, ship the best
python tools/record_demos.py --env cheetah --episodes 25
python run.py --agent expert --env cheetah --mode test --test_episodes 50   # prints Mean Return: <value>
python tools/expert_report.py                           # rewrite this file from the measurements
```
Same for `walker`, `hopper` and `ant`. `--total_steps N` overrides the training length.

## Demonstration file format

`obs` (N, obs_dim) float32, `actions` (N, act_dim) float32 (env units), `rewards` (N,) float32,
`terminated` (N,) bool, `truncated` (N,) bool, `episode_starts` / `episode_lengths` / `episode_seeds` (E,) int64,
`episode_returns` (E,) float64, and `meta_json` (a JSON string: env id, gymnasium and mujoco versions, the
expert file's SHA-256, seeds, per-episode return summary). Step t of episode e is row `episode_starts[e] + t`.
Demos are recorded with the expert's deterministic action, episode i reset with `episode_seed(0, "demo", i)`.
"""


def main() -> int:
    rows, demo_rows = [], []
    for name in ("cheetah", "walker", "hopper", "ant"):
        p = ROOT / "data" / "models" / f"expert_{name}.json"
        if not p.is_file():
            rows.append(f"| {name} | | not trained yet | | | | |")
            continue
        d = json.loads(p.read_text())
        wall = d.get("train_wall_time_s") or 0
        floor = FLOORS[name]
        met = d["return_mean"] >= floor and (name == "cheetah" or d["survival_rate"] >= 0.95)
        rows.append(f"| {name} | {d['env_id']} | {d['return_mean']:.0f} ± {d['return_std']:.0f} | "
                    f"{100 * d['survival_rate']:.0f}% | {d['train_steps']:,} | {wall / 3600:.2f} h | "
                    f"{d['size_bytes'] / 1024:.0f} KiB | ≥ {floor} {'met' if met else '**not met**'} |")
        demo = ROOT / "data" / "demos" / f"{name}.npz"
        if demo.is_file():
            import numpy as np

            with np.load(demo, allow_pickle=False) as f:
                meta = json.loads(str(f["meta_json"]))
                demo_rows.append(f"| {name} | {len(f['episode_lengths'])} | {int(f['episode_lengths'].sum()):,} | "
                                 f"{meta['return_mean']:.0f} ± {meta['return_std']:.0f} | {demo.stat().st_size / 1e6:.2f} MB |")
    text = HEADER + "\n".join(rows) + "\n"
    text += "\n## Demonstrations\n\n| task | episodes | steps | return (mean ± std) | file size |\n|---|---|---|---|---|\n"
    text += "\n".join(demo_rows) + "\n" + COMMANDS
    out = ROOT / "data" / "README.md"
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Write data/README.md from the measurements stored next to the shipped experts and demos.

    python tools/expert_report.py            # regenerate data/README.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HEADER = """# Data: environments, experts and demonstrations

| folder | contents |
|---|---|
| `envs/` | one YAML per task: `name`, `env_id` (gymnasium id), `max_episode_steps`, `kwargs` |
| `agents/` | `expert_<env>.yaml`: the expert's model file and the trainer settings (`algo`: td3, sac, tqc, or ars to polish a trained actor) that trained it |
| `models/` | `expert_<env>.pt` (weights only), `expert_<env>.json` (its measured return, checksum, cost), `expert_<env>_train_log.txt` (training curve) |
| `demos/` | `<env>.npz`: expert episodes, compressed, loadable with `np.load(..., allow_pickle=False)` |
| `training/` | compact checkpoints of expert trainings in progress, to continue them on any machine (not in the student release or the Gradescope zip; see `training/README.md`) |

Experts are deterministic actors (256-256 ReLU MLP, tanh-squashed mean) trained by `tools/train_expert.py` with
an off-policy algorithm written for this project (`learning/expert/`: TD3, SAC or TQC, named in the table and in
the config's `trainer.algo`; hopper's TD3 actor was then polished by ARS, below); whatever the algorithm, the file has the same layout (below). Each is evaluated with its deterministic (mean) action over 50 held-out episodes
(reset seeds `episode_seed(0, "test", i)`, disjoint from the training episodes' `episode_seed(0, "train", i)`).
`--install` picks the shipped policy among the run's candidates (`best_model.pt`, `model.pt`, `snapshots/*.pt` and
the snapshots' weight average) by its mean over 20 or more *selection* episodes (`episode_seed(0, "select", i)`;
`select_episodes` and `source` in the expert's JSON: walker's expert is the average of its run's last five
snapshots, chosen on 100) and reports the 50 test episodes, so the reported number is not the maximum of noisy
measurements. The floor column gives the
required return (and, for tasks that can fall, 98% of episodes reaching the time limit); `--install` also refuses
any candidate that does not beat the shipped expert on the selection episodes.
Core-hours are the training process's CPU time (one torch thread); ≈ marks a partly estimated cost: experts
trained before CPU time was recorded, with four runs sharing two cores (half their wall time), and runs whose
first steps predate the counter (`train_cpu_time_estimated_s` in the expert's JSON: the estimated part).
Training steps are gradient steps with one environment step each; a run continued from a compact checkpoint
(`--warm_start`) also took the refill steps listed, environment steps without updates. TD3+ARS: a TD3 expert
polished by Augmented Random Search (`learning/expert/ars.py`, config `trainer.algo: ars`), which improves the actor
on its return under small action noise from perturbed rollouts, without a critic: many environment steps (the ARS
rollout steps), no gradient steps, little CPU (its core-hours include the TD3 training's).

## Experts

| task | env id | algorithm | return (mean ± std, 50 ep.) | reached the 1000-step limit | training steps (+ refill) | core-hours | file size | floor |
|---|---|---|---|---|---|---|---|---|
"""  # noqa: E501 - the lines of data/README.md as written (tables, commands, prose)

# the required returns (issue 11); tasks that can fall must also reach the time limit in 98% of episodes
FLOORS = {"cheetah": 8000, "walker": 5400, "hopper": 3720, "ant": 4700}

COMMANDS = """
## Reproduce and re-measure

```bash
python tools/train_expert.py --env cheetah              # train (checkpoints to runs/expert_cheetah/, Ctrl-C safe)
python tools/train_expert.py --env cheetah --resume     # continue after an interruption (needs runs/.../replay.npz)
python tools/train_expert.py --env cheetah --save_compact data/training/cheetah   # a few MB that survive a move
python tools/train_expert.py --env cheetah --warm_start data/training/cheetah     # continue from them elsewhere
python tools/train_expert.py --env cheetah --install    # ship the best candidate if it beats the shipped expert
python tools/record_demos.py --env cheetah --episodes 25 --overwrite   # re-record (not bit-identical on another machine)
python run.py --agent expert --env cheetah --mode test --test_episodes 50   # prints Mean Return: <value>
python tools/expert_report.py                           # rewrite this file from the measurements
```
Same for `walker`, `hopper` and `ant`. `--total_steps N` overrides the training length.

## Demonstration file format (`data/demos/<env>.npz`, format version 2)

A compressed `.npz` of plain arrays: load it with `np.load(path, allow_pickle=False)`. N = total steps,
E = episodes (25 shipped), steps stored episode after episode:

| key | shape | dtype | meaning |
|---|---|---|---|
| `obs` | (N, obs_dim) | float32 | observation *before* step t: the policy's input |
| `actions` | (N, act_dim) | float32 | the expert's action at step t, in env units (within the action space's `[low, high]`) |
| `rewards` | (N,) | float32 | reward of step t |
| `terminated` | (N,) | bool | step t ended the episode in a terminal state (the robot fell; never for cheetah) |
| `truncated` | (N,) | bool | step t ended the episode at the time limit (`max_episode_steps`, 1000) |
| `final_obs` | (E, obs_dim) | float32 | observation returned by episode e's last step (the last step's next observation) |
| `episode_starts` | (E,) | int64 | first row of episode e: 0, then the running sum of `episode_lengths` |
| `episode_lengths` | (E,) | int64 | steps in episode e (at least 1) |
| `episode_returns` | (E,) | float64 | undiscounted return of episode e (its rewards summed in float64) |
| `episode_seeds` | (E,) | int64 | seed of episode e's `env.reset(seed=...)`: `envs.builder.episode_seed(0, "demo", e)` |
| `meta_json` | () | str | JSON object: `format` (`"il-mujoco-demos"`), `format_version` (2), `env_name`, `env_id`, `max_episode_steps`, `gymnasium_version`, `mujoco_version`, `expert_file`, `expert_sha256`, `seed`, `seed_rule`, `episodes`, `action`, `return_mean`, `return_std`, and for upgraded files `final_obs_source` |

Step t of episode e is row `episode_starts[e] + t`. Its next observation is row `episode_starts[e] + t + 1`, or
`final_obs[e]` for the episode's last step, so (obs, action, reward, next_obs, done) transitions need nothing
invented. Exactly the last step of each episode has `terminated` or `truncated` set. `learning.demos.load_demos`
checks all of this (dtypes, shapes, row counts, starts against lengths, NaN/inf, end flags) and names the file
and the first bad episode; `Demos.episode(e)` returns one episode with its T + 1 observations.
Demos are recorded with the expert's deterministic action, episode i reset with `episode_seed(0, "demo", i)`.

The shipped files were recorded in format 1 (without `final_obs`); `final_obs` was added by
`python tools/record_demos.py --env <env> --add_final_obs --overwrite`, which replays the stored actions from the
stored seeds and refuses unless MuJoCo reproduces every stored observation, reward and end flag bit for bit (it
did, for all four files): the observations, actions and rewards are exactly those the grader was calibrated on.
Re-recording with the expert is not bit-reproducible across machines: its float32 matrix products can round
differently on another CPU or torch build (a few ulps), and the dynamics amplify that into different trajectories.

`python tools/export_demos.py --format minari --env <env>` writes the demos as a
[Minari](https://minari.farama.org) dataset (optional dependency: `pip install 'minari[hdf5]'`), readable with
`minari.load_dataset("il-mujoco/<env>/expert-v0")`.

## Expert model file format (`data/models/expert_<env>.pt`)

A `torch.save` of plain data only (dicts, lists, strings, numbers, tensors), so it loads with
`torch.load(path, map_location="cpu", weights_only=True)` and needs none of this project's classes:

| key | content |
|---|---|
| `format`, `version` | `"il-mujoco-policy"`, `1` |
| `spec` | `{"obs_dim", "act_dim", "hidden_sizes": [256, 256], "activation": "relu", "squash_mean": true, "learn_std": false}` |
| `state_dict` | the tensors below |
| `meta` | information only, not needed to rebuild the policy: `env_id`, `env_name`, `algo` (`"td3"`), `seed`, `train_steps`, `train_wall_time_s`, `gymnasium_version`, `mujoco_version`; from `--install`: `env`, `eval_episodes`, `eval_seed`, `eval_purpose`, `return_mean`, `return_std`, `survival_rate`; some files also `eval_return` (return measured when saved), `candidates`, `select_episodes` (how the shipped candidate was chosen) |

| `state_dict` key | shape | dtype | meaning |
|---|---|---|---|
| `obs_normalizer.mean`, `obs_normalizer.var` | (obs_dim,) | float32 | observation statistics (the shipped TD3 experts keep mean 0, var 1) |
| `obs_normalizer.count` | () | float64 | observations the statistics came from (0 for the experts) |
| `net.0.weight`, `net.0.bias` | (256, obs_dim), (256,) | float32 | first Linear layer (PyTorch layout: `y = x @ W.T + b`) |
| `net.2.weight`, `net.2.bias` | (256, 256), (256,) | float32 | second Linear layer (`net.1`, `net.3` are the parameter-free ReLUs) |
| `net.4.weight`, `net.4.bias` | (act_dim, 256), (act_dim,) | float32 | output Linear layer |
| `log_std` | (act_dim,) | float32 | log standard deviation of the Gaussian over normalized actions (experts: log 0.1, fixed); not used by the deterministic action |
| `action_low`, `action_high` | (act_dim,) | float32 | the env's action bounds |

The deterministic (mean) action, as `GaussianMLPPolicy.act(obs, deterministic=True)` computes it in float32:

1. normalize: `o_n = clip((o - mean) / sqrt(var + 1e-8), -10, 10)`. The epsilon `1e-8` and the clip `10` are
   constants of `learning/normalizer.py`, not stored in the file. With the experts' mean 0 and var 1 this is just
   a clip of every observation entry to [-10, 10], which matters: 10% of the cheetah demos' observation
   entries (velocities) lie outside it.
2. MLP: `Linear(obs_dim, 256) → ReLU → Linear(256, 256) → ReLU → Linear(256, act_dim)`.
3. squash (`spec["squash_mean"]`, true for the experts): `a_n = tanh(u)`, a normalized action in [-1, 1].
4. scale to env units: `a = low + (clip(a_n, -1, 1) + 1) / 2 * (high - low)`.

A sampled (non-deterministic) action adds `exp(clamp(log_std, -20, 2)) * ε`, ε ~ N(0, I), to `a_n` before step 4.
Plain PyTorch, run from the repository root (checked against the project's policy by
`tests/test_demos_expert_snippet.py`):

<!-- expert-snippet -->
```python
import numpy as np
import torch
import torch.nn.functional as F

ckpt = torch.load("data/models/expert_cheetah.pt", map_location="cpu", weights_only=True)
assert ckpt["format"] == "il-mujoco-policy" and ckpt["version"] == 1
spec, sd = ckpt["spec"], ckpt["state_dict"]
act_fn = {"relu": F.relu, "tanh": torch.tanh, "elu": F.elu, "gelu": F.gelu}[spec["activation"]]
n_linear = len(spec["hidden_sizes"]) + 1       # Linear layers are net.0, net.2, ... (odd indices: activations)


def expert_action(obs: np.ndarray) -> np.ndarray:
    # raw env observation (obs_dim,) or (B, obs_dim) -> deterministic env action (act_dim,) or (B, act_dim)
    x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
    mean, var = sd["obs_normalizer.mean"], sd["obs_normalizer.var"]
    x = ((x - mean) / torch.sqrt(var + 1e-8)).clamp(-10.0, 10.0)      # observation normalizer
    for i in range(n_linear):
        x = F.linear(x, sd[f"net.{2 * i}.weight"], sd[f"net.{2 * i}.bias"])
        if i < n_linear - 1:
            x = act_fn(x)
    a = torch.tanh(x) if spec["squash_mean"] else x                     # mean action in [-1, 1]
    low, high = sd["action_low"], sd["action_high"]
    return (low + (a.clamp(-1.0, 1.0) + 1.0) * 0.5 * (high - low)).numpy()   # env units [low, high]
```
"""  # noqa: E501 - the lines of data/README.md as written (tables, commands, prose)


def main() -> int:
    rows, demo_rows = [], []
    for name in ("cheetah", "walker", "hopper", "ant"):
        p = ROOT / "data" / "models" / f"expert_{name}.json"
        if not p.is_file():
            rows.append(f"| {name} | | | not trained yet | | | | | |")
            continue
        d = json.loads(p.read_text())
        wall = d.get("train_wall_time_s") or 0
        floor = FLOORS[name]
        met = d["return_mean"] >= floor and (name == "cheetah" or d["survival_rate"] >= 0.98)
        cpu = d.get("train_cpu_time_s")
        if not cpu:
            cost = f"≈ {wall / 2 / 3600:.2f}"
        else:   # ≈ when part of the counter was estimated (a run that predates CPU-time recording)
            cost = f"≈ {cpu / 3600:.2f}" if d.get("train_cpu_time_estimated_s") else f"{cpu / 3600:.2f}"
        refill = f" (+ {d['refill_steps']:,})" if d.get("refill_steps") else ""
        steps = f"{d['train_steps']:,}{refill}"
        if "ars_steps" in d:   # an ARS polish: the starting policy's training steps, then the rollouts' steps
            steps = f"{d['init_train_steps']:,}{refill} + {d['ars_steps']:,} ARS rollout steps"
        rows.append(f"| {name} | {d['env_id']} | {d.get('algo', 'td3').upper()} | {d['return_mean']:.0f} ± "
                    f"{d['return_std']:.0f} | {100 * d['survival_rate']:.0f}% | {steps} | "
                    f"{cost} | "
                    f"{d['size_bytes'] / 1024:.0f} KiB | ≥ {floor} {'met' if met else '**not met**'} |")
        demo = ROOT / "data" / "demos" / f"{name}.npz"
        if demo.is_file():
            import numpy as np

            with np.load(demo, allow_pickle=False) as f:
                meta = json.loads(str(f["meta_json"]))
                demo_rows.append(f"| {name} | {len(f['episode_lengths'])} | {int(f['episode_lengths'].sum()):,} | "
                                 f"{meta['return_mean']:.0f} ± {meta['return_std']:.0f} | "
                                 f"{f['episode_returns'].min():.0f} | {demo.stat().st_size / 1e6:.2f} MB |")
    text = HEADER + "\n".join(rows) + "\n"
    text += ("\n## Demonstrations\n\n| task | episodes | steps | return (mean ± std) | lowest episode | file size |\n"
             "|---|---|---|---|---|---|\n")
    text += "\n".join(demo_rows) + "\n"
    text += ("\nThe demos are the expert's deterministic episodes from their own reset seeds, recorded as they came "
             "(none is\nfiltered out). A cheetah that flips onto its back keeps running upside down, slowly: "
             "HalfCheetah never\nterminates, so a flip shows only as a low return (the lowest-episode column). "
             "Hopper, walker and ant end an\nepisode when the body leaves its healthy range (a demo shorter than "
             "1000 steps); ant's range also has a ceiling\n(torso height at most 1.0 m), so a fast ant's falls are "
             "mostly bounces, not flips.\n")
    text += COMMANDS
    out = ROOT / "data" / "README.md"
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

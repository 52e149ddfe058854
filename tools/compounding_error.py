#!/usr/bin/env python
"""Measure compounding errors: how far BC and DAgger drift from the expert's states over the horizon.

For the expert, a BC policy and a DAgger policy, each rolled out with its deterministic action:
  * drift(t): distance from the learner's state at step t to the nearest expert state in the demos
    (observations standardized with the demos' mean and std), averaged over episodes still running;
  * mistakes(t): cumulative number of steps up to t where the learner's action differs from the action
    the expert would take *in the learner's state* by more than --tol (RMS over action dimensions).
    After a fall (termination) every remaining step counts as a mistake: the policy has left the task.
BC's cumulative mistakes typically bend upward (quadratic growth, O(εT²)); DAgger's stay close to a
line (O(εT)). The plot shows both with least-squares fits m(t) = a·t² + b·t and m(t) = c·t.

    python tools/compounding_error.py --env hopper                 # trains BC and DAgger with your code
    python tools/compounding_error.py --env hopper --bc_model output/bc_hopper/model.pt \
        --dagger_model output/dagger_hopper/model.pt --out hopper_drift.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from util.cli import run_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="task: cheetah, walker, hopper, ant")
    p.add_argument("--horizon", type=int, default=1000, help="steps per rollout T (default 1000)")
    p.add_argument("--episodes", type=int, default=10, help="rollouts per policy (default 10)")
    p.add_argument("--tol", type=float, default=0.3, help="action error (RMS, normalized units) counted as a mistake")
    p.add_argument("--bc_model", default=None, help="trained BC model (default: train one with a1/bc_<env>.yaml)")
    p.add_argument("--dagger_model", default=None,
                   help="trained DAgger model (default: train with a1/dagger_<env>.yaml)")
    p.add_argument("--bc_demos", type=int, default=5, help="demo episodes for the BC policy trained here (default 5)")
    p.add_argument("--quick", action="store_true", help="tiny training budgets (for smoke tests)")
    p.add_argument("--solution", action="store_true", help="(TAs) train with the reference solutions")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="plot file (default output/compounding_<env>/compounding_<env>.png)")
    return p


def _train(agent: str, env_cfg, out_dir: Path, overrides: dict, solution: bool):
    from learning.agents import build_agent

    a = build_agent(agent, env_cfg, overrides, out_dir=out_dir, solution=solution, tensorboard=False)
    a.run(overwrite=True)
    return a.policy


def rollouts(env, act_fn, expert, episodes: int, horizon: int, seed: int, tol: float, norm_action):
    """Returns states (E, T, obs_dim) with NaN after termination, mistakes (E, T) as 0/1, alive (E, T)."""
    import numpy as np

    from envs.builder import episode_seed

    obs_dim = env.observation_space.shape[0]
    states = np.full((episodes, horizon, obs_dim), np.nan)
    mistakes = np.ones((episodes, horizon))
    alive = np.zeros((episodes, horizon), bool)
    returns = []
    for e in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, "compounding", e))
        total = 0.0
        for t in range(horizon):
            a = act_fn(obs)
            a_star = expert.act(obs, deterministic=True)
            err = np.sqrt(np.mean((norm_action(a) - norm_action(a_star)) ** 2))
            states[e, t], mistakes[e, t], alive[e, t] = obs, float(err > tol), True
            obs, r, term, trunc, _ = env.step(a)
            total += float(r)
            if term or trunc:
                break
        returns.append(total)
    return states, mistakes, alive, returns


def nearest_distance(states, reference, chunk: int = 2048):
    """Distance (E, T) from each state to its nearest neighbour in ``reference`` (N, d); NaN stays NaN."""
    import numpy as np
    import torch

    flat = states.reshape(-1, states.shape[-1])
    out = np.full(len(flat), np.nan)
    ok = ~np.isnan(flat).any(1)
    ref = torch.as_tensor(reference, dtype=torch.float32)
    ref_sq = (ref ** 2).sum(1)
    x = torch.as_tensor(flat[ok], dtype=torch.float32)
    res = []
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk]
        d2 = (xb ** 2).sum(1, keepdim=True) - 2 * xb @ ref.T + ref_sq
        res.append(d2.clamp_min(0).min(1).values.sqrt())
    if res:
        out[ok] = torch.cat(res).numpy()
    return out.reshape(states.shape[:2])


def fit_growth(m):
    """Least squares m(t) ≈ a t² + b t and m(t) ≈ c t (t = 1..T); returns (a, b, c, r2_quad, r2_lin)."""
    import numpy as np

    t = np.arange(1, len(m) + 1, dtype=float)
    A = np.stack([t ** 2, t], 1)
    (a, b), *_ = np.linalg.lstsq(A, m, rcond=None)
    c = float(t @ m / (t @ t))
    ss = float(((m - m.mean()) ** 2).sum()) or 1.0
    r2q = 1 - float(((A @ np.array([a, b]) - m) ** 2).sum()) / ss
    r2l = 1 - float(((c * t - m) ** 2).sum()) / ss
    return float(a), float(b), c, r2q, r2l


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.horizon <= 0 or args.episodes <= 0:
        raise ValueError("--horizon and --episodes must be positive")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from envs.builder import env_dims, make_env, resolve_env_config
    from learning.demos import demo_path, load_demos
    from learning.expert import load_expert
    from learning.imitation import load_learner

    env_cfg = resolve_env_config(args.env)
    env = make_env(env_cfg)
    obs_dim, act_dim = env_dims(env)
    expert = load_expert(env_cfg, obs_dim, act_dim)
    demos = load_demos(demo_path(env_cfg.name), env_cfg.env_id, obs_dim, act_dim, env_cfg.name)
    work = ROOT / "output" / f"compounding_{env_cfg.name}"
    out = Path(args.out) if args.out else work / f"compounding_{env_cfg.name}.png"

    quick_bc = {"epochs": 4, "eval_every": 4, "eval_episodes": 1, "final_eval_episodes": 1} if args.quick else {}
    quick_dg = {"rounds": 2, "samples_per_round": 500, "epochs": 5, "epochs_per_round": 2, "eval_episodes": 1,
                "final_eval_episodes": 1, "max_samples": 0} if args.quick else {}
    bc = (load_learner(args.bc_model, env_cfg, obs_dim, act_dim) if args.bc_model else
          _train("bc", env_cfg, work / "bc",
                 {"demo_episodes": min(args.bc_demos, demos.num_episodes), "seed": args.seed, **quick_bc},
                 args.solution))
    dagger = (load_learner(args.dagger_model, env_cfg, obs_dim, act_dim) if args.dagger_model else
              _train("dagger", env_cfg, work / "dagger", {"seed": args.seed, **quick_dg}, args.solution))

    ref = demos.data["obs"]
    mu, sd = ref.mean(0), ref.std(0) + 1e-6
    sample = ref[np.random.default_rng(0).permutation(len(ref))[:10000]]
    reference = (sample - mu) / sd
    low, high = expert.action_low.numpy(), expert.action_high.numpy()
    norm_action = lambda a: 2 * (np.asarray(a) - low) / (high - low) - 1  # noqa: E731

    curves, summary = {}, {}
    from tqdm import tqdm

    for name, pol in tqdm([("expert", expert), ("BC", bc), ("DAgger", dagger)], desc="rollouts", unit="policy"):
        states, mistakes, alive, rets = rollouts(env, lambda o, p=pol: p.act(o, deterministic=True), expert,
                                                 args.episodes, args.horizon, args.seed, args.tol, norm_action)
        dist = nearest_distance((states - mu) / sd, reference)
        with np.errstate(invalid="ignore"):
            drift = np.nanmean(np.where(alive, dist, np.nan), 0)
        cum = np.cumsum(mistakes, 1).mean(0)
        a, b, c, r2q, r2l = fit_growth(cum)
        curves[name] = (drift, cum, (a, b, c))
        summary[name] = {"return_mean": float(np.mean(rets)), "survival": float(alive[:, -1].mean()),
                         "mistakes_at_T": float(cum[-1]), "quad_a": a, "quad_b": b, "lin_c": c,
                         "r2_quadratic": r2q, "r2_linear": r2l, "mean_drift": float(np.nanmean(drift))}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(1, args.horizon + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), dpi=110)
    colors = {"expert": "k", "BC": "tab:red", "DAgger": "tab:blue"}
    for name, (drift, cum, (a, b, c)) in curves.items():
        ax1.plot(t, drift, color=colors[name], label=name, lw=1.2)
        ax2.plot(t, cum, color=colors[name], label=f"{name}", lw=1.8)
        if name != "expert":
            ax2.plot(t, a * t ** 2 + b * t, color=colors[name], ls="--", lw=1, label=f"{name}: quadratic fit")
            ax2.plot(t, c * t, color=colors[name], ls=":", lw=1, label=f"{name}: linear fit")
    ax1.set(xlabel="time step t", ylabel="distance to nearest expert state (standardized)",
            title=f"Drift from the expert's states ({env_cfg.env_id})")
    ax2.set(xlabel="time step t", ylabel=f"cumulative mistakes (action error > {args.tol})",
            title="Compounding errors: BC ~ O(εT²), DAgger ~ O(εT)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2))

    print(f"{'policy':8s} {'return':>9s} {'survive':>8s} {'mistakes@T':>11s} "
          f"{'a (t^2)':>10s} {'R2 quad':>8s} {'R2 lin':>8s}")
    for name, s in summary.items():
        print(f"{name:8s} {s['return_mean']:9.1f} {100 * s['survival']:7.0f}% {s['mistakes_at_T']:11.1f} "
              f"{s['quad_a']:10.2e} {s['r2_quadratic']:8.3f} {s['r2_linear']:8.3f}")
    print(f"Wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))

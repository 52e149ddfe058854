"""The noise-injection (DART) unit checks: ``noisy_expert_step`` labels with the clean expert action and executes
it with fresh Gaussian noise of σ = noise_std·(high − low)/2 per dimension, clipped to the bounds; ``collect_round``
runs it for exactly n steps in the env, resetting after every episode end, and stores (state, clean label) pairs.
"""
from __future__ import annotations

import numpy as np
import torch

from grader.answers import Field
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.replay import (Round, collect_schema, collection_part, collection_setup, episode_problems, episode_summary,
                           label_problems, read_rounds, round_failure, state_problems, timeout_hint)
from grader.round_check import round_check_spec
from grader.unit_inputs import random_bounds, random_policy, sample_obs, shared_draw, task_dims
from learning.policy import GaussianMLPPolicy


DART_REPEATS = 6            # calls per state on one agent: 6 × batch calls


def check_dart_step(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """noisy_expert_step over DART_REPEATS × batch calls on one agent (every action dimension, asymmetric bounds)."""
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = task_dims(v.env)
    low, high = random_bounds(act_dim, rng)
    expert = random_policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.3)
    noise_std = float(rng.uniform(0.28, 0.4))   # away from the config default 0.2: a hardcoded σ shows
    obs = sample_obs(expert, v.batch, rng)
    schema = {k: Field((v.batch, DART_REPEATS, act_dim), "f") for k in ("exec", "label")}
    out, why = run_unit(ctx, DART_STEP, v, {"obs": obs}, {"policy": expert, "expert": expert},
                        schema=schema, noise_std=noise_std, repeats=DART_REPEATS)
    label_name, noise_name = DART_STEP.part_names(v)
    if out is None:
        return [CheckResult(label_name, 0, 1, why), CheckResult(noise_name, 0, 1, why)]
    shape = (v.batch, DART_REPEATS, act_dim)
    exe = np.asarray(out["exec"], np.float64).reshape(shape)
    lab = np.asarray(out["label"], np.float64).reshape(shape)
    clean = expert.act(obs).astype(np.float64)[:, None, :]            # (N, 1, act_dim)
    if not np.any(exe) and not np.any(lab):
        why = "noisy_expert_step returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(label_name, 0, 1, why), CheckResult(noise_name, 0, 1, why)]
    with torch.no_grad():
        clean_n = expert.mean_action(torch.as_tensor(obs)).double().numpy()[:, None, :]
    results = [_dart_label_part(label_name, lab, exe, clean, clean_n)]
    problems = _noise_problems(exe, clean, low.astype(np.float64), high.astype(np.float64), noise_std)
    if problems:
        results.append(CheckResult(noise_name, 0, 1, "; ".join(problems)))
    else:
        calls = exe.shape[0] * exe.shape[1]
        results.append(CheckResult(noise_name, 1, 1, f"executed = expert + N(0, σ²) with σ = {noise_std:.2f}·"
                                                     "(high−low)/2, independent in every dimension, clipped to the "
                                                     f"bounds, fresh at each of {calls} calls"))
    return results


DART_STEP = CheckSpec(
    key="dart_step", agent="dart", run=check_dart_step, methods=("noisy_expert_step",),
    public=(Variant(seed=404, env="hopper", batch=80),),
    parts=(
        Part("Noise injection: clean label", 5.0,
             "the stored label is the expert's clean env-unit action at every call (feedback names the noisy action as"
             ' label and normalized units)'),
        Part("Noise injection: noisy executed action", 5.0,
             '`noisy_expert_step` called 6 × N times on one agent, with asymmetric bounds whose half-ranges differ '
             '(one < 0.55, one > 1.8): per action dimension executed − expert ≈ N(0, (noise_std·(high−low)/2)²), '
             'inside [low, high], Gaussian (kurtosis), independent across dimensions (correlation of the standardized '
             'noise between dimensions < 0.5), fresh at every call; `noise_std` is drawn away from the config default '
             'so a hard-coded σ shows. Feedback names a missing (high−low)/2, 2× and 10× scales, unclipped, [−1, '
             '1]-clipped actions or swapped clip bounds, one draw shared by every dimension, the same noise every '
             'call, uniform noise, NaN')),
    handout=("Noise injection",
             'over many calls: executed actions carry fresh Gaussian noise of the configured scale, independent in '
             'every action dimension, within the bounds; labels are the clean env-unit actions'))



DART_ROUND = round_check_spec(
    "dart", "TODO 3c", seed=707,
    part=Part("Noise injection round", 5.0,
              "`train_round` run for rounds 1–3 on one agent through the framework's `run_round` (which enforces the "
              'sample budget), from seeded data as if round 0 had run, with the reference `collect_round` and `fit` '
              'recorded; `max_samples` cuts round 3: each round calls `collect_round` once with n = '
              'room(samples_per_round), `self.dataset` afterwards holds every earlier pair and the n new ones (any '
              'order), the policy is retrained once on the whole of it for `epochs_per_round` epochs (through '
              "`train_on` or `fit`), and the training's loss is returned. Feedback names the placeholder, n that "
              'ignores the budget, a dataset replaced by the new pairs or with the demos or a round dropped, training '
              'on the new pairs only or before adding them, `epochs` for `epochs_per_round`, no retraining, a loss '
              "other than the training's"),
    handout=("Noise-injection round",
             "over several rounds on one agent: each round collects room(samples_per_round) noisy-expert pairs, adds "
             "them to the dataset and retrains on all of it for epochs_per_round epochs, returning the training's "
             "loss"))

COLLECT_ROUNDS = 2          # collect_round calls on one agent, each a new collection of n = the variant's batch


def check_dart_collect(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """collect_round(n) COLLECT_ROUNDS times on one agent, each call a new collection (as run_round makes it), in an
    env whose episodes end within the round; noisy_expert_step is the reference's. The env's record (every reset and
    step) is replayed in a fresh env, and every verdict is taken from it and the returned pairs."""
    states_name, episodes_name = DART_COLLECT.part_names(v)
    rng = np.random.default_rng(v.seed)
    c = collection_setup(v.env, rng, expert_scale=0.3)
    env_cfg, obs_dim, act_dim, low, high, learner, expert = (c.env_cfg, c.obs_dim, c.act_dim, c.low, c.high,
                                                              c.learner, c.expert)
    noise_std = float(rng.uniform(0.28, 0.4))   # away from the config default 0.2
    ns = [v.batch] * COLLECT_ROUNDS
    out, why = run_unit(ctx, DART_COLLECT, v, {}, {"policy": learner, "expert": expert},
                        schema=collect_schema(ns, obs_dim, act_dim), tested=DART_COLLECT.methods,
                        calls=[[n, None] for n in ns], max_steps=env_cfg.max_episode_steps, noise_std=noise_std)
    if out is None:
        why = timeout_hint(why)
        return [CheckResult(states_name, 0, 1, why), CheckResult(episodes_name, 0, 1, why)]
    rounds = read_rounds(out, ns, obs_dim, act_dim)
    labels = [f"round {k} of {COLLECT_ROUNDS}" for k in range(1, COLLECT_ROUNDS + 1)]
    why = round_failure(rounds, labels, env_cfg, low, high, obs_dim, act_dim)
    if why:
        return [CheckResult(states_name, 0, 1, why), CheckResult(episodes_name, 0, 1, why)]
    state_found, episode_found = [], []
    for r, label in zip(rounds, labels):
        state_found += [(label, p) for p in state_problems(r)
                        or label_problems(r, expert, "clean action", NOISY_LABEL)]
        episode_found += [(label, p) for p in episode_problems(r)]
    steps = sum(r.steps for r in rounds)
    episode_found += [("", p) for p in _collect_noise_problems(rounds, expert, low.astype(np.float64),
                                                               high.astype(np.float64), noise_std)]
    return [
        collection_part(states_name, state_found,
                        f"{len(rounds)} rounds of n = {v.batch}: exactly n pairs each, the state at which each action "
                        "was chosen, in order, labelled with the expert's clean action"),
        collection_part(episodes_name, episode_found,
                        f"exactly n steps per round, {episode_summary(rounds)}, a reset after each; the executed "
                        f"actions are the expert's plus fresh N(0, σ²) noise (σ = {noise_std:.2f}·(high−low)/2), "
                        f"clipped, at all {steps} steps")]


DART_COLLECT = CheckSpec(
    key="dart_collect", agent="dart", run=check_dart_collect, methods=("collect_round",),
    public=(Variant(seed=606, env="hopper", batch=300),),
    parts=(
        Part("Noise injection collection: states and labels", 5.0,
             '`collect_round(n)` called twice on one agent, each call a new collection as the framework runs a round, '
             'with the reference `noisy_expert_step`, in an env whose episodes end within the round (hopper falls; a '
             'time limit of 21-70 steps truncates): it returns a Dataset of exactly n pairs, the states at which each '
             "step's action was chosen, in the order visited, labelled with the expert's clean action there. Feedback "
             'names the placeholder, n ± 1 pairs, the next state stored (one step late), the noisy executed action '
             'stored as label, a return value that is not a Dataset'),
        Part("Noise injection collection: episodes and actions", 5.0,
             "the env's record of every reset and step replays in a fresh env from its reset seeds and actions; each "
             'round starts with a reset, takes exactly n steps, resets after every `terminated` or `truncated` (never '
             'in the middle of an episode); the executed action is the expert\'s at the state plus fresh Gaussian '
             'noise of σ = noise_std·(high−low)/2 per dimension, clipped to the bounds. Feedback names a missing reset '
             "at termination or at truncation (the env's message), more than n steps, a loop that never returns (the "
             'time limit), the clean action executed')),
    handout=("Noise injection collection",
             "`collect_round` over two rounds: exactly n steps of the noisy expert, a reset after every episode end "
             "(terminated or truncated), the states where each action was chosen with the expert's clean labels"))



NOISY_LABEL = ("the stored label is the noisy executed action: store the expert's clean action, noisy_expert_step's "
               "second value")


def _collect_noise_problems(rounds: list[Round], expert: GaussianMLPPolicy, low: np.ndarray, high: np.ndarray,
                            noise_std: float) -> list[str]:
    """Every executed action, at the state it was chosen at, must be clip(expert + fresh N(0, σ²) noise) (the env
    clips what it is given, so an unclipped action passed to env.step is judged as the env executed it)."""
    pre = np.concatenate([r.pre_states() for r in rounds])
    exe = np.clip(np.concatenate([r.executed() for r in rounds]), low, high)     # what the env executed
    if len(exe) == 0:
        return []
    clean = expert.act(pre.astype(np.float32), deterministic=True).astype(np.float64)
    if np.allclose(exe, clean, atol=1e-6):
        return ["the executed action is the expert's clean action (no noise): execute the noisy action, "
                "noisy_expert_step's first value"]
    problems = _noise_problems(exe[None], clean[None], low, high, noise_std)      # (1, steps, act_dim)
    return [f"executed actions: {p}" for p in problems]


def _dart_label_part(name: str, lab: np.ndarray, exe: np.ndarray, clean: np.ndarray,
                     clean_n: np.ndarray) -> CheckResult:
    """lab, exe (N, R, act_dim); clean, clean_n (N, 1, act_dim): the label must be the clean env-unit action."""
    if not np.all(np.isfinite(lab)):
        return CheckResult(name, 0, 1, "the stored labels contain NaN or infinite values")
    if np.allclose(lab, clean, atol=1e-4):
        return CheckResult(name, 1, 1, "labels are the expert's clean actions at every call")
    if np.allclose(lab, exe, atol=1e-6):
        return CheckResult(name, 0, 1, "the stored label is the noisy executed action; store the clean expert action")
    if np.allclose(lab, clean_n, atol=1e-4):
        return CheckResult(name, 0, 1, "the stored label is in normalized units ([-1, 1]): store the expert's action "
                                       "in env units, as self.expert_action(obs) returns it")
    if not np.allclose(lab, lab[:, :1], atol=1e-6):
        return CheckResult(name, 0, 1, "the stored label changes between calls for the same state: it must be the "
                                       "expert's clean action (no noise)")
    return CheckResult(name, 0, 1, "labels differ from the expert's clean actions")


def _pooled_excess_kurtosis(exe: np.ndarray, clean: np.ndarray, low: np.ndarray, high: np.ndarray,
                            sigma: np.ndarray) -> float:
    """Excess kurtosis of the standardized noise over all dimensions (unclipped samples only)."""
    inside = (exe > low + 1e-4) & (exe < high - 1e-4)
    z = ((exe - clean) / sigma)[inside]
    z = (z - z.mean()) / (z.std() + 1e-12)
    return float((z ** 4).mean() - 3.0)


def _bound_problems(exe: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[str]:
    """Clipping mistakes: [-1, 1] instead of the bounds, no clipping, swapped bounds."""
    outside = np.any(exe < low - 1e-5) or np.any(exe > high + 1e-5)
    wide = (low < -1.0 - 1e-3) | (high > 1.0 + 1e-3)
    unit_clip = np.any(np.isclose(np.abs(exe), 1.0, atol=1e-6)) and np.all(np.abs(exe) <= 1.0 + 1e-6)
    if unit_clip and wide.any() and (outside or not np.any(np.abs(exe)[..., wide] > 1.0 + 1e-4)):
        return ["executed actions are clipped to [-1, 1] instead of the env's bounds "
                "[self.action_low, self.action_high]"]
    if outside:
        return ["executed actions leave the action bounds (clip to [self.action_low, self.action_high])"]
    at_low, at_high = np.isclose(exe, low, atol=1e-6), np.isclose(exe, high, atol=1e-6)
    if np.all(at_low) or np.all(at_high):
        which = "lower bound self.action_low" if np.all(at_low) else "upper bound self.action_high"
        return [f"every executed action equals the {which}: the clip's bounds are swapped? "
                "(np.clip(x, self.action_low, self.action_high): the lower bound first)"]
    if np.mean(at_low | at_high) > 0.9:
        return ["almost every executed action sits on a bound: check the clip (np.clip(x, self.action_low, "
                "self.action_high)) and the noise's scale"]
    return []


def _noise_problems(exe: np.ndarray, clean: np.ndarray, low: np.ndarray, high: np.ndarray,
                    noise_std: float) -> list[str]:
    """What is wrong with the executed actions ``exe`` (N, R, act_dim) for clean actions ``clean`` (N, 1, act_dim)."""
    if not np.all(np.isfinite(exe)):
        return ["the executed actions contain NaN or infinite values"]
    bounds = _bound_problems(exe, low, high)
    if bounds:
        return bounds
    if exe.shape[1] > 1 and np.allclose(exe[:, 0], exe[:, 1]):
        noise = exe - clean
        if np.any(noise) and np.allclose(noise, noise[:1, :1]):
            return ["the same noise is added at every call: draw fresh noise with self.rng at each call"]
        return ["the same action is executed at every call for a given state: draw fresh noise with self.rng at "
                "each call"]
    half = (high - low) / 2.0
    sigma = noise_std * half
    inside = (exe > low + 1e-4) & (exe < high - 1e-4)
    z = (exe - clean) / sigma
    ratios, means, clipped = [], [], []
    for j in range(exe.shape[-1]):
        zj = z[..., j][inside[..., j]]
        if zj.size < 40:
            return [f"almost every executed action of dimension {j} sits on a bound"]
        ratios.append(float(zj.std()))
        means.append(float(zj.mean()))
        clipped.append(1.0 - float(inside[..., j].mean()))
    ratios_a = np.asarray(ratios)
    if np.all(ratios_a < 0.05):
        return ["the executed action carries no noise"]
    shared = shared_draw(z, inside)
    if shared:
        return [f"the noise {shared}"]
    if np.all((0.8 < ratios_a) & (ratios_a < 1.25)) and np.all(np.abs(means) < 0.25):
        kurt = _pooled_excess_kurtosis(exe, clean, low, high, sigma)
        if kurt < -0.6:
            return [f"the noise is not Gaussian (excess kurtosis {kurt:.2f}; a Gaussian has 0, uniform noise −1.2): "
                    "draw it with self.rng.normal"]
        return []
    return [_scale_hint(ratios_a, np.asarray(means), np.asarray(clipped) < 0.05, half)]


def _scale_hint(ratios: np.ndarray, means: np.ndarray, clean_dims: np.ndarray, half: np.ndarray) -> str:
    """Name a wrong noise scale from the measured std / expected σ per dimension (``clean_dims``: little clipping)."""
    scale = (ratios * half)[clean_dims]          # measured noise std / noise_std, in env units
    ratios_c = ratios[clean_dims]
    if not clean_dims.any():
        hint = "the noise's spread differs from σ = noise_std·(high − low)/2"
    elif np.all(np.abs(scale - 1.0) < 0.25):
        hint = "σ misses the (high − low)/2 factor: scale the noise per dimension by self.cfg.noise_std·(high − low)/2"
    elif np.all(np.abs(ratios_c - 2.0) < 0.4):
        hint = "σ is twice the expected: use (high − low)/2, not (high − low)"
    elif np.all(np.abs(ratios_c / 10.0 - 1.0) < 0.25):
        hint = "σ is ten times the expected"
    elif np.any(np.abs(means) >= 0.25):
        hint = "the noise is not centred on the expert's action (mean ≠ 0)"
    else:
        hint = "the noise's spread differs from σ = noise_std·(high − low)/2 in some dimensions"
    detail = ", ".join(f"{r:.2f}" for r in ratios)
    return f"{hint} (measured std / expected σ per dimension: {detail}; expected 1.00)"


CHECKS = (DART_STEP, DART_COLLECT, DART_ROUND)

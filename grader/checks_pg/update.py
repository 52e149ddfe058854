"""The checks of ``estimate_advantages`` (critic values, bootstrapped targets, GAE, normalization, no baseline) and
``update`` (one actor step, critic_steps critic steps, from a known start), simulated here with every named mistake."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from grader.answers import Field
from grader.checks_pg.batches import PG_CFG, Call, close_to, random_episodes, random_rewards
from grader.checks_pg.gae import gae_values
from grader.checks_pg.losses import CRITIC_HIDDEN, actor_ref, close_value, critic_vector, pg_policy_and_critic
from grader.checks_pg.rtg import rtg_ref
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.unit_inputs import sample_obs
from learning.policy import GaussianMLPPolicy

# ------------------------------------------------------------------------------------------------ estimate_advantages

BATCH_KEYS = ("obs", "actions", "rewards", "next_obs", "terminated", "ends")


def _pg_batch(rng: np.random.Generator, pol: GaussianMLPPolicy, total: int) -> dict[str, np.ndarray]:
    """A Batch's arrays (learning/rollouts.py): concatenated episodes, next_obs[t] = obs[t+1] inside an episode."""
    term, ends = random_episodes(rng, total)
    n = len(ends)
    obs = sample_obs(pol, n, rng)
    next_obs = np.concatenate([obs[1:], sample_obs(pol, 1, rng)])
    next_obs[ends] = sample_obs(pol, int(ends.sum()), rng)
    return {"obs": obs, "actions": rng.uniform(-1.3, 1.3, (n, pol.act_dim)).astype(np.float32),
            "rewards": random_rewards(rng, n), "next_obs": next_obs, "terminated": term, "ends": ends}


def _concat_batches(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    out = {k: np.concatenate([b[k] for b in batches]) for k in BATCH_KEYS}
    out["sizes"] = np.array([len(b["ends"]) for b in batches], np.int64)
    return out


def _critic_values(pol: GaussianMLPPolicy, critic: torch.nn.Module, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return critic(pol.normalize_obs(torch.as_tensor(obs))).squeeze(-1).numpy().astype(np.float32)


@dataclass
class Setting:
    """One estimate_advantages call's configuration."""

    baseline: bool
    normalize: bool
    gamma: float
    lam: float


def _normalized(x: np.ndarray, ddof: int = 0) -> np.ndarray:
    return (x - x.mean()) / (x.std(ddof=ddof) + 1e-8)


def _estimates(b: dict[str, np.ndarray], s: Setting, pol: GaussianMLPPolicy,
               critic: torch.nn.Module) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The reference (advantages, targets) under "" and the named wrong versions."""
    n = len(b["ends"])
    zeros = np.zeros(n, np.float32)
    v, nv = (_critic_values(pol, critic, b["obs"]), _critic_values(pol, critic, b["next_obs"])) if s.baseline \
        else (zeros, zeros)

    def call(values: np.ndarray, next_values: np.ndarray) -> Call:
        return Call(b["rewards"], b["terminated"], b["ends"], next_values, values, s.gamma, s.lam, 0)

    def norm(x: np.ndarray) -> np.ndarray:
        return _normalized(x) if s.normalize else x

    c = call(v, nv)
    g = rtg_ref(c)
    adv = gae_values(c) if s.baseline else g.copy()
    out = {"": (norm(adv), g)}
    if s.normalize:
        out["the advantages are not normalized (normalize_advantages is on: (Â − mean) / (std + 1e-8))"] = (adv, g)
        out["the targets are normalized too (only the advantages are; the critic fits the unnormalized returns)"] = \
            (_normalized(adv), _normalized(g))
    else:
        out["the advantages are normalized though normalize_advantages is off"] = (_normalized(adv), g)
    if s.baseline:
        same = call(v, v)
        out["V(s_{t+1}) is computed from batch.obs instead of batch.next_obs"] = (norm(gae_values(same)), rtg_ref(same))
        out["the targets are not bootstrapped: pass the critic's V(s_{t+1}) to reward_to_go as next_values"] = \
            (norm(adv), rtg_ref(call(v, zeros)))
        out["the targets are the λ-return Â + V (GAE plus values): the critic's targets are the reward-to-go"] = \
            (norm(adv), adv + v)
        out["the advantages are the reward-to-go minus V(s_t), not GAE (gae_advantages)"] = (norm(g - v), g)
        out["the advantages are the reward-to-go: with a baseline they are GAE (gae_advantages)"] = (norm(g), g)
    else:
        out["without a baseline the advantages are the reward-to-go, not GAE with V ≡ 0 (equal only for λ = 1)"] = \
            (norm(gae_values(call(zeros, zeros))), g)
        v1, nv1 = _critic_values(pol, critic, b["obs"]), _critic_values(pol, critic, b["next_obs"])
        c1 = call(v1, nv1)
        out["the critic is used though baseline is off (V ≡ 0: advantages = targets = the reward-to-go)"] = \
            (norm(gae_values(c1)), rtg_ref(c1))
    return out


def _estimate_matches(adv: np.ndarray, tgt: np.ndarray, pair: tuple[np.ndarray, np.ndarray], s: Setting) -> bool:
    ok_t = close_to(tgt, pair[1])
    if close_to(adv, pair[0]):
        return ok_t
    # the sample standard deviation (ddof 1) is as good a normalization
    return ok_t and s.normalize and close_to(adv, pair[0] * pair[0].std() / max(pair[0].std(ddof=1), 1e-12))


def _settings(rng: np.random.Generator) -> list[Setting]:
    return [Setting(True, False, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.4, 0.8))),
            Setting(True, True, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.8, 0.97))),
            Setting(False, False, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.4, 0.8))),
            Setting(False, True, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.4, 0.8)))]


def check_pg_estimate(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """estimate_advantages with a given critic on crafted batches, baseline on/off × normalization on/off."""
    (name,) = PG_ESTIMATE.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol, critic = pg_policy_and_critic(v, rng)
    settings = _settings(rng)
    batches = [_pg_batch(rng, pol, v.batch) for _ in settings]
    arrays = {**_concat_batches(batches), "critic": critic_vector(critic),
              "settings": np.array([[s.baseline, s.normalize, s.gamma, s.lam] for s in settings], np.float64)}
    total = int(arrays["sizes"].sum())
    schema = {"advantages": Field((total,), "f"), "targets": Field((total,), "f"),
              "changed": Field((len(settings),), "b")}
    out, why = run_unit(ctx, PG_ESTIMATE, v, arrays, {"policy": pol}, schema=schema,
                        tested=("estimate_advantages",), cfg={**PG_CFG, "hidden_sizes": CRITIC_HIDDEN})
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    cuts = np.cumsum([0, *arrays["sizes"].tolist()])
    advs, tgts = np.asarray(out["advantages"], np.float64), np.asarray(out["targets"], np.float64)
    if not np.any(advs) and not np.any(tgts):
        return [CheckResult(name, 0, 1, "estimate_advantages returns zeros (the placeholder?): fill in TODO 2e")]
    for k, (s, b) in enumerate(zip(settings, batches)):
        adv, tgt = advs[cuts[k]:cuts[k + 1]], tgts[cuts[k]:cuts[k + 1]]
        named = _estimates(b, s, pol, critic)
        if _estimate_matches(adv, tgt, named[""], s):
            continue
        where = f"with baseline: {str(s.baseline).lower()}, normalize_advantages: {str(s.normalize).lower()}"
        why = next((w for w, pair in named.items() if w and _estimate_matches(adv, tgt, pair, s)), "")
        if not why:
            what = [x for x, ok in (("the advantages", close_to(adv, named[""][0])),
                                    ("the targets", close_to(tgt, named[""][1]))) if not ok]
            why = f"{' and '.join(what) or 'the result'} differ from the reference"
        return [CheckResult(name, 0, 1, f"{where}: {why}")]
    if np.asarray(out["changed"]).any():
        return [CheckResult(name, 0, 1, "estimate_advantages changed the batch's arrays in place")]
    return [CheckResult(name, 1, 1, "advantages and targets right with baseline on and off, normalization on and off")]


PG_ESTIMATE = CheckSpec(
    key="pg_estimate", agent="pg", run=check_pg_estimate, methods=("estimate_advantages",),
    public=(Variant(seed=2505, env="hopper", batch=40),),
    parts=(
        Part("PG advantages and targets", 5.0,
             '`estimate_advantages` with a given critic (random weights, a non-trivial observation normalizer) on '
             'crafted batches of concatenated episodes, baseline on and off × normalize_advantages on and off '
             '(reference reward_to_go and gae_advantages): advantages and targets equal the reference (the '
             'normalization with the population or the sample standard deviation), the batch unchanged. Feedback '
             'names normalization missing or unasked, normalized targets, V(s_{t+1}) from obs, unbootstrapped '
             'targets, λ-return targets, G − V or G for advantages with a baseline, GAE with V ≡ 0 or the critic '
             'without one'),),
    handout=("PG advantages and targets",
             "unit check against the reference on seeded batches with a given critic: baseline on and off, "
             "advantage normalization on and off"))


# ------------------------------------------------------------------------------------------------ update

UPDATE_CALLS = 2
UPDATE_BUGS = {
    "no_zero_grad_actor": "the actor's gradients are not cleared before its step (call "
                          "self.actor_optimizer.zero_grad() before backward: gradients add up across calls)",
    "no_zero_grad_critic": "the critic's gradients are not cleared before each of its steps (zero_grad before each "
                           "backward: gradients add up across steps)",
    "recompute": "the advantages are recomputed after the critic's steps (compute advantages and targets once, "
                 "before anything changes)",
    "targets_each_step": "the targets are recomputed at each critic step from the updated critic (compute them once, "
                         "before anything changes)",
}


@dataclass
class UpdateSetup:
    """What the reference update needs: the start's weights, the settings, the batches."""

    pol: GaussianMLPPolicy
    critic: torch.nn.Module
    setting: Setting
    lr: float
    critic_lr: float
    critic_steps: int
    batches: list[dict[str, np.ndarray]]


def _set_vector(module: torch.nn.Module, vec: np.ndarray) -> None:
    torch.nn.utils.vector_to_parameters(torch.as_tensor(vec, dtype=torch.float32), module.parameters())


def _vector(module: torch.nn.Module) -> np.ndarray:
    return torch.nn.utils.parameters_to_vector(module.parameters()).detach().double().numpy()


def _simulate(u: UpdateSetup, bug: str, critic_before: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray,
                                                                                      float, float]]:
    """The update (with ``bug``, "" none) on each batch from the start's weights and fresh Adam optimizers; before
    call k the critic holds ``critic_before[k]`` (the student's own critic then, so that a critic mistake does not
    change the actor's reference). Returns per call (actor vector, critic vector, actor loss, last critic loss)."""
    import copy

    from learning.optim import Adam

    pol, critic = copy.deepcopy(u.pol), copy.deepcopy(u.critic)
    opt_a, opt_c = Adam(pol.parameters(), lr=u.lr), Adam(critic.parameters(), lr=u.critic_lr)
    out = []
    for b, before in zip(u.batches, critic_before):
        _set_vector(critic, before)

        def estimate() -> tuple[torch.Tensor, torch.Tensor]:
            adv, tgt = _estimates(b, u.setting, pol, critic)[""]
            return torch.as_tensor(adv, dtype=torch.float32), torch.as_tensor(tgt, dtype=torch.float32)

        obs, act = torch.as_tensor(b["obs"]), torch.as_tensor(b["actions"])
        adv, tgt = estimate()

        def actor_step(adv: torch.Tensor) -> float:
            if bug != "no_zero_grad_actor":
                opt_a.zero_grad(set_to_none=True)
            loss = actor_ref(pol, obs, act, adv)
            loss.backward()
            opt_a.step()
            return float(loss.detach())

        a_loss = float("nan") if bug == "recompute" else actor_step(adv)
        c_loss = float("nan")
        for _ in range(u.critic_steps):
            if bug == "targets_each_step":
                _, tgt = estimate()
            if bug != "no_zero_grad_critic":
                opt_c.zero_grad(set_to_none=True)
            c = ((critic(pol.normalize_obs(obs)).squeeze(-1) - tgt) ** 2).mean()
            c.backward()
            opt_c.step()
            c_loss = float(c.detach())
        if bug == "recompute":
            a_loss = actor_step(estimate()[0])
        out.append((_vector(pol), _vector(critic), a_loss, c_loss))
    return out


def _close_params(x: np.ndarray, ref: np.ndarray, lr: float) -> bool:
    """Parameters after Adam steps: equal up to a small fraction of one step."""
    return x.shape == ref.shape and bool(np.all(np.isfinite(x))) and bool(np.allclose(x, ref, rtol=0,
                                                                                      atol=0.05 * lr + 1e-6))


def _update_part(name: str, u: UpdateSetup, out: dict[str, np.ndarray], actor: bool) -> CheckResult:
    """The actor's part (actor=True: its parameters, its steps, actor_loss) or the critic's."""
    k = len(u.batches)
    key, lr, what = ("actor", u.lr, "actor") if actor else ("critic", u.critic_lr, "critic")
    params = np.asarray(out[f"{key}_params"], np.float64).reshape(k, -1)
    steps = np.asarray(out["steps"], np.int64).reshape(k, 2)[:, 0 if actor else 1]
    losses = np.asarray(out["losses"], np.float64).reshape(k, 2)[:, 0 if actor else 1]
    critic_before = [_vector(u.critic), *np.asarray(out["critic_params"], np.float64).reshape(k, -1)[:-1]]
    ref = _simulate(u, "", critic_before)
    want = 1 if actor else u.critic_steps
    if not np.any(np.asarray(out["steps"])) and np.all(np.isnan(np.asarray(out["losses"], np.float64))):
        return CheckResult(name, 0, 1, "update is the placeholder (no optimizer step): fill in TODO 2f")
    for i in range(k):
        call = f"update call {i + 1} of {k}"
        if steps[i] != want:
            why = (f"self.{what}_optimizer took {steps[i]} steps in one update; expected {want} "
                   f"({'one actor step per batch' if actor else 'critic_steps'})")
            if steps[i] == 0:
                why += f": step self.{what}_optimizer (the framework's Adam; a new optimizer loses its state)"
            return CheckResult(name, 0, 1, f"{call}: {why}")
        if not _close_params(params[i], ref[i][0 if actor else 1], lr):
            why = next((text for bug, text in UPDATE_BUGS.items()
                        if _close_params(params[i], _simulate(u, bug, critic_before)[i][0 if actor else 1], lr)), "")
            return CheckResult(name, 0, 1, f"{call}: the {what}'s parameters after the update differ from one "
                                           f"reference {'step' if actor else 'series of steps'}"
                               + (f": {why}" if why else ""))
        loss_ref = ref[i][2 if actor else 3]
        if not close_value(float(losses[i]), loss_ref):
            which = "the actor's loss (before its step)" if actor else "the critic's loss at its last step"
            return CheckResult(name, 0, 1, f"{call}: the returned {key}_loss {losses[i]:.5f} is not {which}, "
                                           f"{loss_ref:.5f}")
    done = ("one Adam step on the actor loss per update" if actor else
            f"{u.critic_steps} Adam steps on the critic loss per update")
    return CheckResult(name, 1, 1, f"{done}, over {k} consecutive updates, and the returned {key}_loss right")


def check_pg_update(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """update on consecutive batches from a known start: the actor's and the critic's parameters after each call equal
    the reference Adam steps (computed here), the steps counted, the returned losses."""
    actor_name, critic_name = PG_UPDATE.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol, critic = pg_policy_and_critic(v, rng)
    setting = Setting(True, True, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.8, 0.97)))
    u = UpdateSetup(pol, critic, setting, float(rng.uniform(0.003, 0.01)), float(rng.uniform(0.003, 0.01)),
                    int(rng.integers(3, 6)), [_pg_batch(rng, pol, v.batch) for _ in range(UPDATE_CALLS)])
    cfg = {**PG_CFG, "hidden_sizes": CRITIC_HIDDEN, "discount": setting.gamma, "gae_lambda": setting.lam,
           "baseline": True, "normalize_advantages": True, "learning_rate": u.lr, "critic_learning_rate": u.critic_lr,
           "critic_steps": u.critic_steps}
    arrays = {**_concat_batches(u.batches), "critic": critic_vector(critic)}
    k = UPDATE_CALLS
    n_actor, n_critic = sum(p.numel() for p in pol.parameters()), sum(p.numel() for p in critic.parameters())
    schema = {"actor_params": Field((k, n_actor), "f"), "critic_params": Field((k, n_critic), "f"),
              "steps": Field((k, 2), "i"), "losses": Field((k, 2), "f"), "returned": Field((k,), "b")}
    out, why = run_unit(ctx, PG_UPDATE, v, arrays, {"policy": pol}, schema=schema,
                        tested=("update",), cfg=cfg)
    if out is None:
        return [CheckResult(actor_name, 0, 1, why), CheckResult(critic_name, 0, 1, why)]
    return [_update_part(actor_name, u, out, True), _update_part(critic_name, u, out, False)]


PG_UPDATE = CheckSpec(
    key="pg_update", agent="pg", run=check_pg_update, methods=("update",),
    public=(Variant(seed=2606, env="hopper", batch=40),),
    parts=(
        Part("PG update: actor step", 5.0,
             '`update` on 2 consecutive batches of one agent from a known start (random policy and critic weights, a '
             'non-trivial observation normalizer, fresh Adam optimizers, learning rates and critic_steps drawn; '
             'reference estimate_advantages, actor_loss and critic_loss): after each call the policy\'s parameters '
             'equal one reference Adam step on the actor loss of advantages computed before any step, '
             'self.actor_optimizer stepped once, and the returned actor_loss is that loss. Feedback names several '
             'actor steps, a new optimizer, gradients not cleared, advantages recomputed after the critic\'s steps'),
        Part("PG update: critic steps", 5.0,
             'after each call the critic\'s parameters equal critic_steps reference Adam steps on the critic loss of '
             'the targets computed before any step, self.critic_optimizer stepped critic_steps times, and the '
             'returned critic_loss is the loss at the last step. Judged apart from the actor. Feedback names missing '
             'or extra critic steps, gradients not cleared, targets recomputed at each step')),
    handout=("PG update",
             "unit check from a known start over two updates: one Adam step of the actor (5 points) and critic_steps "
             "Adam steps of the critic (5), with advantages and targets computed once before any step"))

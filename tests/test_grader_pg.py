"""The policy-gradient unit checks (grader/checks_pg/): the reference gets every point and the stub none, each
typical bug loses exactly its own part with feedback naming it, other correct styles keep every point. The diagnosis
of the reward-to-go and GAE mistakes is also tested directly on arrays (fast)."""
import inspect
import types

import numpy as np
import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader import checks_pg as C  # noqa: E402
from grader.checks_pg import batches as B  # noqa: E402
from grader.checks_pg import gae as G  # noqa: E402
from grader.checks_pg import rtg as R  # noqa: E402
from grader.context import Variant  # noqa: E402
from grader.grade import grade  # noqa: E402
from grader.reference_submissions import write_submission  # noqa: E402
from grader.solution import pg_solution as S  # noqa: E402

CORE = {"pg_rtg", "pg_gae", "pg_actor_loss", "pg_critic_loss"}
KEYS = CORE | {"pg_estimate", "pg_update"}
VARIANTS = [Variant(2101, "pendulum", 40), Variant(9717, "hopper", 61, hidden=True)]


def _grade(sub, hidden=False, only=CORE):
    return grade(sub, include_hidden=hidden, include_performance=False, only=set(only), scope="full",
                 assignment="a2", unit_timeout=120)


def _parts(report):
    return {t.name.split(" (")[0]: t for t in report.tests if t.max_score > 0}


def _reference_source(method, *edits: tuple[str, str]) -> str:
    """The reference method's source with each edit (old, new) made in turn; each old text stands once in it."""
    src = inspect.getsource(method)
    for old, new in edits:
        assert src.count(old) == 1, old
        src = src.replace(old, new)
    return src


STEP = "        future = float(rewards[t]) + gamma * future\n"    # lines of the reference reward_to_go
STORE = "        g[t] = future\n"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _grade(write_submission(tmp_path_factory.mktemp("ref") / "sub", scope="full", assignment="a2"),
                  hidden=True, only=KEYS)


@pytest.mark.slow
def test_reference_gets_every_point_and_the_stub_none(reference, tmp_path):
    """Both gradings with hidden variants: about 50 s."""
    assert reference.score == reference.max_score == 50
    names = {t.name for t in reference.tests if t.max_score > 0}
    assert len(names) == 20        # 10 parts × (public, hidden)
    stub = _grade(write_submission(tmp_path / "stub", reference=False, scope="full", assignment="a2"), hidden=True,
                  only=KEYS)
    assert stub.score == 0
    assert {t.name for t in stub.tests if t.max_score > 0} == names
    out = {t.name.split(" (")[0]: t.output for t in stub.tests if t.max_score > 0}
    assert "placeholder" in out["PG reward-to-go: values"] and "placeholder" in out["PG GAE: TD errors"]
    assert "placeholder" in out["PG actor loss: value"] and "placeholder" in out["PG critic loss"]
    assert "placeholder" in out["PG advantages and targets"] and "placeholder" in out["PG update: actor step"]


def test_core_scope_grades_the_core_checks_only(tmp_path):
    report = grade(write_submission(tmp_path / "sub", scope="core", assignment="a2"), include_hidden=False,
                   include_performance=False, only=KEYS, scope="core", assignment="a2")
    parts = _parts(report)
    assert report.score == report.max_score == 35 and len(parts) == 7


def test_points_and_methods_are_declared():
    assert sum(p.points for s in C.CHECKS for p in s.parts) == 50
    assert sum(p.points for s in C.CHECKS for p in s.parts if s.key in CORE) == 35
    assert {s.key: s.methods for s in C.CHECKS} == {"pg_rtg": ("reward_to_go",), "pg_gae": ("gae_advantages",),
                                                    "pg_actor_loss": ("actor_loss",),
                                                    "pg_critic_loss": ("critic_loss",),
                                                    "pg_estimate": ("estimate_advantages",), "pg_update": ("update",)}


# ------------------------------------------------------------------------------------------------ on arrays (fast)

def _solve(calls, method):
    self = types.SimpleNamespace(cfg=types.SimpleNamespace(discount=0.0, gae_lambda=0.0))
    outs = []
    for c in calls:
        self.cfg.discount, self.cfg.gae_lambda = c.gamma, c.lam
        if method == "rtg":
            outs.append(S.reward_to_go(self, c.rewards, c.terminated, c.ends, c.next_values))
        else:
            outs.append(S.gae_advantages(self, c.rewards, c.values, c.next_values, c.terminated, c.ends))
    return outs


@pytest.mark.parametrize("v", VARIANTS)
def test_rtg_value_mistakes_cost_the_values_part_only(v):
    calls = B.rtg_calls(v)
    none = np.zeros(len(calls), bool)
    ref = _solve(calls, "rtg")
    assert R._rtg_values_part("v", calls, ref, none).score == R._rtg_boundary_part("b", calls, ref).score == 1
    assert "in place" in R._rtg_values_part("v", calls, ref, ~none).output
    for key, why in R.RTG_VALUE_BUGS.items():
        outs = [R._rtg(c.rewards, c.gamma, c.ends, c.ends & ~c.terminated, c.next_values, value=key) for c in calls]
        values, bounds = R._rtg_values_part("v", calls, outs, none), R._rtg_boundary_part("b", calls, outs)
        assert values.score == 0 and why in values.output, (key, values.output)
        assert bounds.score == 1 and "values part" in bounds.output, (key, bounds.output)


@pytest.mark.parametrize("v", VARIANTS)
def test_rtg_boundary_mistakes_cost_the_boundary_part_only(v):
    calls = B.rtg_calls(v)
    none = np.zeros(len(calls), bool)
    for why in R._rtg_boundary_bugs(calls[0]):
        outs = [R._rtg_boundary_bugs(c)[why] for c in calls]
        bounds = R._rtg_boundary_part("b", calls, outs)
        assert bounds.score == 0 and why in bounds.output, (why, bounds.output)
        if "one step late" not in why:       # a late reset breaks a single episode's sums too
            assert R._rtg_values_part("v", calls, outs, none).score == 1


@pytest.mark.parametrize("v", VARIANTS)
def test_gae_mistakes_cost_their_own_part_only(v):
    calls = B.gae_calls(v)
    none = np.zeros(len(calls), bool)
    ref = _solve(calls, "gae")
    assert G._gae_part("t", calls, ref, 0, none).score == G._gae_part("r", calls, ref, 1, none).score == 1
    for key, why in G.GAE_DELTA_BUGS.items():
        outs = [G.gae_values(c, delta=key) for c in calls]
        td, rec = G._gae_part("t", calls, outs, 0, none), G._gae_part("r", calls, outs, 1, none)
        assert td.score == 0 and why in td.output and rec.score == 1, (key, td.output, rec.output)
    for key, why in G.GAE_RECURSION_BUGS.items():
        outs = [G.gae_values(c, rec=key) for c in calls]
        td, rec = G._gae_part("t", calls, outs, 0, none), G._gae_part("r", calls, outs, 1, none)
        assert rec.score == 0 and why in rec.output and td.score == 1, (key, td.output, rec.output)


def test_crafted_batches_hold_every_kind_of_end():
    for v in VARIANTS:
        for c in [c for c in B.rtg_calls(v) + B.gae_calls(v) if c.ends.sum() > 1]:
            bounds = R._episode_bounds(c.ends)
            lengths = [e - s + 1 for s, e in bounds]
            assert c.ends[-1]                                                # the batch's last step ends
            assert (c.terminated[:-1] & c.ends[:-1]).any() and (~c.terminated[:-1] & c.ends[:-1]).any()
            assert lengths.count(1) >= 2 and not (c.terminated & ~c.ends).any()
        with_last = [c.terminated[-1] for c in B.rtg_calls(v) + B.gae_calls(v) if c.ends.sum() > 1]
        assert any(with_last) and not all(with_last)    # cut by the batch end, and terminated at its last step


# ------------------------------------------------------------------------------------------------ real gradings

RTG = "def reward_to_go(self, rewards, terminated, ends, next_values):\n"
GAE = "def gae_advantages(self, rewards, values, next_values, terminated, ends):\n"
ACTOR = "def actor_loss(self, obs, actions, advantages):\n"
CRITIC = "def critic_loss(self, obs, targets):\n"
LP = "self.policy.dist(self.policy.normalize_obs(obs)).log_prob(actions)"


def _rtg_src(reset: str, step: str = "future = float(rewards[t]) + gamma * future") -> str:
    return RTG + f"""
    gamma = self.cfg.discount
    returns = np.zeros(len(rewards))
    future = 0.0
    for t in reversed(range(len(rewards))):
        if ends[t]:
            {reset}
        {step}
        returns[t] = future
    return returns
"""


def _gae_src(delta: str, recursion: str) -> str:
    return GAE + f"""
    gamma, lam = self.cfg.discount, self.cfg.gae_lambda
    deltas = {delta}
    advantages = np.zeros(len(rewards))
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = {recursion}
        advantages[t] = running
    return advantages
"""


DELTA = "rewards + gamma * np.where(terminated, 0.0, next_values) - values"
RECURSION = "float(deltas[t]) + (0.0 if ends[t] else gamma * lam * running)"
RESET = "future = 0.0 if terminated[t] else float(next_values[t])"

BUGS = {  # name → ({method: source}, {part that loses its points: feedback phrase})
    "set 1": ({"pg.reward_to_go": _rtg_src(RESET, "future = float(rewards[t]) + future"),
               "pg.gae_advantages": _gae_src("rewards + gamma * next_values - values", RECURSION),
               "pg.actor_loss": ACTOR + f"    return (advantages * {LP}).mean()\n",
               "pg.critic_loss": CRITIC + "    return 0.5 * ((self.value(obs) - targets) ** 2).mean()\n"},
              {"PG reward-to-go: values": "not discounted", "PG GAE: TD errors": "at terminations",
               "PG actor loss: gradients": "sign is flipped", "PG actor loss: value": "sign is flipped",
               "PG critic loss": "factor ½"}),
    "set 2": ({"pg.reward_to_go": _rtg_src("future = future"),
               "pg.gae_advantages": _gae_src("rewards + gamma * np.where(terminated, 0.0, np.append(values[1:], "
                                             "next_values[-1])) - values", RECURSION),
               "pg.actor_loss": ACTOR + f"    return -(advantages * {LP}).sum()\n",
               "pg.critic_loss": CRITIC + "    return ((self.critic(obs).squeeze(-1) - targets) ** 2).mean()\n"},
              {"PG reward-to-go: episode boundaries": "run across episode ends", "PG GAE: TD errors": "values[t+1]",
               "PG actor loss: gradients": "sums over the batch", "PG actor loss: value": "sums over the batch",
               "PG critic loss": "raw observations"}),
    "set 3": ({"pg.reward_to_go": _rtg_src("future = float(next_values[t])"),
               "pg.gae_advantages": _gae_src(DELTA, "float(deltas[t]) + gamma * lam * running"),
               "pg.actor_loss": ACTOR + "    lp = self.policy.dist(self.policy.normalize_obs(obs)).log_prob("
                                        "self.policy.normalize_action(actions))\n"
                                        "    return -(advantages * lp).mean()\n",
               "pg.critic_loss": CRITIC + "    return ((self.value(obs) - targets) ** 2).sum()\n"},
              {"PG reward-to-go: episode boundaries": "at terminations too", "PG GAE: λ-recursion": "not cut",
               "PG actor loss: gradients": "normalized again", "PG actor loss: value": "normalized again",
               "PG critic loss": "sums over the batch"}),
    "set 4": ({"pg.reward_to_go": _rtg_src("future = 0.0"),
               "pg.gae_advantages": _gae_src(DELTA, "float(deltas[t]) + (0.0 if ends[t] else gamma * running)"),
               "pg.actor_loss": ACTOR + "    lp = self.policy.dist(obs).log_prob(actions)\n"
                                        "    return -(advantages * lp).mean()\n",
               "pg.critic_loss": CRITIC + "    return ((self.value(obs).detach() - targets) ** 2).mean()\n"},
              {"PG reward-to-go: episode boundaries": "no bootstrap at truncations",
               "PG GAE: λ-recursion": "λ is ignored",
               "PG actor loss: gradients": "not normalized", "PG actor loss: value": "not normalized",
               "PG critic loss": "no gradient"}),
    "set 5": ({"pg.reward_to_go": _rtg_src("future = 0.0 if ends[t] else float(next_values[t])").replace(
                   "if ends[t]:", "if terminated[t]:"),
               "pg.gae_advantages": _gae_src(DELTA, "float(deltas[t]) + (0.0 if ends[t] else lam * running)"),
               "pg.actor_loss": ACTOR + "    adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)\n"
                                        f"    return -(adv * {LP}).mean()\n",
               "pg.critic_loss": CRITIC + "    return (targets - self.value(obs)).abs().mean()\n"},
              {"PG reward-to-go: episode boundaries": "swapped", "PG GAE: λ-recursion": "leaves out γ",
               "PG actor loss: gradients": "advantages are normalized",
               "PG actor loss: value": "advantages are normalized", "PG critic loss": "absolute error"}),
    "set 6": ({"pg.reward_to_go": _reference_source(S.reward_to_go,              # G written over the rewards
                                                    ("    g = np.empty(len(rewards))\n", ""),
                                                    ("        g[t] = future\n", "        rewards[t] = future\n"),
                                                    ("    return g\n", "    return rewards.astype(np.float64)\n")),
               "pg.gae_advantages": GAE + """
    gamma, lam = self.cfg.discount, self.cfg.gae_lambda
    deltas = rewards + gamma * np.where(terminated, 0.0, next_values) - values
    for t in reversed(range(len(rewards) - 1)):
        if not ends[t]:
            deltas[t] += gamma * lam * deltas[t + 1]
    rewards[:] = 0
    return deltas
""",
               "pg.actor_loss": ACTOR + f"    return -(advantages * {LP}.detach()).mean()\n"},
              {"PG reward-to-go: values": "in place", "PG GAE: TD errors": "in place",
               "PG actor loss: gradients": "no gradient"}),
    "set 7": ({"pg.reward_to_go": _reference_source(S.reward_to_go,              # G_t stored before r_t is added
                                                    (STEP + STORE, STORE + STEP)),
               "pg.actor_loss": ACTOR + """
    d = self.policy.dist(self.policy.normalize_obs(obs))
    lp = -(((actions - d.mean) / d.stddev) ** 2 / 2 + torch.log(d.stddev)).sum(-1)
    return -(advantages * lp).mean()
"""},
              {"PG reward-to-go: values": "starts at r_{t+1}", "PG actor loss: value": "constant"}),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_bug_loses_exactly_its_own_part(bug, tmp_path):
    """Each method's bug (one per method and submission) loses the listed parts with feedback naming it, and every
    other part keeps its points (public variants)."""
    methods, losing = BUGS[bug]
    report = _grade(write_submission(tmp_path / "sub", methods, scope="full", assignment="a2"))
    parts = _parts(report)
    assert set(parts) == {p.name for s in C.CHECKS for p in s.parts if s.key in CORE}
    _assert_only_these_lose(bug, parts, losing)


def _assert_only_these_lose(bug: str, parts: dict, losing: dict[str, str]) -> None:
    """The parts named in ``losing`` score 0 with feedback containing their phrase; every other part full marks."""
    for name, t in parts.items():
        if name in losing:
            assert t.score == 0, f"{bug}: {name} should lose its points: {t.output}"
            assert losing[name] in t.output, f"{bug}: {name}: {t.output}"
        else:
            assert t.score == t.max_score, f"{bug}: {name} should keep its points: {t.output}"


CORRECT = {
    "pg.reward_to_go": RTG + """
    gamma = self.cfg.discount
    out = []
    last = np.flatnonzero(ends)
    starts = np.concatenate([[0], last[:-1] + 1])
    for s, e in zip(starts, last):
        g = 0.0 if terminated[e] else next_values[e]
        seg = []
        for r in rewards[s:e + 1][::-1]:
            g = r + gamma * g
            seg.append(g)
        out.extend(seg[::-1])
    return np.array(out, dtype=np.float32)
""",
    "pg.gae_advantages": GAE + """
    import torch
    r, v, nv = (torch.as_tensor(x, dtype=torch.float32) for x in (rewards, values, next_values))
    alive = torch.as_tensor(~terminated, dtype=torch.float32)
    cont = torch.as_tensor(~ends, dtype=torch.float32)
    d = r + self.cfg.discount * alive * nv - v
    adv = torch.zeros_like(d)
    acc = torch.zeros(())
    for t in range(len(d) - 1, -1, -1):
        acc = d[t] + self.cfg.discount * self.cfg.gae_lambda * cont[t] * acc
        adv[t] = acc
    return adv
""",
    "pg.actor_loss": ACTOR + """
    import math
    d = self.policy.dist(self.policy.normalize_obs(obs))
    a, mean, std = actions.double(), d.mean.double(), d.stddev.double()
    lp = -(((a - mean) / std) ** 2 / 2 + torch.log(std) + 0.5 * math.log(2 * math.pi)).sum(-1)
    return -(advantages.double() * lp).mean().float()
""",
    "pg.critic_loss": CRITIC + """
    import torch.nn.functional as F
    return F.mse_loss(targets, self.value(obs))
""",
}


def test_correct_styles_get_every_point(tmp_path):
    """Other correct styles (per-episode loops returning float32, torch tensors, a hand-written log-density in float64,
    F.mse_loss with the arguments swapped) keep every point."""
    report = _grade(write_submission(tmp_path / "sub", CORRECT, scope="full", assignment="a2"))
    parts = _parts(report)
    assert len(parts) == 7 and all(t.score == t.max_score for t in parts.values()), \
        [(n, t.output) for n, t in parts.items() if not t.passed]


# ------------------------------------------------------------------------------------------------ full scope

ESTIMATE = "def estimate_advantages(self, batch):\n"
UPDATE = "def update(self, batch):\n"


def _estimate_src(targets: str = "targets", no_baseline: str = "targets.copy()", next_obs: str = "batch.next_obs",
                  normalize: str = "(advantages - advantages.mean()) / (advantages.std() + 1e-8)") -> str:
    return ESTIMATE + f"""
    n = len(batch)
    if self.cfg.baseline:
        with torch.no_grad():
            values = self.value(torch.as_tensor(batch.obs)).numpy()
            next_values = self.value(torch.as_tensor({next_obs})).numpy()
        targets = self.reward_to_go(batch.rewards, batch.terminated, batch.ends, next_values)
        advantages = self.gae_advantages(batch.rewards, values, next_values, batch.terminated, batch.ends)
    else:
        targets = self.reward_to_go(batch.rewards, batch.terminated, batch.ends, np.zeros(n))
        advantages = {no_baseline}
    if self.cfg.normalize_advantages:
        advantages = {normalize}
        targets = {targets}
    return advantages, targets
"""


def _update_src(before_critic: str = "", in_critic: str = "", actor_first: bool = True,
                zero_critic: str = "self.critic_optimizer.zero_grad()") -> str:
    actor = """
    loss = self.actor_loss(obs, actions, adv)
    self.actor_optimizer.zero_grad()
    loss.backward()
    self.actor_optimizer.step()
"""
    critic = f"""
    critic = float("nan")
    for _ in range(self.cfg.critic_steps):
        {in_critic or "pass"}
        c = self.critic_loss(obs, y)
        {zero_critic}
        c.backward()
        self.critic_optimizer.step()
        critic = c.item()
"""
    return UPDATE + """
    advantages, targets = self.estimate_advantages(batch)
    obs, actions = torch.as_tensor(batch.obs), torch.as_tensor(batch.actions)
    adv = torch.as_tensor(advantages, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.float32)
""" + (actor + critic if actor_first else critic + before_critic + actor) + """
    return {{"actor_loss": loss.item(), "critic_loss": critic}}
""".replace("{{", "{").replace("}}", "}")


RECOMPUTE = """
    advantages, targets = self.estimate_advantages(batch)
    adv = torch.as_tensor(advantages, dtype=torch.float32)
"""

FULL_BUGS = {  # name → ({method: source}, {part that loses its points: feedback phrase})
    "full 1": ({"pg.estimate_advantages": _estimate_src(targets="(targets - targets.mean()) / (targets.std() + 1e-8)"),
                "pg.update": _update_src(zero_critic="pass")},
               {"PG advantages and targets": "targets are normalized", "PG update: critic steps": "not cleared"}),
    "full 2": ({"pg.estimate_advantages": _estimate_src(no_baseline="self.gae_advantages(batch.rewards, np.zeros(n), "
                                                                    "np.zeros(n), batch.terminated, batch.ends)"),
                "pg.update": _update_src(before_critic=RECOMPUTE, actor_first=False)},
               {"PG advantages and targets": "GAE with V ≡ 0", "PG update: actor step": "recomputed after"}),
    "full 3": ({"pg.estimate_advantages": _estimate_src(next_obs="batch.obs"),
                "pg.update": _update_src(in_critic="self.actor_optimizer.step()")},
               {"PG advantages and targets": "from batch.obs", "PG update: actor step": "steps in one update"}),
    "full 4": ({"pg.estimate_advantages": _estimate_src(normalize="advantages"),
                "pg.update": _update_src(in_critic="y = torch.as_tensor(self.estimate_advantages(batch)[1], "
                                                   "dtype=torch.float32)")},
               {"PG advantages and targets": "not normalized", "PG update: critic steps": "recomputed at each"}),
}


@pytest.mark.parametrize("bug", sorted(FULL_BUGS))
def test_each_full_scope_bug_loses_exactly_its_own_part(bug, tmp_path):
    methods, losing = FULL_BUGS[bug]
    report = _grade(write_submission(tmp_path / "sub", methods, scope="full", assignment="a2"),
                    only={"pg_estimate", "pg_update"})
    parts = _parts(report)
    assert len(parts) == 3
    _assert_only_these_lose(bug, parts, losing)


FULL_STYLES = {
    "sample std, critic first": {
        "pg.estimate_advantages": _estimate_src(normalize="((torch.as_tensor(advantages) - torch.as_tensor("
                                                          "advantages).mean()) / (torch.as_tensor(advantages)"
                                                          ".std() + 1e-8)).numpy()"),
        "pg.update": _update_src(actor_first=False)},
    "float64 advantages, zeroed gradients kept": {
        "pg.estimate_advantages": _estimate_src(normalize="(advantages - np.mean(advantages)) / "
                                                          "(np.sqrt(np.var(advantages)) + 1e-8)"),
        "pg.update": _update_src(zero_critic="self.critic_optimizer.zero_grad(set_to_none=False)").replace(
            "adv = torch.as_tensor(advantages, dtype=torch.float32)", "adv = torch.as_tensor(advantages)")},
}


@pytest.mark.parametrize("style", sorted(FULL_STYLES))
def test_full_scope_correct_styles_get_every_point(style, tmp_path):
    """The sample standard deviation (torch's default) in the normalization, the critic's steps before the actor's
    (the advantages computed once), float64 advantages, gradients zeroed in place keep every point."""
    methods = FULL_STYLES[style]
    report = _grade(write_submission(tmp_path / "sub", methods, scope="full", assignment="a2"),
                    only={"pg_estimate", "pg_update"})
    parts = _parts(report)
    assert len(parts) == 3 and all(t.score == t.max_score for t in parts.values()), \
        [(n, t.output) for n, t in parts.items() if not t.passed]


def _rtg_bootstrapping_the_batch_end(rewards, terminated, ends, next_values, gamma):
    """A red team's mistake: the batch's last step always bootstrapped, even where it terminated."""
    out, future = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        x = next_values[t] if t == len(rewards) - 1 or (ends[t] and not terminated[t]) else (
            0.0 if ends[t] else future)
        out[t] = future = rewards[t] + gamma * x
    return out


def _gae_as_lambda_return(rewards, values, next_values, terminated, ends, gamma, lam):
    """A correct style: Â_t = G^λ_t − V(s_t), G^λ_t = r_t + γ((1 − λ)V(s_{t+1}) + λG^λ_{t+1}) inside an episode."""
    out, g = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        boot = 0.0 if terminated[t] else next_values[t]
        g = rewards[t] + gamma * (boot if ends[t] else (1 - lam) * next_values[t] + lam * g)
        out[t] = g - values[t]
    return out


@pytest.mark.parametrize("v", VARIANTS)
def test_a_bootstrap_at_a_terminated_batch_end_is_caught_and_the_lambda_return_form_is_correct(v):
    calls = B.rtg_calls(v)
    none = np.zeros(len(calls), bool)
    outs = [_rtg_bootstrapping_the_batch_end(c.rewards, c.terminated, c.ends, c.next_values, c.gamma) for c in calls]
    assert R._rtg_boundary_part("b", calls, outs).score == 0
    calls = B.gae_calls(v)
    outs = [_gae_as_lambda_return(c.rewards, c.values, c.next_values, c.terminated, c.ends, c.gamma, c.lam)
            for c in calls]
    assert G._gae_part("t", calls, outs, 0, none).score == G._gae_part("r", calls, outs, 1, none).score == 1

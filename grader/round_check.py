"""The round checks of DAgger and noise injection (``train_round``, TODO 2d and 3c), shared by grader/checks_dagger.py
and grader/checks_dart.py: the child runs rounds 1..K through the framework's ``run_round`` (which enforces the
sample budget) on one agent whose ``self.dataset`` starts as seeded data, recording every ``collect_round`` and
``fit`` call (the reference's); the parent checks each round: one collection of n = room(samples_per_round) pairs
(the last round cut by ``max_samples``) with β = the schedule's β_i (DAgger), ``self.dataset`` afterwards = every
earlier pair and the new ones, one retraining on the whole of it for ``epochs_per_round`` epochs, and the
retraining's loss returned.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from envs.builder import env_dims, make_env, resolve_env_config
from grader.answers import Field, Schema
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.feedback import describe_error
from grader.unit_inputs import random_policy, sample_obs

ROUNDS = 3                  # rounds 1..3 on one agent; the budget cuts the last one
MAX_ROWS = 5_000            # the child's cap on the rows it writes (grader/child/jobs_rounds.py MAX_ROUND_ROWS)
MAX_CALLS = 3 * 32          # collect_round or fit calls it records (MAX_ROUND_CALLS per round)


@dataclass(frozen=True)
class RoundSetup:
    """One variant's run: the data round 0 left, the config's round settings and the schedule's β_i."""

    demo_obs: np.ndarray            # (N0, obs_dim) float32
    demo_act: np.ndarray            # (N0, act_dim) float32
    samples_per_round: int
    epochs_per_round: int
    epochs: int                     # BC's epochs (round 0), different from epochs_per_round
    max_samples: int                # cuts the last round
    beta0: float = float("nan")
    beta_decay: float = float("nan")
    dagger: bool = False

    def config(self) -> dict:
        cfg = {"samples_per_round": self.samples_per_round, "epochs_per_round": self.epochs_per_round,
               "epochs": self.epochs, "max_samples": self.max_samples, "rounds": ROUNDS, "batch_size": 64,
               "demo_episodes": 1, "eval_episodes": 0}
        if self.dagger:
            cfg.update(beta_schedule="exponential", beta0=self.beta0, beta_decay=self.beta_decay)
        return cfg

    def beta(self, i: int) -> float:
        """The schedule's β_i (1-based), as DAggerAgent.beta computes it for the exponential schedule."""
        return self.beta0 * self.beta_decay ** (i - 1)

    def room(self, size: int) -> int:
        return max(0, min(self.samples_per_round, self.max_samples - size))


def round_setup(v: Variant, dagger: bool) -> tuple[RoundSetup, object, int, int]:
    """The variant's setup, a random expert (the env's bounds), obs_dim and act_dim; all from the variant's seed.
    β_0 and the decay are drawn away from the config defaults (0.5, 0.5) so that a hard-coded β shows."""
    rng = np.random.default_rng(v.seed)
    env = make_env(resolve_env_config(v.env))
    obs_dim, act_dim = env_dims(env)
    low, high = np.asarray(env.action_space.low, np.float32), np.asarray(env.action_space.high, np.float32)
    expert = random_policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.5)
    demo_obs = sample_obs(expert, v.batch, rng)
    demo_act = rng.uniform(low, high, (v.batch, act_dim)).astype(np.float32)
    spr = int(rng.integers(30, 61))
    epr = int(rng.integers(2, 4))
    cut = int(rng.integers(spr // 4, 3 * spr // 4))
    setup = RoundSetup(demo_obs, demo_act, spr, epr, epr + int(rng.integers(3, 6)),
                       v.batch + (ROUNDS - 1) * spr + cut, float(rng.uniform(0.6, 0.95)),
                       float(rng.uniform(0.6, 0.85)), dagger)
    return setup, expert, obs_dim, act_dim


def round_schema(obs_dim: int, act_dim: int) -> Schema:
    """What grader/child/jobs_rounds.py's job_dagger_round (= job_dart_round) writes."""
    return {"rounds": Field((ROUNDS, 7), "f"), "collects": Field((None, 4), "f", 4 * MAX_CALLS),
            "fits": Field((None, 6), "f", 6 * MAX_CALLS),
            "collected_obs": Field((None, obs_dim), "f", MAX_ROWS * obs_dim),
            "collected_act": Field((None, act_dim), "f", MAX_ROWS * act_dim),
            "data_obs": Field((None, obs_dim), "f", MAX_ROWS * obs_dim),
            "data_act": Field((None, act_dim), "f", MAX_ROWS * act_dim),
            "error": Field((1,), "U"), "raised_in": Field((1,), "iu")}


def round_check_spec(agent: str, todo: str, seed: int, part: Part, handout: tuple[str, str]) -> CheckSpec:
    """The declaration of ``agent``'s round check (DAgger's or noise injection's ``train_round``, ``todo`` its TODO's
    label): ``train_round`` for ROUNDS rounds on one agent through the framework's ``run_round``, scored by
    :func:`check_round`; its one part ``part``, its public variant on hopper from ``seed``."""
    def run(ctx: GradingContext, v: Variant) -> list[CheckResult]:
        return check_round(ctx, spec, v, dagger=agent == "dagger", todo=todo)

    spec = CheckSpec(key=f"{agent}_round", agent=agent, run=run, methods=("train_round",),
                     public=(Variant(seed=seed, env="hopper", batch=40),), parts=(part,), handout=handout)
    return spec


def check_round(ctx: GradingContext, spec: CheckSpec, v: Variant, dagger: bool, todo: str) -> list[CheckResult]:
    """Run ``spec``'s child on variant ``v`` and score its one part (``todo``: the TODO's label, for messages)."""
    name, = spec.part_names(v)
    setup, expert, obs_dim, act_dim = round_setup(v, dagger)
    out, why = run_unit(ctx, spec, v, {"data_obs": setup.demo_obs, "data_actions": setup.demo_act},
                        {"expert": expert}, schema=round_schema(obs_dim, act_dim), tested=("train_round",),
                        config=setup.config(), rounds=ROUNDS)
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    problems, summary = RoundAnswer(setup, out, obs_dim, act_dim).problems(todo)
    return [CheckResult(name, 0, 1, problems) if problems else CheckResult(name, 1, 1, summary)]


def _keys(o: np.ndarray, a: np.ndarray) -> list[bytes]:
    """One key per (obs, label) pair (float32 bytes: the Dataset's own precision)."""
    return [r.tobytes() for r in np.concatenate([o, a], axis=1).astype(np.float32)]


class RoundAnswer:
    """The child's record of the rounds, read round by round."""

    def __init__(self, setup: RoundSetup, out: dict[str, np.ndarray], obs_dim: int, act_dim: int):
        self.s = setup
        self.rounds = np.asarray(out["rounds"], np.float64).reshape(ROUNDS, 7)
        self.collects = np.asarray(out["collects"], np.float64).reshape(-1, 4)
        self.fits = np.asarray(out["fits"], np.float64).reshape(-1, 6)
        c_obs = np.asarray(out["collected_obs"], np.float64).reshape(-1, obs_dim)
        c_act = np.asarray(out["collected_act"], np.float64).reshape(-1, act_dim)
        d_obs = np.asarray(out["data_obs"], np.float64).reshape(-1, obs_dim)
        d_act = np.asarray(out["data_act"], np.float64).reshape(-1, act_dim)
        self.error = str(np.asarray(out["error"]).reshape(1)[0])
        self.raised_in = int(np.asarray(out["raised_in"]).reshape(1)[0])
        rows = self.collects[:, 3]
        if len(c_obs) != len(c_act) or len(d_obs) != len(d_act) or rows[rows >= 0].sum() != len(c_obs):
            raise ValueError("inconsistent round answer")
        self.collected = self._split(c_obs, c_act, [int(n) if n >= 0 else 0 for n in rows])
        reached = self.rounds[:, 0] > 0
        sizes = [int(n) if n >= 0 else 0 for n in self.rounds[reached, 2]]
        if sum(sizes) != len(d_obs):
            raise ValueError("inconsistent round answer")
        self.after = self._split(d_obs, d_act, sizes)
        self.source = {k: "the demos" for k in _keys(setup.demo_obs, setup.demo_act)}

    @staticmethod
    def _split(o: np.ndarray, a: np.ndarray, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        cuts = np.cumsum([0, *sizes])
        return [(o[s:e], a[s:e]) for s, e in zip(cuts[:-1], cuts[1:], strict=True)]

    def problems(self, todo: str) -> tuple[str, str]:
        """('', summary) if every round is right, else (what is wrong: the schedule's β, the first wrong round, '')."""
        before = (self.s.demo_obs.astype(np.float64), self.s.demo_act.astype(np.float64))
        betas = self._beta_problem()
        reached = int(np.sum(self.rounds[:, 0] > 0))
        ns, sizes = [], [len(before[0])]
        for i in range(1, reached + 1):
            problems = self._round_problems(i, before, todo, stopped=bool(self.error) and i == reached)
            if problems:
                where = f"round {i} of {ROUNDS}" + (" (the earlier rounds were right)" if i > 1 else "")
                return "; ".join([*([betas] if betas else []), f"{where}: " + "; ".join(problems)]), ""
            before = self.after[i - 1]
            ns.append(len(self.collected[self._calls(i)[0]][0]))
            sizes.append(len(before[0]))
        if betas:
            return betas, ""
        if reached < ROUNDS:           # stopped without an error (cannot happen) or before round 1
            return f"only {reached} of {ROUNDS} rounds ran", ""
        beta = (f" with β_i = self.beta(i) ({', '.join(f'{self.s.beta(i):.2f}' for i in range(1, ROUNDS + 1))})"
                if self.s.dagger else "")
        return "", (f"{ROUNDS} rounds through the framework's run_round: one collect_round per round of n = "
                    f"room(samples_per_round) = {', '.join(map(str, ns))} pairs (the last cut by max_samples)"
                    f"{beta}; self.dataset = every earlier pair and the new ones ({' → '.join(map(str, sizes))}); "
                    f"retrained once per round on all of it for epochs_per_round = {self.s.epochs_per_round} "
                    "epochs; the training's loss returned")

    def _calls(self, i: int) -> list[int]:
        """Indices of round i's collect_round calls."""
        return [k for k in range(len(self.collects)) if int(self.collects[k, 0]) == i]

    def _round_problems(self, i: int, before: tuple[np.ndarray, np.ndarray], todo: str, stopped: bool) -> list[str]:
        """What is wrong in round i (``stopped``: an exception ended the rounds in it)."""
        r = self.rounds[i - 1]
        calls = self._calls(i)
        fits = self.fits[self.fits[:, 0] == i]
        size0 = len(before[0])
        if not calls and not len(fits) and r[2] == size0 and not (r[6] > 0 and np.isfinite(r[5])):
            return [f"train_round is the placeholder (nothing collected, nothing trained, self.dataset unchanged, "
                    f"no loss returned): fill in {todo}"]
        if stopped and self.raised_in == 1:      # train_round raised: a wrong n makes the env refuse the extra steps
            return (self._collect_problems(i, calls, size0) if calls else []) or \
                [describe_error(self.error.encode(), True)]
        problems = self._collect_problems(i, calls, size0)
        if problems:
            return problems
        k = calls[0]
        if self.collects[k, 3] < 0 or r[2] < 0:
            return [describe_error(self.error.encode(), True) if stopped else "self.dataset is not a Dataset"]
        new = self.collected[k]
        problems = self._dataset_problems(i, before, new, self.after[i - 1])
        if problems:
            return problems
        problems = self._fit_problems(fits, len(new[0]), size0, self.after[i - 1])
        if not problems:
            problems = self._loss_problems(r, fits)
        if not problems and stopped:
            problems = [describe_error(self.error.encode(), True)]
        return problems

    def _collect_problems(self, i: int, calls: list[int], size0: int) -> list[str]:
        want = self.s.room(size0)
        fn = "collect_round(n, β_i)" if self.s.dagger else "collect_round(n)"
        if not calls:
            return [f"train_round collected nothing with self.{fn}: one call per round collects its n pairs"]
        if len(calls) > 1:
            ns = ", ".join(f"{self.collects[k, 1]:g}" for k in calls)
            return [f"collect_round was called {len(calls)} times (n = {ns}): one call of n = "
                    f"room(samples_per_round) = {want} per round"]
        n = self.collects[calls[0], 1]
        if n == want:
            return []
        spr = self.s.samples_per_round
        if n == spr and want < spr:
            return [f"collect_round(n = {spr}) although the sample budget leaves room for only {want} "
                    f"(max_samples = {self.s.max_samples}, {size0} pairs so far): n = "
                    "self.room(self.cfg.samples_per_round), samples_per_round cut by the budget"]
        return [f"collect_round was called with n = {n:g}; this round's n is room(samples_per_round) = {want} "
                f"(samples_per_round = {spr}, cut by max_samples)"]

    def _beta_problem(self) -> str:
        """'' if every recorded collect_round got the schedule's β_i (DAgger), else what the β's are."""
        if not self.s.dagger:
            return ""
        got = {int(c[0]): float(c[2]) for c in self.collects}
        if not got or all(np.isclose(b, self.s.beta(i), rtol=1e-6, atol=1e-9) for i, b in got.items()):
            return ""
        want = {i: self.s.beta(i) for i in got}
        shown = "β = " + ", ".join(f"{got[i]:.3g}" for i in sorted(got)) + " in rounds " + \
            ", ".join(map(str, sorted(got))) + "; the schedule's β_i = self.beta(i): " + \
            ", ".join(f"{want[i]:.3g}" for i in sorted(got))
        values = set(got.values())
        if all(np.isclose(b, self.s.beta(i - 1), rtol=1e-6) for i, b in got.items()):
            return f"β is the schedule's β of the round before (off by one): use self.beta(round_index) ({shown})"
        if all(np.isclose(b, self.s.beta(i + 1), rtol=1e-6) for i, b in got.items()):
            return f"β is the schedule's β of the next round (off by one): use self.beta(round_index) ({shown})"
        if len(values) == 1 and len(got) > 1:
            b = values.pop()
            which = " (β_0, self.cfg.beta0)" if np.isclose(b, self.s.beta0) else \
                " (hard-coded? the config's β_0 and decay are not the defaults here)"
            return f"β is {b:.3g} in every round{which}: β_i comes from the schedule, self.beta(round_index) ({shown})"
        return f"β is not the schedule's β_i: use self.beta(round_index) ({shown})"

    def _dataset_problems(self, i: int, before: tuple[np.ndarray, np.ndarray], new: tuple[np.ndarray, np.ndarray],
                          after: tuple[np.ndarray, np.ndarray]) -> list[str]:
        """self.dataset after round i must hold every earlier pair and the n new ones, each once (any order)."""
        for k in _keys(*new):
            self.source.setdefault(k, f"round {i}")
        kb, kn, ka = Counter(_keys(*before)), Counter(_keys(*new)), Counter(_keys(*after))
        if ka == kb + kn:
            return []
        n = len(new[0])
        if ka == kn:
            return [f"self.dataset was replaced by this round's {n} pairs: D ← D ∪ D_i keeps every earlier pair (the "
                    "demos and the earlier rounds) and adds the new ones"]
        if ka == kb:
            return [f"this round's {n} collected pairs were not added to self.dataset"]
        problems = []
        unknown = sum(c for k, c in ka.items() if k not in kb and k not in kn)
        if unknown:
            problems.append(f"{unknown} pairs of self.dataset are neither earlier pairs nor this round's collected "
                            "ones (states or labels changed, or unpaired?)")
        given = kb + kn
        extra = sum(c - given[k] for k, c in ka.items() if k in given and c > given[k])
        if extra:
            problems.append(f"{extra} pairs appear more than once (each pair belongs in the dataset once)")
        lost = Counter()
        for k, c in (given - ka).items():
            lost[self.source.get(k, "earlier rounds")] += c
        if lost:
            problems.append("pairs were dropped: " + ", ".join(f"{c} of {name}" for name, c in sorted(lost.items()))
                            + " (D ← D ∪ D_i: every earlier pair stays, the new ones are added)")
        return problems or [f"self.dataset holds {len(after[0])} pairs; expected the {len(before[0])} earlier "
                            f"and the {n} new ones"]

    def _fit_problems(self, fits: np.ndarray, n: int, size0: int, after: tuple[np.ndarray, np.ndarray]) -> list[str]:
        """One retraining (fit, possibly through train_on) on the whole aggregated dataset, epochs_per_round epochs
        (several calls on it adding up to epochs_per_round are fine)."""
        epr, total = self.s.epochs_per_round, len(after[0])
        if not len(fits):
            return ["the policy was not retrained: train on the aggregated dataset with "
                    "self.train_on(self.dataset, self.cfg.epochs_per_round)"]
        sums = (after[0].astype(np.float32).sum(dtype=np.float64), after[1].astype(np.float32).sum(dtype=np.float64))
        for f in fits:
            length = int(f[1])
            if length == total and np.allclose(f[3:5], sums, rtol=1e-5, atol=1e-3):
                continue
            if length == n:
                return [f"retrained on only this round's {n} new pairs: train on the whole aggregated dataset "
                        f"(self.dataset, {total} pairs)"]
            if length == size0:
                return [f"retrained on the dataset before this round's pairs were added ({size0} pairs): aggregate "
                        f"first, then train on self.dataset ({total} pairs)"]
            return [f"retrained on a dataset of {length} pairs that is not self.dataset ({total} pairs)"]
        epochs = fits[:, 2]
        if np.isclose(epochs.sum(), epr):
            return []
        if len(fits) == 1 and epochs[0] == self.s.epochs:
            return [f"retrained for self.cfg.epochs = {self.s.epochs} epochs (round 0's BC training); a round "
                    f"retrains for self.cfg.epochs_per_round = {epr}"]
        what = f"{epochs[0]:g} epochs" if len(fits) == 1 else \
            f"{len(fits)} times for {epochs.sum():g} epochs in all"
        return [f"retrained {what}; a round retrains once for self.cfg.epochs_per_round = {epr} epochs"]

    @staticmethod
    def _loss_problems(r: np.ndarray, fits: np.ndarray) -> list[str]:
        """train_round returns the retraining's loss (the last fit's return, which train_on passes on)."""
        want = float(fits[-1, 5])
        if r[6] <= 0:
            return [f"train_round returned no number: return the retraining's loss ({want:.4g}, what "
                    "self.train_on returns)"]
        got = float(r[5])
        if np.isclose(got, want, rtol=1e-6, atol=1e-9) or (np.isnan(got) and np.isnan(want)):
            return []
        return [f"train_round returned {got:.4g}, not the retraining's loss {want:.4g} (what self.train_on returns)"]

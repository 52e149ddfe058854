"""Fair on every path: the reference and independently written correct styles get full marks through the Gradescope
package (one thread, --jobs 1) of either scope, and a submission's scores and feedback are identical locally (--jobs 2)
and there.

Performance checks run for real here, so this is the suite's most expensive test: three Gradescope gradings run side
by side (one thread each) while the local grading of the reference runs.
"""
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.grade import grade  # noqa: E402
from grader.reference_submissions import earlier_release_submission, write_submission  # noqa: E402

from conftest import run_cli  # noqa: E402

ROOT_MODE = hasattr(os, "geteuid") and os.geteuid() == 0

# Two correct submissions written independently of the reference: other RNG call orders, other distributions,
# float64 inside, other ways to build arrays. Correct code in any reasonable style gets full marks.
STYLE_BY_HAND = {
    "compute_loss": """
        def compute_loss(self, obs, expert_actions):
            import math
            import torch
            o = self.policy.normalize_obs(obs)
            a = self.policy.normalize_action(expert_actions)
            pi = self.policy.dist(o)
            mu, std = pi.mean, pi.stddev                       # (B, act_dim) each
            nll = 0.5 * ((a - mu) / std) ** 2 + torch.log(std) + 0.5 * math.log(2 * math.pi)
            return nll.sum(dim=1).mean()
    """,
    "select_action": """
        def select_action(self, obs, beta):
            learner = self.learner_action(obs)                 # drawn first, every step
            expert = self.expert_action(obs)
            use_expert = self.rng.uniform(0.0, 1.0) < beta
            return (expert if use_expert else learner), expert
    """,
    "aggregate": """
        def aggregate(self, dataset, visited_obs, expert_labels):
            obs = np.concatenate([dataset.obs, np.asarray(visited_obs, np.float32)], axis=0)
            act = np.concatenate([dataset.actions, np.asarray(expert_labels, np.float32)], axis=0)
            return Dataset(obs, act)
    """,
    "noisy_expert_step": """
        def noisy_expert_step(self, obs):
            clean = self.expert_action(obs)
            half_range = (self.action_high - self.action_low) / 2.0
            eps = self.rng.standard_normal(self.act_dim) * (self.cfg.noise_std * half_range)
            executed = np.minimum(np.maximum(clean + eps, self.action_low), self.action_high)
            return executed.astype(np.float32), clean.copy()
    """,
    "fit": """
        def fit(self, dataset, epochs):
            import torch
            n = len(dataset)
            size = min(self.cfg.batch_size, n)
            mean_loss = float("nan")
            for _ in range(epochs):
                order = torch.randperm(n)
                total, count = 0.0, 0
                for start in range(0, n, size):                # the last, smaller batch is used too
                    rows = order[start:start + size].numpy()
                    self.optimizer.zero_grad()
                    loss = self.compute_loss(torch.as_tensor(dataset.obs[rows]), torch.as_tensor(dataset.actions[rows]))
                    loss.backward()
                    self.optimizer.step()
                    total, count = total + loss.item(), count + 1
                mean_loss = total / count
            return mean_loss
    """,
    "dagger.collect_round": """
        def collect_round(self, n, beta):
            seen, labels = [], []
            obs, _ = self.env.reset()
            for _ in range(n):
                expert = self.expert_action(obs)
                act = expert if self.rng.random() < beta else self.learner_action(obs)
                seen.append(obs.copy())
                labels.append(expert)
                obs, _, terminated, truncated, _ = self.env.step(act)
                if terminated or truncated:
                    obs, _ = self.env.reset()
            return Dataset(np.array(seen), np.array(labels))
    """,
    "dagger.train_round": """
        def train_round(self, round_index):
            n = min(self.cfg.samples_per_round, self.room(self.cfg.samples_per_round))
            new = self.collect_round(n, self.beta(round_index))
            self.dataset = Dataset(np.concatenate([self.dataset.obs, new.obs]),
                                   np.concatenate([self.dataset.actions, new.actions]))
            return self.fit(self.dataset, self.cfg.epochs_per_round)
    """,
    "dart.collect_round": """
        def collect_round(self, n):
            states = np.empty((n, self.obs_dim), np.float64)
            clean = np.empty((n, self.act_dim), np.float64)
            obs, _ = self.env.reset()
            t = 0
            while t < n:
                executed, clean[t] = self.noisy_expert_step(obs)
                states[t] = obs
                obs, _, terminated, truncated, _ = self.env.step(executed)
                t += 1
                if (terminated or truncated) and t < n:
                    obs, _ = self.env.reset()
            return Dataset(states, clean)
    """,
    "dart.train_round": """
        def train_round(self, round_index):
            self.dataset = self.aggregate_noisy(self.collect_round(self.room(self.cfg.samples_per_round)))
            return self.train_on(self.dataset, self.cfg.epochs_per_round)

        def aggregate_noisy(self, new):
            return self.dataset.concat(new)
    """,
}
STYLE_FLOAT64 = {
    "compute_loss": """
        def compute_loss(self, obs, expert_actions):
            import torch
            from torch.distributions import MultivariateNormal
            o = self.policy.normalize_obs(obs)
            a = self.policy.normalize_action(expert_actions).double()
            pi = self.policy.dist(o)
            cov = torch.diag_embed(pi.stddev.double() ** 2)
            return -MultivariateNormal(pi.mean.double(), covariance_matrix=cov).log_prob(a).mean().float()
    """,
    "select_action": """
        def select_action(self, obs, beta):
            label = np.array(self.expert_action(obs), dtype=np.float64)
            if self.rng.choice(2, p=[1.0 - beta, beta]) == 1:
                return label.copy(), label
            return np.array(self.learner_action(obs), dtype=np.float64), label
    """,
    "aggregate": """
        def aggregate(self, dataset, visited_obs, expert_labels):
            rows_o = list(dataset.obs) + list(visited_obs)
            rows_a = list(dataset.actions) + list(expert_labels)
            return Dataset(np.stack(rows_o), np.stack(rows_a))
    """,
    "noisy_expert_step": """
        def noisy_expert_step(self, obs):
            clean = np.asarray(self.expert_action(obs), dtype=np.float64)
            sigma = self.cfg.noise_std * 0.5 * (self.action_high.astype(np.float64) - self.action_low)
            noisy = clean + self.rng.normal(loc=0.0, scale=sigma)
            return np.clip(noisy, self.action_low, self.action_high), clean
    """,
}


def gradescope_grade(tmp_path, name: str, methods: dict[str, str] | None, package: str = "ag.zip",
                     release: str | None = None, assignment: str = "a1") -> dict:
    """setup.sh + run_autograder on a simulated /autograder layout; the results.json it writes."""
    ag = tmp_path / name / "autograder"
    with zipfile.ZipFile(tmp_path / package) as z:
        z.extractall(ag / "source")
    for f in ("setup.sh", "run_autograder"):
        (ag / "source" / f).rename(ag / f)
    if release:
        earlier_release_submission(ag / "submission", release)
    else:
        write_submission(ag / "submission", {k: textwrap.dedent(v) for k, v in (methods or {}).items()},
                         assignment=assignment)
    env = dict(os.environ, AUTOGRADER_ROOT=str(ag), AUTOGRADER_VENV=sys.prefix)
    for step in ("setup.sh", "run_autograder"):
        p = subprocess.run(["bash", str(ag / step)], env=env, capture_output=True, text=True, timeout=1800)
        assert p.returncode == 0, f"{name} {step}: {p.stdout}{p.stderr}"
    return json.loads((ag / "results" / "results.json").read_text())


def failing(data: dict) -> list:
    return [(t["name"], t["score"], t["output"]) for t in data["tests"] if t["score"] < t["max_score"] - 1e-9]


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_MODE, reason="Gradescope runs the autograder as root")
def test_reference_and_other_correct_styles_get_full_marks_on_every_path(tmp_path):
    """Both scopes: the full scope's package grades the reference and two other styles (the loops included); the
    core scope's package grades the last pre-scope release's files filled with the reference (four methods);
    assignment 2's package grades its reference (unit checks with hidden variants, and the performance checks)."""
    from grader.grade import UNIT_CHECKS, checks_of, load_thresholds, thresholds_of
    from grader.rubric import autograded_points, scoped_checks

    assert run_cli("tools/make_gradescope.py", str(tmp_path / "ag.zip")).returncode == 0
    assert run_cli("tools/make_gradescope.py", str(tmp_path / "ag_core.zip"), "--scope", "core").returncode == 0
    assert run_cli("tools/make_gradescope.py", str(tmp_path / "ag_a2.zip"), "--assignment", "a2").returncode == 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(gradescope_grade, tmp_path, name, methods) for name, methods in
                   (("reference", None), ("by_hand", STYLE_BY_HAND), ("float64", STYLE_FLOAT64))}
        futures["core_release2"] = pool.submit(gradescope_grade, tmp_path, "core_release2", None, "ag_core.zip",
                                               "release2")
        futures["a2_reference"] = pool.submit(gradescope_grade, tmp_path, "a2_reference", None, "ag_a2.zip",
                                              assignment="a2")
        results = {name: f.result() for name, f in futures.items()}
    a2 = results.pop("a2_reference")
    assert failing(a2) == []
    a2_points = autograded_points(scoped_checks(checks_of("a2"), "full", "a2"), thresholds_of("a2"))
    assert a2["score"] == pytest.approx(a2_points) == pytest.approx(85)
    assert {t["name"].split(" (")[0] for t in a2["tests"]} >= {"PG performance", "CEM performance"}
    for name, data in results.items():
        scope = "core" if name.startswith("core") else "full"
        total = autograded_points(scoped_checks(UNIT_CHECKS, scope), load_thresholds())
        assert failing(data) == [], name
        assert data["score"] == pytest.approx(sum(t["max_score"] for t in data["tests"])) == pytest.approx(total)
    assert autograded_points(scoped_checks(UNIT_CHECKS, "core"), load_thresholds()) == 75
    local = grade(write_submission(tmp_path / "local_ref"), include_hidden=True, include_performance=True, jobs=2)
    gs = [(t["name"], t["score"], t["output"]) for t in results["reference"]["tests"]]
    assert [(t.name, round(t.score, 3), t.output) for t in local.tests] == gs   # same scores, same returns, any path

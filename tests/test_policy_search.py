"""Assignment 2's framework and reference: the batch layout, the reference math, learning, resume, the stubs and
bad configs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, interrupt_run_after, log_rows, run_cli
from learning.agents import agent_class, build_agent, todo_manifest
from learning.rollouts import BatchSampler
from util.config import ConfigError

needs_solution = pytest.mark.skipif(not (ROOT / "grader" / "solution").is_dir(),
                                    reason="reference solutions are not part of the student release")

TINY = {"pg": {"iterations": 3, "batch_size": 2000, "num_envs": 2, "eval_every": 1, "eval_episodes": 1,
               "final_eval_episodes": 1},
        "cem": {"iterations": 3, "population": 6, "elite_count": 2, "eval_every": 1, "eval_episodes": 1,
                "final_eval_episodes": 1}}


def make(agent: str, out: Path, solution: bool = True, env: str = "pendulum", **overrides):
    return build_agent(agent, env, {**TINY[agent], **overrides}, out_dir=out, solution=solution, quiet=True)


def reference_agent(agent: str, tmp_path: Path, **overrides):
    return make(agent, tmp_path / "ref", **overrides)


# ---------------------------------------------------------------------------------------------- the batch
def test_a_batch_is_each_envs_segment_of_concatenated_episodes(tmp_path):
    agent = reference_agent("pg", tmp_path)
    batch = agent.collect_batch()
    n, steps = agent.cfg.num_envs, agent.steps_per_env
    assert len(batch) == n * steps == agent.env_steps
    assert batch.obs.shape == batch.next_obs.shape == (n * steps, agent.obs_dim)
    assert batch.actions.shape == (n * steps, agent.act_dim) and batch.rewards.shape == (n * steps,)
    assert np.all(batch.ends[steps - 1::steps])                        # each segment's last step ends its episode
    assert not np.any(batch.terminated & ~batch.ends)                  # a termination is an end
    inside = ~batch.ends[:-1]
    assert np.array_equal(batch.next_obs[:-1][inside], batch.obs[1:][inside])   # s_{t+1} is the next row inside
    assert batch.terminated.sum() > 0                                  # the untrained pendulum falls
    assert agent.episodes == n + int(batch.ends.sum()) - n             # a reset per segment and after each end
    # a terminal next observation is the fall itself, not the next episode's start
    t = int(np.flatnonzero(batch.terminated)[0])
    assert abs(batch.next_obs[t, 1]) > 0.2


def test_actions_are_the_unclipped_gaussian_samples(tmp_path):
    agent = reference_agent("pg", tmp_path, log_std_init=1.0)
    batch = agent.collect_batch()
    assert np.abs(batch.actions).max() > 1.0       # σ = e: samples leave [-1, 1]; the env got them clipped


# ---------------------------------------------------------------------------------------------- the reference math
@needs_solution
def test_reward_to_go_cuts_at_episode_ends_and_bootstraps_only_truncations(tmp_path):
    agent = reference_agent("pg", tmp_path, discount=0.5)
    r = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 4.0])
    ends = np.array([0, 0, 1, 0, 1, 1], bool)           # episodes: steps 0-2 (terminated), 3-4 (time limit), 5 (cut)
    term = np.array([0, 0, 1, 0, 0, 0], bool)
    v_next = np.array([9.0, 9.0, 9.0, 9.0, 8.0, 6.0])
    g = agent.reward_to_go(r, term, ends, v_next)
    np.testing.assert_allclose(g, [1.75, 1.5, 1.0, 2 + 0.5 * (2 + 0.5 * 8), 2 + 0.5 * 8, 4 + 0.5 * 6])


@needs_solution
@pytest.mark.parametrize("lam", [0.0, 0.6, 1.0])
def test_gae_special_cases(tmp_path, lam):
    agent = reference_agent("pg", tmp_path, discount=0.9, gae_lambda=lam)
    rng = np.random.default_rng(0)
    r, v, v_next = rng.normal(size=(3, 40))
    ends = rng.random(40) < 0.15
    ends[-1] = True
    term = ends & (rng.random(40) < 0.5)
    v_next[:-1] = np.where(ends[:-1], v_next[:-1], v[1:])     # inside an episode V(s_{t+1}) is the next row's V
    adv = agent.gae_advantages(r, v, v_next, term, ends)
    delta = r + 0.9 * np.where(term, 0.0, v_next) - v
    if lam == 0.0:
        np.testing.assert_allclose(adv, delta)
    elif lam == 1.0:
        np.testing.assert_allclose(adv, agent.reward_to_go(r, term, ends, v_next) - v, atol=1e-12)
    else:                                               # the (γλ)^l sum of δ up to the episode's end
        expect = np.zeros(40)
        for t in range(40):
            k, acc = t, 0.0
            while True:
                acc += (0.9 * lam) ** (k - t) * delta[k]
                if ends[k]:
                    break
                k += 1
            expect[t] = acc
        np.testing.assert_allclose(adv, expect, atol=1e-12)


@needs_solution
def test_the_actor_loss_gradient_is_the_policy_gradient_estimate(tmp_path):
    agent = reference_agent("pg", tmp_path)
    obs, actions = torch.randn(7, agent.obs_dim), torch.randn(7, agent.act_dim)
    adv = torch.randn(7)
    loss = agent.actor_loss(obs, actions, adv)
    grads = torch.autograd.grad(loss, list(agent.policy.parameters()))
    logp = agent.policy.dist(agent.policy.normalize_obs(obs)).log_prob(actions)
    expect = torch.autograd.grad(-(adv * logp).mean(), list(agent.policy.parameters()))
    for g, e in zip(grads, expect):
        torch.testing.assert_close(g, e)


# ---------------------------------------------------------------------------------------------- learning
@needs_solution
def test_reference_pg_learns_pendulum(tmp_path):
    """a2/pg_pendulum.yaml's first 60k steps (seed 0 reaches 1000 within 100k)."""
    agent = build_agent("pg", "pendulum", {"iterations": 60, "eval_every": 10, "final_eval_episodes": 0},
                        out_dir=tmp_path / "pg", solution=True, quiet=True)
    agent.run()
    rows = (tmp_path / "pg" / "log.txt").read_text().splitlines()
    col = rows[0].split("\t").index("Test_Return")
    best = max(float(r.split("\t")[col]) for r in rows[1:] if r.split("\t")[col] != "nan")
    assert best >= 300, rows


@needs_solution
def test_reference_cem_learns_pendulum(tmp_path):
    agent = build_agent("cem", "pendulum", {"iterations": 10, "final_eval_episodes": 3},
                        out_dir=tmp_path / "cem", solution=True, quiet=True)
    res = agent.run()
    assert res.mean >= 300


# ---------------------------------------------------------------------------------------------- resume
@needs_solution
@pytest.mark.parametrize("agent_name", ["pg", "cem"])
def test_resume_is_exact(tmp_path, agent_name):
    straight = make(agent_name, tmp_path / "a", iterations=4)
    straight.run()
    interrupt_run_after(make(agent_name, tmp_path / "b", iterations=4), 2)   # Ctrl-C after the 2nd checkpoint
    second = make(agent_name, tmp_path / "b", iterations=4)
    second.run(resume=True)
    assert log_rows(tmp_path / "a" / "log.txt") == log_rows(tmp_path / "b" / "log.txt")
    for (k, a), (_, b) in zip(straight.policy.state_dict().items(), second.policy.state_dict().items()):
        assert torch.equal(a, b), k


# ---------------------------------------------------------------------------------------------- the stubs
def test_untouched_full_scope_stubs_stop_at_the_first_iteration_saying_why(tmp_path):
    for agent_name, words in (("pg", "untouched stub"), ("cem", "untouched stub")):
        agent = make(agent_name, tmp_path / agent_name, solution=False)
        with pytest.raises((ValueError, TypeError), match=words):
            agent.run()
        assert agent.iteration == 0


@needs_solution
@pytest.mark.parametrize("agent_name", ["pg", "cem"])
def test_core_scope_stubs_run_end_to_end(tmp_path, agent_name):
    """The core scope's release: the loops hold the reference, the math the untouched stubs."""
    from grader.solution import solution_class

    spec = todo_manifest("core", "a2")[agent_name]
    cls = solution_class(agent_class(agent_name), agent_name, only=list(spec.reference_methods))
    agent = build_agent(agent_name, "pendulum", TINY[agent_name], out_dir=tmp_path / "core", agent_cls=cls,
                        quiet=True)
    agent.run()
    assert agent.iteration == TINY[agent_name]["iterations"]


def test_the_manifest_keeps_a1_by_default_and_lists_a2_on_request():
    assert set(todo_manifest()) == {"bc", "dagger", "dart"}
    a2 = todo_manifest("full", "a2")
    assert set(a2) == {"pg", "cem"}
    assert a2["pg"].methods == ("reward_to_go", "gae_advantages", "actor_loss", "critic_loss",
                                "estimate_advantages", "update")
    assert todo_manifest("core", "a2")["cem"].reference_methods == ("search_iteration",)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("agent_name,key,value,words", [
    ("pg", "discount", "1.5", "discount must lie in [0, 1]"),
    ("pg", "gae_lambda", "-0.1", "gae_lambda must lie in [0, 1]"),
    ("pg", "batch_size", "500", "batch_size 500 is smaller than one episode"),
    ("pg", "batch_size", "1001", "batch_size must be a positive multiple of num_envs"),
    ("cem", "population", "3", "population must be at least elite_count"),
])
def test_a_bad_config_is_one_error_line_naming_the_key(tmp_path, agent_name, key, value, words):
    src = (ROOT / "a2" / f"{agent_name}_pendulum.yaml").read_text().splitlines()
    lines = [ln for ln in src if not ln.startswith(f"{key}:")] + [f"{key}: {value}"]
    if agent_name == "pg" and value == "1001":
        lines = [ln for ln in lines if not ln.startswith("num_envs:")] + ["num_envs: 2"]
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    p = run_cli("run.py", "--agent", agent_name, "--env", "pendulum", "--agent_config", str(cfg),
                "--out_dir", str(tmp_path / "out"), "--no_progress")
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and words in err[0], p.stderr
    assert not (tmp_path / "out").exists()


def test_max_samples_is_refused_for_policy_search():
    p = run_cli("run.py", "--agent", "pg", "--env", "pendulum", "--max_samples", "5")
    assert p.returncode == 2 and "--max_samples" in p.stderr and "Traceback" not in p.stderr


def test_a_config_for_another_assignment_folder_is_found_by_agent(tmp_path):
    with pytest.raises(ConfigError, match="a2/pg_"):
        build_agent("pg", "cheetah", out_dir=tmp_path, config_path=tmp_path / "missing.yaml")
    cfg = build_agent("pg", "cheetah", out_dir=tmp_path, quiet=True).cfg
    assert cfg.agent == "pg" and cfg.env == "cheetah"


def test_sampler_runs_envs_side_by_side(tmp_path):
    """Two envs sampled together give each its own segment (the layout does not depend on num_envs)."""
    agent = make("pg", tmp_path / "s", solution=False, num_envs=2, batch_size=2000)
    assert isinstance(agent.sampler, BatchSampler) and len(agent.sampler.envs) == 2
    batch = agent.collect_batch()
    assert batch.ends[999] and batch.ends[1999]


def test_the_curve_skips_iterations_without_an_evaluation(tmp_path):
    from util.plotting import plot_runs

    log = tmp_path / "log.txt"
    log.write_text("Iteration\tEnv_Steps\tTest_Return\n1\t1000\tnan\n2\t2000\t5.5\n3\t3000\tnan\n4\t4000\t9\n")
    out = plot_runs([log], x="Env_Steps", y="Test_Return", out=tmp_path / "curve.png")
    assert out.is_file() and out.stat().st_size > 1000
    log.write_text("Iteration\tEnv_Steps\tTest_Return\n1\t1000\tnan\n")
    with pytest.raises(ValueError, match="no Test_Return values"):
        plot_runs([log], x="Env_Steps", y="Test_Return", out=tmp_path / "curve2.png")


def test_the_benchmark_table_reports_the_target_and_replaces_only_its_block(tmp_path):
    from tools import benchmark_a2 as bench

    cells = [{"variant": "pg-pendulum", "seed": s, "final": 900.0 + s, "env_steps": 100000, "train_seconds": 10.0,
              "curve": [(20000, 500.0), (40000, 1000.0 if s else 900.0)]} for s in range(2)]
    table = bench.summarize(cells, ["pg-pendulum", "pg-cheetah"])
    assert "| pg | pendulum | 100k | 900 ± 0 | 950 ± 50 | 1000: 1/2 seeds, median 40k | 10,000 | 2 |" in table
    assert "cheetah" not in table
    doc = tmp_path / "benchmark.md"
    doc.write_text(f"intro\n{bench.MARK_START}\nold\n{bench.MARK_END}\noutro\n")
    bench.update_docs(doc, table, "python tools/benchmark_a2.py")
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and table in text


def test_the_sb3_comparison_table_names_each_learner_and_its_speed():
    from tools import benchmark_a2 as bench

    cells = [{"learner": "pg", "seed": 0, "env_steps": 300000, "train_seconds": 30.0, "final": 2000.0},
             {"learner": "A2C", "seed": 0, "env_steps": 300000, "train_seconds": 300.0, "final": 500.0}]
    table = bench.compare_table(cells, "cheetah")
    assert "| PG (this project, reference) | cheetah | 300k | 2000 ± 0 | 10,000 | 1 |" in table
    assert "| stable-baselines3 A2C (defaults) | cheetah | 300k | 500 ± 0 | 1,000 | 1 |" in table
    assert "PPO" not in table

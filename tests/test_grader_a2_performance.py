"""Assignment 2's performance checks: the supervisor's env server (budget, transform), the child without a simulator,
the reference's full marks and the stubs' zero, and the attacks the checks are built against (a controller written
beforehand, a simulator of the student's own)."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from conftest import ROOT, run_supervisor, supervisor_spec
from envs.builder import make_env, resolve_env_config
from grader.env_transform import EnvTransform
from grader.reference_submissions import write_submission

needs_solution = pytest.mark.skipif(not (ROOT / "grader" / "solution").is_dir(),
                                    reason="reference solutions are not part of the student release")

CHILD = textwrap.dedent('''
    import importlib.util, json, os, sys
    spec = importlib.util.spec_from_file_location("harness", {child!r})
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    conn = harness.RemoteEnvs(os.environ["GRADER_ENV_FDS"])
    env = harness.RemoteEnv(conn)
    first, _ = env.reset(seed=3)
    steps, refused = 0, ""
    obs = first
    try:
        while True:
            obs, r, term, trunc, _ = env.step([0.0])
            steps += 1
            if term or trunc:
                obs, _ = env.reset(seed=4 + steps)
    except RuntimeError as e:
        refused = str(e)
    json.dump({{"first": [float(x) for x in first], "steps": steps, "refused": refused,
               "low": float(env.action_space.low[0])}}, open("out.json", "w"))
''')


def test_the_env_server_counts_every_step_refuses_beyond_the_budget_and_shows_the_transformed_task(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(child=str(ROOT / "grader" / "child" / "remote.py")))
    server = {"env": "pendulum", "budget": 57, "transform_seed": 11, "repo_root": str(ROOT)}
    status = run_supervisor(supervisor_spec(script, tmp_path, 60, env_server=server), tmp_path, timeout=120)
    out = json.loads((tmp_path / "out.json").read_text())
    assert status["env_steps"] == 57 and status["env_over_budget"] and status["env_error"] == ""
    assert out["steps"] == 57 and "budget" in out["refused"]
    env = make_env(resolve_env_config("pendulum"))
    real, _ = env.reset(seed=3)
    transform = EnvTransform(11, 4, env.action_space.low, env.action_space.high)
    np.testing.assert_allclose(out["first"], transform.observation(real), rtol=1e-6)
    assert sorted(transform.obs_perm) == [0, 1, 2, 3] and out["low"] == -3.0


def test_a_malformed_environment_request_ends_the_check(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent('''
        import os, struct, time
        r, w = (int(x) for x in os.environ["GRADER_ENV_FDS"].split(","))
        os.write(w, struct.pack("<III", 3, 7, 4) + b"abcd")     # a step of env 7, of none made
        time.sleep(30)
    '''))
    server = {"env": "pendulum", "budget": 10, "transform_seed": 1, "repo_root": str(ROOT)}
    status = run_supervisor(supervisor_spec(script, tmp_path, 60, env_server=server), tmp_path, timeout=120)
    assert "env 7" in status["env_error"] and status["seconds"] < 20


def test_the_transform_keeps_bounds_and_inverts_exactly():
    low, high = np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0])
    t = EnvTransform(5, 6, low, high)
    a = np.array([0.1, -0.5, 0.9], np.float32)
    real = t.action(a)
    assert sorted(np.abs(real).tolist()) == sorted(np.abs(a).tolist())
    lopsided = EnvTransform(5, 6, np.array([0.0, -1.0]), np.array([2.0, 1.0]))
    assert list(lopsided.act_perm) == [0, 1] and lopsided.act_sign[0] == 1.0          # unequal bounds stay put


def test_a_training_childs_view_has_no_simulator(tmp_path):
    from grader.views import child_view, simulator_dirs
    from grader.workspace import CheckDir

    d = CheckDir(tmp_path)
    masked = [step[1] for step in child_view(d, hide_simulator=True) if step[0] == "tmp"]
    assert simulator_dirs() and all(p in masked for p in simulator_dirs())
    assert not any(p in [s[1] for s in child_view(d) if s[0] == "tmp"] for p in simulator_dirs())


CONTROLLER = [0.1207, 1.5764, 0.3784, 0.5080, 0.0117]    # a linear controller balancing the plain pendulum


PRETRAINED_CEM = f'''
def search_iteration(self):
    import numpy as np
    self.mean = np.array({CONTROLLER})                # no search: a controller written before the check
    self.std = np.full(self.num_params, 0.01)
    return np.zeros(self.cfg.population)
'''
OWN_SIMULATOR_PG = '''
def update(self, batch):
    import gymnasium
    env = gymnasium.make("InvertedPendulum-v5")       # steps the grader does not count
    env.reset(seed=0)
    for _ in range(1000):
        env.step(env.action_space.sample())
    return {"actor_loss": 0.0, "critic_loss": 0.0}
'''


def test_the_controller_the_attack_ships_does_balance_the_plain_pendulum():
    from learning.actor import MLPActor
    from learning.evaluation import evaluate

    env = make_env(resolve_env_config("pendulum"))
    arrays = {"w0": np.array([CONTROLLER[:4]]), "b0": np.array(CONTROLLER[4:]), "n_layers": np.array(1),
              "activation": np.array("tanh"), "squash": np.array(True), "obs_mean": np.zeros(4),
              "obs_var": np.ones(4), "obs_eps": np.array(1e-8), "obs_clip": np.array(10.0),
              "action_low": np.array([-3.0]), "action_high": np.array([3.0])}
    assert evaluate(env, MLPActor(arrays).act, 3, 0, "plain").mean == 1000.0


@pytest.mark.slow
@needs_solution
def test_reference_full_marks_stubs_zero_and_the_attacks_earn_nothing(tmp_path):
    from grader.grade import grade
    from grader.isolation import sandbox_policy

    only = {"pg", "cem"}
    ref = grade(write_submission(tmp_path / "ref", assignment="a2"), include_hidden=False, only=only, jobs=2,
                scope="full", assignment="a2")
    assert [t.score for t in ref.tests if "performance" in t.tags] == [10.0, 5.0], [t.output for t in ref.tests]
    stub = grade(write_submission(tmp_path / "stub", reference=False, scope="core", assignment="a2"),
                 include_hidden=False, only=only, jobs=2, scope="core", assignment="a2")
    assert [t.score for t in stub.tests if "performance" in t.tags] == [0.0, 0.0]
    attack = grade(write_submission(tmp_path / "attack", methods={"cem.search_iteration": PRETRAINED_CEM,
                                                                   "pg.update": OWN_SIMULATOR_PG}, assignment="a2"),
                   include_hidden=False, only=only, jobs=2, scope="full", assignment="a2")
    by_name = {t.name.split(" (")[0]: t for t in attack.tests}
    assert by_name["CEM performance"].score == 0.0 and "best return" in by_name["CEM performance"].output
    assert by_name["PG performance"].score == 0.0
    policy = sandbox_policy(1)
    if policy.mountns or policy.bwrap:          # the simulator is hidden from the child: its own env cannot run
        assert "training failed" in by_name["PG performance"].output

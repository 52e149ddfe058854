"""Expert trainer: learns something, and an interrupted run resumes to the same state."""
import numpy as np
import pytest
import torch

from envs.builder import resolve_env_config
from learning.checkpoint import CheckpointError
from learning.expert import TD3Config, TD3Trainer

TINY = dict(total_steps=600, start_steps=100, learning_starts=100, batch_size=32, hidden_sizes=[32, 32],
            eval_interval=200, eval_episodes=1, checkpoint_interval=250)


def _equal_state(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_interrupted_run_resumes_to_the_same_state(tmp_path):
    env = resolve_env_config("hopper")
    full = TD3Trainer(env, TD3Config(**TINY), tmp_path / "a", progress=False)
    full.run()
    part = TD3Trainer(env, TD3Config(**TINY), tmp_path / "b", progress=False)
    part.run(max_steps=333)                        # stops mid-episode; checkpoint written
    assert (tmp_path / "b" / "checkpoint.pt").is_file() and (tmp_path / "b" / "replay.npz").is_file()
    resumed = TD3Trainer(env, TD3Config(**TINY), tmp_path / "b", progress=False)
    resumed.run(resume=True)
    assert resumed.step == full.step == 600 and resumed.episode == full.episode and resumed.updates == full.updates
    for name in ("actor", "critic", "actor_target", "critic_target"):
        assert _equal_state(getattr(full, name), getattr(resumed, name)), name
    np.testing.assert_array_equal(full.replay.obs, resumed.replay.obs)
    np.testing.assert_array_equal(full.replay.rewards, resumed.replay.rewards)
    assert full.actor_opt.state_dict()["state"][0]["step"] == resumed.actor_opt.state_dict()["state"][0]["step"]
    from conftest import log_rows

    assert log_rows(tmp_path / "a" / "log.txt") == log_rows(tmp_path / "b" / "log.txt")  # same rows but timings


def test_resume_refuses_checkpoint_of_another_task(tmp_path):
    TD3Trainer(resolve_env_config("hopper"), TD3Config(**TINY), tmp_path, progress=False).run(max_steps=150)
    other = TD3Trainer(resolve_env_config("cheetah"), TD3Config(**TINY), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="Hopper-v5"):
        other.run(resume=True)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    t = TD3Trainer(resolve_env_config("hopper"), TD3Config(**TINY), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="not found"):
        t.run(resume=True)


@pytest.mark.slow
def test_td3_improves_on_pendulum(tmp_path):
    """A few thousand steps of TD3 on InvertedPendulum reach a clearly better return than random."""
    p = tmp_path / "pend.yaml"
    p.write_text("name: pend\nenv_id: InvertedPendulum-v5\nmax_episode_steps: 200\nkwargs: {}\n")
    cfg = TD3Config(total_steps=3000, start_steps=500, learning_starts=500, batch_size=64, hidden_sizes=[64, 64],
                    eval_interval=1000, eval_episodes=3, checkpoint_interval=10_000)
    t = TD3Trainer(resolve_env_config(str(p)), cfg, tmp_path / "run", progress=False)
    out = t.run()
    assert out["best_eval"] >= 100  # random policy: ~5-10; max 200

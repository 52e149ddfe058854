"""Weights-only model files: round trip and every kind of bad file."""
import os

import numpy as np
import pytest
import torch

from learning.checkpoint import CheckpointError, load_policy, save_policy
from learning.policy import GaussianMLPPolicy


def _policy(obs_dim=11, act_dim=3):
    p = GaussianMLPPolicy(obs_dim, act_dim, [32, 32], -np.ones(act_dim) * 2, np.ones(act_dim) * 2)
    p.obs_normalizer.fit(np.random.default_rng(0).normal(3.0, 2.0, (100, obs_dim)))
    return p


def test_round_trip_keeps_weights_and_normalizer(tmp_path):
    p = _policy()
    save_policy(tmp_path / "m.pt", p, {"env_id": "Hopper-v5"})
    q, meta = load_policy(tmp_path / "m.pt", 11, 3, "Hopper-v5")
    obs = np.random.default_rng(1).normal(size=(5, 11)).astype(np.float32)
    np.testing.assert_array_equal(p.act(obs), q.act(obs))
    assert meta["env_id"] == "Hopper-v5"
    assert torch.equal(p.obs_normalizer.mean, q.obs_normalizer.mean)


def test_file_is_plain_weights_only(tmp_path):
    save_policy(tmp_path / "m.pt", _policy())
    torch.load(tmp_path / "m.pt", weights_only=True)  # must not raise


def test_missing_file_names_path_and_fix(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_policy(tmp_path / "none.pt", hint="Train it with: python run.py ...")
    assert "none.pt" in str(e.value) and "Train it with" in str(e.value)


def test_corrupt_file_is_refused(tmp_path):
    save_policy(tmp_path / "m.pt", _policy())
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_policy(tmp_path / "m.pt")
    (tmp_path / "t.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_policy(tmp_path / "t.pt")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = str(tmp_path / "pwned")
    torch.save({"format": "il-mujoco-policy", "version": 1, "spec": {}, "state_dict": {}, "x": _Payload(marker)},
               tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="pickle"):
        load_policy(tmp_path / "evil.pt")
    assert not os.path.exists(marker)


def test_model_for_another_task_is_refused(tmp_path):
    save_policy(tmp_path / "m.pt", _policy(11, 3), {"env_id": "Hopper-v5"})
    with pytest.raises(CheckpointError, match="observations of size 11"):
        load_policy(tmp_path / "m.pt", obs_dim=17, act_dim=6)
    with pytest.raises(CheckpointError, match="Hopper-v5"):
        load_policy(tmp_path / "m.pt", obs_dim=11, act_dim=3, env_id="Walker2d-v5")


def test_foreign_and_mismatched_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a policy file"):
        load_policy(tmp_path / "foreign.pt")
    p = _policy()
    sd = p.state_dict()
    sd["net.0.weight"] = torch.zeros(64, 11)  # architecture differs from the declared spec
    torch.save({"format": "il-mujoco-policy", "version": 1, "spec": p.spec(), "state_dict": sd, "meta": {}},
               tmp_path / "bad_arch.pt")
    with pytest.raises(CheckpointError, match="architecture"):
        load_policy(tmp_path / "bad_arch.pt")


def test_normalizer_running_update_matches_batch_statistics():
    from learning.normalizer import ObsNormalizer

    x = np.random.default_rng(0).normal(5, 3, (1000, 4))
    a, b = ObsNormalizer(4), ObsNormalizer(4)
    a.fit(x)
    for chunk in np.array_split(x, 7):
        b.update(chunk)
    np.testing.assert_allclose(a.mean.numpy(), b.mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(a.var.numpy(), b.var.numpy(), rtol=1e-4)


def test_action_scaling_round_trip():
    p = GaussianMLPPolicy(3, 2, [8], np.array([-2.0, 0.0]), np.array([2.0, 1.0]))
    env_a = torch.tensor([[-2.0, 0.0], [0.0, 0.5], [2.0, 1.0]])
    norm = p.normalize_action(env_a)
    torch.testing.assert_close(norm, torch.tensor([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]))
    torch.testing.assert_close(p.to_env_action(norm), env_a)

"""SAC and TQC expert trainers, compact checkpoints and warm starts, and the install guard."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from envs.builder import resolve_env_config
from learning.checkpoint import CheckpointError, load_policy
from learning.expert import (
    SACConfig,
    SACTrainer,
    TD3Config,
    TD3Trainer,
    TQCConfig,
    TQCTrainer,
    save_compact,
    trainer_classes,
)
from learning.expert.sac import QuantileHuberLoss
from util.config import REPO_ROOT
from util.errors import UserError

TINY = dict(total_steps=600, start_steps=100, learning_starts=100, batch_size=32, hidden_sizes=[32, 32],
            eval_interval=200, eval_episodes=1, checkpoint_interval=250, refill_steps=150)
ALGOS = {"td3": (TD3Config, TD3Trainer), "sac": (SACConfig, SACTrainer), "tqc": (TQCConfig, TQCTrainer)}


def _make(algo, path, env="hopper", **kw):
    config_cls, trainer_cls = ALGOS[algo]
    extra = {"n_quantiles": 5} if algo == "tqc" else {}
    return trainer_cls(resolve_env_config(env), config_cls(**{**TINY, **extra, **kw}), path, quiet=True)


def _same_modules(a, b):
    for name, m in a.saved_modules().items():
        if isinstance(m, torch.nn.Module):
            for (k, x), y in zip(m.state_dict().items(), b.saved_modules()[name].state_dict().values(),
                                 strict=True):
                assert torch.equal(x, y), f"{name}.{k}"


def _rows(path):
    from conftest import log_rows

    return log_rows(path)


@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_interrupted_run_resumes_to_the_same_state(tmp_path, algo):
    full = _make(algo, tmp_path / "a")
    full.run()
    part = _make(algo, tmp_path / "b")
    part.run(max_steps=333)                        # stops mid-episode; checkpoint and replay written
    resumed = _make(algo, tmp_path / "b")
    resumed.run(resume=True)
    assert resumed.step == full.step == 600 and resumed.updates == full.updates == 501
    _same_modules(full, resumed)
    assert _rows(tmp_path / "a" / "log.txt") == _rows(tmp_path / "b" / "log.txt")


@pytest.mark.parametrize("algo", ["td3", "sac", "tqc"])
def test_warm_start_from_a_compact_checkpoint_is_deterministic_and_continues_the_log(tmp_path, algo):
    first = _make(algo, tmp_path / "run")
    first.run(max_steps=400)
    written = save_compact(tmp_path / "run", tmp_path / "compact")
    names = {p.name for p in written}
    assert {"checkpoint.pt", "log.txt", "config.json", "best_model.pt", "model.pt"} <= names
    assert "replay.npz" not in names and not (tmp_path / "compact" / "replay.npz").exists()
    assert all(p.parent.name == "snapshots" for p in written if p.name.startswith("step_"))
    shutil.rmtree(tmp_path / "run")               # a fresh machine: only the compact folder survives

    runs = []
    for name in ("w1", "w2"):
        t = _make(algo, tmp_path / name)
        out = t.run(warm_start=tmp_path / "compact")
        runs.append(t)
        assert out["step"] == 600 and t.refill_steps_total == TINY["refill_steps"] and t.warm_starts == 1
        assert t.refill_left == 0 and t.updates == 600 - TINY["learning_starts"] + 1
    _same_modules(*runs)
    rows = _rows(tmp_path / "w1" / "log.txt")
    assert rows == _rows(tmp_path / "w2" / "log.txt")
    samples = rows[0].index("Samples")
    assert [int(r[samples]) for r in rows[1:]] == [200, 400, 600]    # the first two rows come from the compact log
    assert load_policy(tmp_path / "w1" / "model.pt")[1]["refill_steps"] == TINY["refill_steps"]
    kept = sorted(p.name for p in (tmp_path / "w1" / "snapshots").glob("*.pt"))
    assert kept == [f"step_{s:08d}.pt" for _, s in sorted(runs[0].snapshots, key=lambda x: x[1])]


def test_warm_start_survives_an_interruption_during_the_refill(tmp_path):
    """A warm-started run killed while it refills resumes exactly (the refill state is in the checkpoint)."""
    _make("sac", tmp_path / "run").run(max_steps=400)
    save_compact(tmp_path / "run", tmp_path / "compact")
    full = _make("sac", tmp_path / "full")
    full.run(warm_start=tmp_path / "compact")
    part = _make("sac", tmp_path / "part")
    original = part._refill_step

    def refill_then_signal():
        original()
        if part.refill_left == 60:
            import signal

            signal.raise_signal(signal.SIGINT)

    part._refill_step = refill_then_signal
    with pytest.raises(KeyboardInterrupt):
        part.run(warm_start=tmp_path / "compact")
    resumed = _make("sac", tmp_path / "part")
    resumed.run(resume=True)
    _same_modules(full, resumed)
    assert _rows(tmp_path / "full" / "log.txt") == _rows(tmp_path / "part" / "log.txt")


@pytest.mark.parametrize("algo", ["td3", "tqc"])
def test_warm_start_takes_the_new_configs_learning_rates_and_keeps_the_optimizer_moments(tmp_path, algo):
    """Polishing a run with a lower learning rate: the config's rates apply, not the checkpoint's."""
    _make(algo, tmp_path / "run").run(max_steps=400)
    save_compact(tmp_path / "run", tmp_path / "compact")
    saved = torch.load(tmp_path / "compact" / "checkpoint.pt", weights_only=True)
    rates = {"actor_lr": 3e-5, "critic_lr": 2e-5} | ({"alpha_lr": 1e-5} if algo == "tqc" else {})
    t = _make(algo, tmp_path / "polish", total_steps=400, **rates)
    t.load_warm_start(tmp_path / "compact")
    names = {"actor_opt": "actor_lr", "critic_opt": "critic_lr", "alpha_opt": "alpha_lr"}
    for opt_name, rate in names.items():
        if opt_name not in t.saved_modules():
            continue
        opt = t.saved_modules()[opt_name]
        assert [g["lr"] for g in opt.param_groups] == [rates[rate]] * len(opt.param_groups)
        assert saved[opt_name]["param_groups"][0]["lr"] == TINY.get(rate, getattr(t.cfg.__class__(), rate))
        moments = saved[opt_name]["state"][0]["exp_avg"]
        assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], moments)   # Adam's moments carry over


def test_warm_start_from_a_run_folder_keeps_its_replay_instead_of_refilling(tmp_path):
    first = _make("tqc", tmp_path / "run")
    first.run(max_steps=400)
    t = _make("tqc", tmp_path / "polish", actor_lr=1e-4)
    out = t.run(warm_start=tmp_path / "run")
    assert out["step"] == 600 and t.refill_steps_total == 0 and t.warm_starts == 1
    assert t.updates == first.updates + 200 and t.replay.size == 600
    assert np.array_equal(t.replay.obs[:400], first.replay.obs[:400])   # the run's own experience, then new steps
    bad = _make("tqc", tmp_path / "other_size", buffer_size=300)       # a replay that does not fit: refill
    bad.run(warm_start=tmp_path / "run")
    assert bad.refill_steps_total == TINY["refill_steps"]


def test_estimated_cpu_time_is_carried_to_the_exported_policy(tmp_path):
    """The part of a run's CPU-time counter that was estimated (a run older than the counter) stays marked."""
    _make("sac", tmp_path / "run").run(max_steps=300)
    save_compact(tmp_path / "run", tmp_path / "compact")
    path = tmp_path / "compact" / "checkpoint.pt"
    ck = torch.load(path, weights_only=True)
    assert ck["counters"]["cpu_time_estimated"] == 0.0 and ck["counters"]["cpu_time"] > 0
    ck["counters"]["cpu_time_estimated"] = 123.0     # part of cpu_time, which counts measured and estimated
    ck["counters"]["cpu_time"] += 123.0
    torch.save(ck, path)
    t = _make("sac", tmp_path / "w1", total_steps=400)
    t.run(warm_start=tmp_path / "compact")
    meta = load_policy(tmp_path / "w1" / "model.pt")[1]
    assert meta["train_cpu_time_estimated_s"] == 123.0 and meta["train_cpu_time_s"] > 123.0
    for key in ("cpu_time", "cpu_time_estimated"):   # a checkpoint from before CPU time was recorded
        del ck["counters"][key]
    torch.save(ck, path)
    t = _make("sac", tmp_path / "w2", total_steps=400)
    t.run(warm_start=tmp_path / "compact")
    meta = load_policy(tmp_path / "w2" / "model.pt")[1]
    assert meta["train_cpu_time_estimated_s"] == round(ck["counters"]["wall_time"], 1)


def test_compact_checkpoint_and_warm_start_errors(tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint.pt"):
        save_compact(tmp_path / "nothing", tmp_path / "c")
    _make("td3", tmp_path / "run").run(max_steps=300)
    save_compact(tmp_path / "run", tmp_path / "c")
    with pytest.raises(UserError, match="already holds a compact checkpoint.*--overwrite"):
        save_compact(tmp_path / "run", tmp_path / "c")
    (tmp_path / "c" / "snapshots" / "step_99999999.pt").write_bytes(b"stale")
    save_compact(tmp_path / "run", tmp_path / "c", overwrite=True)
    assert not (tmp_path / "c" / "snapshots" / "step_99999999.pt").exists()
    with pytest.raises(UserError, match="is the run folder itself"):
        save_compact(tmp_path / "run", tmp_path / "run")
    with pytest.raises(CheckpointError, match="not a SAC trainer checkpoint.*il-mujoco-td3-checkpoint"):
        _make("sac", tmp_path / "s").run(warm_start=tmp_path / "c")
    with pytest.raises(CheckpointError, match="Hopper-v5"):
        _make("td3", tmp_path / "other", env="cheetah").run(warm_start=tmp_path / "c")
    with pytest.raises(UserError, match="exclude each other"):
        _make("td3", tmp_path / "run").run(warm_start=tmp_path / "c", resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        _make("td3", tmp_path / "w").run(warm_start=tmp_path / "missing")
    (tmp_path / "run" / "replay.npz").unlink()
    with pytest.raises(CheckpointError, match="--warm_start"):
        _make("td3", tmp_path / "run").run(resume=True)


def test_quantile_huber_loss_matches_its_definition():
    torch.manual_seed(0)
    q = torch.randn(2, 8, 5, dtype=torch.float64, requires_grad=True)
    y = 2.0 * torch.randn(8, 7, dtype=torch.float64)

    def reference(q):
        tau = (torch.arange(5, dtype=q.dtype) + 0.5) / 5
        d = y[None, :, None, :] - q[..., None]
        huber = torch.where(d.abs() <= 1, 0.5 * d ** 2, d.abs() - 0.5)
        weight = (tau[None, None, :, None] - (d.detach() < 0).to(q.dtype)).abs()
        return (weight * huber).mean(dim=(1, 2, 3)).sum()

    ours, ref = QuantileHuberLoss.apply(q, y), reference(q)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, q)[0], torch.autograd.grad(ref, q)[0])


def test_sac_exported_policy_is_the_actors_deterministic_action(tmp_path):
    t = _make("sac", tmp_path / "r")
    obs = torch.randn(16, t.obs_dim) * 20          # beyond the clip, too
    with torch.no_grad():
        mu, _ = t.actor(t.actor.obs_normalizer(obs))
        torch.testing.assert_close(t.policy().mean_action(obs), torch.tanh(mu))
    assert set(t.policy().state_dict()) == set(_make("td3", tmp_path / "t").actor.state_dict())


def test_trainer_config_names_the_algorithms():
    from util.config import ConfigError

    assert trainer_classes("tqc") == (TQCConfig, TQCTrainer)
    with pytest.raises(ConfigError, match="sac, td3, tqc"):
        trainer_classes("ppo")
    with pytest.raises(ValueError, match="drop_per_net"):
        TQCConfig(n_quantiles=3, drop_per_net=3).validate()


def test_install_refuses_a_candidate_weaker_than_the_shipped_expert(tmp_path):
    """--install never replaces a better expert with a half-trained one (the files stay as they were)."""
    shipped = tmp_path / "expert_hopper.pt"
    shutil.copyfile(REPO_ROOT / "data" / "models" / "expert_hopper.pt", shipped)
    before = shipped.read_bytes()
    cfg = tmp_path / "expert_hopper.yaml"
    cfg.write_text(f"agent: expert\nenv: hopper\nmodel_file: {shipped}\ntrainer:\n  algo: sac\n  total_steps: 300\n"
                   "  start_steps: 100\n  learning_starts: 100\n  batch_size: 32\n  hidden_sizes: [32, 32]\n"
                   "  eval_interval: 100\n  eval_episodes: 1\n")
    tool = [sys.executable, "tools/train_expert.py", "--env", "hopper", "--agent_config", str(cfg),
            "--run_dir", str(tmp_path / "run"), "--no_progress"]
    assert subprocess.run(tool, cwd=REPO_ROOT, capture_output=True, text=True).returncode == 0
    out = subprocess.run([*tool, "--install", "--eval_episodes", "2"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "does not beat the shipped expert" in out.stdout and shipped.read_bytes() == before
    out = subprocess.run([*tool, "--install", "--min_survival", "1.01"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "error: --min_survival is a fraction" in out.stderr
    out = subprocess.run([*tool, "--min_return", "5000"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "apply to --install only" in out.stderr
    out = subprocess.run([*tool, "--save_compact", str(tmp_path / "c"), "--resume"], cwd=REPO_ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "error: --save_compact and --resume exclude each other" in out.stderr
    out = subprocess.run([*tool, "--save_compact", str(tmp_path / "c")], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "--warm_start" in out.stdout
    assert (tmp_path / "c" / "checkpoint.pt").stat().st_size < 1_000_000


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_sac_and_tqc_improve_on_pendulum(tmp_path, algo):
    """3000 steps on InvertedPendulum reach a clearly better return than random (~5-10; max 200).

    (SAC and TQC learn it more slowly than TD3 at this budget: about 80 by 2000 steps.)"""
    p = tmp_path / "pend.yaml"
    p.write_text("name: pend\nenv_id: InvertedPendulum-v5\nmax_episode_steps: 200\nkwargs: {}\n")
    config_cls, trainer_cls = ALGOS[algo]
    cfg = config_cls(total_steps=3000, start_steps=500, learning_starts=500, batch_size=64, hidden_sizes=[64, 64],
                     eval_interval=500, eval_episodes=3, checkpoint_interval=10_000, init_alpha=0.1, actor_lr=1e-3,
                     critic_lr=1e-3)
    out = trainer_cls(resolve_env_config(str(p)), cfg, tmp_path / "run", quiet=True).run()
    assert np.isfinite(out["best_eval"]) and out["best_eval"] >= 50


def test_install_refuses_a_candidate_that_misses_the_floors_on_the_held_out_episodes(tmp_path, monkeypatch, capsys):
    """The floors hold for the reported figures: a candidate that survives every selection episode but falls in
    3 of 50 held-out ones is not installed under --min_survival 0.98 (and nothing is written)."""
    import tools.expert_install as expert_install
    from learning.evaluation import EvalResult
    from learning.expert import ExpertConfig

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "model.pt").write_bytes(b"candidate")
    monkeypatch.setattr(expert_install, "load_policy", lambda *a, **k: (object(), {"train_steps": 1}))

    def fake_eval(env, policy, episodes, seed, purpose, progress=False):
        falls = 0 if purpose == expert_install.SELECT_PURPOSE else 3
        return EvalResult(returns=[5000.0] * episodes, lengths=[1000] * episodes,
                          terminated=[i < falls for i in range(episodes)])

    monkeypatch.setattr(expert_install, "evaluate_policy", fake_eval)
    cfg = ExpertConfig(agent="expert", env="hopper", model_file=str(tmp_path / "expert_hopper.pt"))
    code = expert_install.install_expert(resolve_env_config("hopper"), cfg, tmp_path / "run", 50,
                                         min_return=4700, min_survival=0.98)
    out = capsys.readouterr().out
    assert code == 2 and "passed on the selection episodes but not on the held-out ones" in out
    assert "94% reach the time limit < --min_survival 98%" in out and not (tmp_path / "expert_hopper.pt").exists()
    code = expert_install.install_expert(resolve_env_config("hopper"), cfg, tmp_path / "run", 50,
                                         min_return=6000, min_survival=0.0)   # selection already refuses this one
    assert code == 2 and "is below --min_return 6000" in capsys.readouterr().out


def test_install_adds_the_snapshots_weight_average_as_a_candidate(tmp_path, monkeypatch, capsys):
    """Snapshots of one run are also tried as their weight average (elementwise mean of every weight, the
    normalizer kept); snapshots with different normalizers or architectures are not averaged."""
    import tools.expert_install as expert_install
    from learning.checkpoint import save_policy
    from learning.evaluation import EvalResult
    from learning.expert import ExpertConfig
    from learning.policy import GaussianMLPPolicy

    torch.manual_seed(0)
    snaps = [GaussianMLPPolicy(11, 3, [8, 8]) for _ in range(3)]
    (tmp_path / "run" / "snapshots").mkdir(parents=True)
    for i, p in enumerate(snaps):
        save_policy(tmp_path / "run" / "snapshots" / f"step_{i + 1:08d}.pt", p, {"train_steps": i + 1})
    averaged, meta = expert_install.average_policies([(p, {"train_steps": i + 1}) for i, p in enumerate(snaps)])
    for k, v in averaged.state_dict().items():
        expected = torch.stack([p.state_dict()[k] for p in snaps]).mean(0)
        assert torch.allclose(v, expected), k
    assert meta == {"train_steps": 3, "averaged_steps": [1, 2, 3]}
    other = GaussianMLPPolicy(11, 3, [8, 8])
    other.obs_normalizer.update(torch.randn(5, 11))
    assert expert_install.average_policies([(snaps[0], {}), (other, {})]) is None
    assert expert_install.average_policies([(snaps[0], {}), (GaussianMLPPolicy(11, 3, [8, 4]), {})]) is None
    assert expert_install.average_policies([(snaps[0], {})]) is None

    def fake_eval(env, policy, episodes, seed, purpose, progress=False):   # the average is the best candidate
        best = all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), averaged.state_dict().values(),
                                                     strict=True))
        return EvalResult(returns=[4000.0 if best else 3000.0] * episodes, lengths=[1000] * episodes,
                          terminated=[False] * episodes)

    monkeypatch.setattr(expert_install, "evaluate_policy", fake_eval)
    cfg = ExpertConfig(agent="expert", env="hopper", model_file=str(tmp_path / "expert_hopper.pt"))
    code = expert_install.install_expert(resolve_env_config("hopper"), cfg, tmp_path / "run", 5)
    out = capsys.readouterr().out
    assert code == 0 and "chosen average of the 3 snapshots" in out, out
    installed, installed_meta = load_policy(tmp_path / "expert_hopper.pt")
    assert installed_meta["averaged_steps"] == [1, 2, 3] and installed_meta["train_steps"] == 3
    import json

    summary = json.loads((tmp_path / "expert_hopper.json").read_text())
    assert summary["source"] == "average of the 3 snapshots" and summary["candidates"] == 4   # 3 snapshots + mean
    for a, b in zip(installed.state_dict().values(), averaged.state_dict().values(), strict=True):
        assert torch.equal(a, b)

"""The plain-PyTorch snippet in data/README.md reproduces the project's deterministic expert action."""
import re

import numpy as np

from envs.builder import env_dims, make_env, resolve_env_config
from learning.expert import load_expert

from conftest import ROOT

MARKER = "<!-- expert-snippet -->"


def readme_snippet() -> str:
    """The ```python block right after the marker in data/README.md (what a reader copies)."""
    text = (ROOT / "data" / "README.md").read_text()
    assert MARKER in text, "data/README.md lost its expert snippet; regenerate it with tools/expert_report.py"
    m = re.match(r"\s*```python\n(.*?)\n```", text.split(MARKER, 1)[1], re.S)
    assert m, "no ```python block after the expert-snippet marker"
    return m.group(1)


def test_readme_is_generated_from_expert_report():
    from tools import expert_report

    assert readme_snippet() in expert_report.COMMANDS


def test_readme_snippet_matches_policy_act(monkeypatch):
    code = readme_snippet()
    assert "weights_only=True" in code and "learning" not in code and len(code.splitlines()) <= 25
    monkeypatch.chdir(ROOT)                      # the snippet loads data/models/expert_cheetah.pt relative to the repo
    ns: dict = {}
    exec(compile(code, "data/README.md (expert snippet)", "exec"), ns)
    expert_action = ns["expert_action"]

    env_cfg = resolve_env_config("cheetah")
    obs_dim, act_dim = env_dims(make_env(env_cfg))
    policy = load_expert(env_cfg, obs_dim, act_dim)
    rng = np.random.default_rng(0)
    # wide random observations: many entries beyond the normalizer's clip at ±10, as in real cheetah states
    obs = (rng.normal(size=(256, obs_dim)) * rng.choice([0.5, 3.0, 15.0], size=(256, 1))).astype(np.float32)
    assert (np.abs(obs) > 10).any()
    want = policy.act(obs, deterministic=True)
    got = expert_action(obs)
    assert got.shape == (256, act_dim) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    for o in obs[:20]:                           # single observations too
        np.testing.assert_allclose(expert_action(o), policy.act(o, deterministic=True), rtol=0, atol=1e-6)
    # the real thing: observations the expert visited in its demos
    demo_obs = np.load(ROOT / "data" / "demos" / "cheetah.npz", allow_pickle=False)["obs"][:500]
    np.testing.assert_allclose(expert_action(demo_obs), policy.act(demo_obs, deterministic=True), rtol=0, atol=1e-6)


def test_snippet_would_notice_a_wrong_layout(monkeypatch):
    """Guard against a vacuous comparison: dropping the normalizer's clip changes the actions."""
    monkeypatch.chdir(ROOT)
    code = readme_snippet().replace(".clamp(-10.0, 10.0)", "")
    ns: dict = {}
    exec(compile(code, "snippet without clip", "exec"), ns)
    env_cfg = resolve_env_config("cheetah")
    policy = load_expert(env_cfg, *env_dims(make_env(env_cfg)))
    rng = np.random.default_rng(1)
    obs = (rng.normal(size=(256, 17)) * 15.0).astype(np.float32)
    assert np.abs(ns["expert_action"](obs) - policy.act(obs, deterministic=True)).max() > 1e-2

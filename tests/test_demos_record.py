"""tools/record_demos.py: writes format-2 files (final_obs), never overwrites silently, upgrades format-1 files."""
import json

import numpy as np
import pytest

from learning.demos import DemoError, demo_path, load_demos

from conftest import run_cli

OLD_KEYS = ("obs", "actions", "rewards", "terminated", "truncated", "episode_starts", "episode_lengths",
            "episode_returns", "episode_seeds", "meta_json")


def short_hopper_env(tmp_path, steps: int = 60):
    p = tmp_path / "hopper_short.yaml"
    p.write_text(f"name: hopper\nenv_id: Hopper-v5\nmax_episode_steps: {steps}\nkwargs: {{}}\n")
    return p


def test_record_writes_final_obs_and_refuses_to_overwrite(tmp_path):
    env_yaml, out = short_hopper_env(tmp_path), tmp_path / "demo.npz"
    args = ("tools/record_demos.py", "--env", str(env_yaml), "--episodes", "2", "--out", str(out))
    r = run_cli(*args, timeout=240)
    assert r.returncode == 0, r.stderr
    d = load_demos(out, "Hopper-v5", 11, 3)
    assert d.num_episodes == 2 and d.meta["format_version"] == 2
    assert d.data["final_obs"].shape == (2, 11)
    assert d.data["truncated"][d.episode_slice(0)][-1]           # 60-step limit reached by the expert
    before = out.read_bytes()
    r = run_cli(*args, timeout=240)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "--overwrite" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and out.read_bytes() == before
    r = run_cli(*args, "--overwrite", timeout=240)
    assert r.returncode == 0, r.stderr


def format_1_copy(tmp_path, episodes: int = 2, tamper: bool = False):
    """The first ``episodes`` episodes of the shipped hopper demos, written without final_obs (format 1)."""
    with np.load(demo_path("hopper"), allow_pickle=False) as f:
        a = {k: f[k] for k in OLD_KEYS}
    end = int(a["episode_starts"][episodes - 1] + a["episode_lengths"][episodes - 1])
    old = {k: (v[:end] if k in ("obs", "actions", "rewards", "terminated", "truncated") else
               v[:episodes] if k != "meta_json" else v) for k, v in a.items()}
    if tamper:
        old["actions"] = old["actions"].copy()
        old["actions"][1200, 0] = np.nextafter(old["actions"][1200, 0], np.float32(0))   # one ulp, in episode 1
    p = tmp_path / "old.npz"
    np.savez_compressed(p, **old)
    return p, old


def test_add_final_obs_upgrades_a_format_1_file_by_exact_replay(tmp_path):
    src, old = format_1_copy(tmp_path)
    with pytest.raises(DemoError, match="--add_final_obs"):     # the loader refuses format 1 and names the fix
        load_demos(src, "Hopper-v5", 11, 3, "hopper")
    dst = tmp_path / "new.npz"
    r = run_cli("tools/record_demos.py", "--env", "hopper", "--out", str(src), "--add_final_obs",
                "--upgraded_out", str(dst), timeout=240)
    assert r.returncode == 0, r.stderr
    d = load_demos(dst, "Hopper-v5", 11, 3)
    for k in OLD_KEYS[:-1]:
        assert d.data[k].tobytes() == old[k].tobytes() and d.data[k].dtype == old[k].dtype, k
    shipped = load_demos(demo_path("hopper"), "Hopper-v5", 11, 3)
    assert np.array_equal(d.data["final_obs"], shipped.data["final_obs"][:2])
    assert json.loads(str(d.data["meta_json"]))["format_version"] == 2
    # upgrading again: refused, and the in-place form needs --overwrite
    r = run_cli("tools/record_demos.py", "--env", "hopper", "--out", str(dst), "--add_final_obs", "--overwrite",
                timeout=60)
    assert r.returncode == 2 and "already has final_obs" in r.stderr, r.stderr
    r = run_cli("tools/record_demos.py", "--env", "hopper", "--out", str(src), "--add_final_obs", timeout=60)
    assert r.returncode == 2 and "--overwrite" in r.stderr, r.stderr


def test_add_final_obs_refuses_a_file_the_simulator_does_not_reproduce(tmp_path):
    src, _ = format_1_copy(tmp_path, tamper=True)
    dst = tmp_path / "new.npz"
    r = run_cli("tools/record_demos.py", "--env", "hopper", "--out", str(src), "--add_final_obs",
                "--upgraded_out", str(dst), timeout=240)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "episode 1, step" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not dst.exists()

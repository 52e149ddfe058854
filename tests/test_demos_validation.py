"""load_demos refuses inconsistent demo files with one clear message naming the file and the first bad episode."""
import json

import numpy as np
import pytest

from learning.demos import DemoError, load_demos

from conftest import ROOT, run_cli

LENGTHS = (4, 3, 5)       # three small episodes: rows 0-3, 4-6, 7-11
OBS_DIM, ACT_DIM = 2, 1


def small_demo_arrays() -> dict[str, np.ndarray]:
    """A valid format-2 demo set: N = 12 steps, E = 3 episodes, obs (12, 2), actions (12, 1)."""
    n, e = sum(LENGTHS), len(LENGTHS)
    rng = np.random.default_rng(0)
    ends = np.cumsum(LENGTHS)
    truncated = np.zeros(n, bool)
    truncated[ends - 1] = True
    rewards = rng.normal(size=n).astype(np.float32)
    return {
        "obs": rng.normal(size=(n, OBS_DIM)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(n, ACT_DIM)).astype(np.float32),
        "rewards": rewards, "terminated": np.zeros(n, bool), "truncated": truncated,
        "final_obs": rng.normal(size=(e, OBS_DIM)).astype(np.float32),
        "episode_starts": (ends - np.array(LENGTHS)).astype(np.int64),
        "episode_lengths": np.array(LENGTHS, np.int64),
        "episode_returns": np.array([rewards[s:t].sum() for s, t in zip(ends - LENGTHS, ends, strict=True)],
                                    np.float64),
        "episode_seeds": np.arange(e, dtype=np.int64),
        "meta_json": np.array(json.dumps({"env_id": "Toy-v0", "format_version": 2})),
    }


def write(tmp_path, arrays, name="demo.npz"):
    p = tmp_path / name
    np.savez_compressed(p, **arrays)
    return p


def refused(path, *patterns: str) -> str:
    with pytest.raises(DemoError) as e:
        load_demos(path, obs_dim=OBS_DIM, act_dim=ACT_DIM)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg, msg
    for pat in patterns:
        assert pat in msg, msg
    return msg


def test_small_valid_file_loads_and_dataset_takes_exactly_the_first_episodes(tmp_path):
    arrays = small_demo_arrays()
    d = load_demos(write(tmp_path, arrays), obs_dim=OBS_DIM, act_dim=ACT_DIM)
    assert d.num_episodes == 3
    one = d.dataset(1)
    assert len(one) == 4 and np.array_equal(one.obs, arrays["obs"][:4])
    assert np.array_equal(d.dataset(2).actions, arrays["actions"][:7])
    ep = d.episode(1)
    assert ep["observations"].shape == (4, OBS_DIM)
    assert np.array_equal(ep["observations"][:3], arrays["obs"][4:7])
    assert np.array_equal(ep["observations"][3], arrays["final_obs"][1])
    assert np.array_equal(ep["rewards"], arrays["rewards"][4:7])


@pytest.mark.parametrize("key,row,episode", [("obs", 5, 1), ("actions", 11, 2), ("rewards", 0, 0)])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_step_values_name_the_episode(tmp_path, key, row, episode, value):
    arrays = small_demo_arrays()
    arrays[key][row] = value
    refused(write(tmp_path, arrays), f"'{key}'", f"row {row}", f"first bad episode: {episode}")


@pytest.mark.parametrize("key", ["final_obs", "episode_returns"])
def test_non_finite_episode_values_name_the_episode(tmp_path, key):
    arrays = small_demo_arrays()
    arrays[key][2] = np.nan
    refused(write(tmp_path, arrays), f"'{key}'", "first bad episode: 2")


def test_episode_starts_must_follow_the_lengths(tmp_path):
    """Today's bug: starts that disagree with the lengths made demo_episodes: 1 take the wrong rows."""
    arrays = small_demo_arrays()
    arrays["episode_starts"] = np.array([0, 4, 8], np.int64)
    refused(write(tmp_path, arrays), "episode_starts[2] is 8", "first bad episode: 2")
    arrays["episode_starts"] = np.array([7, 4, 0], np.int64)     # episode 0 pointing at the last episode's rows
    refused(write(tmp_path, arrays), "episode_starts[0] is 7", "first bad episode: 0")


def test_lengths_must_add_up_to_the_rows(tmp_path):
    arrays = small_demo_arrays()
    arrays["episode_lengths"] = np.array([4, 3, 4], np.int64)
    refused(write(tmp_path, arrays), "add up to 11 steps", "12 rows")


def test_an_empty_episode_is_refused(tmp_path):
    """Lengths [12, 0, 0] add up but would make 'the first episode' the whole file."""
    arrays = small_demo_arrays()
    arrays["episode_lengths"] = np.array([12, 0, 0], np.int64)
    arrays["episode_starts"] = np.array([0, 12, 12], np.int64)
    refused(write(tmp_path, arrays), "episode 1 has length 0", "first bad episode: 1")


@pytest.mark.parametrize("key,bad_shape", [("actions", (11, ACT_DIM)), ("rewards", (12, 1)), ("truncated", (11,)),
                                           ("final_obs", (2, OBS_DIM)), ("final_obs", (3, OBS_DIM + 1)),
                                           ("episode_seeds", (4,)), ("episode_returns", (3, 1))])
def test_row_counts_and_shapes_are_checked(tmp_path, key, bad_shape):
    arrays = small_demo_arrays()
    arrays[key] = np.zeros(bad_shape, arrays[key].dtype)
    refused(write(tmp_path, arrays), f"'{key}' has shape {bad_shape}")


@pytest.mark.parametrize("key,dtype", [("obs", np.int64), ("terminated", np.float32), ("episode_starts", np.float64)])
def test_dtypes_are_checked(tmp_path, key, dtype):
    arrays = small_demo_arrays()
    arrays[key] = arrays[key].astype(dtype)
    refused(write(tmp_path, arrays), f"'{key}' has dtype")


def test_episode_end_flags_must_mark_exactly_the_last_step(tmp_path):
    arrays = small_demo_arrays()
    arrays["truncated"][6] = False                          # episode 1 never ends
    refused(write(tmp_path, arrays), "episode 1: its last step is neither", "first bad episode: 1")
    arrays = small_demo_arrays()
    arrays["terminated"][8] = True                          # episode 2 ends early
    refused(write(tmp_path, arrays), "episode 2: it ends", "first bad episode: 2")


def test_a_format_1_file_without_final_obs_is_refused_with_the_upgrade_hint(tmp_path):
    arrays = small_demo_arrays()
    del arrays["final_obs"]
    refused(write(tmp_path, arrays), "final_obs", "format version 1", "record_demos.py", "--add_final_obs")


def test_run_py_reports_a_bad_demo_file_as_one_error_line(tmp_path):
    """`python run.py --agent bc` on a demo file with a NaN: one `error:` line naming file and episode, exit 2."""
    arrays = dict(np.load(ROOT / "data" / "demos" / "hopper.npz", allow_pickle=False))
    arrays["obs"] = arrays["obs"].copy()
    arrays["obs"][1500, 3] = np.nan                          # row 1500 is in episode 1
    (tmp_path / "demos").mkdir()
    bad = write(tmp_path / "demos", arrays, "hopper.npz")
    # run.py reads data/demos/<env>.npz; point learning.demos.DEMO_DIR at the bad copy instead
    code = ("import sys, runpy; from pathlib import Path;"
            f"import learning.demos as d; d.DEMO_DIR = Path({str(tmp_path / 'demos')!r});"
            "sys.argv = ['run.py', '--agent', 'bc', '--env', 'hopper', '--no_progress', '--no_tensorboard',"
            f" '--out_dir', {str(tmp_path / 'out')!r}];"
            "runpy.run_path('run.py', run_name='__main__')")
    r = run_cli("-c", code, timeout=240)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr and lines[-1].startswith("error: "), r.stderr
    assert sum(ln.startswith("error:") for ln in lines) == 1, r.stderr
    assert "first bad episode: 1" in lines[-1] and str(bad) in lines[-1]

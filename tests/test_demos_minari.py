"""tools/export_demos.py --format minari: the optional Minari export round-trips the demo episodes."""

import numpy as np
import pytest

from learning.demos import demo_path, load_demos

from conftest import run_cli

pytestmark = pytest.mark.optional    # CI runs these after installing requirements-optional.txt

DATASET_ID = "il-mujoco/hopper/expert-v0"


def test_minari_round_trip_keeps_every_episode(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari", reason="minari is an optional dependency (requirements-optional.txt)")
    pytest.importorskip("h5py", reason="minari's hdf5 storage needs h5py: pip install 'minari[hdf5]'")
    args = ("tools/export_demos.py", "--format", "minari", "--env", "hopper", "--root", str(tmp_path))
    r = run_cli(*args, timeout=240)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / DATASET_ID / "data" / "metadata.json").is_file()

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ds = minari.load_dataset(DATASET_ID)
    demos = load_demos(demo_path("hopper"), "Hopper-v5", 11, 3)
    assert ds.total_episodes == demos.num_episodes == 25
    assert ds.total_steps == len(demos.data["obs"])
    assert ds.spec.env_spec.id == "Hopper-v5"
    for e, ep in enumerate(ds.iterate_episodes()):
        want = demos.episode(e)
        sl = demos.episode_slice(e)
        assert ep.id == e
        assert ep.observations.shape == (len(ep.actions) + 1, 11)
        np.testing.assert_array_equal(ep.observations[:-1], demos.data["obs"][sl])
        np.testing.assert_array_equal(ep.observations[-1], demos.data["final_obs"][e])   # the final observation
        for key in ("observations", "actions", "rewards", "terminations", "truncations"):
            got = np.asarray(getattr(ep, key))
            assert got.shape == want[key].shape, key
            np.testing.assert_array_equal(got, want[key], err_msg=f"episode {e}: {key}")
        assert ep.truncations[-1] or ep.terminations[-1]

    # an existing dataset is never replaced silently ...
    r = run_cli(*args, timeout=240)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "--overwrite" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    # ... only with --overwrite
    r = run_cli(*args, "--overwrite", timeout=240)
    assert r.returncode == 0, r.stderr
    assert minari.load_dataset(DATASET_ID).total_episodes == 25


def test_overwrite_never_deletes_a_folder_that_is_not_a_minari_dataset(tmp_path):
    pytest.importorskip("minari", reason="minari is an optional dependency (requirements-optional.txt)")
    pytest.importorskip("h5py", reason="minari's hdf5 storage needs h5py: pip install 'minari[hdf5]'")
    mine = tmp_path / DATASET_ID
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    r = run_cli("tools/export_demos.py", "--format", "minari", "--env", "hopper", "--root", str(tmp_path),
                "--overwrite", timeout=240)
    assert r.returncode == 2 and "not a Minari dataset" in r.stderr, r.stderr
    assert (mine / "notes.txt").read_text() == "keep me"


def test_bad_dataset_id_is_one_error_line(tmp_path):
    pytest.importorskip("minari", reason="minari is an optional dependency (requirements-optional.txt)")
    pytest.importorskip("h5py", reason="minari's hdf5 storage needs h5py: pip install 'minari[hdf5]'")
    r = run_cli("tools/export_demos.py", "--format", "minari", "--env", "hopper", "--root", str(tmp_path),
                "--dataset_id", "no version here", timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: bad --dataset_id"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

"""Videos, TensorBoard (optional), the compounding-error tool, multi-run plots."""
import sys

import numpy as np
import pytest

from envs.builder import resolve_env_config
from learning.agents import agent_class
from util.config import load_config
from envs.video import record_video

from conftest import ROOT, run_cli

TINY_BC = {"demo_episodes": 1, "epochs": 2, "eval_every": 1, "eval_episodes": 1, "final_eval_episodes": 1}


def test_video_decodes_to_frames_of_the_expected_size(tmp_path):
    import imageio.v2 as imageio

    path, _ = record_video(resolve_env_config("hopper"), lambda o: np.zeros(3), tmp_path / "v.mp4", seed=0,
                           max_steps=20)
    assert path.suffix == ".mp4" and path.stat().st_size > 0
    reader = imageio.get_reader(path)
    frames = [f for f in reader]
    assert len(frames) == 21 and frames[0].shape == (360, 480, 3)
    assert frames[0].std() > 0  # not a blank image


def test_gif_fallback_when_mp4_cannot_be_written(tmp_path, monkeypatch):
    import imageio.v2 as imageio

    real = imageio.get_writer

    def no_ffmpeg(path, *a, **k):
        if str(path).endswith(".mp4"):
            raise RuntimeError("no ffmpeg here")
        return real(path, *a, **k)

    monkeypatch.setattr(imageio, "get_writer", no_ffmpeg)
    path, _ = record_video(resolve_env_config("hopper"), lambda o: np.zeros(3), tmp_path / "v.mp4", seed=0,
                           max_steps=10)
    assert path.suffix == ".gif" and not (tmp_path / "v.mp4").exists()
    frames = imageio.mimread(path)
    assert len(frames) == 11 and frames[0].shape[:2] == (180, 240)


def _tiny_bc(out):
    cls = agent_class("bc")
    cfg = load_config(cls.config_class, ROOT / "a1" / "bc_hopper.yaml", TINY_BC)
    return cls(resolve_env_config("hopper"), cfg, out, progress=False)


def test_training_works_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    _tiny_bc(tmp_path).run()
    assert (tmp_path / "log.txt").is_file() and (tmp_path / "model.pt").is_file()
    assert not list(tmp_path.glob("events.out.tfevents.*"))


@pytest.mark.optional
def test_tensorboard_events_beside_the_log(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard is optional (requirements-optional.txt)")
    _tiny_bc(tmp_path).run()
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_video_every_during_training(tmp_path):
    a = _tiny_bc(tmp_path)
    a.video_every = 2
    a.run()
    vids = sorted((tmp_path / "videos").iterdir())
    assert [v.stem for v in vids] == ["iter_0002"]


def test_run_py_video_and_visualize_flags(tmp_path):
    """The README's setup (requirements.txt only) writes an MP4."""
    env_cfg = tmp_path / "hopper.yaml"  # a short episode keeps the test quick
    env_cfg.write_text("name: hopper\nenv_id: Hopper-v5\nmax_episode_steps: 60\nkwargs: {}\n")
    p = run_cli("run.py", "--agent", "expert", "--env_config", str(env_cfg), "--mode", "test", "--test_episodes", "1",
                "--video", str(tmp_path / "e.mp4"), "--no_progress")
    assert p.returncode == 0, p.stderr
    assert "Video:" in p.stdout and (tmp_path / "e.mp4").stat().st_size > 0
    assert "render:" not in p.stderr  # no progress frames when stderr is not a terminal
    p = run_cli("run.py", "--agent", "expert", "--env", "hopper", "--mode", "test", "--visualize")
    assert p.returncode != 0 and "needs a display" in p.stderr and "--video" in p.stderr


def test_compounding_error_tool_on_a_short_horizon(tmp_path):
    """With the reference (an instructor's copy) the tool measures; with the untouched stubs (a student release) it
    stops at DAgger's first round with one error line saying a round method is still the stub."""
    out = tmp_path / "ce.png"
    args = ["tools/compounding_error.py", "--env", "hopper", "--horizon", "40", "--episodes", "2", "--quick",
            "--out", str(out)]
    if not (ROOT / "grader" / "solution").is_dir():
        p = run_cli(*args, timeout=600)
        assert p.returncode == 2 and "still the untouched stub" in p.stderr, p.stderr
        return
    p = run_cli(*args, "--solution", timeout=600)
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size > 5000
    import json

    summary = json.loads(out.with_suffix(".json").read_text())
    assert set(summary) == {"expert", "BC", "DAgger"}
    assert summary["expert"]["mistakes_at_T"] <= summary["BC"]["mistakes_at_T"]


def test_plot_several_runs_with_reference_lines(tmp_path):
    logs = []
    for agent in ("bc", "dagger", "dart"):
        d = tmp_path / f"{agent}_hopper"
        d.mkdir()
        (d / "log.txt").write_text("Iteration\tSamples\tTest_Return\n1\t1000\t10\n2\t2000\t30\n")
        logs.append(str(d / "log.txt"))
    p = run_cli("tools/plot_log.py", *logs, "--expert", "3000", "--reference", "BC=2000", "--out",
                str(tmp_path / "all.png"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "all.png").stat().st_size > 5000
    p = run_cli("tools/plot_log.py", *logs, "--reference", "oops", "--out", str(tmp_path / "x.png"))
    assert p.returncode != 0 and "NAME=VALUE" in p.stderr


def test_no_progress_frames_when_output_is_not_a_terminal(tmp_path):
    """Into a pipe (a log file, CI) a training run prints its log rows, never carriage-return bar frames."""
    cfg = tmp_path / "bc.yaml"
    cfg.write_text("agent: bc\nenv: hopper\ndemo_episodes: 1\nepochs: 2\neval_every: 1\neval_episodes: 1\n"
                   "final_eval_episodes: 1\n")
    p = run_cli("run.py", "--agent", "bc", "--env", "hopper", "--agent_config", str(cfg), "--out_dir",
                str(tmp_path / "o"), "--no_tensorboard")
    assert p.returncode == 0, p.stderr
    assert "\r" not in p.stdout + p.stderr
    assert p.stdout.count("Iteration ") == 2  # one echoed row per iteration instead of a bar

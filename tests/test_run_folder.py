"""A run's folder is never lost: refuse to clobber, --overwrite, one run per folder, checked --resume, atomic files."""
import json
import os
import signal
import subprocess
import sys

import pytest

from learning.lifecycle import Run, RunExistsError, settings_differences
from learning.logger import TextLogger, read_log
from util.fsio import FolderBusyError, FolderLock, atomic_write, temp_path

from conftest import run_cli

TINY_BC = ("agent: bc\nenv: hopper\ndemo_episodes: 1\nepochs: 2\neval_every: 1\neval_episodes: 1\n"
           "final_eval_episodes: 1\n")


def _bc(tmp_path, *extra):
    cfg = tmp_path / "bc.yaml"
    if not cfg.exists():
        cfg.write_text(TINY_BC)
    return run_cli("run.py", "--agent", "bc", "--env", "hopper", "--agent_config", str(cfg),
                   "--out_dir", str(tmp_path / "out"), "--no_progress", *extra)


def _error_line(p):
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


def test_rerun_without_resume_is_refused_and_keeps_the_run(tmp_path):
    assert _bc(tmp_path).returncode == 0
    out = tmp_path / "out"
    before = {f: (out / f).read_bytes() for f in ("log.txt", "model.pt", "checkpoint.pt", "config.json")}
    line = _error_line(_bc(tmp_path))
    assert str(out) in line and "--resume" in line and "--overwrite" in line
    assert {f: (out / f).read_bytes() for f in before} == before  # nothing touched
    p = _bc(tmp_path, "--overwrite")
    assert p.returncode == 0, p.stderr
    assert len(read_log(out / "log.txt")) == 2  # started again: the old rows are gone, not appended to


def test_resume_with_other_settings_lists_the_differences(tmp_path):
    assert _bc(tmp_path, "--seed", "1").returncode == 0
    saved = (tmp_path / "out" / "config.json").read_text()
    line = _error_line(_bc(tmp_path, "--resume", "--seed", "2", "--test_episodes", "3"))
    assert "seed: 1 → 2" in line and "final_eval_episodes: 1 → 3" in line
    assert (tmp_path / "out" / "config.json").read_text() == saved
    p = _bc(tmp_path, "--resume", "--seed", "1")  # same settings: continues (nothing left to train)
    assert p.returncode == 0, p.stderr


def test_config_whose_env_disagrees_with_env_flag_is_an_error(tmp_path):
    cfg = tmp_path / "bc.yaml"
    cfg.write_text(TINY_BC.replace("env: hopper", "env: walker"))
    line = _error_line(_bc(tmp_path))
    assert "env: walker" in line and "hopper" in line


def test_second_run_into_a_locked_folder_stops_at_once(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out):
        line = _error_line(_bc(tmp_path))
    assert "another run" in line and str(out) in line
    assert not (out / "log.txt").exists()


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    code = ("import time; from util.fsio import FolderLock; "
            "FolderLock(%r).acquire(); print('locked', flush=True); time.sleep(60)") % str(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    with pytest.raises(FolderBusyError, match=str(child.pid)):
        FolderLock(tmp_path).acquire()
    child.send_signal(signal.SIGKILL)
    child.wait()
    lock = FolderLock(tmp_path).acquire()  # the kernel dropped the dead process's lock
    lock.release()


def test_run_object_rules(tmp_path):
    settings = {"agent": "bc", "env": "hopper", "config": {"seed": 0}}
    with pytest.raises(Exception, match="checkpoint not found"):
        Run(tmp_path / "a", settings, resume=True).open()
    with Run(tmp_path / "a", settings) as run:
        with pytest.raises(FolderBusyError):
            Run(tmp_path / "a", settings, overwrite=True).open()
        run.start(["Iteration", "Samples"], None, total=1, initial=0, desc="t", unit="it")
        run.log({"Iteration": 1, "Samples": 5})
    assert json.loads((tmp_path / "a" / "config.json").read_text()) == settings
    with pytest.raises(RunExistsError):
        Run(tmp_path / "a", settings).open()
    # resumed before any checkpoint: starts from the beginning instead of failing
    with Run(tmp_path / "a", settings, resume=True) as run:
        assert not run.resuming
    assert settings_differences(settings, {**settings, "config": {"seed": 4}}) == ["seed: 0 → 4"]


def test_log_rows_survive_resume_and_files_are_replaced_atomically(tmp_path):
    log = tmp_path / "log.txt"
    lg = TextLogger(log, ["Iteration", "Samples"], echo=False, tensorboard=False)
    for i in range(1, 4):
        lg.log({"Iteration": i, "Samples": 10 * i})
    TextLogger(log, ["Iteration", "Samples"], resume_iteration=2, echo=False, tensorboard=False)
    assert [r["Iteration"] for r in read_log(log)] == [1, 2]
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    a, b = temp_path(log), temp_path(log)
    assert a != b and str(os.getpid()) in a.name and a.parent == log.parent
    atomic_write(tmp_path / "x.json", "{}")
    assert (tmp_path / "x.json").read_text() == "{}"


def test_expert_trainer_refuses_to_clobber_too(tmp_path):
    from envs.builder import resolve_env_config
    from learning.expert import TD3Config, TD3Trainer

    tiny = dict(total_steps=60, start_steps=50, learning_starts=50, batch_size=8, hidden_sizes=[8],
                eval_interval=30, eval_episodes=1, checkpoint_interval=40)
    env = resolve_env_config("hopper")
    TD3Trainer(env, TD3Config(**tiny), tmp_path, quiet=True).run()
    with pytest.raises(RunExistsError, match="--overwrite"):
        TD3Trainer(env, TD3Config(**tiny), tmp_path, quiet=True).run()
    with pytest.raises(Exception, match="seed: 0 → 1"):
        TD3Trainer(env, TD3Config(**tiny, seed=1), tmp_path, quiet=True).run(resume=True)
    TD3Trainer(env, TD3Config(**tiny), tmp_path, quiet=True).run(overwrite=True)
    p = run_cli("tools/train_expert.py", "--env", "hopper", "--run_dir", str(tmp_path), "--no_progress")
    line = _error_line(p)
    assert "--resume" in line and "--overwrite" in line


def test_no_evaluation_when_its_episodes_are_zero(tmp_path):
    """eval_episodes 0 and final_eval_episodes 0 (the grader's training children): no evaluation, no curve; the log
    still has its rows, and run.py says how to evaluate the model."""
    (tmp_path / "bc.yaml").write_text(TINY_BC.replace("eval_episodes: 1\nfinal_eval_episodes: 1\n",
                                                      "eval_episodes: 0\nfinal_eval_episodes: 0\n"))
    p = _bc(tmp_path)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "out"
    rows = read_log(out / "log.txt")
    assert len(rows) == 2 and all(r["Test_Return"] != r["Test_Return"] for r in rows)     # NaN: not evaluated
    assert (out / "model.pt").is_file() and not (out / "curve.png").exists()
    assert "no final evaluation (final_eval_episodes: 0)" in p.stdout and "--mode test --model_file" in p.stdout
    (tmp_path / "bc.yaml").write_text(TINY_BC.replace("eval_episodes: 1\n", "eval_episodes: -1\n"))
    assert "eval_episodes must be >= 0" in _error_line(_bc(tmp_path, "--overwrite"))

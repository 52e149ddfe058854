"""run.py and the tools, driven as a user would, in child processes."""
import json

import pytest

from conftest import ROOT, run_cli

FAST = ["--no_progress", "--test_episodes", "1"]
needs_solution = pytest.mark.skipif(not (ROOT / "grader" / "solution").is_dir(),
                                    reason="reference solutions are not part of the student release")


def _one_error(proc):
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    return err[-1] if err else ""


def test_help_explains_every_flag():
    out = run_cli("run.py", "--help").stdout
    for flag in ("--agent", "--env", "--mode", "--model_file", "--env_config", "--agent_config", "--max_samples",
                 "--test_episodes", "--seed", "--out_dir", "--device", "--resume", "--solution"):
        assert flag in out, flag


@needs_solution
def test_train_then_test_with_flags(tmp_path):
    out = tmp_path / "run"
    p = run_cli("run.py", "--agent", "dagger", "--env", "hopper", "--solution", "--max_samples", "1500",
                "--seed", "3", "--out_dir", str(out), "--device", "cpu", *FAST)
    assert p.returncode == 0, p.stderr
    assert "Mean Return:" in p.stdout
    for f in ("log.txt", "model.pt", "curve.png", "config.json"):
        assert (out / f).is_file(), f
    assert json.loads((out / "config.json").read_text())["config"]["seed"] == 3
    rows = (out / "log.txt").read_text().splitlines()
    assert rows[-1].split("\t")[1] == "1500"  # Samples column honours --max_samples
    p = run_cli("run.py", "--agent", "dagger", "--env", "hopper", "--mode", "test", "--model_file",
                str(out / "model.pt"), "--test_episodes", "2", "--no_progress")
    assert p.returncode == 0 and "Mean Return:" in p.stdout, p.stderr


def test_explicit_config_files(tmp_path):
    env_cfg = tmp_path / "env.yaml"
    env_cfg.write_text("name: hopper\nenv_id: Hopper-v5\nmax_episode_steps: 200\nkwargs: {}\n")
    agent_cfg = tmp_path / "bc.yaml"
    agent_cfg.write_text((ROOT / "a1" / "bc_hopper.yaml").read_text().replace("epochs: 50", "epochs: 2")
                         .replace("demo_episodes: 25", "demo_episodes: 1").replace("eval_every: 10", "eval_every: 1"))
    p = run_cli("run.py", "--agent", "bc", "--env_config", str(env_cfg), "--agent_config", str(agent_cfg),
                "--out_dir", str(tmp_path / "o"), *FAST)
    assert p.returncode == 0, p.stderr
    assert len((tmp_path / "o" / "log.txt").read_text().splitlines()) == 3


def test_expert_test_mode_prints_mean_return():
    p = run_cli("run.py", "--agent", "expert", "--env", "hopper", "--mode", "test", "--test_episodes", "1",
                "--no_progress")
    assert p.returncode == 0, p.stderr
    assert "Mean Return:" in p.stdout


@needs_solution
def test_resume_flag(tmp_path):
    args = ["run.py", "--agent", "bc", "--env", "hopper", "--solution", "--out_dir", str(tmp_path), *FAST]
    p = run_cli(*args, "--resume")
    assert "checkpoint not found" in _one_error(p)


@pytest.mark.parametrize("args,needle", [
    (["--agent", "bc", "--env", "cheeta"], "Unknown env 'cheeta'"),
    (["--agent", "bcc", "--env", "cheetah"], "invalid choice"),
    (["--agent", "bc", "--env", "hopper", "--mode", "test", "--model_file", "/nonexistent/model.pt"], "not found"),
    (["--agent", "bc", "--env", "hopper", "--agent_config", "/nonexistent.yaml"], "not found"),
    (["--agent", "bc", "--env", "hopper", "--device", "tpu"], "--device"),
    (["--agent", "bc", "--env", "hopper", "--device", "cuda"], "CUDA"),
    (["--agent", "bc", "--env", "hopper", "--test_episodes", "0"], "test_episodes"),
    (["--agent", "bc"], "--env"),
])
def test_bad_inputs_give_one_clear_error(args, needle):
    p = run_cli("run.py", *args)
    line = _one_error(p)
    assert needle in line or needle in p.stderr, p.stderr


def test_model_for_another_task_is_refused(tmp_path):
    model = ROOT / "data" / "models" / "expert_cheetah.pt"
    p = run_cli("run.py", "--agent", "bc", "--env", "hopper", "--mode", "test", "--model_file", str(model))
    assert "HalfCheetah-v5" in _one_error(p)


def test_malformed_agent_config(tmp_path):
    bad = tmp_path / "bc.yaml"
    bad.write_text("agent: bc\nenv: hopper\nepochs: [1, 2\n")
    p = run_cli("run.py", "--agent", "bc", "--env", "hopper", "--agent_config", str(bad))
    assert "Malformed YAML" in _one_error(p)
    bad.write_text("agent: bc\nenv: hopper\nepoch: 3\n")
    p = run_cli("run.py", "--agent", "bc", "--env", "hopper", "--agent_config", str(bad))
    line = _one_error(p)
    assert "'epoch'" in line and str(bad) in line


def test_plot_tool_groups_runs(tmp_path):
    logs = []
    for s in (0, 1):
        d = tmp_path / f"bc_seed{s}"
        d.mkdir()
        (d / "log.txt").write_text("Iteration\tSamples\tTest_Return\n1\t1000\t10\n2\t2000\t20\n")
        logs.append(str(d / "log.txt"))
    p = run_cli("tools/plot_log.py", *logs, "--x", "Samples", "--y", "Test_Return", "--title", "T",
                "--expert", "100", "--out", str(tmp_path / "c.png"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "c.png").stat().st_size > 1000
    p = run_cli("tools/plot_log.py", logs[0], "--y", "Nope", "--out", str(tmp_path / "d.png"))
    assert "Nope" in _one_error(p)


def test_a_signal_while_a_finished_run_exits_changes_nothing():
    """SIGTERM or SIGINT arriving after main has returned (here: from an atexit callback, where torch's finalizers
    run) neither prints a traceback nor changes the exit status: the run has ended and saved."""
    code = ("import atexit, os, signal, sys, time\n"
            "from util.cli import run_main\n"
            "def late_signals():\n"
            "    for sig in (signal.SIGTERM, signal.SIGINT):\n"
            "        os.kill(os.getpid(), sig)\n"
            "        time.sleep(0.2)\n"
            "    print('exiting', flush=True)\n"
            "atexit.register(late_signals)\n"
            "sys.exit(run_main(lambda: 0))\n")
    p = run_cli("-c", code, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "exiting" and p.stderr == "", p.stderr


def test_sigterm_saves_and_resumes(tmp_path):
    """A background run killed with SIGTERM keeps a checkpoint and continues with --resume."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "td3"
    cfg = tmp_path / "expert_hopper_td3.yaml"     # hopper's TD3 settings (its shipped expert is now an ARS polish)
    cfg.write_text("agent: expert\nenv: hopper\nmodel_file: data/models/expert_hopper.pt\ntrainer:\n  algo: td3\n"
                   "  batch_size: 100\n  actor_lr: 0.001\n  critic_lr: 0.001\n  eval_interval: 10000\n")
    cmd = [sys.executable, "tools/train_expert.py", "--env", "hopper", "--agent_config", str(cfg),
           "--run_dir", str(out), "--total_steps", "100000", "--no_progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "log.txt").is_file() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert (out / "checkpoint.pt").is_file() and (out / "replay.npz").is_file()
    p = run_cli("tools/train_expert.py", "--env", "hopper", "--agent_config", str(cfg), "--run_dir", str(out),
                "--total_steps", "100000", "--max_steps", "50", "--resume", "--no_progress")
    assert p.returncode == 0, p.stderr

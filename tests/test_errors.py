"""Every user mistake is one line `error: ...` naming the flag, file or key; exit status 2; no traceback."""
import os

import pytest

from util.config import ConfigError, load_yaml_file, load_yaml_text

from conftest import ROOT, run_cli

as_root = hasattr(os, "geteuid") and os.geteuid() == 0
needs_permissions = pytest.mark.skipif(as_root, reason="root ignores file permissions")


def _error_line(p):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


def _bc(*args):
    return run_cli("run.py", "--agent", "bc", "--env", "hopper", "--no_progress", *args)


@pytest.mark.parametrize("args,needles", [
    (["--threads", "0"], ["--threads"]),
    (["--seed", "-1"], ["--seed"]),
    (["--seed", str(10**100)], ["--seed", "…"]),
    (["--resume", "--overwrite"], ["--resume", "--overwrite"]),
    (["--total_steps", "5"], ["--total_steps", "--max_samples"]),
])
def test_bad_flags(args, needles):
    line = _error_line(_bc(*args))
    for n in needles:
        assert n in line, line


def test_expert_budget_has_its_own_flag():
    line = _error_line(run_cli("run.py", "--agent", "expert", "--env", "hopper", "--max_samples", "10"))
    assert "--total_steps" in line


def test_out_dir_that_is_a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    line = _error_line(_bc("--out_dir", str(f)))
    assert str(f) in line and "file" in line
    line = _error_line(_bc("--out_dir", str(f / "sub")))  # a folder under a file
    assert str(f) in line


@needs_permissions
def test_read_only_out_dir_video_and_plot(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert str(ro) in _error_line(_bc("--out_dir", str(ro / "run")))
        line = _error_line(run_cli("run.py", "--agent", "expert", "--env", "hopper", "--mode", "test",
                                   "--test_episodes", "1", "--video", str(ro / "v.mp4")))
        assert "--video" in line
        log = tmp_path / "log.txt"
        log.write_text("Iteration\tSamples\tTest_Return\n1\t10\t1\n")
        assert str(ro) in _error_line(run_cli("tools/plot_log.py", str(log), "--out", str(ro / "c.png")))
    finally:
        ro.chmod(0o755)


def test_video_onto_a_folder(tmp_path):
    line = _error_line(run_cli("run.py", "--agent", "expert", "--env", "hopper", "--mode", "test",
                               "--test_episodes", "1", "--video", str(tmp_path)))
    assert "--video" in line and "folder" in line


def test_plot_of_a_binary_file(tmp_path):
    b = tmp_path / "log.txt"
    b.write_bytes(bytes(range(256)) * 4)
    line = _error_line(run_cli("tools/plot_log.py", str(b), "--out", str(tmp_path / "c.png")))
    assert str(b) in line and "log.txt" in line


def test_unknown_env_kwargs(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("name: hopper\nenv_id: Hopper-v5\nkwargs: {no_such_kwarg: 1}\n")
    line = _error_line(run_cli("run.py", "--agent", "expert", "--env_config", str(env), "--mode", "test"))
    assert "no_such_kwarg" in line and "kwargs" in line


def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        bomb.append(f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]")
    text = "agent: bc\nenv: hopper\nepochs: *i\n" + "\n".join(bomb) + "\n"
    with pytest.raises(ConfigError, match="aliases") as e:
        load_yaml_text(text, "bomb.yaml")
    assert len(str(e.value)) < 300 and "\n" not in str(e.value)
    cfg = tmp_path / "bc.yaml"
    cfg.write_text(text)
    line = _error_line(_bc("--agent_config", str(cfg)))
    assert "aliases" in line and str(cfg) in line
    with pytest.raises(ConfigError, match="at most"):
        load_yaml_text("a: " + "x" * 10**6, "big.yaml")


def test_values_in_messages_are_shortened(tmp_path):
    cfg = tmp_path / "bc.yaml"
    cfg.write_text("agent: bc\nenv: hopper\nepochs: '" + "9" * 5000 + "'\n")
    line = _error_line(_bc("--agent_config", str(cfg)))
    assert "epochs" in line and len(line) < 400


def test_shipped_configs_load_with_the_strict_loader():
    for p in sorted((ROOT / "a1").glob("*.yaml")) + sorted((ROOT / "data").glob("*/*.yaml")):
        assert isinstance(load_yaml_file(p), dict), p


def test_user_errors_share_one_base():
    from learning.checkpoint import CheckpointError
    from learning.demos import DemoError
    from learning.lifecycle import RunExistsError
    from util.cli import user_error_types
    from util.errors import UserError
    from util.fsio import FolderBusyError, OutputPathError

    for cls in (ConfigError, CheckpointError, DemoError, RunExistsError, FolderBusyError, OutputPathError):
        assert issubclass(cls, UserError) and issubclass(cls, ValueError), cls
    assert UserError in user_error_types()

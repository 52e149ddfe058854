"""The untouched student stubs: they run end to end (and do badly) before a line is written.

These tests ship with the student release of either scope (tools/make_release.py --scope): they follow this copy's
scope (learning.agents.DEFAULT_SCOPE); outside it the TODO methods hold the reference."""
import numpy as np
import pytest

from envs.builder import resolve_env_config
from learning.agents import agent_class, todo_manifest
from learning.logger import read_log
from util.config import load_config

from conftest import ROOT, SMALL

TODO_FILES = {spec.file_name: len(spec.methods) for spec in todo_manifest().values()}   # full: 2, 4, 3; core: 1, 2, 1


def make_agent(agent, env_name, out, **overrides):
    cls = agent_class(agent)
    cfg = load_config(cls.config_class, ROOT / "a1" / f"{agent}_{env_name}.yaml", overrides)
    return cls(resolve_env_config(env_name), cfg, out, progress=False)


def test_untouched_bc_stub_runs_end_to_end(tmp_path):
    a = make_agent("bc", "hopper", tmp_path, **SMALL["bc"])
    res = a.run()
    for f in ("log.txt", "model.pt", "curve.png", "checkpoint.pt"):
        assert (tmp_path / f).is_file(), f
    assert len(read_log(tmp_path / "log.txt")) == a.num_iterations()
    assert np.isfinite(res.mean)


@pytest.mark.parametrize("agent", ["dagger", "dart"])
def test_untouched_round_stubs_stop_at_the_first_round_saying_why(agent, tmp_path):
    """Round 0 (BC on the demos) runs and is logged; round 1 adds nothing, so the framework's budget check stops the
    run with a message that says a round method is still the stub (run.py prints it as one error line). In the core
    scope the round is the reference's: DAgger's stub aggregation adds nothing and stops it the same way, noise
    injection runs."""
    a = make_agent(agent, "hopper", tmp_path, **SMALL[agent])
    methods = todo_manifest()[agent].methods
    if "train_round" not in methods and "aggregate" not in methods:
        a.run()
        assert len(read_log(tmp_path / "log.txt")) == a.num_iterations()
        return
    with pytest.raises(ValueError, match="grew by 0 pairs.*still the untouched stub"):
        a.run()
    assert len(read_log(tmp_path / "log.txt")) == 1


def test_todo_blocks_are_marked_in_student_files():
    for fname, n in TODO_FILES.items():
        text = (ROOT / "learning" / fname).read_text()
        assert text.count("END TODO") == n and text.count("# =") >= 2 * n


def test_every_shipped_a1_config_is_valid():
    for path in sorted((ROOT / "a1").glob("*.yaml")):
        agent = path.stem.split("_")[0]
        cfg = load_config(agent_class(agent).config_class, path)
        assert cfg.agent == agent and path.stem.endswith(cfg.env)

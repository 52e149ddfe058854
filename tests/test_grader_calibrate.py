"""`python -m grader calibrate`: the thresholds' bookkeeping, and that they match the shipped experts."""
import shutil

import pytest
import yaml

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

import grader.calibrate as calibrate  # noqa: E402
from grader.grade import THRESHOLDS, load_thresholds  # noqa: E402
from learning.expert import expert_model_path, load_expert_config  # noqa: E402
from util.fsio import file_sha256  # noqa: E402

from conftest import run_cli  # noqa: E402


def expert_sha(env: str) -> str:
    return file_sha256(expert_model_path(load_expert_config(env)[0]))[:16]


def test_every_performance_check_was_calibrated_with_the_shipped_expert():
    for spec in load_thresholds()["performance"]:
        assert spec["calibration"]["expert_sha256"] == expert_sha(spec["env"]), (
            f"{spec['name']}: the {spec['env']} expert changed since its thresholds were calibrated; "
            f"run: python -m grader calibrate --envs {spec['env']}")
        assert spec["low"] < spec["full"]


def test_envs_recalibrates_only_the_checks_on_those_tasks(tmp_path, monkeypatch):
    path = tmp_path / "thresholds.yaml"
    shutil.copy(THRESHOLDS, path)
    before = yaml.safe_load(path.read_text())
    calls = []

    def fake_run(job):  # calibration seed s: reference 1000 + s, stubs 100 + s; grading seeds: 990 and 110
        spec, seed, eval_seed, reference, _, _ = job
        calls.append((spec["env"], seed, reference))
        if seed == spec["train_seed"]:
            assert eval_seed == spec["eval_seed"]
            return 990.0 if reference else 110.0
        return 1000.0 + seed % 10 if reference else 100.0 + seed % 10

    monkeypatch.setattr(calibrate, "_one", fake_run)
    assert calibrate.main(["--envs", "hopper", "--thresholds", str(path)]) == 0
    after = yaml.safe_load(path.read_text())
    assert {env for env, _, _ in calls} == {"hopper"}
    n_hopper = sum(spec["env"] == "hopper" for spec in before["performance"])
    assert len(calls) == n_hopper * (1 + 5 + 1 + 3)
    assert [s["name"] for s in after["performance"]] == [s["name"] for s in before["performance"]]
    for old, new in zip(before["performance"], after["performance"], strict=True):
        if old["env"] != "hopper":
            assert new == old
            continue
        assert new["full"] == pytest.approx(0.95 * 990.0)          # 0.95 × the worst reference return
        assert new["low"] == pytest.approx(round(110.0 + 0.15 * (940.5 - 110.0), 1))  # best stub + 15% of the gap
        cal = new["calibration"]
        assert cal["reference_at_grading_seeds"] == 990.0 and cal["stub_at_grading_seeds"] == 110.0
        assert cal["reference_returns"] == [1000.0, 1001.0, 1002.0, 1003.0, 1004.0]
        assert cal["stub_returns"] == [100.0, 101.0, 102.0]
        assert cal["expert_sha256"] == expert_sha("hopper")
        assert cal["command"] == "python -m grader calibrate --seeds 5 --stub_seeds 3"
        assert {k: v for k, v in new.items() if k not in ("low", "full", "calibration")} == \
               {k: v for k, v in old.items() if k not in ("low", "full", "calibration")}
    assert path.read_text().startswith("# Performance checks")   # the header comment is kept


def test_unknown_task_is_one_error_line_and_the_file_is_untouched(tmp_path):
    path = tmp_path / "thresholds.yaml"
    shutil.copy(THRESHOLDS, path)
    text = path.read_text()
    r = run_cli("-m", "grader", "calibrate", "--envs", "walkr", "--thresholds", str(path), timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("error: --envs walkr:") and "cheetah, hopper" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert path.read_text() == text

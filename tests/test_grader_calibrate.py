"""`python -m grader calibrate`: the thresholds' bookkeeping, and that they match the shipped experts."""
import shutil

import pytest
import yaml

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

import grader.calibrate as calibrate  # noqa: E402
from grader.grade import THRESHOLDS, load_thresholds  # noqa: E402
from learning.expert import expert_model_path, load_expert_config  # noqa: E402
from util.fsio import file_sha256  # noqa: E402

from conftest import ROOT, run_cli  # noqa: E402


def expert_sha(env: str) -> str:
    return file_sha256(expert_model_path(load_expert_config(env)[0]))[:16]


def test_every_performance_check_was_calibrated_with_the_shipped_expert():
    for spec in load_thresholds()["performance"]:
        assert spec["calibration"]["expert_sha256"] == expert_sha(spec["env"]), (
            f"{spec['name']}: the {spec['env']} expert changed since its thresholds were calibrated; "
            f"run: python -m grader calibrate --envs {spec['env']}")
        assert spec["low"] < spec["full"]


def _fake_runs(calls: list, stub_best: float = 110.0):
    """Calibration seed s: reference 1000 + s % 10, stubs 100 + s % 10; grading seeds: 990 and ``stub_best``. The
    gradescope path (a process of its own) also measures the training's CPU seconds: 12 (reference), 9 (stubs)."""
    def fake_run(job):
        spec, seed, eval_seed, reference, _, _, path, _ = job
        calls.append((spec["env"], seed, reference, path))
        cpu = (12.0 if reference else 9.0) if path == "gradescope" else None
        if seed == spec["train_seed"]:
            assert eval_seed == spec["eval_seed"]
            return (990.0 if reference else stub_best), cpu
        assert path == "local"
        return (1000.0 + seed % 10 if reference else 100.0 + seed % 10), cpu
    return fake_run


def test_envs_recalibrates_only_the_checks_on_those_tasks(tmp_path, monkeypatch):
    path, readme = tmp_path / "thresholds.yaml", tmp_path / "README.md"
    shutil.copy(THRESHOLDS, path)
    readme.write_text(f"intro\n{calibrate.MARGINS_START}\nold\n{calibrate.MARGINS_END}\nrest\n")
    before = yaml.safe_load(path.read_text())
    env = before["performance"][0]["env"]
    calls = []
    monkeypatch.setattr(calibrate, "_one", _fake_runs(calls))
    monkeypatch.setattr(calibrate, "expert_reference", lambda env: 1000.0)
    assert calibrate.main(["--envs", env, "--thresholds", str(path), "--readme", str(readme)]) == 0
    after = yaml.safe_load(path.read_text())
    assert {e for e, *_ in calls} == {env}
    n = sum(spec["env"] == env for spec in before["performance"])
    assert len(calls) == n * (2 + 10 + 2 + 5)                   # both paths at the grading seeds, then the seeds
    assert sorted({p for *_, p in calls}) == ["gradescope", "local"]
    assert [s["name"] for s in after["performance"]] == [s["name"] for s in before["performance"]]
    for old, new in zip(before["performance"], after["performance"], strict=True):
        if old["env"] != env:
            assert new == old
            continue
        gap = 990.0 - 110.0                                      # worst reference − best stub
        assert new["full"] == pytest.approx(990.0 - 0.5 * gap)   # well below the worst reference
        assert new["low"] == pytest.approx(110.0 + 0.25 * gap)   # well above the best stub
        cal = new["calibration"]
        assert cal["reference_at_grading_seeds"] == [990.0, 990.0] and cal["stub_at_grading_seeds"] == [110.0, 110.0]
        assert cal["reference_returns"] == [1000.0 + s for s in range(10)]
        assert cal["stub_returns"] == [100.0 + s for s in range(5)]
        assert cal["margin"] == pytest.approx(gap / 1000.0) and cal["expert_return"] == 1000.0
        assert cal["expert_sha256"] == expert_sha(env)
        assert cal["command"] == "python -m grader calibrate --seeds 10 --stub_seeds 5"
        assert cal["train_cpu_s"] == 12.0                        # the slower of reference and stubs, one thread
        assert {k: v for k, v in new.items() if k not in ("low", "full", "calibration")} == \
               {k: v for k, v in old.items() if k not in ("low", "full", "calibration")}
    # the timeout make_gradescope writes: 6 × the slowest training's CPU seconds (half a CPU, 3× slower code), ≥ 60
    assert after["train_timeout"] == calibrate.train_timeout(after) >= 80
    assert path.read_text().startswith("# Performance checks")   # the header comment is kept
    assert calibrate.margins_table(after) in readme.read_text() and "old" not in readme.read_text()


def test_a_check_without_margin_is_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    path = tmp_path / "thresholds.yaml"
    shutil.copy(THRESHOLDS, path)
    text = path.read_text()
    env = yaml.safe_load(text)["performance"][0]["env"]
    monkeypatch.setattr(calibrate, "_one", _fake_runs([], stub_best=800.0))   # a stub 190 below the reference
    monkeypatch.setattr(calibrate, "expert_reference", lambda env: 1000.0)
    assert calibrate.main(["--envs", env, "--thresholds", str(path), "--readme", str(tmp_path / "none.md")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "19% of the expert's return apart, less than 25%" in err and "Nothing was written" in err
    assert path.read_text() == text


def test_too_few_seeds_is_one_error_line(tmp_path):
    r = run_cli("-m", "grader", "calibrate", "--seeds", "5", "--thresholds", str(tmp_path / "t.yaml"), timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == "error: calibrate needs --seeds >= 10 and --stub_seeds >= 5"


@pytest.mark.parametrize("assignment", ["a1", "a2"])
def test_the_readme_margins_table_is_the_thresholds_files(assignment):
    from grader.calibrate import README, margins_markers, margins_table
    from grader.grade import thresholds_of

    start, end = margins_markers(assignment)
    text = README.read_text(encoding="utf-8")
    table = text[text.index(start) + len(start):text.index(end)].strip()
    assert table == margins_table(thresholds_of(assignment), assignment), \
        f"run: python -m grader calibrate --assignment {assignment} (it rewrites the table)"
    for spec in thresholds_of(assignment)["performance"]:
        cal = spec["calibration"]
        assert len(cal["reference_returns"]) >= 10 and len(cal["stub_returns"]) >= 5
        assert cal["margin"] >= calibrate.MIN_MARGIN
        assert max(cal["stub_returns"] + cal["stub_at_grading_seeds"]) < spec["low"] < spec["full"] < \
            min(cal["reference_returns"] + cal["reference_at_grading_seeds"])


def test_assignment_2_is_calibrated_against_the_checks_return_scale(tmp_path, monkeypatch):
    """No expert in assignment 2: the margin is a share of the check's return_scale, the calibration records the scale
    (no expert hash), the stubs are the core scope's without exceptions, and a2's margins table is rewritten."""
    from grader.grade import THRESHOLD_FILES

    path, readme = tmp_path / "thresholds_a2.yaml", tmp_path / "README.md"
    shutil.copy(THRESHOLD_FILES["a2"], path)
    start, end = calibrate.margins_markers("a2")
    readme.write_text(f"x\n{calibrate.MARGINS_START}\na1 table\n{calibrate.MARGINS_END}\n{start}\nold\n{end}\n")
    calls = []
    monkeypatch.setattr(calibrate, "_one", _fake_runs(calls))
    assert calibrate.main(["--assignment", "a2", "--thresholds", str(path), "--readme", str(readme)]) == 0
    assert {job for *_, job in calls} <= {"local", "gradescope"}
    doc = yaml.safe_load(path.read_text())
    for spec in doc["performance"]:
        cal = spec["calibration"]
        assert cal["return_scale"] == spec["return_scale"] == 1000 and "expert_sha256" not in cal
        assert cal["margin"] == pytest.approx((990.0 - 110.0) / 1000)
        assert cal["command"] == "python -m grader calibrate --assignment a2 --seeds 10 --stub_seeds 5"
    text = readme.read_text()
    assert "a1 table" in text and "old" not in text and calibrate.margins_table(doc, "a2") in text
    assert "| check | scale |" in text
    assert path.read_text().startswith("# Performance checks of assignment 2")
    # a check without a scale: one error line, nothing written
    doc["performance"][0].pop("return_scale")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    before = path.read_text()
    r = run_cli("-m", "grader", "calibrate", "--assignment", "a2", "--thresholds", str(path), timeout=60)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("error: PG performance") and "return_scale" in r.stderr
    assert path.read_text() == before


def test_unknown_task_is_one_error_line_and_the_file_is_untouched(tmp_path):
    path = tmp_path / "thresholds.yaml"
    shutil.copy(THRESHOLDS, path)
    text = path.read_text()
    r = run_cli("-m", "grader", "calibrate", "--envs", "walkr", "--thresholds", str(path), timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("error: --envs walkr:") and "cheetah" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert path.read_text() == text


def test_rethreshold_recomputes_low_and_full_from_the_stored_returns_without_training(tmp_path):
    import shutil

    import yaml

    from grader.calibrate import FULL_ROOM, LOW_ROOM, main

    path, readme = tmp_path / "thresholds.yaml", tmp_path / "README.md"
    shutil.copyfile(ROOT / "grader" / "thresholds.yaml", path)
    doc = yaml.safe_load(path.read_text())
    doc["performance"][0]["low"] = doc["performance"][0]["full"] = 0.0          # stale values
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    readme.write_text("x\n<!-- margins:start -->\n<!-- margins:end -->\n")
    assert main(["--rethreshold", "--thresholds", str(path), "--readme", str(readme)]) == 0
    for spec in yaml.safe_load(path.read_text())["performance"]:
        cal = spec["calibration"]
        worst = min(cal["reference_returns"] + cal["reference_at_grading_seeds"])
        best = max(cal["stub_returns"] + cal["stub_at_grading_seeds"])
        assert spec["full"] == pytest.approx(worst - FULL_ROOM * (worst - best), abs=0.1)
        assert spec["low"] == pytest.approx(best + LOW_ROOM * (worst - best), abs=0.1)
    assert "low → full" in readme.read_text()

"""The autograder: stubs get 0, the reference full marks, each bug loses exactly its own points,
attacks are contained, results.json follows Gradescope's format, batches resume."""
import csv
import json
import zipfile

import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.grade import error_results, grade, to_results_json, write_json_atomic  # noqa: E402
from grader.submissions import write_submission  # noqa: E402

from conftest import ROOT, run_cli  # noqa: E402

VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def validate_results(data: dict) -> None:
    """Gradescope results.json format (../shared/README.md)."""
    allowed = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
               "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
    assert set(data) <= allowed, set(data) - allowed
    for k in ("score", "execution_time"):
        if k in data:
            assert isinstance(data[k], (int, float)) and not isinstance(data[k], bool)
    for k in ("output_format", "test_output_format", "test_name_format"):
        if k in data:
            assert data[k] in FORMATS
    for k in ("visibility", "stdout_visibility"):
        if k in data:
            assert data[k] in VISIBILITY
    test_keys = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
                 "visibility", "extra_data"}
    for t in data.get("tests", []):
        assert set(t) <= test_keys, set(t) - test_keys
        for k in ("score", "max_score"):
            if k in t:
                assert isinstance(t[k], (int, float)) and not isinstance(t[k], bool)
        if "status" in t:
            assert t["status"] in ("passed", "failed")
        if "number" in t:
            assert isinstance(t["number"], str)
        if "tags" in t:
            assert isinstance(t["tags"], list) and all(isinstance(x, str) for x in t["tags"])
        if "visibility" in t:
            assert t["visibility"] in VISIBILITY
        if "output_format" in t:
            assert t["output_format"] in FORMATS


def scores(report) -> dict[str, float]:
    return {t.name: t.score for t in report.tests}


def unit_grade(sub, hidden=True):
    return grade(sub, include_hidden=hidden, include_performance=False, unit_timeout=120)


@pytest.fixture(scope="module")
def reference_unit(tmp_path_factory):
    sub = write_submission(tmp_path_factory.mktemp("ref") / "sub")
    return unit_grade(sub)


def test_reference_gets_every_unit_point_and_stubs_none(reference_unit, tmp_path):
    assert reference_unit.score == reference_unit.max_score == 45
    validate_results(to_results_json(reference_unit))
    stub = unit_grade(write_submission(tmp_path / "stub", reference=False))
    assert stub.score == 0
    assert {t.name for t in stub.tests} == {t.name for t in reference_unit.tests}


BROKEN = {  # name → (methods, the checks (by name prefix) that must lose all their points)
    "wrong loss sign": ({"compute_loss": '''
def compute_loss(self, obs, expert_actions):
    return self.policy.dist(self.policy.normalize_obs(obs)).log_prob(
        self.policy.normalize_action(expert_actions)).mean()
'''}, ["BC loss"]),
    "unnormalized inputs": ({"compute_loss": '''
def compute_loss(self, obs, expert_actions):
    return -self.policy.dist(obs).log_prob(self.policy.normalize_action(expert_actions)).mean()
'''}, ["BC loss"]),
    "DAgger labels with the learner's action": ({"select_action": '''
def select_action(self, obs, beta):
    expert = self.expert_action(obs)
    if self.rng.random() < beta:
        return expert, expert
    a = self.learner_action(obs)
    return a, a
'''}, ["DAgger label"]),
    "DAgger without aggregation": ({"aggregate": '''
def aggregate(self, dataset, visited_obs, expert_labels):
    return Dataset(visited_obs, expert_labels)
'''}, ["DAgger aggregation"]),
    "noise stored in the label": ({"noisy_expert_step": '''
def noisy_expert_step(self, obs):
    clean = self.expert_action(obs)
    sigma = self.cfg.noise_std * (self.action_high - self.action_low) / 2.0
    noisy = np.clip(clean + self.rng.normal(0.0, 1.0, self.act_dim) * sigma, self.action_low, self.action_high)
    return noisy, noisy
'''}, ["Noise injection: clean label"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("bug", sorted(BROKEN))
def test_each_bug_loses_exactly_its_own_points(bug, reference_unit, tmp_path):
    methods, losing = BROKEN[bug]
    report = unit_grade(write_submission(tmp_path / "sub", methods))
    ref, got = scores(reference_unit), {t.name: t for t in report.tests}
    for name, full in ref.items():
        if any(name.startswith(prefix) for prefix in losing):
            assert got[name].score == 0, f"{bug}: {name} should lose its points"
        else:
            assert got[name].score == full, f"{bug}: {name} should keep its points: {got[name].output}"


ATTACKS = {
    "sys.exit(0) in the loss": {"compute_loss": "def compute_loss(self, obs, expert_actions):\n"
                                                "    import sys\n    sys.exit(0)\n"},
    "os._exit(0) in select_action": {"select_action": "def select_action(self, obs, beta):\n"
                                                      "    import os\n    os._exit(0)\n"},
    "infinite loop in aggregate": {"aggregate": "def aggregate(self, dataset, visited_obs, expert_labels):\n"
                                                "    while True:\n        pass\n"},
    "memory bomb in the noisy step": {"noisy_expert_step": "def noisy_expert_step(self, obs):\n"
                                                           "    x = []\n    while True:\n"
                                                           "        x.append(bytearray(10**8))\n"},
    "__eq__ that always says yes": {"select_action": '''
def select_action(self, obs, beta):
    class Liar:
        def __eq__(self, other):
            return True
        __hash__ = object.__hash__
    return Liar(), Liar()
'''},
    "monkeypatched numpy and a wrong loss": {"compute_loss": '''
def compute_loss(self, obs, expert_actions):
    import numpy, torch
    numpy.allclose = lambda *a, **k: True
    numpy.isclose = lambda *a, **k: True
    torch.allclose = lambda *a, **k: True
    return torch.zeros((), requires_grad=True)
'''},
}


@pytest.mark.slow
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attacks_are_contained(attack, reference_unit, tmp_path):
    methods = ATTACKS[attack]
    report = grade(write_submission(tmp_path / "sub", methods), include_hidden=False, include_performance=False,
                   unit_timeout=25, mem_mb=1500)
    attacked = {"compute_loss": "BC loss", "select_action": "DAgger", "aggregate": "DAgger aggregation",
                "noisy_expert_step": "Noise injection"}[next(iter(methods))]
    for t in report.tests:
        if t.name.startswith(attacked) and not (attacked == "DAgger" and t.name.startswith("DAgger aggregation")):
            assert t.score == 0, f"{attack}: {t.name} got {t.score}"
            assert t.output, "a zero must come with feedback"
        elif t.max_score > 0:
            assert t.score == t.max_score, f"{attack} changed another check: {t.name}: {t.output}"
    validate_results(to_results_json(report))


@pytest.mark.slow
def test_writing_results_json_or_grader_files_changes_nothing(tmp_path):
    out = tmp_path / "results.json"
    marker = ROOT / "data" / "pwned_by_test.txt"
    methods = {"compute_loss": f'''
def compute_loss(self, obs, expert_actions):
    import json
    json.dump({{"score": 1000, "tests": []}}, open({str(out)!r}, "w"))
    open({str(marker)!r}, "w").write("x")
    return -self.policy.dist(self.policy.normalize_obs(obs)).log_prob(
        self.policy.normalize_action(expert_actions)).mean()
'''}
    sub = write_submission(tmp_path / "sub", methods)
    try:
        p = run_cli("-m", "grader", str(sub), "--out", str(out), "--no-performance", "--no-hidden", timeout=600)
    finally:
        tampered = marker.exists()
        if tampered:
            marker.unlink()
    data = json.loads(out.read_text())
    validate_results(data)
    assert data["score"] < 1000
    if tampered:  # only possible without a sandbox uid: the manifest voids the whole grade
        assert p.returncode == 3 and data["score"] == 0, p.stderr
    else:
        assert p.returncode == 0, p.stderr
        bc = [t for t in data["tests"] if t["name"].startswith("BC loss")]
        assert all(t["score"] == 0 for t in bc)


def test_missing_file_and_import_error_are_explained(tmp_path):
    sub = write_submission(tmp_path / "sub")
    (sub / "learning" / "dart_agent.py").unlink()
    (sub / "learning" / "bc_agent.py").write_text("import this_module_does_not_exist\n")
    report = grade(sub, include_hidden=False, include_performance=False)
    by = {t.name: t for t in report.tests}
    structure = next(t for t in report.tests if t.name.startswith("Structure"))
    assert "dart_agent.py" in structure.output and "bc_agent.py" in structure.output
    for name, t in by.items():
        if name.startswith("Noise injection"):
            assert t.score == 0 and "dart_agent.py" in t.output
        if name.startswith("BC loss"):
            assert t.score == 0 and "bc_agent.py" in t.output
        if name.startswith("DAgger"):
            assert t.score == t.max_score  # the DAgger file is fine


def test_zip_submission_and_unsafe_zip(tmp_path):
    sub = write_submission(tmp_path / "sub")
    z = tmp_path / "s.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in sub.rglob("*"):
            if p.is_file():
                f.write(p, "project/" + str(p.relative_to(sub)))
    report = grade(z, include_hidden=False, include_performance=False)
    assert report.score == report.max_score > 0
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as f:
        f.writestr("../../escape.py", "x = 1")
    p = run_cli("-m", "grader", str(bad), "--out", str(tmp_path / "r.json"), "--no-performance")
    assert p.returncode != 0 and "unsafe" in p.stderr
    validate_results(json.loads((tmp_path / "r.json").read_text()))


def test_error_results_are_valid_and_written_atomically(tmp_path):
    validate_results(error_results("boom"))
    write_json_atomic(error_results("boom"), tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".results_")]


@pytest.mark.slow
def test_batch_grades_everything_and_resumes(tmp_path):
    subs = tmp_path / "subs"
    write_submission(subs / "alice")
    write_submission(subs / "bob", reference=False)
    (subs / "carol.zip").write_text("not a zip at all")
    args = ["-m", "grader", "batch", str(subs), "--jobs", "2", "--csv", str(tmp_path / "g.csv"), "--",
            "--no-performance", "--no-hidden"]
    p = run_cli(*args, timeout=900)
    assert p.returncode == 0, p.stderr
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "g.csv"))}
    assert set(rows) == {"alice", "bob", "carol"}
    assert float(rows["alice"]["total"]) == 45  # all unit points (public variants carry the full points)
    assert float(rows["bob"]["total"]) == 0 and float(rows["carol"]["total"]) == 0
    p = run_cli(*args, timeout=900)
    assert "3 already graded" in p.stdout or "2 already graded" in p.stdout


@pytest.mark.slow
def test_stubs_get_zero_with_performance(tmp_path):
    """(The reference's full marks on every path: tests/test_grader_paths.py.)"""
    stub = grade(write_submission(tmp_path / "stub", reference=False), include_hidden=True, include_performance=True)
    assert stub.score == 0, [(t.name, t.score, t.output) for t in stub.tests if t.score]


def test_gradescope_zip(tmp_path):
    p = run_cli("tools/make_gradescope.py", str(tmp_path / "ag.zip"))
    assert p.returncode == 0, p.stderr
    with zipfile.ZipFile(tmp_path / "ag.zip") as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "grader/__main__.py", "grader/thresholds.yaml"} <= names
        assert (z.getinfo("run_autograder").external_attr >> 16) & 0o111
        assert "/autograder/results/results.json" in z.read("run_autograder").decode()
        assert not any(n.startswith("data/training/") for n in names)   # compact training checkpoints stay home


@pytest.mark.slow
def test_student_release_has_no_solutions_and_its_self_check_runs(tmp_path):
    p = run_cli("tools/make_release.py", str(tmp_path / "release"), "--skip_tests", timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    rel = tmp_path / "release"
    assert not (rel / "grader" / "solution").exists() and not (rel / "grader" / "hidden").exists()
    assert not (rel / "data" / "training").exists() and (rel / "data" / "models").is_dir()
    assert (rel / "learning" / "bc_agent.py").read_text() == (ROOT / "learning" / "bc_agent.py").read_text()


def test_release_scanner_finds_solution_code(tmp_path):
    from tools.make_release import find_solution_code

    sub = write_submission(tmp_path / "ref")           # stubs filled with the reference
    assert any("bc_agent.py" in p for p in find_solution_code(sub))
    stub = write_submission(tmp_path / "stub", reference=False)
    assert find_solution_code(stub) == []

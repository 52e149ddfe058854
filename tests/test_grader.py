"""The autograder: stubs get 0, the reference full marks, each bug loses exactly its own points,
attacks are contained, results.json follows Gradescope's format, batches resume."""
import csv
import json
import zipfile

import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.grade import error_results, grade, load_thresholds, to_results_json, write_json_atomic  # noqa: E402
from grader.reference_submissions import write_submission  # noqa: E402

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
    assert reference_unit.score == reference_unit.max_score == 85
    validate_results(to_results_json(reference_unit))
    stub = unit_grade(write_submission(tmp_path / "stub", reference=False))
    assert stub.score == 0
    assert {t.name for t in stub.tests} == {t.name for t in reference_unit.tests}


LOSS = "def compute_loss(self, obs, expert_actions):\n"
SELECT = "def select_action(self, obs, beta):\n"
AGGREGATE = "def aggregate(self, dataset, visited_obs, expert_labels):\n"
NOISY = "def noisy_expert_step(self, obs):\n"
SIGMA = "self.cfg.noise_std * (self.action_high - self.action_low) / 2"
OBS_N = "self.policy.normalize_obs(torch.as_tensor(obs, dtype=torch.float32)[None])"

BROKEN = {  # name → (methods, the unit check it runs, {check name prefix that loses all its points: feedback phrase})
    "wrong loss sign": ({"compute_loss": LOSS + """
    return self.policy.dist(self.policy.normalize_obs(obs)).log_prob(
        self.policy.normalize_action(expert_actions)).mean()
"""}, "bc_loss", {"BC loss: gradients": "sign is flipped", "BC loss: value": "sign is flipped"}),
    "unnormalized inputs": ({"compute_loss": LOSS + """
    return -self.policy.dist(obs).log_prob(self.policy.normalize_action(expert_actions)).mean()
"""}, "bc_loss", {"BC loss: gradients": "not normalized", "BC loss: value": "not normalized"}),
    "observations normalized twice": ({"compute_loss": LOSS + """
    o = self.policy.normalize_obs(self.policy.normalize_obs(obs))
    return -self.policy.dist(o).log_prob(self.policy.normalize_action(expert_actions)).mean()
"""}, "bc_loss", {"BC loss: gradients": "normalized twice", "BC loss: value": "normalized twice"}),
    "loss summed over the batch": ({"compute_loss": LOSS + """
    return -self.policy.dist(self.policy.normalize_obs(obs)).log_prob(
        self.policy.normalize_action(expert_actions)).sum()
"""}, "bc_loss", {"BC loss: gradients": "sums over the batch", "BC loss: value": "sums over the batch"}),
    "loss without the ½·log 2π constant (gradients right: keeps the gradient points)": ({"compute_loss": LOSS + """
    d = self.policy.dist(self.policy.normalize_obs(obs))
    a = self.policy.normalize_action(expert_actions)
    return (((a - d.mean) / d.stddev) ** 2 / 2 + torch.log(d.stddev)).sum(-1).mean()
"""}, "bc_loss", {"BC loss: value": "½·log 2π"}),
    "likelihood of env-unit actions (a constant offset: keeps the gradient points)": ({"compute_loss": LOSS + """
    from torch.distributions import Independent, Normal
    d = self.policy.dist(self.policy.normalize_obs(obs))
    low, high = self.policy.action_low, self.policy.action_high
    mean, std = low + (d.mean + 1) / 2 * (high - low), d.stddev * (high - low) / 2
    return -Independent(Normal(mean, std), 1).log_prob(expert_actions).mean()
"""}, "bc_loss", {"BC loss: value": "env units"}),
    "loss detached from the policy (right value: keeps the value points)": ({"compute_loss": LOSS + """
    v = -self.policy.dist(self.policy.normalize_obs(obs)).log_prob(self.policy.normalize_action(expert_actions))
    return torch.tensor(float(v.mean()), requires_grad=True)
"""}, "bc_loss", {"BC loss: gradients": "cut from the policy"}),
    "DAgger labels with the learner's action": ({"select_action": SELECT + """
    expert = self.expert_action(obs)
    if self.rng.random() < beta:
        return expert, expert
    a = self.learner_action(obs)
    return a, a
"""}, "dagger_select", {"DAgger label": "executed (learner) action"}),
    "DAgger label in normalized units": ({"select_action": SELECT + """
    label = self.expert_action(obs)
    span = self.action_high - self.action_low
    executed = label if self.rng.random() < beta else self.learner_action(obs)
    return executed, 2 * (label - self.action_low) / span - 1
"""}, "dagger_select", {"DAgger label": "normalized units"}),
    "DAgger executes normalized actions": ({"select_action": SELECT + """
    import torch
    label = self.expert_action(obs)
    if self.rng.random() < beta:
        return 2 * (label - self.action_low) / (self.action_high - self.action_low) - 1, label
    return self.policy.dist(OBS_N).sample()[0].numpy(), label
""".replace("OBS_N", OBS_N)}, "dagger_select", {"DAgger executed action": "normalized units"}),
    "DAgger coin drawn once": ({"select_action": SELECT + """
    label = self.expert_action(obs)
    if not hasattr(self, "coin"):
        self.coin = self.rng.random()
    return (label if self.coin < beta else self.learner_action(obs)), label
"""}, "dagger_select", {"DAgger executed action": "fresh at each call"}),
    "DAgger coin from the state": ({"select_action": SELECT + """
    label = self.expert_action(obs)
    u = np.random.default_rng(abs(int(obs.sum() * 1000))).random()
    return (label if u < beta else self.learner_action(obs)), label
"""}, "dagger_select", {"DAgger executed action": "for a given state"}),
    "DAgger coin inverted": ({"select_action": SELECT + """
    label = self.expert_action(obs)
    return (label if self.rng.random() > beta else self.learner_action(obs)), label
"""}, "dagger_select", {"DAgger executed action": "inverted"}),
    "DAgger learner mean instead of a sample": ({"select_action": SELECT + """
    label = self.expert_action(obs)
    return (label if self.rng.random() < beta else self.learner_action(obs, deterministic=True)), label
"""}, "dagger_select", {"DAgger executed action": "learner's mean"}),
    "DAgger without aggregation": ({"aggregate": AGGREGATE + """
    return Dataset(visited_obs, expert_labels)
"""}, "dagger_aggregate", {"DAgger aggregation": "dropped: the demos"}),
    "DAgger keeps the demos plus only the latest round": ({"aggregate": AGGREGATE + """
    return self.demo_dataset().concat(Dataset(visited_obs, expert_labels))
"""}, "dagger_aggregate", {"DAgger aggregation": "dropped: round 1"}),
    "DAgger drops the old data every second call": ({"aggregate": AGGREGATE + """
    self.calls = getattr(self, "calls", 0) + 1
    if self.calls % 2 == 0:
        return Dataset(visited_obs, expert_labels)
    return dataset.concat(Dataset(visited_obs, expert_labels))
"""}, "dagger_aggregate", {"DAgger aggregation": "after round 2 of 4"}),
    "DAgger adds every round twice": ({"aggregate": AGGREGATE + """
    self.rounds_seen = getattr(self, "rounds_seen", dataset).concat(Dataset(visited_obs, expert_labels))
    return dataset.concat(self.rounds_seen)
"""}, "dagger_aggregate", {"DAgger aggregation": "more than once"}),
    "noise stored in the label": ({"noisy_expert_step": NOISY + """
    clean = self.expert_action(obs)
    noisy = np.clip(clean + self.rng.normal(0.0, 1.0, self.act_dim) * SIGMA, self.action_low, self.action_high)
    return noisy, noisy
""".replace("SIGMA", SIGMA)}, "dart_step", {"Noise injection: clean label": "noisy executed action"}),
    "noise-injection label in normalized units": ({"noisy_expert_step": NOISY + """
    clean = self.expert_action(obs)
    noisy = np.clip(clean + self.rng.normal(0.0, 1.0, self.act_dim) * SIGMA, self.action_low, self.action_high)
    return noisy, 2 * (clean - self.action_low) / (self.action_high - self.action_low) - 1
""".replace("SIGMA", SIGMA)}, "dart_step", {"Noise injection: clean label": "normalized units"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("bug", sorted(BROKEN))
def test_each_bug_loses_exactly_its_own_points(bug, reference_unit, tmp_path):
    """The bug's own unit check (public and hidden variant) loses the listed parts, with feedback naming the mistake,
    and keeps every other part."""
    methods, key, losing = BROKEN[bug]
    report = grade(write_submission(tmp_path / "sub", methods), include_hidden=True, include_performance=False,
                   only={key})
    ref = scores(reference_unit)
    parts = [t for t in report.tests if t.max_score > 0]
    assert parts and {t.name for t in parts} <= set(ref)
    for t in parts:
        prefix = next((p for p in losing if t.name.startswith(p)), None)
        if prefix is not None:
            assert t.score == 0, f"{bug}: {t.name} should lose its points"
            assert losing[prefix] in t.output, f"{bug}: {t.name}: {t.output}"
        else:
            assert t.score == ref[t.name], f"{bug}: {t.name} should keep its points: {t.output}"
    assert {p for p in losing if any(t.name.startswith(p) for t in parts)} == set(losing)


CORRECT_STYLES = {  # name → (methods, unit check): other correct ways to write a TODO get every point
    "loss by hand in float64": ({"compute_loss": LOSS + """
    import math
    d = self.policy.dist(self.policy.normalize_obs(obs))
    a, mean, std = self.policy.normalize_action(expert_actions).double(), d.mean.double(), d.stddev.double()
    nll = (((a - mean) / std) ** 2 / 2 + torch.log(std) + 0.5 * math.log(2 * math.pi)).sum(-1)
    return nll.mean().float()
"""}, "bc_loss"),
    "loss with MultivariateNormal": ({"compute_loss": LOSS + """
    from torch.distributions import MultivariateNormal
    d = self.policy.dist(self.policy.normalize_obs(obs))
    mvn = MultivariateNormal(d.mean, scale_tril=torch.diag_embed(d.stddev))
    return -mvn.log_prob(self.policy.normalize_action(expert_actions)).mean()
"""}, "bc_loss"),
    "learner sample before the coin, rng.choice": ({"select_action": SELECT + """
    label, sample = self.expert_action(obs), self.learner_action(obs)
    return (label if self.rng.choice([True, False], p=[beta, 1 - beta]) else sample), label
"""}, "dagger_select"),
    "global numpy coin, torch sample": ({"select_action": SELECT + """
    import torch
    label = self.expert_action(obs)
    if np.random.random() < beta:
        return label, label
    with torch.no_grad():
        return self.policy.to_env_action(self.policy.dist(OBS_N).sample())[0].numpy(), label
""".replace("OBS_N", OBS_N)}, "dagger_select"),
    "aggregate with np.concatenate, new rows first, in place": ({"aggregate": AGGREGATE + """
    dataset.obs = np.concatenate([visited_obs, dataset.obs])
    dataset.actions = np.concatenate([expert_labels, dataset.actions])
    return dataset
"""}, "dagger_aggregate"),
    "aggregate from self.dataset": ({"aggregate": AGGREGATE + """
    return self.dataset.concat(Dataset(visited_obs, expert_labels))
"""}, "dagger_aggregate"),
    "noise as rng.normal(clean, σ)": ({"noisy_expert_step": NOISY + """
    clean = self.expert_action(obs)
    return np.clip(self.rng.normal(clean, SIGMA), self.action_low, self.action_high), clean
""".replace("SIGMA", SIGMA)}, "dart_step"),
    "noise in normalized units from torch's global generator": ({"noisy_expert_step": NOISY + """
    import torch
    clean = self.expert_action(obs)
    span = self.action_high - self.action_low
    n = 2 * (clean - self.action_low) / span - 1 + self.cfg.noise_std * torch.randn(self.act_dim).numpy()
    return np.minimum(np.maximum(self.action_low + (n + 1) / 2 * span, self.action_low), self.action_high), clean
"""}, "dart_step"),
}


@pytest.mark.slow
@pytest.mark.parametrize("style", sorted(CORRECT_STYLES))
def test_correct_styles_get_every_point_of_their_check(style, tmp_path):
    methods, key = CORRECT_STYLES[style]
    report = grade(write_submission(tmp_path / "sub", methods), include_hidden=True, include_performance=False,
                   only={key})
    parts = [t for t in report.tests if t.max_score > 0]
    assert parts and all(t.score == t.max_score for t in parts), [(t.name, t.output) for t in parts if not t.passed]


def test_a_constant_offset_in_the_loss_keeps_exactly_the_gradient_points(reference_unit):
    """The rubric's partial-credit rule: gradients (what training uses) 10 points, value 5 (grader/README.md)."""
    from grader.grade import UNIT_POINTS

    assert UNIT_POINTS["bc_loss"] == {"BC loss: gradients": 10.0, "BC loss: value": 5.0}
    from grader.grade import checks_of

    assert sum(sum(UNIT_POINTS[k].values()) for k in checks_of("a1")) == 85
    assert sum(sum(UNIT_POINTS[k].values()) for k in checks_of("a2")) == 70       # CEM 20 + PG 50
    bc = {t.name.split(" (")[0] for t in reference_unit.tests if t.name.startswith("BC loss")}
    assert bc == {"BC loss: gradients", "BC loss: value"}


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
    attacked = {"compute_loss": ("BC loss",), "select_action": ("DAgger label", "DAgger executed action"),
                "aggregate": ("DAgger aggregation",),           # the collection checks run the reference's methods
                "noisy_expert_step": ("Noise injection:",)}[next(iter(methods))]
    for t in report.tests:
        if t.name.startswith(attacked):
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


def test_an_unknown_only_key_is_one_error_line_naming_the_choices(tmp_path):
    p = run_cli("-m", "grader", str(tmp_path), "--only", "bc_loss,pg_rtg", "--out", str(tmp_path / "r.json"))
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [p.stderr.strip()]
    assert p.stderr.startswith("error: --only pg_rtg: not a unit check or agent of a1") and "bc_fit" in p.stderr
    p = run_cli("-m", "grader", str(tmp_path), "--only", "pg_rtg,pg", "--assignment", "a2", "--no-performance",
                "--out", str(tmp_path / "r.json"))
    assert "--only" not in p.stderr        # a2's names are a2's: the grading goes on (and finds no files)


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
    assert float(rows["alice"]["total"]) == 85  # all unit points (public variants carry the full points)
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
        run = z.read("run_autograder").decode()
        assert "/autograder/results/results.json" in run
        # the training timeout the checks were calibrated for, and the shell's own braces intact
        assert f"--train-timeout {load_thresholds()['train_timeout']} " in run and "${GRADER_EXTRA_ARGS:-}" in run
        assert not any(n.startswith("data/training/") for n in names)   # compact training checkpoints stay home
        assert " --scope full " in run and " --assignment a1 " in run    # the default scope and assignment


def test_gradescope_zip_grades_the_chosen_scope(tmp_path):
    p = run_cli("tools/make_gradescope.py", str(tmp_path / "ag.zip"), "--scope", "core")
    assert p.returncode == 0, p.stderr
    assert "grades a1 in the core scope" in p.stdout
    run = zipfile.ZipFile(tmp_path / "ag.zip").read("run_autograder").decode()
    assert " --scope core " in run and "--scope full" not in run
    p = run_cli("tools/make_gradescope.py", str(tmp_path / "bad.zip"), "--scope", "mid")
    assert p.returncode == 2 and "error:" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "bad.zip").exists()


def test_gradescope_zip_of_assignment_2(tmp_path):
    from grader.grade import thresholds_of

    p = run_cli("tools/make_gradescope.py", str(tmp_path / "ag.zip"), "--assignment", "a2", "--scope", "core")
    assert p.returncode == 0, p.stderr
    assert "grades a2 in the core scope" in p.stdout and "learning/pg_agent.py" in p.stdout
    with zipfile.ZipFile(tmp_path / "ag.zip") as z:
        names = set(z.namelist())
        run = z.read("run_autograder").decode()
    assert {"grader/thresholds_a2.yaml", "grader/solution/pg_solution.py", "grader/solution/cem_solution.py",
            "a2/pg_pendulum.yaml", "a1/bc_cheetah.yaml"} <= names
    assert " --assignment a2 " in run and " --scope core " in run
    assert f"--train-timeout {thresholds_of('a2')['train_timeout']} " in run
    p = run_cli("tools/make_gradescope.py", str(tmp_path / "bad.zip"), "--assignment", "a3")
    assert p.returncode == 2 and "error:" in p.stderr and "Traceback" not in p.stderr


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

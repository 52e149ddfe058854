"""The unit checks of the collection loops (DAgger's ``collect_round(n, beta)``, noise injection's
``collect_round(n)``): the reference and other correct styles get full marks, the stub none, and each mistake costs
its part of its own check with feedback that names it (other checks unaffected)."""
import textwrap

import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.grade import grade  # noqa: E402
from grader.reference_submissions import solution_source, write_submission  # noqa: E402

REF_DAGGER = solution_source("collect_round", "dagger")
REF_DART = solution_source("collect_round", "dart")
DAGGER_STATES, DAGGER_EPISODES = "DAgger collection: states and labels", "DAgger collection: episodes and actions"
DART_STATES, DART_EPISODES = ("Noise injection collection: states and labels",
                              "Noise injection collection: episodes and actions")
COLLECT = {"dagger_collect", "dart_collect"}


def mutate(src: str, old: str, new: str) -> str:
    assert old in src, old
    return src.replace(old, new)


# ---------------------------------------------------------------- other correct styles
DAGGER_STYLE = """
def collect_round(self, n, beta):
    obs_list, label_list = [], []
    obs, _ = self.env.reset()
    while len(obs_list) < n:                      # while, lists, float64, no select_action, reset at every end
        label = np.asarray(self.expert_action(obs), dtype=np.float64)
        action = label if self.rng.random() < beta else self.learner_action(obs)
        obs_list.append(np.asarray(obs, dtype=np.float64))
        label_list.append(label)
        obs, _, terminated, truncated, _ = self.env.step(action)
        if terminated or truncated:
            obs, _ = self.env.reset()
    self.env.reset()                              # and once more, unconditionally
    return Dataset(np.stack(obs_list), np.stack(label_list))
"""

DART_STYLE = """
def collect_round(self, n):
    states = np.empty((n, self.obs_dim))          # preallocated float64, lazy reset, the noise inline
    labels = np.empty((n, self.act_dim))
    sigma = self.cfg.noise_std * (self.action_high - self.action_low) / 2
    done = True
    for t in range(n):
        if done:
            obs, _ = self.env.reset()
        clean = self.expert_action(obs)
        noisy = clean + sigma * self.rng.standard_normal(self.act_dim)      # not clipped: the env clips it
        states[t], labels[t] = obs, clean
        obs, _, terminated, truncated, _ = self.env.step(noisy)
        done = terminated or truncated
    return Dataset(states, labels)
"""

# ---------------------------------------------------------------- mistakes
DAGGER_NEXT_STATE = mutate(REF_DAGGER, "        states[t] = obs\n        obs, _, terminated, truncated, _ = "
                           "self.env.step(action)\n", "        obs, _, terminated, truncated, _ = "
                           "self.env.step(action)\n        states[t] = obs\n")
DAGGER_NO_RESET_AT_TERMINATION = mutate(REF_DAGGER, "if (terminated or truncated)", "if truncated")
DAGGER_BETA_IGNORED = mutate(REF_DAGGER, "self.select_action(obs, beta)", "self.select_action(obs, 1.0)")
DAGGER_N_MINUS_ONE = mutate(mutate(mutate(REF_DAGGER, "np.zeros((n, self.obs_dim)", "np.zeros((n - 1, self.obs_dim)"),
                                   "np.zeros((n, self.act_dim)", "np.zeros((n - 1, self.act_dim)"),
                            "range(n)", "range(n - 1)")
DAGGER_EXTRA_PAIR = mutate(REF_DAGGER, "    return Dataset(states, labels)",
                           "    return Dataset(np.vstack([states, obs]), np.vstack([labels, self.expert_action(obs)]))")
DAGGER_RETURNS_ARRAYS = mutate(REF_DAGGER, "    return Dataset(states, labels)", "    return states, labels")
DAGGER_LEARNER_MEAN = """
def collect_round(self, n, beta):
    states, labels = [], []
    obs, _ = self.env.reset()
    for t in range(n):
        label = self.expert_action(obs)
        action = label if self.rng.random() < beta else self.learner_action(obs, deterministic=True)
        states.append(obs)
        labels.append(label)
        obs, _, terminated, truncated, _ = self.env.step(action)
        if terminated or truncated:
            obs, _ = self.env.reset()
    return Dataset(np.array(states), np.array(labels))
"""
DAGGER_NEVER_RETURNS = """
def collect_round(self, n, beta):
    states, labels = [], []
    obs, _ = self.env.reset()
    while len(states) < n:                        # forgot to step and to store
        action, label = self.select_action(obs, beta)
    return Dataset(np.array(states), np.array(labels))
"""

DAGGER_WRONG_SHAPE = mutate(REF_DAGGER, "    return Dataset(states, labels)",
                            "    return Dataset(states[:, :-1], labels)")

DART_EPISODE_CARRIES_OVER = """
def collect_round(self, n):
    states, labels = [], []
    if getattr(self, "_obs", None) is None:       # the first round resets; later ones go on where the last stopped
        self._obs, _ = self.env.reset()
    obs = self._obs
    while len(states) < n:
        noisy, clean = self.noisy_expert_step(obs)
        states.append(obs)
        labels.append(clean)
        obs, _, terminated, truncated, _ = self.env.step(noisy)
        if terminated or truncated:
            obs, _ = self.env.reset()
    self._obs = obs
    return Dataset(np.array(states), np.array(labels))
"""
DART_NO_RESET_AT_TRUNCATION = mutate(REF_DART, "if (terminated or truncated)", "if terminated")
DART_EXECUTED_AS_LABEL = mutate(REF_DART, "labels.append(clean)", "labels.append(noisy)")
DART_N_PLUS_ONE_STEPS = mutate(REF_DART, "while len(states) < n:", "while len(states) < n + 1:")
STEP = "        obs, _, terminated, truncated, _ = self.env.step(noisy)\n"
STORE = "        states.append(obs)\n"
DART_NEXT_STATE = mutate(mutate(REF_DART, STORE, ""), STEP, STEP + STORE)
DART_RESET_LOOP = """
def collect_round(self, n):
    states, labels = [], []
    while len(states) < n:                        # resets, never steps
        obs, _ = self.env.reset()
    return Dataset(np.array(states), np.array(labels))
"""
DART_CLEAN_EXECUTED = mutate(REF_DART, "self.env.step(noisy)", "self.env.step(clean)")
DART_MID_EPISODE_RESET = mutate(REF_DART, "if (terminated or truncated) and len(states) < n:",
                                "if (terminated or truncated or len(states) % 10 == 0) and len(states) < n:")


def collect_grade(tmp_path, methods=None, reference=True, hidden=False, only=COLLECT, unit_timeout=120.0):
    sub = write_submission(tmp_path / "sub", methods={k: textwrap.dedent(v) for k, v in (methods or {}).items()},
                           reference=reference)
    return grade(sub, include_hidden=hidden, include_performance=False, only=set(only), unit_timeout=unit_timeout)


def by_part(report) -> dict[str, list]:
    """Part name (without the variant) → its results over the variants."""
    out: dict[str, list] = {}
    for t in report.tests:
        if t.max_score > 0:
            out.setdefault(t.name.split(" (")[0], []).append(t)
    return out


def assert_parts(report, failing: dict[str, str]):
    """Every part named in ``failing`` scores 0 on every variant with feedback containing its text; every other part
    scores full marks."""
    parts = by_part(report)
    for name in failing:
        assert name in parts, (name, list(parts))
    for name, results in parts.items():
        for t in results:
            if name in failing:
                assert t.score == 0 and failing[name] in t.output, (t.name, t.output)
            else:
                assert t.passed, (t.name, t.output)


@pytest.mark.slow
def test_reference_and_other_styles_get_full_marks_on_every_variant(tmp_path):
    for name, methods in (("reference", None),
                          ("style", {"dagger.collect_round": DAGGER_STYLE, "dart.collect_round": DART_STYLE})):
        report = collect_grade(tmp_path / name, methods, hidden=True)
        assert report.score == report.max_score == 20, [(t.name, t.output) for t in report.tests if not t.passed]
        parts = by_part(report)
        assert len(parts) == 4 and all(len(v) == 2 for v in parts.values())   # public hopper + hidden cheetah
        for t in parts[DAGGER_EPISODES] + parts[DART_EPISODES]:
            ended = t.output.split("episodes ended (")[1]
            term, trunc = (int(ended.split(" terminated")[0]), int(ended.split(", ")[1].split(" truncated")[0]))
            assert trunc >= 3 and (term >= 3 if "hopper" in t.name else term == 0), t.output


@pytest.mark.slow
def test_the_stub_scores_nothing_with_a_clear_message(tmp_path):
    report = collect_grade(tmp_path, reference=False)
    assert report.score == 0 and report.max_score == 20
    assert all("placeholder" in t.output for t in report.tests if t.max_score > 0)


CASES = {   # one submission per case: a DAgger mistake and a noise-injection mistake, checked independently
    "next_state_and_no_reset_at_truncation": (
        DAGGER_NEXT_STATE, {DAGGER_STATES: "the stored states are the next states"},
        DART_NO_RESET_AT_TRUNCATION, {DART_STATES: "did not reset at truncation",
                                      DART_EPISODES: "did not reset at truncation"}),
    "no_reset_at_termination_and_executed_label": (
        DAGGER_NO_RESET_AT_TERMINATION, {DAGGER_STATES: "did not reset at termination",
                                         DAGGER_EPISODES: "did not reset at termination"},
        DART_EXECUTED_AS_LABEL, {DART_STATES: "the stored label is the noisy executed action"}),
    "beta_ignored_and_one_step_too_many": (
        DAGGER_BETA_IGNORED, {DAGGER_EPISODES: "β is ignored"},
        DART_N_PLUS_ONE_STEPS, {DART_STATES: "more than n = 300 environment steps",
                                DART_EPISODES: "more than n = 300 environment steps"}),
    "one_step_too_few_and_next_state": (
        DAGGER_N_MINUS_ONE, {DAGGER_STATES: "returned 199 pairs for n = 200",
                             DAGGER_EPISODES: "took 199 environment steps for n = 200"},
        DART_NEXT_STATE, {DART_STATES: "the stored states are the next states"}),
    "one_pair_too_many_and_a_reset_loop": (
        DAGGER_EXTRA_PAIR, {DAGGER_STATES: "returned 201 pairs for n = 200"},
        DART_RESET_LOOP, {DART_STATES: "reset the env", DART_EPISODES: "times in a round of n = 300 steps"}),
    "arrays_not_a_dataset_and_clean_action_executed": (
        DAGGER_RETURNS_ARRAYS, {DAGGER_STATES: "returned a tuple, not a Dataset", DAGGER_EPISODES: "Dataset(obs, "},
        DART_CLEAN_EXECUTED, {DART_EPISODES: "no noise"}),
    "wrong_shape_and_no_reset_at_the_start_of_a_round": (
        DAGGER_WRONG_SHAPE, {DAGGER_STATES: "obs of width 10", DAGGER_EPISODES: "expected (200, 11) and (200, 3)"},
        DART_EPISODE_CARRIES_OVER, {DART_STATES: "in the round 2 of 2 (n = 300): the round did not start with "
                                                 "env.reset()", DART_EPISODES: "did not start with env.reset()"}),
    "learner_mean_and_mid_episode_reset": (
        DAGGER_LEARNER_MEAN, {DAGGER_EPISODES: "the learner's mean"},
        DART_MID_EPISODE_RESET, {DART_EPISODES: "reset the env in the middle of a running episode"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_each_mistake_costs_its_part_with_feedback_that_names_it(tmp_path, case):
    dagger, dagger_fails, dart, dart_fails = CASES[case]
    only = COLLECT | ({"dagger_select", "dart_step"} if case == "next_state_and_no_reset_at_truncation" else set())
    report = collect_grade(tmp_path, {"dagger.collect_round": dagger, "dart.collect_round": dart}, only=only)
    assert_parts(report, {**dagger_fails, **dart_fails})     # the other checks keep every point


DAGGER_LEAKS_THE_REFERENCE = """
def collect_round(self, n, beta):
    import inspect
    import grader_ref.dagger_select_action as ref    # the reference code in the workspace: readable, never shown
    raise ValueError("LEAKED " + inspect.getsource(ref.select_action))
"""


@pytest.mark.slow
def test_no_text_of_the_students_process_reaches_the_feedback_of_a_check_that_runs_reference_code(tmp_path):
    report = collect_grade(tmp_path, {"dagger.collect_round": DAGGER_LEAKS_THE_REFERENCE})
    assert_parts(report, {DAGGER_STATES: "your code raised ValueError at learning/dagger_agent.py",
                          DAGGER_EPISODES: "messages are not shown"})
    assert not any("LEAKED" in t.output or "rng" in t.output for t in report.tests)


DAGGER_CALLS_ITS_OWN_REFERENCE = """
def collect_round(self, n, beta):
    from grader_ref.dagger_collect_round import collect_round as ref    # not in the workspace of its own check
    return ref(self, n, beta)
"""


@pytest.mark.slow
def test_a_check_cannot_call_the_reference_of_the_method_it_grades(tmp_path):
    report = collect_grade(tmp_path, {"dagger.collect_round": DAGGER_CALLS_ITS_OWN_REFERENCE})
    assert_parts(report, {DAGGER_STATES: "your code raised ModuleNotFoundError at learning/dagger_agent.py",
                          DAGGER_EPISODES: "ModuleNotFoundError"})


@pytest.mark.slow
def test_a_loop_that_never_returns_is_stopped_by_the_time_limit_and_named(tmp_path):
    report = collect_grade(tmp_path, {"dagger.collect_round": DAGGER_NEVER_RETURNS}, unit_timeout=25.0)
    assert_parts(report, {DAGGER_STATES: "collect_round never returned", DAGGER_EPISODES: "timed out"})



# ---------------------------------------------------------------- the parent's verdicts on hand-made records
def make_round(n, trace, data_obs=None, data_labels=None, status=0, detail=0, act_dim=3):
    """A Round from a TrainingEnv-style trace: ("reset", seed, obs) / ("step", action, obs, reward, term, trunc)."""
    import numpy as np

    from grader.replay import Round

    obs_dim = len(trace[0][2]) if trace else 2
    kind = np.array([0 if e[0] == "reset" else 1 for e in trace], np.int64)
    seed = np.array([e[1] if e[0] == "reset" else -1 for e in trace], np.int64)
    action = np.array([np.zeros(act_dim) if e[0] == "reset" else e[1] for e in trace]).reshape(-1, act_dim)
    obs = np.array([e[2] for e in trace], np.float64).reshape(-1, obs_dim)
    flag = [(False, False) if e[0] == "reset" else (e[4], e[5]) for e in trace]
    term = np.array([f[0] for f in flag], bool)
    trunc = np.array([f[1] for f in flag], bool)
    reward = np.array([0.0 if e[0] == "reset" else e[3] for e in trace])
    data_obs = np.zeros((0, obs_dim)) if data_obs is None else np.asarray(data_obs, np.float64)
    data_labels = np.zeros((len(data_obs), act_dim)) if data_labels is None else data_labels
    return Round(n, status, detail, (obs_dim, act_dim), kind, seed, action, obs, reward, term, trunc, len(data_obs),
                 data_obs, data_labels)


def toy_trace(ends):
    """reset, then one step per entry of ``ends`` (None: the episode runs on; "term"/"trunc": it ends and the next
    step is preceded by a reset). Observations are [t, t] for the t-th recorded state."""
    import numpy as np

    trace, t = [("reset", 7, np.array([0.0, 0.0]))], 0
    for k, end in enumerate(ends):
        t += 1
        trace.append(("step", np.full(3, 0.1 * k), np.array([t, t], float), 1.0, end == "term", end == "trunc"))
        if end and k + 1 < len(ends):
            t += 1
            trace.append(("reset", 8 + k, np.array([t, t], float)))
    return trace


def test_a_refused_round_is_named_from_its_record():
    from grader.replay import (ACTION_SHAPE, FINISHED_EPISODE, NOT_A_DATASET, REFUSED, TOO_MANY_STEPS, WRONG_WIDTHS,
                               refusal)

    def why(n, trace, status=REFUSED, detail=FINISHED_EPISODE):
        return refusal(make_round(n, trace, status=status, detail=detail), 2, 2, 3)

    assert "did not reset at truncation" in why(5, toy_trace([None, "trunc"]))
    assert "did not reset at termination" in why(5, toy_trace([None, "term"]))
    assert "env.step() was called on a finished episode" in why(5, toy_trace([None, "term"]))
    assert "did not start with env.reset()" in why(5, [])
    assert "more than n = 2 environment steps" in why(2, toy_trace([None, None]), detail=TOO_MANY_STEPS)
    assert "not of shape (3,)" in why(5, toy_trace([None]), detail=ACTION_SHAPE)
    assert "returned a list, not a Dataset" in why(5, toy_trace([None]), NOT_A_DATASET, 2)
    assert "returned another object, not a Dataset" in why(5, toy_trace([None]), NOT_A_DATASET, 0)
    assert "expected (5, 2) and (5, 3)" in why(5, toy_trace([None]), WRONG_WIDTHS)


def test_resets_after_ends_at_the_start_and_after_the_last_step_are_fine_mid_episode_ones_are_not():
    import numpy as np

    from grader.replay import episode_problems

    trace = toy_trace([None, "term", None, "trunc", None])
    assert episode_problems(make_round(5, trace)) == []
    doubled = [trace[0], ("reset", 9, np.array([0.0, 0.0])), *trace[1:], ("reset", 3, np.array([9.0, 9.0])),
               ("reset", 4, np.array([9.0, 9.0]))]
    assert episode_problems(make_round(5, doubled)) == []
    mid = trace[:2] + [("reset", 5, np.array([1.0, 1.0]))] + trace[2:]
    assert "middle of a running episode (after step 1" in episode_problems(make_round(5, mid))[0]
    assert "took 5 environment steps for n = 6" in episode_problems(make_round(6, trace))[0]


def test_the_stored_states_must_be_the_states_each_action_was_chosen_at():
    from grader.replay import state_problems

    trace = toy_trace([None, "term", None])          # states: 0, 1, reset 3 (after 2), then step to 4
    r = make_round(3, trace)
    pre, post = r.pre_states(), r.post_states()
    assert pre[:, 0].tolist() == [0, 1, 3] and post[:, 0].tolist() == [1, 2, 4]
    assert state_problems(make_round(3, trace, data_obs=pre)) == []
    assert "next states" in state_problems(make_round(3, trace, data_obs=post))[0]
    assert "returned 2 pairs for n = 3" in state_problems(make_round(3, trace, data_obs=pre[:2]))[0]
    swapped = pre[[0, 2, 1]]
    assert "stored state 2 is not the state" in state_problems(make_round(3, trace, data_obs=swapped))[0]


def test_feedback_names_each_problem_once_with_its_rounds():
    from grader.replay import grouped

    text = grouped([("round with β = 1", "a"), ("round with β = 0", "a"), ("round with β = 0", "b"), ("", "c")])
    assert text == "in the rounds with β = 1, with β = 0: a; in the round with β = 0: b; c"


def test_a_record_replays_in_a_fresh_env_and_a_changed_one_does_not():
    import numpy as np

    from envs.builder import action_bounds, make_env, resolve_env_config
    from envs.training_env import TrainingEnv
    from grader.replay import replay_problem

    cfg = resolve_env_config("hopper")
    cfg.max_episode_steps = 5
    env = make_env(cfg)
    low, high = action_bounds(env)
    te = TrainingEnv(env, 3, low, high)
    te.trace = []
    rng = np.random.default_rng(0)
    obs, _ = te.reset()
    for _ in range(12):
        _, _, term, trunc, _ = te.step(rng.uniform(-1.5, 1.5, 3))      # clipped by the env, replayed clipped
        if term or trunc:
            te.reset()
    r = make_round(12, te.trace)
    assert r.episode_ends() == (0, 2) and replay_problem([r], cfg, low, high) == ""
    r.obs[4, 0] += 1e-3
    assert "does not replay" in replay_problem([r], cfg, low, high)


def test_the_collection_checks_run_in_the_full_scope_only():
    from grader.grade import UNIT_CHECKS
    from learning.agents import todo_manifest

    for key in COLLECT:
        assert UNIT_CHECKS[key].in_scope(todo_manifest("full")) and not UNIT_CHECKS[key].in_scope(todo_manifest("core"))


@pytest.mark.slow
def test_without_the_reference_solutions_the_students_own_methods_run(tmp_path, monkeypatch):
    """The student release ships no grader/solution: its self-check runs the student's own select_action with their
    collect_round (no reference code in the workspace, so messages are shown)."""
    import grader.context

    monkeypatch.setattr(grader.context, "SOLUTIONS", tmp_path / "no_solution")
    ref = collect_grade(tmp_path / "ref", only={"dagger_collect"})
    assert ref.score == ref.max_score == 10, [(t.name, t.output) for t in ref.tests if not t.passed]
    stub = collect_grade(tmp_path / "stub", {"dagger.select_action": """
def select_action(self, obs, beta):
    raise ValueError("my own select_action ran")
"""}, only={"dagger_collect"})
    assert all(t.score == 0 and "my own select_action ran" in t.output for t in stub.tests if t.max_score), \
        [t.output for t in stub.tests]

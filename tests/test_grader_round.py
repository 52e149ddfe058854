"""The round checks (DAgger's and noise injection's ``train_round``, TODO 2d and 3c): the reference and other correct
styles get every point, the stubs none with a clear message, and each mistake loses the check's points with feedback
that names it. The rounds run through the framework's ``run_round`` (which enforces the sample budget) with the
reference collect_round, aggregate and fit."""
import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.grade import grade  # noqa: E402
from grader.reference_submissions import write_submission  # noqa: E402

TR = "def train_round(self, round_index):\n"
N = "    n = self.room(self.cfg.samples_per_round)\n"
BETA = "    beta = self.beta(round_index)\n"
DAGGER_KEEP = "    self.dataset = self.aggregate(self.dataset, d.obs, d.actions)\n"
DART_KEEP = "    self.dataset = self.dataset.concat(d)\n"
RETRAIN = "    return self.train_on(self.dataset, self.cfg.epochs_per_round)\n"


def dagger(body: str) -> dict[str, str]:
    return {"dagger.train_round": TR + body}


def dart(body: str) -> dict[str, str]:
    return {"dart.train_round": TR + body}


COLLECT_DAGGER = N + BETA + "    d = self.collect_round(n, beta)\n"
COLLECT_DART = N + "    d = self.collect_round(n)\n"

CORRECT = {   # name → (methods, check key)
    "DAgger: the reference": ({}, "dagger_round"),
    "DAgger: dataset.concat, n inline, fit called directly": (dagger("""
    n = min(self.cfg.samples_per_round, self.cfg.max_samples - len(self.dataset))
    new = self.collect_round(n, beta=self.beta(round_index))
    self.dataset = self.dataset.concat(new)
    return self.fit(self.dataset, self.cfg.epochs_per_round)
"""), "dagger_round"),
    "DAgger: Dataset(np.concatenate(...)), new pairs first": (dagger(COLLECT_DAGGER + """
    self.dataset = Dataset(np.concatenate([d.obs, self.dataset.obs]), np.concatenate([d.actions, self.dataset.actions]))
    loss = self.train_on(self.dataset, self.cfg.epochs_per_round)
    return loss
"""), "dagger_round"),
    "DAgger: one epoch at a time": (dagger(COLLECT_DAGGER + DAGGER_KEEP + """
    for _ in range(self.cfg.epochs_per_round):
        loss = self.train_on(self.dataset, 1)
    return loss
"""), "dagger_round"),
    "DAgger: through the framework's collect, keyword arguments": (dagger("""
    beta = self.beta(round_index)
    new = self.collect(self.room(self.cfg.samples_per_round), lambda n: self.collect_round(n=n, beta=beta))
    self.dataset = self.aggregate(dataset=self.dataset, visited_obs=new.obs, expert_labels=new.actions)
    return self.train_on(dataset=self.dataset, epochs=self.cfg.epochs_per_round)
"""), "dagger_round"),
    "noise injection: the reference": ({}, "dart_round"),
    "noise injection: np.concatenate, fit called directly": (dart(COLLECT_DART + """
    self.dataset = Dataset(np.concatenate([self.dataset.obs, d.obs]), np.concatenate([self.dataset.actions, d.actions]))
    return float(self.fit(self.dataset, self.cfg.epochs_per_round))
"""), "dart_round"),
}

BROKEN = {   # name → (methods, check key, phrase the feedback must hold)
    "DAgger: the stub": (None, "dagger_round", "placeholder"),
    "DAgger: β hard-coded": (dagger(N + "    d = self.collect_round(n, 0.5)\n" + DAGGER_KEEP + RETRAIN),
                             "dagger_round", "hard-coded"),
    "DAgger: β = β_0 every round": (dagger(N + "    d = self.collect_round(n, self.cfg.beta0)\n" + DAGGER_KEEP + RETRAIN),
                                    "dagger_round", "self.cfg.beta0"),
    "DAgger: β of the round before": (dagger(N + "    d = self.collect_round(n, self.beta(round_index - 1))\n"
                                             + DAGGER_KEEP + RETRAIN), "dagger_round", "off by one"),
    "DAgger: n ignores the budget": (dagger(BETA + "    d = self.collect_round(self.cfg.samples_per_round, beta)\n"
                                            + DAGGER_KEEP + RETRAIN), "dagger_round", "self.room("),
    "DAgger: dataset replaced": (dagger(COLLECT_DAGGER + "    self.dataset = d\n" + RETRAIN), "dagger_round",
                                 "replaced"),
    "DAgger: demos and the latest round only": (dagger(COLLECT_DAGGER
                                                       + "    self.dataset = self.demo_dataset().concat(d)\n" + RETRAIN),
                                                "dagger_round", "of round 1"),
    "DAgger: trained on the new pairs only": (dagger(COLLECT_DAGGER + DAGGER_KEEP
                                                     + "    return self.train_on(d, self.cfg.epochs_per_round)\n"),
                                              "dagger_round", "only this round's"),
    "DAgger: trained before aggregating": (dagger(COLLECT_DAGGER + """
    loss = self.train_on(self.dataset, self.cfg.epochs_per_round)
""" + DAGGER_KEEP + "    return loss\n"), "dagger_round", "before this round's pairs"),
    "DAgger: epochs for epochs_per_round": (dagger(COLLECT_DAGGER + DAGGER_KEEP
                                                   + "    return self.train_on(self.dataset, self.cfg.epochs)\n"),
                                            "dagger_round", "self.cfg.epochs ="),
    "DAgger: not retrained": (dagger(COLLECT_DAGGER + DAGGER_KEEP + "    return 0.0\n"), "dagger_round",
                              "not retrained"),
    "DAgger: the loss not returned": (dagger(COLLECT_DAGGER + DAGGER_KEEP + """
    self.train_on(self.dataset, self.cfg.epochs_per_round)
    return float("nan")
"""), "dagger_round", "not the retraining's loss"),
    "DAgger: an exception in train_round reaches the feedback": (dagger(COLLECT_DAGGER + """
    raise ValueError("my own message")
"""), "dagger_round", "ValueError at learning/dagger_agent.py, line"),
    "DAgger: the framework's own check reaches the feedback": (dagger(COLLECT_DAGGER + """
    self.dataset = (self.dataset.obs, self.dataset.actions)
    return 0.0
"""), "dagger_round", "self.dataset must stay a Dataset"),
    "noise injection: the stub": (None, "dart_round", "placeholder"),
    "noise injection: n ignores the budget": (dart("    d = self.collect_round(self.cfg.samples_per_round)\n"
                                                   + DART_KEEP + RETRAIN), "dart_round", "self.room("),
    "noise injection: dataset replaced": (dart(COLLECT_DART + "    self.dataset = d\n" + RETRAIN), "dart_round",
                                          "replaced"),
    "noise injection: the demos dropped": (dart(COLLECT_DART + """
    self.dataset = self.dataset.concat(d)
    if round_index == 2:
        self.dataset = Dataset(self.dataset.obs[len(self.demo_dataset()):], self.dataset.actions[len(self.demo_dataset()):])
""" + RETRAIN), "dart_round", "of the demos"),
    "noise injection: trained on the new pairs only": (dart(COLLECT_DART + DART_KEEP
                                                            + "    return self.train_on(d, self.cfg.epochs_per_round)\n"),
                                                       "dart_round", "only this round's"),
    "noise injection: epochs for epochs_per_round": (dart(COLLECT_DART + DART_KEEP
                                                          + "    return self.train_on(self.dataset, self.cfg.epochs)\n"),
                                                     "dart_round", "self.cfg.epochs ="),
    "noise injection: not retrained": (dart(COLLECT_DART + DART_KEEP + "    return 1.0\n"), "dart_round",
                                       "not retrained"),
    "noise injection: returns None": (dart(COLLECT_DART + DART_KEEP
                                           + "    self.train_on(self.dataset, self.cfg.epochs_per_round)\n"),
                                      "dart_round", "returned no number"),
}


def _grade(tmp_path, methods: dict[str, str] | None, key: str):
    """The check's parts (public and hidden variant) for a submission with ``methods`` (None: the handout's stubs)."""
    sub = write_submission(tmp_path / "sub", methods, reference=methods is not None)
    report = grade(sub, include_hidden=True, include_performance=False, only={key})
    return [t for t in report.tests if t.max_score > 0]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_rounds_get_every_point(name, tmp_path):
    methods, key = CORRECT[name]
    parts = _grade(tmp_path, methods, key)
    assert len(parts) == 2 and sum(t.max_score for t in parts) == 5
    assert all(t.score == t.max_score for t in parts), [(t.name, t.output) for t in parts]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_round_mistake_loses_the_check_with_feedback_naming_it(name, tmp_path):
    methods, key, phrase = BROKEN[name]
    parts = _grade(tmp_path, methods, key)
    assert len(parts) == 2
    for t in parts:
        assert t.score == 0, f"{name}: {t.name}: {t.output}"
        assert phrase in t.output, f"{name}: {t.name}: {t.output}"


# ---- the parent's scoring alone, on answers built here (fast: no child, no env steps)

def _answer(dagger_: bool, beta=None, replace=False, fit_on="all", epochs=None, loss_shift=0.0):
    """A child's answer for a round run as described (defaults: the reference's), and its setup."""
    import numpy as np

    from grader.context import Variant
    from grader.round_check import ROUNDS, round_setup

    setup, _, obs_dim, act_dim = round_setup(Variant(seed=1, env="hopper", batch=20), dagger_)
    rng = np.random.default_rng(0)
    o, a = setup.demo_obs.astype(np.float64), setup.demo_act.astype(np.float64)
    rounds, collects, fits, c_o, c_a, d_o, d_a = np.zeros((ROUNDS, 7)), [], [], [], [], [], []
    for i in range(1, ROUNDS + 1):
        n = setup.room(len(o))
        no = rng.normal(size=(n, obs_dim)).astype(np.float32).astype(np.float64)
        na = rng.normal(size=(n, act_dim)).astype(np.float32).astype(np.float64)
        b = (setup.beta(i) if beta is None else beta(i)) if dagger_ else np.nan
        collects.append([i, n, b, n])
        c_o.append(no)
        c_a.append(na)
        size0 = len(o)
        o, a = (no, na) if replace else (np.concatenate([o, no]), np.concatenate([a, na]))
        t_o, t_a = {"all": (o, a), "new": (no, na)}[fit_on]
        fits.append([i, len(t_o), epochs or setup.epochs_per_round, t_o.sum(), t_a.sum(), 1.0 + i])
        rounds[i - 1] = [1, size0, len(o), 0, n, 1.0 + i + loss_shift, 1]
        d_o.append(o)
        d_a.append(a)
    out = {"rounds": rounds, "collects": np.array(collects), "fits": np.array(fits),
           "collected_obs": np.concatenate(c_o), "collected_act": np.concatenate(c_a),
           "data_obs": np.concatenate(d_o), "data_act": np.concatenate(d_a), "error": np.array([""]),
           "raised_in": np.array([0])}
    return setup, out, obs_dim, act_dim


@pytest.mark.parametrize("dagger_", [True, False])
def test_the_parent_scores_a_right_answer_full_and_names_each_mistake(dagger_):
    from grader.round_check import RoundAnswer

    def problems(**kw) -> str:
        setup, out, obs_dim, act_dim = _answer(dagger_, **kw)
        return RoundAnswer(setup, out, obs_dim, act_dim).problems("TODO")[0]

    assert problems() == ""
    assert "replaced" in problems(replace=True)
    assert "not retrained" not in problems(fit_on="new") and "only this round's" in problems(fit_on="new")
    assert "self.cfg.epochs =" in problems(epochs=_answer(dagger_)[0].epochs)
    assert "not the retraining's loss" in problems(loss_shift=0.5)
    if dagger_:
        assert "hard-coded" in problems(beta=lambda i: 0.5)
        assert "off by one" in problems(beta=lambda i: _answer(True)[0].beta(i - 1))

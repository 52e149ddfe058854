"""The grader runs exactly the student's TODO methods on the framework's classes, with the data the check grants.

A submitted file replaces a whole class, so code outside its TODO blocks (train, fit, room, __init__, ...) could
train on data no check allows. The child splices the student's TODO methods (and helpers the student adds) onto the
framework's classes, and a training check's workspace holds only the demo rows its config grants.
"""
import textwrap

import numpy as np
import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.child.agent import splice  # noqa: E402
from grader.reference_submissions import replace_method, write_submission  # noqa: E402

from conftest import ROOT  # noqa: E402



def test_splice_keeps_the_students_todo_methods_and_helpers_and_restores_the_framework():
    from learning.dagger_agent import DAggerAgent, DAggerConfig
    from learning.imitation import ImitationAgent

    class Base(DAggerAgent.__mro__[1]):          # the student's class derives from the framework's BCAgent
        pass

    class Student(Base):
        config_class = dict                                     # not the framework's: restored
        todo_methods = ()

        def train(self):                                        # non-TODO framework method: restored
            raise AssertionError("the student's train() must not run")

        def room(self, wanted):                                 # the sample budget: restored
            return wanted

        def __init__(self, *a, **k):                            # restored too
            raise AssertionError("the student's __init__ must not run")

        def helper(self):                                       # a helper the student adds: kept
            return "helper"

        def select_action(self, obs, beta):                     # the TODO: the student's, super() works
            return self.helper(), super().fit is not None

        def aggregate(self, dataset, obs, labels):
            return "student aggregate"

    cls = splice(DAggerAgent, Student, ("select_action", "aggregate"))
    assert cls.train is DAggerAgent.train and cls.room is ImitationAgent.room and cls.__init__ is ImitationAgent.__init__
    assert cls.config_class is DAggerConfig and cls.todo_methods == DAggerAgent.todo_methods
    assert cls.beta is DAggerAgent.beta and cls.compute_loss is DAggerAgent.__mro__[1].compute_loss
    agent = object.__new__(cls)
    assert agent.select_action(None, 0.5) == ("helper", True)
    assert agent.aggregate(None, None, None) == "student aggregate"
    assert issubclass(cls, Student) and issubclass(cls, DAggerAgent.__mro__[1])


def test_a_submission_cannot_train_outside_its_todos_or_on_demos_it_was_not_granted(tmp_path):
    """A real training check (sandbox, oracle): the student's train() is never run, and the workspace holds exactly
    the granted demo episode (the red team's stub TODOs + a train() fitting all 25 demos earned 20 points)."""
    from grader.context import GradingContext
    from grader.intake import find_student_files
    from grader.isolation import sandbox_policy
    from grader.performance import train_in_child
    from grader.workspace import make_scratch, remove_scratch
    from learning.agents import todo_manifest

    sub = write_submission(tmp_path / "sub", reference=True, include_configs=False)
    f = sub / "learning" / "dagger_agent.py"
    src = f.read_text()
    src = replace_method(src, "DAggerAgent", "train", textwrap.dedent("""
        def train(self):
            self.dataset = self.demo_dataset(25)      # every demo, no budget: must never run
            raise SystemExit(7)
    """))
    src = replace_method(src, "DAggerAgent", "select_action", textwrap.dedent("""
        def select_action(self, obs, beta):
            import os
            if self.demos.num_episodes != 1 or len(self.demos.dataset(1)) != 1000:
                os._exit(3)                            # the workspace holds more than the granted episode
            label = self.expert_action(obs)
            return (label if self.rng.random() < beta else self.learner_action(obs)), label
    """))
    f.write_text(src)
    manifest = todo_manifest()
    files = find_student_files(sub, [m.file_name for m in manifest.values()])
    spec = {"agent": "dagger", "env": "cheetah", "config": {
        "demo_episodes": 1, "epochs": 1, "rounds": 2, "samples_per_round": 100, "epochs_per_round": 1,
        "max_samples": 1200, "eval_episodes": 1, "final_eval_episodes": 1}}
    scratch, private = make_scratch()
    try:
        ctx = GradingContext(sandbox_policy(1), scratch, private, files, manifest, present={n: True for n in files})
        model, why = train_in_child(ctx, spec, seed=3)
        assert model is not None, why
        import torch

        meta = torch.load(model, weights_only=True)["meta"]
        assert meta["samples"] == 1200 and meta["iteration"] == 3     # the framework's loop: 1000 demo rows + 2 × 100
    finally:
        remove_scratch(scratch)


def test_granted_demos_hold_exactly_the_first_episodes(tmp_path):
    from grader.performance import demo_rows, granted_demos
    from learning.demos import load_demos

    assert granted_demos("cheetah", 0, tmp_path) == []
    (path, rel), = granted_demos("hopper", 2, tmp_path)
    assert rel == "data/demos/hopper.npz"
    demos, full = load_demos(path), load_demos(ROOT / "data" / "demos" / "hopper.npz")
    assert demos.num_episodes == 2 and len(demos.dataset(2)) == demo_rows("hopper", 2)
    assert np.array_equal(demos.dataset(2).obs, full.dataset(2).obs)


def test_a_checks_workspace_holds_the_reference_of_the_other_methods_only():
    """grader_ref/<owner>_<method>.py holds one reference function (its module's imports kept): the collection check's
    workspace has the reference select_action, never the reference collect_round it tests."""
    from grader.context import reference_modules
    from grader.workspace import reference_source

    mods = reference_modules("dagger", ("select_action", "aggregate", "train_round", "compute_loss", "fit"))
    assert mods["select_action"] == "dagger_select_action" and mods["fit"] == "bc_fit"
    texts = {m: reference_source(m) for m in mods.values()}
    for method, mod in mods.items():
        defs = [ln for ln in texts[mod].splitlines() if ln.startswith("def ")]
        assert len(defs) == 1 and defs[0].startswith(f"def {method}("), (mod, defs)
    assert not any("def collect_round" in t for t in texts.values())
    ns = {}
    exec(compile(texts["dagger_select_action"], "ref", "exec"), ns)     # imports kept: it runs on its own
    assert callable(ns["select_action"])

"""No reference solution in what students get (issue 25, item 2): no line of a reference solution's body
(grader/solution/*_solution.py) and no expression of 20 or more characters from one appears in the student files
(learning/bc_agent.py, dagger_agent.py, dart_agent.py: hints and code) or in a1/README.md, nor in their copies in the
student release of each scope (there only the scope's TODO methods count: the core release holds the reference of the
others on purpose).

Fragments: tools/make_release.body_fragments (each code line; each run of tokens within one logical line that is a
whole expression). Not counted (tools/make_release.leak_fragments), because the hints must be able to name the
framework: bare dotted names (``self.cfg.epochs_per_round``), calls of an agent method with its own parameters' names
(``self.beta(round_index)``), and fragments the framework's own shipped code or docstrings hold
(``self.expert_action(obs)``). Instructor-only (needs grader/solution): tools/make_release.py EXCLUDEs it.
"""
from __future__ import annotations

import inspect

import pytest

from grader.rubric import handout_for_scope
from grader.solution import dart_solution
from tools.make_release import (HANDOUTS, STUDENT_FILES, manifests, body_fragments, contains, find_leaks, leak_fragments, normalize,
                                reference_body, release_source, solution_fragments, student_text)

from conftest import ROOT

HANDOUT = "a1/README.md"


def test_fragments_are_whole_expressions_of_the_reference():
    lines, exprs = body_fragments(reference_body(dart_solution.noisy_expert_step))
    assert "sigma = self.cfg.noise_std * (self.action_high - self.action_low) / 2.0" in lines
    assert {"self.rng.normal(0.0, 1.0, self.act_dim) * sigma", "self.rng.normal(0.0, 1.0, self.act_dim)",
            "clean + self.rng.normal(0.0, 1.0, self.act_dim) * sigma",
            "self.cfg.noise_std * (self.action_high - self.action_low) / 2.0"} <= exprs
    assert all(len(e) >= 20 for e in exprs)
    # not whole expressions: the middle of an attribute chain, a call's bracket, an argument list, a statement
    assert not {"rng.normal(0.0, 1.0, self.act_dim)", "(0.0, 1.0, self.act_dim)", "self.action_low, self.action_high",
                "return noisy.astype(np.float32), clean"} & exprs
    assert not any(e.endswith(("self.rng.normal", "self.rng")) for e in exprs)
    assert "def " not in reference_body(dart_solution.noisy_expert_step)


def test_comparison_ignores_layout_but_not_word_boundaries():
    assert normalize("min( self.cfg.batch_size ,\n   n )") == normalize("min(self.cfg.batch_size, n)")
    assert normalize(r"self.cfg.samples\_per\_round") == "self.cfg.samples_per_round"     # Markdown escapes
    hay = normalize('last_epoch_loss = float("nan")  # call self.expert_action(obs) here')
    assert not contains(hay, normalize('epoch_loss = float("nan")'))
    assert contains(hay, normalize("self.expert_action(obs)"))


def test_a_planted_expression_is_found_in_any_layout():
    fragments = leak_fragments("full")
    text = (ROOT / "learning" / "dart_agent.py").read_text(encoding="utf-8")
    assert text.count("The executed action must stay") == 1
    planted = text.replace("The executed action must stay", "E.g. clean + self.rng.normal(0.0, 1.0,\n        #   "
                           "self.act_dim) * sigma. The executed action must stay")
    leaks = find_leaks(planted, fragments, "dart_agent.py")
    assert leaks == ["dart_agent.py: dart.noisy_expert_step reference: "
                     "clean+self.rng.normal(0.0,1.0,self.act_dim)*sigma"]
    line = inspect.getsource(dart_solution.collect_round).splitlines()[-1].strip()   # return Dataset(np.array(...
    assert find_leaks(text + f"\n# {line}\n", fragments, "x")


def test_the_framework_vocabulary_is_not_a_leak():
    everything = {normalize(f) for f in solution_fragments("full")}
    kept = set(leak_fragments("full"))
    assert {"self.cfg.epochs_per_round", "self.expert_action(obs)", "self.beta(round_index)"} <= everything - kept
    assert {"self.rng.random()<beta", "dataset.concat(Dataset(visited_obs,expert_labels))",
            "self.policy.dist(obs_n).log_prob(act_n).mean()"} <= kept


def _leaks(texts: dict[str, str], scope: str) -> list[str]:
    fragments = leak_fragments(scope)
    return [leak for where, text in texts.items() for leak in find_leaks(text, fragments, where)]


def test_the_student_files_and_the_handout_leak_no_solution():
    texts = {rel: (ROOT / rel).read_text(encoding="utf-8") for rel in (*STUDENT_FILES, *HANDOUTS)}
    assert _leaks(texts, "full") == []


@pytest.mark.parametrize("scope", ["core", "full"])
def test_the_release_copies_leak_no_solution_of_their_scope(scope, tmp_path):
    """The student files and the handout as the scope's release writes them (tools/make_release.apply_scope's
    transformations), the reference methods outside the scope aside."""
    for spec in manifests("full").values():
        f = tmp_path / "learning" / spec.file_name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(release_source((ROOT / "learning" / spec.file_name).read_text(encoding="utf-8"), spec, scope))
    texts = {rel: student_text(tmp_path / rel, tmp_path, scope) for rel in STUDENT_FILES}
    for handout in HANDOUTS:
        texts[handout] = handout_for_scope((ROOT / handout).read_text(encoding="utf-8"), scope,
                                           assignment=handout.split("/")[0])
    assert _leaks(texts, scope) == []
    if scope == "core":    # the copies do hold the full scope's reference, outside the text that is looked at
        whole = {rel: (tmp_path / rel).read_text(encoding="utf-8") for rel in STUDENT_FILES}
        assert any("bc.fit" in leak for leak in _leaks(whole, "full"))
        assert not any("bc.fit" in leak for leak in _leaks(texts, "full"))

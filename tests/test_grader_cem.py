"""The CEM unit checks (grader/checks_cem/): the reference gets every point and the stub none; each typical bug
loses exactly its own part with feedback naming it; correct alternative styles keep full marks.

Most tests run a check's child job in this process (grader/child/jobs_cem.py's job on a real CEMAgent with the methods under
test, the answer read under the check's schema) instead of a sandboxed child: the scoring is the same and it takes
a fraction of a second. The gradings at the end go through the sandbox once for the reference, the stub and a
submission with one bug in each method.
"""
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader import checks_cem  # noqa: E402
from grader.checks_cem import iteration as iteration_check  # noqa: E402
from grader.checks_cem import refit as refit_check  # noqa: E402
from grader.checks_cem import sample as sample_check  # noqa: E402
from grader.answers import read_answer  # noqa: E402
from grader.context import CheckSpec  # noqa: E402
from grader.grade import grade, hidden_variants  # noqa: E402
from grader.reference_submissions import write_submission  # noqa: E402
from grader.solution import cem_solution  # noqa: E402
from learning.cem_agent import CEMAgent  # noqa: E402


KEYS = ("cem_sample", "cem_refit", "cem_iteration")
SPECS = {s.key: s for s in checks_cem.CHECKS}
REFERENCE = {m: getattr(cem_solution, m) for m in ("sample_candidates", "refit", "search_iteration")}
P = "self.num_params"


def method(src: str):
    """The function a method's source text defines (np and torch in its globals)."""
    ns = {"np": np, "torch": torch}
    exec(textwrap.dedent(src), ns)  # noqa: S102 - the tests' own method texts
    return next(v for k, v in ns.items() if callable(v) and k not in ("np", "torch"))


@pytest.fixture(scope="module")
def harness():
    import grader.child

    return grader.child


def run_in_process(harness, monkeypatch, spec: CheckSpec, methods: dict[str, str]) -> list:
    """Every variant (public and hidden) of ``spec`` with ``methods`` (name → source) over the reference, its child job
    run in this process on a real CEMAgent. Returns the CheckResults."""
    cls = type("CEMAgent", (CEMAgent,), {**REFERENCE, **{m: method(s) for m, s in methods.items()}})
    monkeypatch.setattr(harness.agent, "student_class", lambda job: cls)

    def run_unit(ctx, spec, v, arrays, policies=None, *, schema, tested=(), **job):
        d = Path(tempfile.mkdtemp(dir=Path.cwd()))
        np.savez(d / "in.npz", **arrays)
        (d / "out").mkdir()
        kind = spec.job
        job = {"agent": spec.agent, "kind": kind, "env": v.env, "seed": v.seed, "inputs": str(d / "in.npz"), **job}
        harness.seed_globals(v.seed)             # as the child's main() does
        harness.JOBS[kind](job, str(d / "out"))
        return read_answer((d / "out" / "result.npz").read_bytes(), schema), ""

    monkeypatch.setattr(sys.modules[spec.run.__module__], "run_unit", run_unit)   # the check's own module
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.chdir(tmp)
        for v in every_variant(spec):
            results += spec.run(None, v)
    return results


def every_variant(spec: CheckSpec) -> list:
    """The check's public variants, then its hidden ones."""
    return [*spec.public, *hidden_variants()[spec.key]]


def assert_loses_exactly(results, spec: CheckSpec, part: str | None, words: str) -> None:
    """``part`` (None: every part) gets 0 on every variant with feedback containing ``words``; the others full."""
    for r in results:
        name = r.name.split(" (")[0]
        if part is None or name == part:
            assert r.score == 0, (r.name, r.output)
            assert words.lower() in r.output.lower(), (r.name, r.output)
        else:
            assert r.score == 1, (r.name, r.output)
    assert {r.name.split(" (")[0] for r in results} == {p.name for p in spec.parts}


# ------------------------------------------------------------------------------------------------ reference, stub
@pytest.mark.parametrize("key", KEYS)
def test_reference_gets_every_point_in_process(harness, monkeypatch, key):
    results = run_in_process(harness, monkeypatch, SPECS[key], {})
    assert results and all(r.score == 1 for r in results), [(r.name, r.output) for r in results if r.score < 1]


STUB = {"sample_candidates": "def sample_candidates(self, n):\n    return np.zeros((n, self.num_params))\n",
        "refit": "def refit(self, candidates, scores):\n    return self.mean, self.std\n",
        "search_iteration": "def search_iteration(self):\n    return None\n"}


@pytest.mark.parametrize("key", KEYS)
def test_stub_gets_nothing_and_is_told_to_fill_the_todo(harness, monkeypatch, key):
    results = run_in_process(harness, monkeypatch, SPECS[key], STUB)
    assert_loses_exactly(results, SPECS[key], None, "placeholder")


# ------------------------------------------------------------------------------------------------ sample_candidates
def sample(body: str) -> dict[str, str]:
    return {"sample_candidates": "def sample_candidates(self, n):\n" + textwrap.indent(textwrap.dedent(body), "    ")}


DIST, RNG = "CEM sample: distribution", "CEM sample: self.rng"
SAMPLE_BUGS = {
    "variance": (sample(f"return self.mean + self.std ** 2 * self.rng.standard_normal((n, {P}))"), DIST, "σ²"),
    "sqrt": (sample(f"return self.mean + np.sqrt(self.std) * self.rng.standard_normal((n, {P}))"), DIST, "√σ"),
    "no std": (sample(f"return self.mean + self.rng.standard_normal((n, {P}))"), DIST, "self.std is left out"),
    "no mean": (sample(f"return self.std * self.rng.standard_normal((n, {P}))"), DIST, "mean is left out"),
    "uniform": (sample(f"return self.mean + self.std * self.rng.uniform(-1, 1, (n, {P}))"), DIST, "not Gaussian"),
    "uniform01": (sample(f"return self.mean + self.std * self.rng.random((n, {P}))"), DIST, "not Gaussian"),
    "one eps for all candidates": (sample(f"return self.mean + self.std * self.rng.standard_normal({P}) "
                                          "* np.ones((n, 1))"), DIST, "one ε shared by all candidates"),
    "one eps for all coordinates": (sample("return self.mean + self.std * self.rng.standard_normal((n, 1))"), DIST,
                                    "same ε"),
    "squeezed": (sample(f"return np.squeeze(self.mean + self.std * self.rng.standard_normal((n, {P})))"), DIST,
                 "sample_candidates(1) returned shape"),
    "numpy global": (sample(f"return self.mean + self.std * np.random.randn(n, {P})"), RNG, "global"),
    "torch global": (sample(f"return self.mean + self.std * torch.randn(n, {P}, dtype=torch.float64).numpy()"), RNG,
                     "global"),
    "own generator": (sample(f"rng = np.random.default_rng(self.cfg.seed)\n"
                             f"return self.mean + self.std * rng.standard_normal((n, {P}))"), RNG,
                      "created (with a fixed seed) inside sample_candidates"),
    "own generator kept": (sample(f"if not hasattr(self, '_gen'):\n    self._gen = np.random.default_rng(0)\n"
                                  f"return self.mean + self.std * self._gen.standard_normal((n, {P}))"), RNG,
                           "another self.rng seed gave the same candidates"),
}


@pytest.mark.parametrize("bug", SAMPLE_BUGS)
def test_each_sampling_bug_loses_exactly_its_part(harness, monkeypatch, bug):
    methods, part, words = SAMPLE_BUGS[bug]
    assert_loses_exactly(run_in_process(harness, monkeypatch, SPECS["cem_sample"], methods), SPECS["cem_sample"],
                         part, words)


SAMPLE_STYLES = {
    "rng.normal": sample(f"return self.rng.normal(self.mean, self.std, size=(n, {P}))"),
    "a loop": sample(f"return np.array([self.mean + self.std * self.rng.standard_normal({P}) for _ in range(n)])"),
    "transposed draws": sample(f"return (self.mean[:, None] + self.std[:, None] * self.rng.standard_normal(({P}, "
                               "n))).T"),
    "float32": sample(f"return (self.mean + self.std * self.rng.standard_normal((n, {P}))).astype(np.float32)"),
    "torch from self.rng": sample(f"g = torch.Generator().manual_seed(int(self.rng.integers(2**31)))\n"
                                  f"eps = torch.randn(n, {P}, generator=g, dtype=torch.float64)\n"
                                  "return torch.as_tensor(self.mean) + torch.as_tensor(self.std) * eps"),
}


def test_the_sampling_tolerance_is_far_from_the_bugs():
    """Over many seeds a right sampler passes; the statistics keep their margins on the variants' inputs."""
    spec = SPECS["cem_sample"]
    for v in every_variant(spec):
        p = sample_check.linear_params(v.env)
        mean, std, _ = sample_check._sample_inputs(v, p)
        for seed in range(20):
            x = mean + std * np.random.default_rng(seed).standard_normal((v.batch, p))
            assert sample_check._distribution_problem(x, mean, std) == "", (v, seed)


# ------------------------------------------------------------------------------------------------ refit
def refit(body: str) -> dict[str, str]:
    return {"refit": "def refit(self, candidates, scores):\n" + textwrap.indent(textwrap.dedent(body), "    ")}


K, FLOOR = "self.cfg.elite_count", "self.cfg.min_std"
BEST = f"e = candidates[np.argsort(scores)[-{K}:]]\n"
ELITES, SPREAD = "CEM refit: elites", "CEM refit: std and floor"
REFIT_BUGS = {
    "lowest": (refit(f"e = candidates[np.argsort(scores)[:{K}]]\nreturn e.mean(0), np.maximum(e.std(0), {FLOOR})"),
               ELITES, "lowest-scoring"),
    "K-1": (refit(f"e = candidates[np.argsort(scores)[-{K} + 1:]]\nreturn e.mean(0), np.maximum(e.std(0), {FLOOR})"),
            ELITES, "off by one"),
    "K+1": (refit(f"e = candidates[np.argsort(scores)[-{K} - 1:]]\nreturn e.mean(0), np.maximum(e.std(0), {FLOOR})"),
            ELITES, "off by one"),
    "K = 10": (refit(f"e = candidates[np.argsort(scores)[-10:]]\nreturn e.mean(0), np.maximum(e.std(0), {FLOOR})"),
               ELITES, "the 10 best candidates, not of K"),
    "first K": (refit(f"e = candidates[:{K}]\nreturn e.mean(0), np.maximum(e.std(0), {FLOOR})"), ELITES,
                "first K"),
    "elites by |score|": (refit(f"e = candidates[np.argsort(np.abs(scores))[-{K}:]]\n"
                                f"return e.mean(0), np.maximum(e.std(0), {FLOOR})"), ELITES, "ranked"),
    "elites by rank of -score² (float32)": (refit(f"e = candidates[np.argsort(-scores ** 2)[:{K}]].astype(np.float32)\n"
                                                  f"return e.mean(0), np.maximum(e.std(0), {FLOOR})"), ELITES,
                                            "ranked"),
    "all": (refit(f"return candidates.mean(0), np.maximum(candidates.std(0), {FLOOR})"), ELITES,
            "mean of all candidates"),
    "ddof=1": (refit(BEST + f"return e.mean(0), np.maximum(e.std(0, ddof=1), {FLOOR})"), SPREAD, "ddof=1"),
    "variance": (refit(BEST + f"return e.mean(0), np.maximum(e.var(0), {FLOOR})"), SPREAD, "variance"),
    "no floor": (refit(BEST + "return e.mean(0), e.std(0)"), SPREAD, "floor min_std"),
    "floor added": (refit(BEST + f"return e.mean(0), e.std(0) + {FLOOR}"), SPREAD, "added to the std"),
    "np.minimum": (refit(BEST + f"return e.mean(0), np.minimum(e.std(0), {FLOOR})"), SPREAD, "np.minimum"),
    "floor 0.01": (refit(BEST + "return e.mean(0), np.maximum(e.std(0), 0.01)"), SPREAD, "floored at 0.01"),
    "old mean": (refit(BEST + f"return e.mean(0), np.maximum(np.sqrt(((e - self.mean) ** 2).mean(0)), {FLOOR})"),
                 SPREAD, "old self.mean"),
    "std of all": (refit(BEST + f"return e.mean(0), np.maximum(candidates.std(0), {FLOOR})"), SPREAD,
                   "all candidates"),
    "assigns": (refit(BEST + f"self.mean, self.std = e.mean(0), np.maximum(e.std(0), {FLOOR})"), None,
                "assigns self.mean / self.std itself"),
    "swapped": (refit(BEST + f"return np.maximum(e.std(0), {FLOOR}), e.mean(0)"), None, "(std, mean)"),
}


@pytest.mark.parametrize("bug", REFIT_BUGS)
def test_each_refit_bug_loses_exactly_its_part(harness, monkeypatch, bug):
    methods, part, words = REFIT_BUGS[bug]
    assert_loses_exactly(run_in_process(harness, monkeypatch, SPECS["cem_refit"], methods), SPECS["cem_refit"], part,
                         words)


REFIT_STYLES = {
    "descending argsort (other tie-breaking)": refit(f"e = candidates[np.argsort(scores)[::-1][:{K}]]\n"
                                                    f"m = e.mean(0)\n"
                                                    f"return m, np.maximum(np.sqrt(((e - m) ** 2).mean(0)), {FLOOR})"),
    "argpartition": refit(f"e = candidates[np.argpartition(-scores, {K} - 1)[:{K}]]\n"
                          f"return e.mean(0), np.maximum(e.std(0), {FLOOR})"),
    "sorted loop": refit(f"idx = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[:{K}]\n"
                         "e = np.stack([candidates[i] for i in idx])\n"
                         f"return list(e.mean(0)), list(np.clip(e.std(0), {FLOOR}, None))"),
    "torch float32": refit(f"c = torch.as_tensor(candidates, dtype=torch.float32)\n"
                           f"e = c[torch.topk(torch.as_tensor(scores), {K}).indices]\n"
                           f"return e.mean(0), torch.clamp(e.std(0, unbiased=False), min={FLOOR})"),
    "in place and returned": refit(BEST + f"self.mean = e.mean(0)\nself.std = np.maximum(e.std(0), {FLOOR})\n"
                                   "return self.mean, self.std"),
}


@pytest.mark.parametrize("key, style", [*(("cem_sample", s) for s in SAMPLE_STYLES),
                                        *(("cem_refit", s) for s in REFIT_STYLES)])
def test_correct_styles_keep_every_point(harness, monkeypatch, key, style):
    """Other correct ways to write sample_candidates and refit keep every point on every variant."""
    styles = SAMPLE_STYLES if key == "cem_sample" else REFIT_STYLES
    results = run_in_process(harness, monkeypatch, SPECS[key], styles[style])
    assert all(r.score == 1 for r in results), [(r.name, r.output) for r in results if r.score < 1]


def test_refit_cases_have_what_the_diagnoses_need():
    """Some coordinates' elite std lies below the floor and others above; the tie case's boundary is tie-free."""
    spec = SPECS["cem_refit"]
    for v in every_variant(spec):
        cases = refit_check.refit_cases(v, sample_check.linear_params(v.env))
        assert [c.k for c in cases][1] == 1 and all(c.k != 10 and c.min_std != 0.01 for c in cases)
        raw = cases[0].cands[refit_check.best_rows(cases[0].scores, cases[0].k)].std(axis=0)
        assert (raw < cases[0].min_std).any() and (raw > 2 * cases[0].min_std).any()
        tie = cases[2]
        s = np.sort(tie.scores)[::-1]
        assert len(set(s)) < len(s) and s[tie.k - 2] > s[tie.k - 1] > s[tie.k] > s[tie.k + 1]


def test_the_rows_a_mean_averages_are_recovered_whatever_chose_them():
    """A wrong choice of elites costs only the elites part: the std part is judged on the rows the returned mean
    averages, found from the mean alone (any subset, float32 rounding included), and nothing else is taken for one."""
    spec = SPECS["cem_refit"]
    rng = np.random.default_rng(0)
    for v in every_variant(spec):
        for c in refit_check.refit_cases(v, sample_check.linear_params(v.env)):
            for size in (1, c.k, c.n // 2, c.n):
                rows = np.sort(rng.choice(c.n, size, replace=False))
                mean = c.cands[rows].astype(np.float32).mean(axis=0).astype(np.float64)
                assert np.array_equal(refit_check.averaged_rows(c, mean), rows), (v, c.k, size)
            weighted = rng.dirichlet(np.ones(c.n)) @ c.cands
            assert refit_check.averaged_rows(c, weighted) is None
            assert refit_check.averaged_rows(c, c.old_mean) is None


# ------------------------------------------------------------------------------------------------ search_iteration
def iteration(body: str) -> dict[str, str]:
    return {"search_iteration": "def search_iteration(self):\n" + textwrap.indent(textwrap.dedent(body), "    ")}


SAMPLED = "candidates = self.sample_candidates(self.cfg.population)\n"
SCORED = SAMPLED + "scores = np.array([self.evaluate_candidate(t) for t in candidates])\n"
STORE = "self.mean, self.std = self.refit(candidates, scores)\n"
EVALS, STORED = "CEM iteration: evaluation and scores", "CEM iteration: distribution stored"
ITERATION_BUGS = {
    "not stored": (iteration(SCORED + "self.refit(candidates, scores)\nreturn scores"), STORED, "unchanged"),
    "None returned": (iteration(SCORED + STORE), EVALS, "returns None"),
    "sorted": (iteration(SCORED + STORE + "return np.sort(scores)"), EVALS, "sorted ascending"),
    "population 50": (iteration("candidates = self.sample_candidates(50)\n"
                                "scores = np.array([self.evaluate_candidate(t) for t in candidates])\n"
                                + STORE + "return scores"), EVALS, "the population is self.cfg.population"),
    "evaluated twice": (iteration(SCORED + "best = max(candidates, key=self.evaluate_candidate)\n" + STORE
                                  + "return scores"), EVALS, "evaluated twice"),
    "reversed order": (iteration(SAMPLED + "scores = np.array([self.evaluate_candidate(t) for t in "
                                 "candidates[::-1]])[::-1]\n" + STORE + "return scores"), EVALS, "another order"),
    "sampled twice": (iteration(SCORED + "self.mean, self.std = self.refit(self.sample_candidates("
                                "self.cfg.population), scores)\nreturn scores"), STORED, "second population"),
}


@pytest.mark.parametrize("bug", ITERATION_BUGS)
def test_each_iteration_bug_loses_exactly_its_part(harness, monkeypatch, bug):
    methods, part, words = ITERATION_BUGS[bug]
    spec = SPECS["cem_iteration"]
    assert_loses_exactly(run_in_process(harness, monkeypatch, spec, methods), spec, part, words)


ITERATION_STYLES = {
    "a list": iteration(SAMPLED + "scores = [self.evaluate_candidate(t) for t in candidates]\n"
                        "self.mean, self.std = self.refit(candidates, np.array(scores))\nreturn scores"),
    "apply_along_axis": iteration(SAMPLED + "scores = np.apply_along_axis(self.evaluate_candidate, 1, candidates)\n"
                                  + STORE + "return scores"),
    "a loop": iteration(SAMPLED + "scores = np.zeros(len(candidates))\nfor i in range(len(candidates)):\n"
                        "    scores[i] = self.evaluate_candidate(candidates[i])\n"
                        "mean, std = self.refit(candidates, scores)\nself.mean = mean\nself.std = std\n"
                        "return scores"),
}


@pytest.mark.parametrize("style", ITERATION_STYLES)
def test_correct_iteration_styles_keep_every_point(harness, monkeypatch, style):
    results = run_in_process(harness, monkeypatch, SPECS["cem_iteration"], ITERATION_STYLES[style])
    assert all(r.score == 1 for r in results), [(r.name, r.output) for r in results if r.score < 1]


# ------------------------------------------------------------------------------------------------ gradings
def unit_scores(report) -> dict[str, float]:
    return {t.name: t.score for t in report.tests if "unit" in t.tags}


def test_points_of_the_checks():
    assert sum(p.points for k in ("cem_sample", "cem_refit") for p in SPECS[k].parts) == 15
    assert sum(p.points for s in checks_cem.CHECKS for p in s.parts) == 20


@pytest.mark.slow
def test_gradings_reference_full_stub_none_one_bug_per_method(tmp_path):
    """Through the sandbox: the reference gets 20 of 20 (full scope), the stub 0 of 15 (core scope: no iteration
    check), and one bug in each method costs exactly its part (3 + 5 + 3 points)."""
    ref = grade(write_submission(tmp_path / "ref", scope="full", assignment="a2"), include_performance=False,
                only=set(KEYS), scope="full", assignment="a2")
    assert (ref.score, ref.max_score) == (20, 20), [(t.name, t.output) for t in ref.tests if t.score < t.max_score]
    stub = grade(write_submission(tmp_path / "stub", reference=False, scope="core", assignment="a2"),
                 include_performance=False, only=set(KEYS), scope="core", assignment="a2")
    assert (stub.score, stub.max_score) == (0, 15)
    assert not any("cem_iteration" in t.tags for t in stub.tests)
    bugs = {"cem.sample_candidates": SAMPLE_BUGS["variance"][0]["sample_candidates"],
            "cem.refit": REFIT_BUGS["ddof=1"][0]["refit"],
            "cem.search_iteration": ITERATION_BUGS["sorted"][0]["search_iteration"]}
    buggy = grade(write_submission(tmp_path / "bugs", methods=bugs, scope="full", assignment="a2"),
                  include_performance=False, only=set(KEYS), scope="full", assignment="a2")
    lost = {name: ref_score - unit_scores(buggy)[name] for name, ref_score in unit_scores(ref).items()
            if unit_scores(buggy)[name] < ref_score}
    assert sorted({n.split(" (")[0] for n in lost}) == sorted([DIST, SPREAD, EVALS])
    assert buggy.score == 20 - 3 - 5 - 3
    again = grade(write_submission(tmp_path / "bugs2", methods=bugs, scope="full", assignment="a2"),
                  include_performance=False, only=set(KEYS), scope="full", assignment="a2")
    assert [(t.name, t.score, t.output) for t in again.tests] == [(t.name, t.score, t.output) for t in buggy.tests]


@pytest.mark.parametrize("bug", [None, "sampled twice", "reversed order"])
def test_a_release_self_check_judges_the_iteration_on_the_students_own_draws(harness, monkeypatch, bug):
    """In a student release the child runs the student's own sample_candidates (no reference code): a correct sampler
    of another style than the reference's keeps the iteration's points, and the iteration's bugs are still named."""
    monkeypatch.setattr(iteration_check, "have_solutions", lambda: False)
    methods = {**SAMPLE_STYLES["transposed draws"], **(ITERATION_BUGS[bug][0] if bug else {})}
    spec = SPECS["cem_iteration"]
    results = run_in_process(harness, monkeypatch, spec, methods)
    if bug is None:
        assert all(r.score == 1 for r in results), [(r.name, r.output) for r in results if r.score < 1]
    else:
        assert_loses_exactly(results, spec, ITERATION_BUGS[bug][1], ITERATION_BUGS[bug][2])
    # the grader's copy runs the reference sampler in the child and trusts only its own draw of it: a child whose
    # population is not that draw gets nothing
    monkeypatch.setattr(iteration_check, "have_solutions", lambda: True)
    if bug is None:
        assert all(r.score == 0 for r in run_in_process(harness, monkeypatch, spec, methods))

"""What every check shares: the grading context (sandbox, student files, limits, TODO manifest), the seeded variant
of a unit check, a scored part, a unit check's declaration (:class:`CheckSpec`), and running one unit check's
child and reading its arrays.

Every check builds its inputs from its own seeded generator, runs student code only in a child process
(:mod:`grader.runner`) in a private workspace (:mod:`grader.workspace`), reads back plain arrays and scores them
against references computed in the grader. A check returns :class:`CheckResult` items (one per scored part) so that
one bug costs only its part.
"""
from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from grader.answers import AnswerError, Schema, read_answer
from grader.feedback import describe_error
from grader.isolation import SandboxError, SandboxPolicy
from grader.runner import ChildResult, read_output, run_child
from grader.workspace import CheckDir, build_workspace, new_check_dir, remove_check_dir
from learning.agents import TodoFile, assignment_of, todo_manifest, todo_owner
from learning.checkpoint import save_policy
from learning.policy import GaussianMLPPolicy
from util.config import REPO_ROOT


@dataclass
class CheckResult:
    name: str
    score: float
    max_score: float
    output: str
    visibility: str = "visible"
    tags: list[str] = field(default_factory=list)
    number: str = ""

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score - 1e-9


@dataclass
class Variant:
    """One seeded instance of a unit check (public variants ship to students; hidden ones do not)."""

    seed: int
    env: str
    batch: int
    hidden: bool = False

    @property
    def tag(self) -> str:
        """How the gradebook names this variant in its parts' names: "public variant, hopper"."""
        return f"{'hidden' if self.hidden else 'public'} variant, {self.env}"


@dataclass
class GradingContext:
    """What the checks need: the sandbox, the student's files, which are usable, limits, the TODO manifest."""

    policy: SandboxPolicy
    scratch: Path                     # sandbox uids may traverse it (each check folder is private)
    private: Path                     # grader-only folder
    student_files: dict[str, Path | None]
    manifest: dict[str, TodoFile]     # agent → its file, class and TODO methods
    present: dict[str, bool] = field(default_factory=dict)    # student file → present and importable
    problems: dict[str, str] = field(default_factory=dict)    # student file → why it is unusable
    unit_timeout: float = 60.0
    train_timeout: float = 600.0
    mem_mb: int = 2048

    def line_counts(self) -> dict[str, int]:
        """Student file name → its number of lines (a feedback line number must exist in the file)."""
        counts = {}
        for name, path in self.student_files.items():
            try:
                counts[name] = path.read_bytes().count(b"\n") + 1 if path is not None else 0
            except OSError:
                counts[name] = 0
        return counts

    def agent_job(self, agent: str, **extra: Any) -> dict[str, Any]:
        spec = self.manifest[agent]
        return {"agent": agent, "module": spec.module, "class_name": spec.class_name, "todo": list(spec.methods),
                **extra}

    def run(self, d: CheckDir, job: dict, timeout: float, references: dict[str, str] | None = None,
            data: list[Path | tuple[Path, str]] | None = None, oracle: dict | None = None,
            env_server: dict | None = None) -> ChildResult:
        """Build ``d``'s workspace completely, then run the child on ``job`` (``oracle``: the expert's answers,
        ``env_server``: the environment stepped by the supervisor; see grader.runner.run_child)."""
        job = dict(job, reference=dict(references or {}))
        build_workspace(d, self.student_files, sorted(set((references or {}).values())),
                        [*env_files(), *(data or [])])
        return run_child(self.policy, d, self.private, job, timeout, self.mem_mb, oracle=oracle,
                         env_server=env_server)


SOLUTION_DIR = REPO_ROOT / "grader" / "solution"     # absent from the student release


def env_files() -> list[Path]:
    return sorted((REPO_ROOT / "data" / "envs").glob("*.yaml"))


SOLUTIONS = REPO_ROOT / "grader" / "solution"


def have_solutions() -> bool:
    """The reference solutions are here (the instructors' copy); a student release has none (tools/make_release.py),
    and its own learning/*_agent.py hold the reference of the TODO methods outside its scope instead."""
    return SOLUTIONS.is_dir()


def reference_modules(agent: str, methods: tuple[str, ...]) -> dict[str, str]:
    """``agent``'s TODO method → the workspace module ``grader_ref/<owner>_<method>`` holding its reference and nothing
    else (grader.workspace.reference_source); none in a student release, whose child keeps the framework's own
    methods (the reference outside the release's scope)."""
    if not have_solutions():
        return {}
    return {m: f"{todo_owner(agent, m)}_{m}" for m in methods}


def read_arrays(res: ChildResult, show_message: bool, schema: Schema) -> tuple[dict[str, np.ndarray] | None, str]:
    """Arrays written by the child, checked against ``schema`` (grader.answers), or (None, reason in the grader's
    words)."""
    err = read_output(res, "error.json", 64 * 1024)
    if err is not None:
        return None, describe_error(err, show_message)
    if not res.finished:
        return None, res.message()
    raw = read_output(res, "result.npz")
    if raw is None:
        return None, "no result was written"
    try:
        return read_answer(raw, schema), ""
    except AnswerError as e:
        return None, f"{e}: the answer is not what the grader's harness writes (did your code write its files?)"


def run_unit(ctx: GradingContext, spec: CheckSpec, v: Variant, arrays: dict[str, np.ndarray],
             policies: dict[str, GaussianMLPPolicy] | None = None, *, schema: Schema, tested: tuple[str, ...] = (),
             **job: Any) -> tuple[dict[str, np.ndarray] | None, str]:
    """Run check ``spec``'s child on variant ``v`` (the job ``spec.job`` of its agent): ``arrays`` go to in.npz,
    each policy to <key>.pt (its path is the job's ``key``); its answer must match ``schema`` (what the job in
    grader/child/ writes; see grader.answers).

    ``tested``: the TODO methods under test (the student's); every other TODO method the agent runs is the
    reference's, so that a mistake elsewhere costs this check nothing. Empty: the file's methods in the scope are
    the student's and the checks' jobs call no other TODO method, so no reference code is needed. (In a student
    release, which has no reference solutions, every method of the file in the scope is the student's: its
    self-check cannot isolate ``tested``.) When reference code runs (it sits in the workspace, readable by the
    student's code), an exception's message is not shown, only its name and line (grader.feedback), as in the
    performance checks."""
    agent, kind = spec.agent, spec.job
    file_name = ctx.manifest[agent].file_name
    if not ctx.present.get(file_name, False):
        return None, ctx.problems.get(file_name, f"learning/{file_name} is missing from the submission")
    d = new_check_dir(ctx.scratch, kind)
    try:
        for key, pol in (policies or {}).items():
            save_policy(d.inputs / f"{key}.pt", pol, {})
            job[key] = str(d.inputs / f"{key}.pt")
        np.savez(d.inputs / "in.npz", **arrays)
        job = ctx.agent_job(agent, kind=kind, env=v.env, seed=v.seed, inputs=str(d.inputs / "in.npz"), **job)
        if tested and have_solutions():
            job["todo"] = list(tested)
            runs = todo_manifest("full", assignment_of(agent))[agent].all_methods
            others = tuple(m for m in runs if m not in tested)
        else:
            others = ()
        refs = reference_modules(agent, others)
        # the message of an exception is the student's text: not shown where reference code sits in the workspace
        return read_arrays(ctx.run(d, job, ctx.unit_timeout, references=refs), show_message=not refs, schema=schema)
    finally:
        remove_check_dir(d)


T = TypeVar("T")
SCORING_ATTEMPTS = 2        # a check's scoring that raises runs once more before it costs the submission anything


def twice(fn: Callable[[], T], what: str) -> T:
    """``fn()``; if it raises (anything but SandboxError), ``fn()`` once more, and the second failure propagates.

    For the grader's own side of a check (scoring a unit check's answer, evaluating a trained model): a forged
    answer or a malformed model raises again, the same way, and costs its check as before; a rare fault of the
    grading process itself (CI once saw a SystemError while scoring the reference) does not take a correct
    submission's points unless it strikes twice. Each failure's traceback goes to this process's stderr, the TA's log,
    never to the feedback. ``what`` names the work in that log."""
    for attempt in range(1, SCORING_ATTEMPTS + 1):
        try:
            return fn()
        except SandboxError:
            raise
        except Exception as e:  # noqa: BLE001 - logged, then retried or re-raised
            tb = "".join(traceback.format_exception(e))
            print(f"[grader] {what}, attempt {attempt} of {SCORING_ATTEMPTS}: raised {type(e).__name__}\n{tb}",
                  file=sys.stderr, flush=True)
            if attempt == SCORING_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Part:
    """One scored part of a unit check: its gradebook name, its points (split evenly over the check's variants) and
    its rubric row in grader/README.md ("what is verified")."""

    name: str
    points: float
    rubric: str


@dataclass(frozen=True)
class CheckSpec:
    """The one declaration of a unit check, written next to its parent code (grader/checks_<agent>.py) and collected
    by grader/grade.py (``CHECK_MODULES``).

    ``key`` names the check (tags, ``--only``, the hidden variants' keys) and its child's job in grader/child/
    (``JOBS``); ``run(ctx, v)`` scores one variant and returns one :class:`CheckResult` per part, in ``parts`` order;
    ``public`` the variants shipped to students (hidden ones: grader/hidden/variants.py, keyed by
    ``key``); ``handout`` the rubric row of a1/README.md that stands for the whole check, (name, text), or None
    when the handout lists the parts (``handout_parts``: part name → text)."""

    key: str
    agent: str
    run: Callable[[GradingContext, Variant], list[CheckResult]]
    parts: tuple[Part, ...]
    public: tuple[Variant, ...]
    handout: tuple[str, str] | None = None
    handout_parts: tuple[tuple[str, str], ...] = ()
    batch_in_name: bool = False       # the parts' names show the variant's batch size
    methods: tuple[str, ...] = ()     # the TODO methods it tests (the check runs in the scopes where they are TODOs)

    @property
    def job(self) -> str:
        """The child's job (grader/child/ ``JOBS``) that runs this check: the check's key."""
        return self.key

    def in_scope(self, manifest: dict[str, TodoFile]) -> bool:
        """The student writes every method this check tests in the manifest's scope (a manifest of another
        assignment holds none of them)."""
        return self.agent in manifest and all(m in manifest[self.agent].methods for m in self.methods)

    def points(self) -> dict[str, float]:
        """Part name → points (all variants together)."""
        return {p.name: p.points for p in self.parts}

    def part_names(self, v: Variant) -> list[str]:
        """The scored parts on variant ``v`` (names are the gradebook's columns)."""
        tag = v.tag + (f", batch {v.batch}" if self.batch_in_name else "")
        return [f"{p.name} ({tag})" for p in self.parts]


def manifest_json(manifest: dict[str, TodoFile]) -> dict[str, dict[str, Any]]:
    return {k: {"module": v.module, "class_name": v.class_name, "methods": list(v.methods)}
            for k, v in manifest.items()}

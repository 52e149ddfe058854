#!/usr/bin/env python
"""Write the student release of this repository to OUT, for one scope, and verify it.

Left out: reference solutions (grader/solution), hidden checks (grader/hidden), calibration
(grader/calibrate.py, grader/thresholds.yaml), instructor tools (benchmarks, release/packaging scripts,
expert installation is kept), runs and outputs. Then, inside OUT: the tests pass, `python -m grader
--self-check` runs and scores the untouched stubs 0, and no solution code of the scope's TODO methods appears in any
file.

    python tools/make_release.py ../a1-student-release --scope core

The scope (learning.agents.SCOPES; default full) is what the students write: in the release's learning/*_agent.py
the TODO methods outside it hold the reference solution (with the stub's docstring, without the TODO banner) and the
module docstring's "Methods to edit" lists the scope's; learning/agents.py's DEFAULT_SCOPE is the scope (so
`python -m grader --self-check` grades it); a1/README.md shows the scope's rubric and heading total
(grader/rubric.py) and keeps only its own `<!-- scope:... -->` sections.
"""
from __future__ import annotations

import argparse
import ast
import inspect
import io
import json
import keyword
import re
import shutil
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path
from typing import Callable

from learning.agents import ASSIGNMENTS, SCOPES, TodoFile, todo_manifest

ROOT = Path(__file__).resolve().parent.parent

INCLUDE = ["README.md", "requirements.txt", "run.py", "pyproject.toml", ".gitignore", "a1", "a2", "data", "envs",
           "learning", "util", "tests", "tools", "grader", ".ci"]
EXCLUDE = ["grader/README.md", "grader/solution", "grader/hidden", "grader/calibrate.py", "grader/thresholds.yaml",
           "grader/batch.py", "grader/reference_submissions.py", "tools/make_release.py", "tools/make_gradescope.py",
           "tools/benchmark_a1.py", "tools/benchmark_a2.py", "tools/benchmark_speed.py",
           "tools/benchmark_grader.py",
           "tools/benchmark_expert_update.py", "tests/instructor", "tests/test_agents.py", "tests/test_grader.py",
           "tests/test_grader_attacks.py", "tests/test_architecture.py", "tests/test_benchmark_tables.py",
           "tests/test_grader_paths.py", "tests/test_grader_redteam.py", "tests/test_grader_splice.py",
           "tests/test_grader_calibrate.py", "tests/test_yardstick.py", "tests/yardstick_table.py",
           "tests/fixtures/yardstick", "tests/test_batch_dask.py", "tests/test_batch_robust.py", "tests/test_report.py",
           "grader/report.py", "grader/distributed.py", "grader/rubric.py", "tests/test_grader_rubric.py",
           "tests/test_optim.py", "tests/test_no_solution_leak.py", "tests/test_release_scope.py",
           "tests/test_grader_fit.py", "tests/test_grader_collect.py", "tests/test_grader_round.py",
           "tests/fixtures/release1", "tests/fixtures/release2",   # earlier releases' agent files (grader tests)
           "tests/test_policy_search.py",   # assignment 2's reference checks and untouched-stub checks
           "tests/test_grader_pg.py", "tests/test_grader_cem.py", "tests/test_grader_a2_performance.py",
           "grader/thresholds_a2.yaml",
           "data/training"]   # compact training checkpoints (several MB each) are for instructors retraining experts


def manifests(scope: str) -> dict[str, TodoFile]:
    """Every assignment's student files in ``scope`` (agent → its file): a release ships all assignments."""
    return {agent: spec for a in ASSIGNMENTS for agent, spec in todo_manifest(scope, a).items()}


def scope_references(scope: str = "full") -> dict[tuple[str, str], Callable]:
    """(agent, method) → reference function, for each TODO method written in ``agent``'s own file in ``scope``."""
    from grader.solution import SOLUTION_METHODS

    return {(agent, m): SOLUTION_METHODS[agent][m]
            for agent, spec in manifests(scope).items() for m in spec.methods}


def solution_lines(scope: str = "full") -> list[str]:
    """Distinctive lines of the reference solutions of ``scope``'s TODO methods (what must never appear in its
    release)."""
    lines = set()
    for fn in scope_references(scope).values():
        source = textwrap.dedent(inspect.getsource(fn))
        body_start = ast.parse(source).body[0].body[0].lineno - 1     # the def line(s), the signature, end here
        for ln in source.splitlines()[body_start:]:
            s = ln.strip()
            if len(s) > 25 and not s.startswith(("#", '"""')):
                lines.add(s)
    return sorted(lines)


# ---------------------------------------------------------------------------- reference fragments (no-leak checks)
MIN_FRAGMENT = 20     # characters (whitespace collapsed) of the shortest reference expression that counts as a leak
STATEMENT_KEYWORDS = {"return", "for", "while", "del", "pass", "break", "continue", "raise", "yield", "assert",
                      "import", "from", "with", "as", "global", "nonlocal", "def", "class", "try", "except", "finally",
                      "elif"}


def normalize(text: str) -> str:
    """The form fragments are compared in: comment markers at line starts (a hint's code may go on over comment
    lines) and Markdown's backslash escapes gone, whitespace runs one space, and no space next to punctuation (so
    ``min(a, n)`` and ``min(a,n)`` are the same, ``call f(x)`` keeps its word break)."""
    text = re.sub(r"(?m)^[ \t]*#+", " ", text.replace("\\_", "_").replace("\\*", "*"))
    return re.sub(r"(?<=\W) | (?=\W)", "", re.sub(r"\s+", " ", text))


def contains(hay: str, fragment: str) -> bool:
    """``fragment`` occurs in ``hay`` (both normalized) as whole words (``epoch_loss`` is not in
    ``last_epoch_loss``)."""
    before = r"(?<!\w)" if re.match(r"\w", fragment) else ""
    after = r"(?!\w)" if re.search(r"\w$", fragment) else ""
    return re.search(before + re.escape(fragment) + after, hay) is not None


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    return True


def _logical_lines(body: str) -> list[list[tokenize.TokenInfo]]:
    """The tokens of each logical line of ``body`` (Python source), without layout tokens and comments."""
    skip = {tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT, tokenize.ENCODING, tokenize.ENDMARKER}
    lines, cur = [], []
    for tok in tokenize.generate_tokens(io.StringIO(body).readline):
        if tok.type == tokenize.NEWLINE:
            lines.append(cur)
            cur = []
        elif tok.type not in skip:
            cur.append(tok)
    return [ln for ln in lines + [cur] if ln]


def reference_body(fn: Callable) -> str:
    """The body of a reference function (its source without the ``def`` line(s) and docstring), dedented."""
    src = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(src).body[0]
    body = node.body[1:] if (isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)) \
        else node.body
    lines = src.splitlines(keepends=True)
    return textwrap.dedent("".join(lines[body[0].lineno - 1:body[-1].end_lineno]))


def body_fragments(body: str, min_chars: int = MIN_FRAGMENT) -> tuple[set[str], set[str]]:
    """(lines, expressions) of a reference body: each code line (stripped), and each contiguous run of tokens within
    one logical line that is a whole Python expression of at least ``min_chars`` characters with its whitespace
    collapsed to single spaces: balanced brackets, it parses with ``ast.parse(mode="eval")``, no statement keyword or
    top-level comma, and it neither starts nor ends inside an attribute chain, a call or an index (so
    ``self.rng.normal(0.0, 1.0, self.act_dim) * sigma`` counts, ``rng.normal(0.0`` and ``(obs_n).log_prob`` do not)."""
    lines = {ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")}
    rows = body.splitlines(keepends=True)
    offsets = [0]
    for r in rows:
        offsets.append(offsets[-1] + len(r))

    def at(pos: tuple[int, int]) -> int:
        return offsets[pos[0] - 1] + pos[1]

    exprs = set()
    for toks in _logical_lines(body):
        for i in range(len(toks)):
            if not _may_start(toks, i):
                continue
            depth = 0
            for j in range(i, len(toks)):
                t = toks[j]
                if (t.type == tokenize.NAME and t.string in STATEMENT_KEYWORDS) or (depth == 0 and t.string == ","):
                    break
                if t.type == tokenize.OP and t.string in "([{":
                    depth += 1
                elif t.type == tokenize.OP and t.string in ")]}":
                    depth -= 1
                    if depth < 0:
                        break
                if depth or (j + 1 < len(toks) and toks[j + 1].string in (".", "(", "[")):
                    continue      # inside brackets, or the expression goes on (an attribute, a call, an index)
                text = re.sub(r"\s+", " ", body[at(toks[i].start):at(t.end)])
                if len(text) >= min_chars and _is_expression(text):
                    exprs.add(text)
    return lines, exprs


BINARY = {"+", "-", "*", "/", "//", "%", "**", "@", "<", ">", "<=", ">=", "==", "!=", "&", "|", "^", "<<", ">>"}


def _may_start(toks: list[tokenize.TokenInfo], i: int) -> bool:
    """An expression may start at token ``i``: not in the middle of an attribute chain, not at a call's or index's
    bracket, not at a binary operator's right-hand side."""
    prev = toks[i - 1] if i else None
    operand_before = prev is not None and ((prev.type == tokenize.NAME and not keyword.iskeyword(prev.string))
                                           or prev.type in (tokenize.NUMBER, tokenize.STRING)
                                           or prev.string in (")", "]"))
    if prev is not None and prev.string == ".":
        return False
    if toks[i].string in ("(", "[") and operand_before:
        return False
    return not (toks[i].type == tokenize.OP and toks[i].string in BINARY and operand_before)


def solution_fragments(scope: str = "full", min_chars: int = MIN_FRAGMENT) -> dict[str, str]:
    """Every line and every expression of >= ``min_chars`` characters of the reference solutions of ``scope``'s TODO
    methods → the method it comes from ("agent.method")."""
    out: dict[str, str] = {}
    for (agent, method), fn in scope_references(scope).items():
        lines, exprs = body_fragments(reference_body(fn), min_chars)
        for frag in sorted(lines | exprs):
            out.setdefault(frag, f"{agent}.{method}")
    return out


DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
STUDENT_FILES = tuple(f"learning/{spec.file_name}" for spec in manifests("full").values())
HANDOUTS = tuple(f"{a}/README.md" for a in ASSIGNMENTS)


def framework_text(root: Path = ROOT) -> str:
    """The framework's shipped Python (learning/, envs/, util/ without the student files), normalized."""
    files = [f for d in ("learning", "envs", "util") for f in sorted((root / d).rglob("*.py"))
             if f.relative_to(root).as_posix() not in STUDENT_FILES]
    return normalize("\n".join(f.read_text(encoding="utf-8") for f in files))


SELF_CALL = re.compile(r"self\.(\w+)\(((?:\w+(?:,\w+)*)?)\)")


def _signature_call(fragment: str) -> bool:
    """``fragment`` (normalized) is ``self.m(p1, p2)``: an agent method called with its own parameters' names."""
    import inspect as _inspect

    from learning.agents import IMITATION_AGENTS, agent_class

    m = SELF_CALL.fullmatch(fragment)
    if m is None:
        return False
    args = m.group(2).split(",") if m.group(2) else []
    for agent in IMITATION_AGENTS:
        fn = getattr(agent_class(agent), m.group(1), None)
        if callable(fn) and list(_inspect.signature(fn).parameters)[1:] == args:
            return True
    return False


def leak_fragments(scope: str = "full", root: Path = ROOT, min_chars: int = MIN_FRAGMENT) -> dict[str, str]:
    """:func:`solution_fragments` of ``scope`` (normalized) without the framework's own vocabulary, which the hints
    must be able to name: a bare dotted name (``self.cfg.epochs_per_round``, ``self.policy.normalize_obs``), a call
    of an agent method with its own parameters' names (``self.beta(round_index)``: its signature, which the student
    file shows), and any fragment that the framework's shipped code or docstrings hold themselves
    (``self.expert_action(obs)``, in learning/imitation.py's docstring; ``self.room(self.cfg.samples_per_round)``, in
    ``run_round``)."""
    public = framework_text(root)
    out: dict[str, str] = {}
    for frag, where in solution_fragments(scope, min_chars).items():
        norm = normalize(frag)
        if not (DOTTED_NAME.fullmatch(norm) or _signature_call(norm) or contains(public, norm)):
            out.setdefault(norm, where)
    return out


def find_leaks(text: str, fragments: dict[str, str], where: str) -> list[str]:
    """The (normalized) ``fragments`` found in ``text``, one line each ("<where>: <agent.method> reference:
    <fragment>"); a fragment inside a longer one that is found too is not repeated."""
    hay = normalize(text)
    found = [f for f in fragments if contains(hay, f)]
    found = [f for f in found if not any(f != g and f in g for g in found)]
    return [f"{where}: {fragments[f]} reference: {f}" for f in sorted(found)]


# ---------------------------------------------------------------------------------------------- the scope's files
def _method_node(source: str, class_name: str, method: str) -> ast.FunctionDef:
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    return item
    raise KeyError(f"{class_name}.{method} not found")


def reference_def(source: str, spec: TodoFile, method: str) -> str:
    """The reference ``def`` of ``spec``'s TODO ``method`` with the stub's docstring (from ``source``, the student
    file), at column 0."""
    from grader.reference_submissions import solution_source

    ref = textwrap.dedent(solution_source(method, spec.agent))
    stub = _method_node(source, spec.class_name, method)
    first = stub.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                  str)):
        return ref
    doc = textwrap.indent(textwrap.dedent("".join(source.splitlines(keepends=True)[first.lineno - 1:first.end_lineno])),
                          "    ")
    lines = ref.splitlines(keepends=True)
    body_start = ast.parse(ref).body[0].body[0].lineno - 1
    return "".join(lines[:body_start]) + doc + "".join(lines[body_start:])


def methods_to_edit(source: str, drop: set[str]) -> str:
    """``source`` whose module docstring's "Methods to edit" list no longer names the methods in ``drop``."""
    lines = source.splitlines(keepends=True)
    out, in_list = [], False
    for ln in lines:
        if ln.startswith("Methods to edit"):
            in_list = True
        elif in_list and ln.startswith((" ", "\t")) and ln.strip():
            if ln.split()[0] in drop:
                continue
        else:
            in_list = False
        out.append(ln)
    return "".join(out)


def release_source(source: str, spec: TodoFile, scope: str) -> str:
    """The student file ``source`` of ``spec`` (the full manifest's entry) as ``scope``'s release ships it: the TODO
    methods outside the scope hold the reference (stub docstring kept, TODO banner gone), and the module docstring
    lists only the scope's methods to edit."""
    from grader.reference_submissions import replace_method

    scoped = manifests(scope)[spec.agent].methods
    outside = [m for m in spec.methods if m not in scoped]
    for m in outside:
        source = replace_method(source, spec.class_name, m, reference_def(source, spec, m))
    return methods_to_edit(source, set(outside))


DEFAULT_SCOPE_LINE = re.compile(r'^DEFAULT_SCOPE = "(\w+)"', re.MULTILINE)


def apply_scope(out: Path, scope: str) -> None:
    """Turn the copied tree ``out`` into ``scope``'s release: student files, DEFAULT_SCOPE, the handout."""
    from grader.rubric import handout_for_scope

    for spec in manifests("full").values():
        f = out / "learning" / spec.file_name
        f.write_text(release_source(f.read_text(encoding="utf-8"), spec, scope), encoding="utf-8")
    agents = out / "learning" / "agents.py"
    text = agents.read_text(encoding="utf-8")
    if len(DEFAULT_SCOPE_LINE.findall(text)) != 1:
        raise ValueError("learning/agents.py must hold one line DEFAULT_SCOPE = \"...\" (the release rewrites it)")
    agents.write_text(DEFAULT_SCOPE_LINE.sub(f'DEFAULT_SCOPE = "{scope}"', text), encoding="utf-8")
    for assignment in ASSIGNMENTS:
        handout = out / assignment / "README.md"
        handout.write_text(handout_for_scope(handout.read_text(encoding="utf-8"), scope, where=f"{assignment}/README.md",
                                             assignment=assignment), encoding="utf-8")


def build(out: Path, scope: str = "full") -> None:
    if out.exists():
        shutil.rmtree(out)          # main() checked that it is an earlier release and --overwrite was given
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for item in INCLUDE:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, out / item, ignore=ignore)
        elif src.is_file():
            (out / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / item)
    for item in EXCLUDE:
        p = out / item
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in (out / "data" / "models").glob("*_train_log.txt"):
        p.unlink()
    apply_scope(out, scope)


def _spliced_lines(f: Path, out: Path, scope: str) -> set[int]:
    """Line numbers (1-based) of ``f`` that hold the reference on purpose: in a student file of ``out``, the TODO
    methods outside ``scope``."""
    rel = f.relative_to(out).as_posix()
    for spec in manifests("full").values():
        if rel == f"learning/{spec.file_name}":
            outside = [m for m in spec.methods if m not in manifests(scope)[spec.agent].methods]
            try:
                source = f.read_text(encoding="utf-8")
                nodes = [_method_node(source, spec.class_name, m) for m in outside]
            except (SyntaxError, KeyError, OSError, UnicodeDecodeError):
                return set()
            return {i for n in nodes for i in range(n.lineno, n.end_lineno + 1)}
    return set()


def find_solution_code(out: Path, scope: str = "full") -> list[str]:
    """Code lines (comments ignored) of any .py file under ``out`` that are lines of the reference solutions of
    ``scope``'s TODO methods (the reference methods outside the scope, which the scope's student files hold, are
    not looked at)."""
    problems = []
    bad = set(solution_lines(scope))
    for f in sorted(out.rglob("*.py")):
        try:
            lines = f.read_text().splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        skip = _spliced_lines(f, out, scope)
        code = {ln.split("#")[0].strip() for i, ln in enumerate(lines, 1)
                if i not in skip and not ln.strip().startswith("#")}
        for ln in sorted(bad & code):
            problems.append(f"solution code in {f.relative_to(out)}: {ln}")
    return problems


def student_text(f: Path, out: Path, scope: str) -> str:
    """``f``'s text without the lines that hold the reference on purpose (:func:`_spliced_lines`)."""
    skip = _spliced_lines(f, out, scope)
    return "".join(ln for i, ln in enumerate(f.read_text(encoding="utf-8").splitlines(keepends=True), 1)
                   if i not in skip)


def find_hint_leaks(out: Path, scope: str = "full") -> list[str]:
    """The reference lines and expressions of ``scope``'s TODO methods (:func:`leak_fragments`) that the student
    files (hints and code, the spliced reference methods aside) or the handout of the tree ``out`` hold."""
    fragments = leak_fragments(scope, out)
    return [leak for rel in (*STUDENT_FILES, *HANDOUTS)
            for leak in find_leaks(student_text(out / rel, out, scope), fragments, rel)]


def _grade_in(out: Path, args: list[str]) -> tuple[dict | None, str]:
    """Run the release's own grader (``python -m grader ARGS --out ...`` inside ``out``): (results.json, why not)."""
    res_path = out / ".selfcheck.json"
    r = subprocess.run([sys.executable, "-m", "grader", *args, "--out", str(res_path)], cwd=out, capture_output=True,
                       text=True, timeout=900)
    try:
        res = json.loads(res_path.read_text()) if r.returncode == 0 else None
    finally:
        res_path.unlink(missing_ok=True)
    return res, r.stderr.strip()[-500:]


def self_check_problems(out: Path) -> list[str]:
    """The release's ``python -m grader --self-check`` runs and scores its untouched stubs 0 (that its checks work at
    all is :func:`reference_problems`'s)."""
    res, err = _grade_in(out, ["--self-check"])
    if res is None:
        return [f"self-check failed: {err}"]
    problems = []
    if res["score"] != 0:
        problems.append(f"self-check gives the untouched stubs {res['score']} points (expected 0)")
    if not any(t["max_score"] > 0 for t in res["tests"]):
        problems.append("self-check ran no scored checks")
    return problems


def reference_problems(out: Path, scope: str) -> list[str]:
    """The release's grader gives the reference solution of ``scope`` (written from this repository) every unit point
    of the public checks."""
    import tempfile

    from grader.reference_submissions import write_submission

    with tempfile.TemporaryDirectory(prefix="release_ref_") as tmp:
        sub = write_submission(Path(tmp) / "reference", scope=scope)
        res, err = _grade_in(out, [str(sub), "--no-performance", "--no-hidden"])
    if res is None:
        return [f"the release's grader failed on the reference solution: {err}"]
    return [f"the release's grader gives the reference {t['score']:g}/{t['max_score']:g} in {t['name']}: "
            f"{t['output'][:200]}" for t in res["tests"] if t["score"] < t["max_score"] - 1e-9]


def verify(out: Path, run_tests: bool = True, scope: str = "full") -> list[str]:
    problems = find_solution_code(out, scope) + find_hint_leaks(out, scope)
    for p in EXCLUDE:
        if (out / p).exists():
            problems.append(f"{p} should not be in the release")
    if DEFAULT_SCOPE_LINE.findall((out / "learning" / "agents.py").read_text(encoding="utf-8")) != [scope]:
        problems.append(f"learning/agents.py's DEFAULT_SCOPE is not {scope!r}")
    problems += self_check_problems(out)
    problems += reference_problems(out, scope)
    py = sys.executable
    if run_tests:
        r = subprocess.run([py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"], cwd=out, capture_output=True,
                           text=True, timeout=1800)
        tail = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else [""]
        print(f"release tests: {tail[0]}")
        if r.returncode != 0:
            problems.append(f"release tests failed: {r.stdout[-1500:]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output folder (must not exist, or be an earlier release with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it holds an earlier release")
    p.add_argument("--skip_tests", action="store_true", help="verify without running the release's test suite")
    p.add_argument("--scope", default="full", choices=SCOPES,
                   help="what the students write: core (the loss, DAgger's action choice and aggregation, the noisy "
                        "step; the loops are the reference's) or full (also the training loop, the collection loops "
                        "and the rounds); default full")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if ROOT in out.parents or out == ROOT:
        print("error: write the release outside this repository", file=sys.stderr)
        return 2
    if out.exists() and any(out.iterdir()):
        if not args.overwrite:
            print(f"error: {out} already exists; pass --overwrite to replace an earlier release, "
                  "or choose another folder", file=sys.stderr)
            return 2
        if not (out / "learning" / "bc_agent.py").is_file() or (out / "grader" / "solution").exists():
            print(f"error: {out} does not look like an earlier student release; refusing to replace it",
                  file=sys.stderr)
            return 2
    try:
        build(out, args.scope)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    problems = verify(out, run_tests=not args.skip_tests, scope=args.scope)
    if problems:
        print("Release verification FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"Wrote and verified the student release ({args.scope} scope) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

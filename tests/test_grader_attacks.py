"""Hostile submissions against the grader's guarantees (grader/README.md, "Threat model").

Each attack is a real submission graded for real (as root in CI: children under sandbox uids). It must earn
nothing, leave nothing running or on disk, and change no other score or file.
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.feedback import describe_error  # noqa: E402
from grader.grade import grade  # noqa: E402
from grader.integrity import manifest  # noqa: E402
from grader.reference_submissions import write_submission  # noqa: E402

from conftest import ROOT, run_cli, run_supervisor, supervisor_spec  # noqa: E402

ROOT_MODE = hasattr(os, "geteuid") and os.geteuid() == 0
UID_BASE = int(os.environ.get("GRADER_SANDBOX_UID_BASE", "64600"))   # set by conftest
STUB_LOSS = "    return torch.zeros((), requires_grad=True)\n"


def sandbox_processes() -> list[str]:
    """Live processes of the sandbox uids the tests' gradings claim from: "pid uid state ppid cmdline" each."""
    from grader.supervisor import _proc_entries, _stat, _uid

    found = []
    for pid in _proc_entries():
        uid, st = _uid(pid), _stat(pid)
        if UID_BASE <= (uid or -1) < UID_BASE + 256 and st is not None and st[0] != "Z":
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
            except OSError:
                cmd = "?"
            found.append(f"{pid} uid {uid} state {st[0]} ppid {st[1]} {cmd}")
    return found


def loss_attack(body: str) -> dict[str, str]:
    """A compute_loss that runs ``body`` (indented 4) then returns the placeholder loss."""
    return {"compute_loss": "def compute_loss(self, obs, expert_actions):\n    import torch\n" + body + STUB_LOSS}


DAEMON = '''    import os, signal, sys, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(s, signal.SIG_IGN)
            try:
                open({pidfile!r}, "w").write(str(os.getpid()))
            except OSError:
                pass
            time.sleep({delay})
            {action}
            os._exit(0)
        os._exit(0)
    time.sleep(0.5)
'''


def daemon(pidfile: str, delay: float, action: str) -> str:
    return DAEMON.format(pidfile=pidfile, delay=delay, action=action)


def by_prefix(results: dict, prefix: str) -> list[dict]:
    return [t for t in results["tests"] if t["name"].startswith(prefix)]


@pytest.mark.slow
def test_daemon_cannot_forge_results_after_the_grader_exits(tmp_path):
    out = tmp_path / "results.json"
    pidfile = f"/tmp/il_attack_pid_{os.getpid()}"
    forge = f'open({str(out)!r}, "w").write(\'{{"score": 1000, "tests": []}}\')'
    sub = write_submission(tmp_path / "sub", loss_attack(daemon(pidfile, 3, forge)))
    p = run_cli("-m", "grader", str(sub), "--out", str(out), "--only", "bc_loss", "--no-hidden", timeout=600)
    assert p.returncode == 0, p.stderr
    time.sleep(5)                                   # the daemon would have acted by now
    data = json.loads(out.read_text())
    assert data["score"] == 0 and by_prefix(data, "BC loss")[0]["score"] == 0
    assert sandbox_processes() == []
    if ROOT_MODE:
        assert not Path(pidfile).exists(), "a file the child left in /tmp survived the check"
    else:
        pid = int(Path(pidfile).read_text())
        assert not Path(f"/proc/{pid}").exists()
        Path(pidfile).unlink()


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_MODE, reason="the ordinary-user mode cannot protect the grader's files (documented)")
def test_daemon_editing_the_grader_changes_no_later_grade(tmp_path):
    before = manifest()
    edit = (f'[open(p, "a").write("\\nBONUS = 15\\n") for p in ({str(ROOT / "grader" / "grade.py")!r}, '
            f'{str(ROOT / "grader" / "thresholds.yaml")!r})]')
    subs = tmp_path / "subs"
    write_submission(subs / "a_mallory", loss_attack(daemon("/tmp/il_attack_edit", 2,
                                                             f"try:\n                {edit}\n"
                                                             "            except OSError:\n                pass")))
    write_submission(subs / "b_alice")
    p = run_cli("-m", "grader", "batch", str(subs), "--csv", str(tmp_path / "g.csv"), "--results_dir",
                str(tmp_path / "res"), "--", "--only", "bc_loss", "--no-hidden", timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    time.sleep(4)
    assert manifest() == before
    alice = json.loads((tmp_path / "res" / "b_alice.json").read_text())
    mallory = json.loads((tmp_path / "res" / "a_mallory.json").read_text())
    assert alice["score"] == 15 and mallory["score"] == 0
    assert sandbox_processes() == []


@pytest.mark.slow
def test_integrity_manifest_voids_a_grade_when_the_tree_changes(tmp_path):
    """Ordinary-user mode: the child runs as the grader's own user and CAN write the tree; the manifest
    catches it, results.json says the grade is void, and the exit status is 3."""
    planted = ROOT / "data" / "envs" / f"zz_attack_{os.getpid()}.yaml"
    sub = write_submission(tmp_path / "sub", loss_attack(f"    open({str(planted)!r}, 'w').write('x: 1')\n"))
    env = dict(os.environ, GRADER_SANDBOX="user")
    try:
        p = subprocess.run([sys.executable, "-m", "grader", str(sub), "--out", str(tmp_path / "r.json"), "--only",
                            "bc_loss", "--no-hidden"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    finally:
        existed = planted.exists()
        planted.unlink(missing_ok=True)
    if existed:
        assert p.returncode == 3, p.stderr
        assert "changed" in p.stderr and planted.name in p.stderr
        data = json.loads((tmp_path / "r.json").read_text())
        assert data["score"] == 0 and "void" in data["output"]
    else:   # could not write there at all (e.g. a read-only checkout): nothing to detect
        assert p.returncode == 0


SEARCH = '''    import gc, os, sys
    found = []
    repo = {repo!r}
    for p in [os.path.join(repo, "grader", "solution", "bc_solution.py"),
              os.path.join(repo, "grader", "thresholds.yaml"),
              os.path.join(repo, "grader", "hidden", "variants.py"),
              os.path.join(repo, "data", "models", "expert_cheetah.pt"),
              os.path.join(repo, ".git", "HEAD"), os.path.join(repo, "learning", "bc_agent.py")]:
        try:
            found.append(p + ":" + open(p, "rb").read(60).decode("latin1"))
        except OSError:
            pass
    for mod in ("grader.solution", "grader_ref.bc_solution", "grader_ref.bc_compute_loss", "grader.hidden.variants"):
        try:
            __import__(mod)
            found.append("import " + mod)
        except Exception:
            pass
    here = os.path.dirname(os.path.abspath(__file__))
    for _ in range(6):
        here = os.path.dirname(here)
        try:
            found += [os.path.join(here, n) for n in os.listdir(here) if n in ("grader", "grader_ref", "solution")]
        except OSError:
            pass
    seen = 0
    for top in ("/tmp", "/work", "/autograder", "/home", "/root", "/srv", "/opt", "/var/tmp", "/dev/shm"):
        for d, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if x not in (".venv", "site-packages", ".git", "proc")]
            seen += len(files)
            for f in files:
                if f in ("bc_solution.py", "variants.py", "thresholds.yaml") or (
                        f.startswith("expert_") and f.endswith(".pt")):
                    path = os.path.join(d, f)
                    try:
                        open(path, "rb").read(1)
                        found.append(path)
                    except OSError:
                        pass
            if seen > 300000:
                break
    for o in gc.get_objects():
        if callable(o) and getattr(o, "__module__", "") and "solution" in str(getattr(o, "__module__", "")):
            found.append("gc " + o.__module__)
    # this installation (its tree, its scratch folders, imports, live objects); other copies elsewhere on the
    # machine are outside the grader's reach (grader/README.md)
    mine = [f for f in found if f.startswith((repo + os.sep, "/tmp/grade_", "import", "gc")) or "/grader_ref" in f]
    raise RuntimeError(("FOUND " + " | ".join(mine)) if mine else "NOTFOUND")
'''


def search_with_a_copy_beside_the_repo(tag: str) -> tuple[str, Path]:
    """(the SEARCH body, a folder beside the repository to plant a readable copy of a solution in): ROOT's name is a
    prefix of the copy's, so only a mount namespace hides it, not a path filter."""
    decoy = ROOT.parent / f"{ROOT.name}_{tag}_copy"
    body = SEARCH.format(repo=str(ROOT)).replace('f.startswith((repo + os.sep,',
                                                 f'f.startswith(({str(decoy) + os.sep!r}, repo + os.sep,')
    assert str(decoy) in body
    return body, decoy


@contextlib.contextmanager
def readable_copy(decoy: Path):
    """A world-readable ``grader/solution/bc_solution.py`` under ``decoy`` for the duration (when the repository's
    parent is writable; otherwise the grader's own tree is still searched)."""
    try:
        (decoy / "grader" / "solution").mkdir(parents=True)
        (decoy / "grader" / "solution" / "bc_solution.py").write_text("# a readable copy\n")
        os.chmod(decoy, 0o755)
    except OSError:
        pass
    try:
        yield
    finally:
        shutil.rmtree(decoy, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_MODE, reason="secrets are only unreadable when the grader runs as root (documented)")
def test_secrets_cannot_be_found_read_or_leaked(tmp_path):
    """As root with a mount namespace (the mode line says "own mount namespace") a check sees only the system
    folders, Python and its own folder: a world-readable copy of the solutions beside the grader stays invisible.
    Without one (e.g. Docker's default profile) only the grader's own tree is protected (grader/README.md)."""
    from grader.isolation import sandbox_policy

    own_solution = ROOT / "grader" / "solution" / "bc_solution.py"
    body, decoy = search_with_a_copy_beside_the_repo(f"il_root_{os.getpid()}")
    if not sandbox_policy().mountns:
        body = SEARCH.format(repo=str(ROOT))
    sub = write_submission(tmp_path / "sub", loss_attack(body))
    with readable_copy(decoy):
        report = grade(sub, include_hidden=True, include_performance=False, only={"bc_loss"})
    bc = [t for t in report.tests if t.name.startswith("BC loss")]
    assert len(bc) == 4                                 # gradients and value, public and hidden variant
    for t in bc:
        assert t.score == 0
        assert "NOTFOUND" in t.output, t.output        # the search found nothing it could read
        assert own_solution.read_text().splitlines()[-1].strip() not in t.output


def test_feedback_never_carries_secrets_from_performance_children():
    secret = "return -self.policy.dist(obs_n).log_prob(act_n).mean()"
    raw = json.dumps({"type": "RuntimeError", "message": secret,
                      "frames": [["bc_agent.py", 12, "neg_self_policy_dist_obs_n_log_prob_act_n_mean"]]}).encode()
    perf = describe_error(raw, show_message=False)
    assert "dist" not in perf and "line 12" in perf and "RuntimeError" in perf
    unit = describe_error(raw, show_message=True)
    assert "line 12" in unit and len(unit) < 300
    forged = json.dumps({"type": "performance: low 447 full 4675", "message": "\x1b[2J" + "x" * 5000,
                         "frames": [["/repo/grader/thresholds.yaml", 1, "f"]]}).encode()
    out = describe_error(forged, show_message=True)
    assert "performance:" not in out and "thresholds" not in out and "\x1b" not in out and len(out) < 300
    assert describe_error(b"\xff\xfe not json", True) == "your code raised an exception"


def test_permuted_or_rescaled_copies_of_the_expert_are_recognised():
    import torch

    from grader.performance import copies_expert
    from learning.checkpoint import load_policy
    from learning.policy import GaussianMLPPolicy

    expert, _ = load_policy(ROOT / "data" / "models" / "expert_cheetah.pt")
    copy, _ = load_policy(ROOT / "data" / "models" / "expert_cheetah.pt")
    lin = [m for m in copy.net if isinstance(m, torch.nn.Linear)]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for a, b in zip(lin[:-1], lin[1:], strict=True):   # permute and positively rescale every hidden layer
            perm = torch.randperm(a.out_features, generator=g)
            scale = torch.rand(a.out_features, generator=g) + 0.5
            a.weight.copy_(a.weight[perm] * scale[:, None])
            a.bias.copy_(a.bias[perm] * scale)
            b.weight.copy_(b.weight[:, perm] / scale[None, :])
    obs = np.random.default_rng(0).normal(size=(64, expert.obs_dim)).astype(np.float32)
    assert np.allclose(copy.act(obs), expert.act(obs), atol=1e-4)     # the same function
    assert copies_expert(copy, "cheetah")
    fresh = GaussianMLPPolicy(expert.obs_dim, expert.act_dim, expert.hidden_sizes, squash_mean=False)
    assert not copies_expert(fresh, "cheetah")


STEAL_EXPERT = '''    import os, torch
    if not getattr(self, "_stolen", False):
        self._stolen = True
        try:
            from learning.checkpoint import load_policy
            expert, _ = load_policy({path!r})
            lin = [m for m in expert.net if isinstance(m, torch.nn.Linear)]
            perm = torch.randperm(lin[0].out_features)
            with torch.no_grad():
                lin[0].weight.copy_(lin[0].weight[perm]); lin[0].bias.copy_(lin[0].bias[perm])
                lin[1].weight.copy_(lin[1].weight[:, perm])
            self.policy.load_state_dict(expert.state_dict(), strict=False)
        except Exception:
            pass
'''

DISTIL = '''    import torch
    target = torch.as_tensor(self.expert_action(obs.numpy()))
    return ((self.policy.mean_action(obs) - self.policy.normalize_action(target)) ** 2).mean()
'''


@pytest.mark.slow
@pytest.mark.parametrize("attack", ["steal_expert", "distil_in_loss"])
def test_bc_performance_needs_imitation_not_the_expert(attack, tmp_path):
    if attack == "steal_expert":
        if not ROOT_MODE:
            pytest.skip("the expert file is only unreadable when grading as root")
        methods = loss_attack(STEAL_EXPERT.format(path=str(ROOT / "data" / "models" / "expert_cheetah.pt")))
    else:
        methods = {"compute_loss": "def compute_loss(self, obs, expert_actions):\n" + DISTIL}
    report = grade(write_submission(tmp_path / "sub", methods), include_hidden=False, include_performance=True,
                   only={"bc"})
    perf = [t for t in report.tests if t.name.startswith("BC performance")]
    assert len(perf) == 1 and perf[0].score == 0, perf[0].output


NOISE_BUGS = {
    "missing (high-low)/2": ("clean + self.rng.normal(0.0, 1.0, self.act_dim) * self.cfg.noise_std",
                             "misses the (high − low)/2"),
    "2x: (high-low)": ("clean + self.rng.normal(0.0, 1.0, self.act_dim) * self.cfg.noise_std * "
                       "(self.action_high - self.action_low)",
                       "σ"),     # heavy clipping at 2× hides the exact factor; the message still names σ
    "10x": ("clean + self.rng.normal(0.0, 1.0, self.act_dim) * 10 * self.cfg.noise_std * "
            "(self.action_high - self.action_low) / 2", ""),
    "unclipped": ("clean + self.rng.normal(0.0, 4.0, self.act_dim) * self.cfg.noise_std * "
                  "(self.action_high - self.action_low) / 2", "bounds"),
    "same noise every call": ("clean + np.random.default_rng(0).normal(0.0, 1.0, self.act_dim) * self.cfg.noise_std * "
                              "(self.action_high - self.action_low) / 2", "same"),
    "NaN actions": ("clean * np.nan", "NaN"),
    "uniform noise": ("clean + self.rng.uniform(-3 ** 0.5, 3 ** 0.5, self.act_dim) * self.cfg.noise_std * "
                      "(self.action_high - self.action_low) / 2", "not Gaussian"),
    "hard-coded noise_std 0.2": ("clean + self.rng.normal(0.0, 1.0, self.act_dim) * 0.2 * "
                                 "(self.action_high - self.action_low) / 2", "spread"),
    "clipped to [-1, 1]": ("np.clip(clean + self.rng.normal(0.0, 1.0, self.act_dim) * self.cfg.noise_std * "
                           "(self.action_high - self.action_low) / 2, -1, 1)", "[-1, 1]"),
    "clip bounds swapped": ("np.clip(clean + self.rng.normal(0.0, 1.0, self.act_dim) * self.cfg.noise_std * "
                            "(self.action_high - self.action_low) / 2, self.action_high, self.action_low)", "swapped"),
    "one draw shared by every dimension": ("clean + self.rng.normal() * self.cfg.noise_std * "
                                           "(self.action_high - self.action_low) / 2",
                                           "shared by every action dimension"),
    "noise drawn once and reused": ("clean + self.__dict__.setdefault('eps', self.rng.normal(0.0, 1.0, self.act_dim)) "
                                    "* self.cfg.noise_std * (self.action_high - self.action_low) / 2", "same"),
}


@pytest.mark.slow
@pytest.mark.parametrize("bug", sorted(NOISE_BUGS))
def test_noise_injection_bugs_lose_their_points_with_the_right_feedback(bug, tmp_path):
    expr, phrase = NOISE_BUGS[bug]
    src = ("def noisy_expert_step(self, obs):\n    clean = self.expert_action(obs)\n"
           f"    noisy = {expr}\n" + (
               "    noisy = np.clip(noisy, self.action_low, self.action_high)\n"
               if bug not in ("unclipped", "clipped to [-1, 1]", "NaN actions") else "")
           + "    return noisy.astype(np.float32), clean\n")
    report = grade(write_submission(tmp_path / "sub", {"noisy_expert_step": src}), include_hidden=True,
                   include_performance=False, only={"dart_step"})
    noisy = [t for t in report.tests if t.name.startswith("Noise injection: noisy")]
    assert len(noisy) == 2
    for t in noisy:
        assert t.score == 0, f"{bug}: {t.output}"
        assert phrase in t.output, f"{bug}: {t.output}"


def test_scratch_of_a_killed_grader_is_swept_and_one_in_use_is_not(tmp_path):
    """A grader killed with SIGKILL cannot clean its scratch folder; the next grading removes it (its owner lock is
    free), but never the scratch of a grader still running, nor a grade_* folder without an owner lock."""
    from grader.workspace import make_scratch, remove_scratch, sweep_stale_scratch

    code = ("import os, sys, time; sys.path.insert(0, %r)\n"
            "from grader.workspace import make_scratch\n"
            "root, _ = make_scratch(); print(root, flush=True); time.sleep(600)\n") % str(ROOT)
    env = dict(os.environ, TMPDIR=str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    alive = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        dead_root, alive_root = Path(dead.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        dead.kill()
        dead.wait()
        foreign = tmp_path / "grade_not_ours"
        (foreign / "private").mkdir(parents=True)
        assert dead_root.is_dir() and alive_root.is_dir()
        assert sweep_stale_scratch(str(tmp_path)) == [str(dead_root)]
        assert not dead_root.exists() and alive_root.is_dir() and foreign.is_dir()
    finally:
        alive.kill()
        alive.wait()
    mine, _ = make_scratch()                                  # our own, held by this process: kept, then returned
    assert str(mine) not in sweep_stale_scratch(str(mine.parent)) and mine.is_dir()
    remove_scratch(mine)
    assert not mine.exists()


BOMB = """    import io, os, zipfile
    import numpy as np
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f8", "fortran_order": False, "shape": (1 << 26,)})
    with zipfile.ZipFile("../out/result.npz", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("grads.npy", "w", force_zip64=True) as f:     # 512 MB of zeros: about 0.5 MB deflated
            f.write(hdr.getvalue())
            block = bytes(1 << 24)
            for _ in range(32):
                f.write(block)
    open("../out/DONE", "w").write("done")
    os._exit(0)
"""


def test_a_forged_result_that_unpacks_to_gigabytes_is_refused_unread(tmp_path):
    """The child can write its answer files itself: a result.npz of deflated zeros (here 512 MB unpacked, in a
    sub-megabyte file) is refused before numpy unpacks it in the grader, which runs as root."""
    sub = write_submission(tmp_path / "sub", loss_attack(BOMB))
    report = grade(sub, include_hidden=False, include_performance=False, only={"bc_loss"})
    bc = [t for t in report.tests if t.name.startswith("BC loss")]
    assert bc and all(t.score == 0 and "unpacks to more than 256 MB" in t.output for t in bc), [t.output for t in bc]


def test_a_check_whose_scoring_raises_runs_once_more_before_it_costs_points(capsys):
    """A fault while scoring (CI once saw a SystemError in the reference's scoring) runs the check once more: a
    transient one costs nothing; one that raises every time (a forged answer) scores each part 0, named, with both
    tracebacks in the grader's log and none in the feedback."""
    from grader.context import SCORING_ATTEMPTS, CheckResult, Variant
    from grader.grade import UNIT_CHECKS, _guarded
    from grader.isolation import SandboxError

    v = Variant(seed=606, env="hopper", batch=300)
    names = UNIT_CHECKS["dart_collect"].part_names(v)
    calls = []

    def flaky(ctx, variant):
        calls.append(variant)
        if len(calls) == 1:
            raise SystemError("error return without exception set")
        return [CheckResult(n, 1, 1, "ok") for n in names]

    assert [(r.name, r.score) for r in _guarded(flaky, None, "dart_collect", v)] == [(n, 1) for n in names]
    assert calls == [v, v]

    def forged(ctx, variant):
        calls.append(variant)
        raise IndexError("index 7 is out of bounds")

    calls.clear()
    results = _guarded(forged, None, "dart_collect", v)
    assert len(calls) == SCORING_ATTEMPTS == 2
    assert [(r.name, r.score, r.max_score) for r in results] == [(n, 0, 1) for n in names]
    assert all("could not be interpreted (IndexError)" in r.output and "index 7" not in r.output for r in results)
    log = capsys.readouterr().err
    assert log.count("Traceback") == 3 and "attempt 2 of 2" in log and "index 7 is out of bounds" in log

    def sandbox_broke(ctx, variant):            # the sandbox's own failure stops the grading at once, never retried
        calls.append(variant)
        raise SandboxError("a check left processes that could not be killed")

    calls.clear()
    with pytest.raises(SandboxError):
        _guarded(sandbox_broke, None, "dart_collect", v)
    assert len(calls) == 1


@pytest.mark.slow
def test_files_left_in_shared_folders_do_not_survive_a_check(tmp_path):
    tag = f"il_leak_{os.getpid()}"
    body = (f"    import os\n    for d in ('/tmp', '/dev/shm', '/var/tmp'):\n        try:\n"
            f"            open(os.path.join(d, '{tag}'), 'w').write('answer')\n"
            f"            os.makedirs(os.path.join(d, '{tag}_dir', 'deep'), exist_ok=True)\n"
            f"            os.chmod(os.path.join(d, '{tag}_dir'), 0o777)\n        except OSError:\n            pass\n")
    grade(write_submission(tmp_path / "sub", loss_attack(body)), include_hidden=False, include_performance=False,
          only={"bc_loss"})
    left = [f"{d}/{tag}{s}" for d in ("/tmp", "/dev/shm", "/var/tmp") for s in ("", "_dir")
            if os.path.exists(f"{d}/{tag}{s}")]
    if ROOT_MODE:
        assert left == []
    else:
        for p in left:
            subprocess.run(["rm", "-rf", p], check=False)


@pytest.mark.slow
def test_signals_fork_bombs_and_parent_killing_are_contained(tmp_path):
    body = '''    import os, signal, time
    for target in (os.getppid(), -1):
        try:
            os.kill(target, signal.SIGKILL) if target != -1 else None
        except OSError:
            pass
    pids = []
    for _ in range(400):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(600)
            os._exit(0)
        pids.append(pid)
'''
    report = grade(write_submission(tmp_path / "sub", loss_attack(body)), include_hidden=False,
                   include_performance=False, only={"bc_loss", "dagger_aggregate"})
    by = {t.name.split(" (")[0]: t for t in report.tests}
    assert by["BC loss: gradients"].score == by["BC loss: value"].score == 0
    assert by["DAgger aggregation"].score == by["DAgger aggregation"].max_score
    assert sandbox_processes() == []


FORKING_AWAY = '''    import os, time
    for _ in range(40):                     # daemons whose parent exits as the check ends (each forks and exits)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                end = time.time() + 8
                while time.time() < end:     # a chain: each member forks the next and exits at once
                    if os.fork() != 0:
                        os._exit(0)
            os._exit(0)
'''


@pytest.mark.slow
def test_processes_that_fork_and_exit_as_the_check_ends_do_not_outlive_it(tmp_path):
    """A scan of /proc can miss a child forked by a parent that exits while the scan reads; the sandbox uid's
    processes are signalled all at once as that uid (kill(-1)), so none outlives its check (the next check under
    the uid could be another student's)."""
    for k in range(3):
        report = grade(write_submission(tmp_path / f"sub{k}", loss_attack(FORKING_AWAY)), include_hidden=False,
                       include_performance=False, only={"bc_loss"})
        assert report.score == 0
        assert sandbox_processes() == [], f"grading {k}: processes of a sandbox uid outlived their check"


def test_supervisor_kills_double_forked_daemons_and_enforces_the_oracle_budget(tmp_path):
    """The supervisor alone (no sandbox uid): a setsid daemon dies with its check; the oracle charges distinct states
    and answers exactly what the expert policy answers."""
    import struct

    from grader.performance import export_expert
    from learning.checkpoint import load_policy

    pidfile = tmp_path / "pid"
    script = tmp_path / "child.py"
    script.write_text(f'''
import os, struct, sys, time
import numpy as np
r, w = (int(x) for x in os.environ["GRADER_ORACLE_FDS"].split(","))
rf, wf = os.fdopen(r, "rb", buffering=0), os.fdopen(w, "wb", buffering=0)
def ask(x):
    wf.write(struct.pack("<II", len(x), x.shape[1]) + x.astype(np.float32).tobytes())
    status, rows = struct.unpack("<II", rf.read(8))
    if status == 0:
        rf.read(rows * 6 * 4)
    return status
obs = np.random.default_rng(0).normal(size=(12, 17))
s1 = ask(obs[:10]); s2 = ask(obs[:10]); s3 = ask(obs[10:12])
open({str(tmp_path / "status")!r}, "w").write(f"{{s1}} {{s2}} {{s3}}")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(600)
    os._exit(0)
time.sleep(1)
''')
    status = run_supervisor(supervisor_spec(script, tmp_path, 60, oracle_budget=11), tmp_path, timeout=120)
    assert (tmp_path / "status").read_text() == "0 0 1"      # 10 new, the same 10 again (free), then 2 > 11
    assert status["oracle_over_budget"] and status["oracle_queries"] == 10 and status["all_dead"]
    pid = int(pidfile.read_text())
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
    del struct
    import importlib.util

    spec_ = importlib.util.spec_from_file_location("supervisor", ROOT / "grader" / "supervisor.py")
    sup = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(sup)
    oracle = sup.Oracle({"expert_npz": str(export_expert("cheetah", tmp_path)), "obs_dim": 17, "act_dim": 6,
                         "budget": 1, "repo_root": str(ROOT)})
    from envs.builder import resolve_env_config
    from learning.expert import load_expert

    agent_expert = load_expert(resolve_env_config("cheetah"), 17, 6).deterministic_actor()   # a student's run's
    obs = np.random.default_rng(1).normal(size=(256, 17)).astype(np.float32) * 3
    assert np.array_equal(oracle.act(obs), agent_expert.act(obs))            # the same computation: bit for bit
    assert all(np.array_equal(oracle.act(o), agent_expert.act(o)) for o in obs[:32])   # one row at a time too
    torch_expert, _ = load_policy(ROOT / "data" / "models" / "expert_cheetah.pt")
    assert np.allclose(oracle.act(obs), torch_expert.act(obs), atol=1e-4)     # and the torch policy to float32 noise


VIEW_PROBE = r"""
import json, os, subprocess, sys
out = {"root": sorted(os.listdir("/")), "uid": os.getuid()}
out["decoy"] = os.path.exists(sys.argv[1])
out["procs"] = sorted({os.stat("/proc/" + p).st_uid for p in os.listdir("/proc") if p.isdigit()})
try:
    open("/usr/x", "w")
    out["usr_writable"] = True
except OSError:
    out["usr_writable"] = False
escape = "import os\nos.mkdir('e'); os.chroot('e')\nfor _ in range(40): os.chdir('..')\nos.chroot('.')\n" \
         "print(os.path.exists(%r))" % sys.argv[1]
try:     # a user namespace would give capabilities back (chroot escapes, unbounded tmpfs mounts): refused
    r = subprocess.run(["unshare", "-Ur", sys.executable, "-I", "-c", escape], capture_output=True, text=True)
    out["escape"], out["userns_rc"] = r.stdout.strip(), r.returncode
except OSError:
    out["escape"], out["userns_rc"] = "no unshare", None
out["nnp"] = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("NoNewPrivs")]
st = os.statvfs("/tmp")
out["tmp_mb"] = st.f_blocks * st.f_frsize >> 20
json.dump(out, open("view.json", "w"))
"""


@pytest.mark.skipif(not ROOT_MODE, reason="the mount view is built by root")
def test_root_mode_view_shows_only_the_system_and_cannot_be_left(tmp_path):
    """The supervisor's mount view (root mode): the child, as its sandbox uid, sees the system folders and its own
    folder, not a readable copy of the solutions beside the repository; /usr is read-only, /proc lists only its own
    uid's processes, it may not create a user namespace (no capabilities to escape with or to mount an unbounded
    tmpfs), and its /tmp is capped. If the view cannot be built the child never runs and the check is a grader
    error."""
    from grader.isolation import sandbox_policy
    from grader.views import child_view
    from grader.workspace import chown_tree, make_scratch, new_check_dir
    from grader.supervisor import _proc_options

    if not sandbox_policy().mountns:      # CI's machine can: there a failing probe is a regression, not a skip
        (pytest.fail if os.environ.get("CI") else pytest.skip)("root mode found no usable mount namespace here")
    uid = sandbox_policy().acquire()
    scratch, private = make_scratch()
    _, decoy = search_with_a_copy_beside_the_repo(f"il_view_{os.getpid()}")
    try:
        d = new_check_dir(scratch, "view")
        (d.ws / "probe.py").write_text(VIEW_PROBE)
        chown_tree(d.path, uid)
        spec = {"argv": [sys.executable, "-I", str(d.ws / "probe.py"), str(decoy / "grader")], "cwd": str(d.run),
                "env": {"PATH": "/usr/bin:/bin"}, "timeout": 60, "uid": uid, "netns": False, "clean_dirs": [],
                "stderr_path": str(private / "err"), "oracle": None, "view": child_view(d),
                "view_root": str(private / "root"),
                "limits": {"mem_bytes": 4 << 30, "cpu_s": 60, "file_bytes": 1 << 26, "nproc": 64}}

        def supervise(spec: dict) -> dict:
            (private / "spec.json").write_text(json.dumps(spec))
            p = subprocess.run([sys.executable, "-I", str(ROOT / "grader" / "supervisor.py"),
                                str(private / "spec.json")], capture_output=True, text=True, timeout=120)
            return json.loads(p.stdout.strip().splitlines()[-1])

        (private / "root").mkdir(mode=0o700)
        with readable_copy(decoy):
            status = supervise(spec)
        assert status["returncode"] == 0, (private / "err").read_text()[-2000:]
        seen = json.loads((d.run / "view.json").read_text())
        assert seen["uid"] == uid and not seen["decoy"] and not seen["usr_writable"]
        assert set(seen["root"]) == {Path(step[-1]).parts[1] for step in spec["view"]} | {"dev", "proc"}
        if _proc_options():                                  # Linux >= 5.8: hidepid per proc mount
            assert seen["procs"] == [uid]
        assert seen["escape"] in ("", "no unshare") and seen["userns_rc"] != 0, seen
        assert seen["tmp_mb"] <= 128                         # a private /tmp is memory: capped
        assert seen["nnp"] == ["1"]                           # setuid programs give it nothing
        assert os.listdir(private / "root") == []          # nothing of the view is left outside
        (d.run / "view.json").unlink()
        status = supervise(dict(spec, view_root=str(private / "missing")))
        assert status["returncode"] is None and status["start_error"] and not (d.run / "view.json").exists()
    finally:
        sandbox_policy().release(uid)
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def own_tmpfs(path: Path, size_mb: int, inodes: int):
    """A tmpfs of its own at ``path`` for the duration (disk- and inode-filling tests never touch the shared /tmp)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,nr_inodes={inodes},mode=1777", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


needs_tmpfs = pytest.mark.skipif(not ROOT_MODE, reason="mounting a tmpfs of their own needs root")


@needs_tmpfs
def test_supervisor_stops_a_check_that_fills_the_disk(tmp_path):
    """RLIMIT_FSIZE caps one file, not how many: the supervisor kills a check whose own files take more than its disk
    budget (here 64 MB) or its inode budget (here 5,000), and says so; the sandbox's message names it. Inside a
    tmpfs of its own."""
    from grader.runner import ChildResult

    with own_tmpfs(tmp_path / "fs", 512, 60_000) as fs:
        script = tmp_path / "fill.py"
        script.write_text(f"""
import os, time
block = b"x" * (1 << 20)
for i in range(400):                       # 400 MB in 8 MB files, if nobody stops it
    with open(os.path.join({str(fs)!r}, "f%d" % i), "wb") as f:
        for _ in range(8):
            f.write(block)
    time.sleep(0.05)
open({str(tmp_path / "finished")!r}, "w").close()
""")
        spec = {"argv": [sys.executable, str(script)], "cwd": str(fs), "env": {"PATH": "/usr/bin:/bin"},
                "timeout": 120, "uid": None, "netns": False, "clean_dirs": [], "stderr_path": str(tmp_path / "err"),
                "limits": {"mem_bytes": 4 << 30, "cpu_s": 120, "file_bytes": 1 << 26, "nproc": 64,
                           "disk_bytes": 64 << 20, "disk_inodes": 5000}, "oracle": None}
        status = run_supervisor(spec, tmp_path)
        written = sum(f.stat().st_size for f in fs.glob("f*")) >> 20
        assert status["disk_exceeded"] and status["all_dead"] and not (tmp_path / "finished").exists()
        assert 64 <= written < 400, written
        res = ChildResult(returncode=status["returncode"], timed_out=False, seconds=1.0, out=tmp_path,
                          disk_exceeded=True, disk_bytes=status["disk_bytes"], disk_inodes=status["disk_inodes"])
        assert not res.finished and "took more than 64 MB or 5,000 files" in res.message()
        for f in fs.glob("f*"):
            f.unlink()
        many = fs / "many"
        many.mkdir()
        script.write_text(f"""
import os, time
for i in range(50000):                     # empty files: no bytes, only inodes
    open(os.path.join({str(many)!r}, str(i)), "w").close()
    if i % 1000 == 999:                    # at least 2.5 s in all: the guard (a poll every 0.5 s at most) stops it
        time.sleep(0.05)                   # long before the end, however fast this machine makes empty files
open({str(tmp_path / "finished")!r}, "w").close()
""")
        status = run_supervisor(spec, tmp_path)
        assert status["disk_exceeded"] and not (tmp_path / "finished").exists()
        assert 5000 <= len(os.listdir(many)) < 50000


KEYS = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
nr = {"x86_64": (248, 250), "aarch64": (217, 219)}[os.uname().machine]
if sys.argv[1] == "add":       # add_key("user", desc, payload, KEY_SPEC_USER_KEYRING)
    r = libc.syscall(nr[0], b"user", b"il_grader_test_key", b"secret", 6, -4)
else:                          # keyctl(KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", desc, 0)
    r = libc.syscall(nr[1], 10, -4, b"user", b"il_grader_test_key", 0)
print("found" if r >= 0 else "none", flush=True)
"""


@pytest.mark.skipif(not ROOT_MODE or os.uname().machine not in ("x86_64", "aarch64"),
                    reason="keyrings are per uid: only root mode gives each check its own")
def test_kernel_keys_a_check_leaves_are_gone_after_it(tmp_path):
    """A key in the sandbox uid's user keyring outlives every process and file of the check: the supervisor
    clears that uid's keyrings after it, so a later check under the same uid finds nothing."""
    from grader.isolation import sandbox_policy

    uid = sandbox_policy().acquire()
    try:
        def as_uid() -> None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

        def search() -> str:
            return subprocess.run([sys.executable, "-I", "-c", KEYS, "search"], preexec_fn=as_uid, cwd="/",
                                  capture_output=True, text=True, timeout=60).stdout.strip()

        spec = {"argv": [sys.executable, "-I", "-c", KEYS, "add"], "cwd": "/", "env": {"PATH": "/usr/bin:/bin"},
                "timeout": 60, "uid": uid, "netns": False, "clean_dirs": [], "stderr_path": str(tmp_path / "err"),
                "limits": {"mem_bytes": 4 << 30, "cpu_s": 60, "file_bytes": 1 << 26, "nproc": 64}, "oracle": None}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        subprocess.run([sys.executable, "-I", "-c", KEYS, "add"], preexec_fn=as_uid, cwd="/", timeout=60,
                       check=True, capture_output=True)
        assert search() == "found"                   # without the supervisor a key outlives its process
        p = subprocess.run([sys.executable, "-I", str(ROOT / "grader" / "supervisor.py"), str(tmp_path / "spec.json")],
                           capture_output=True, text=True, timeout=120)
        status = json.loads(p.stdout.strip().splitlines()[-1])
        assert status["returncode"] == 0 and status["keys_cleared"] is True
        assert search() == "none"
    finally:
        sandbox_policy().release(uid)


@pytest.mark.slow
def test_regrading_under_load_is_identical_and_full_marks(tmp_path):
    sub = write_submission(tmp_path / "ref")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        reports = [grade(sub, include_hidden=True, include_performance=False, jobs=2) for _ in range(2)]
    finally:
        for b in burners:
            b.kill()
    for r in reports:
        assert r.score == r.max_score == 85, [(t.name, t.output) for t in r.tests if not t.passed]
    a, b = ([(t.name, t.score, t.output) for t in r.tests] for r in reports)
    assert a == b


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_MODE, reason="Gradescope runs the autograder as root")
def test_gradescope_zip_end_to_end_on_a_simulated_autograder_layout(tmp_path):
    """setup.sh + run_autograder for real on /autograder's layout (moved under tmp), graded with an attacker that
    forges results.json from a daemon and tries to read the grader's source."""
    import zipfile

    ag = tmp_path / "autograder"
    assert run_cli("tools/make_gradescope.py", str(tmp_path / "ag.zip")).returncode == 0
    with zipfile.ZipFile(tmp_path / "ag.zip") as z:
        z.extractall(ag / "source")
    for f in ("setup.sh", "run_autograder"):
        (ag / "source" / f).rename(ag / f)
    results = ag / "results" / "results.json"
    secret = ag / "source" / "grader" / "solution" / "bc_solution.py"
    forge = f'open({str(results)!r}, "w").write(\'{{"score": 1000, "tests": []}}\')'
    steal = (f"    try:\n        open('/tmp/il_gs_stolen', 'w').write(open({str(secret)!r}).read())\n"
             f"    except OSError:\n        pass\n")
    write_submission(ag / "submission", loss_attack(steal + daemon("/tmp/il_gs_pid", 3, forge)))
    env = dict(os.environ, AUTOGRADER_ROOT=str(ag), AUTOGRADER_VENV=sys.prefix,
               GRADER_EXTRA_ARGS="--no-performance --no-hidden --only bc_loss,dagger_aggregate")
    for step in ("setup.sh", "run_autograder"):
        p = subprocess.run(["bash", str(ag / step)], env=env, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, f"{step}: {p.stdout}{p.stderr}"
    assert not os.stat(ag / "source").st_mode & 0o077            # the source is root-only
    time.sleep(5)
    data = json.loads(results.read_text())
    by = {t["name"].split(" (")[0]: t for t in data["tests"]}
    assert "DAgger aggregation" in by, data
    assert data["score"] == by["DAgger aggregation"]["max_score"] == 10
    assert by["BC loss: gradients"]["score"] == by["BC loss: value"]["score"] == 0
    assert not Path("/tmp/il_gs_stolen").exists() and not Path("/tmp/il_gs_pid").exists()
    assert sandbox_processes() == []


@pytest.mark.slow
def test_batch_stops_when_the_grader_changes_and_names_the_submission(tmp_path):
    """Ordinary-user mode (the child can write the tree): batch stops at once, naming the submission graded last."""
    planted = ROOT / "data" / "envs" / f"zz_batch_attack_{os.getpid()}.yaml"
    subs = tmp_path / "subs"
    write_submission(subs / "a_mallory", loss_attack(f"    open({str(planted)!r}, 'w').write('x: 1')\n"))
    write_submission(subs / "b_alice")
    env = dict(os.environ, GRADER_SANDBOX="user")
    try:
        p = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--csv", str(tmp_path / "g.csv"),
                            "--results_dir", str(tmp_path / "res"), "--", "--only", "bc_loss", "--no-hidden"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    finally:
        existed = planted.exists()
        planted.unlink(missing_ok=True)
    if not existed:
        pytest.skip("the checkout is not writable: nothing to detect")
    assert p.returncode == 3, p.stdout + p.stderr
    assert "a_mallory" in p.stderr and "changed" in p.stderr
    assert not (tmp_path / "res" / "b_alice.json").exists()      # nobody was graded with a changed grader


@pytest.mark.slow
def test_bad_files_cost_only_their_checks(tmp_path):
    """A syntax error, a missing import, a YAML alias bomb in a1/: clear messages, 0 there, the rest unaffected."""
    sub = write_submission(tmp_path / "sub")
    (sub / "learning" / "dart_agent.py").write_text("def broken(:\n    pass\n")
    (sub / "learning" / "bc_agent.py").write_text((sub / "learning" / "bc_agent.py").read_text()
                                                   .replace("import torch\n",
                                                            "import torch\nimport no_such_module_xyz\n", 1))
    (sub / "a1" / "bc_cheetah.yaml").write_text('a: &a ["x","x","x","x","x","x","x","x","x"]\n'
                                                 + "".join(f'{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n'
                                                           for p, c in zip("abcdefgh", "bcdefghi", strict=True))
                                                 + "demo_episodes: *i\n")
    report = grade(sub, include_hidden=False, include_performance=False)
    by = {t.name: t for t in report.tests}
    structure = next(t for t in report.tests if t.name.startswith("Structure"))
    assert "dart_agent.py" in structure.output and "SyntaxError" in structure.output
    assert "bc_agent.py" in structure.output and "ModuleNotFoundError" in structure.output
    for name, t in by.items():
        if name.startswith(("Noise injection", "BC loss", "BC training loop")):
            assert t.score == 0 and ("dart_agent.py" in t.output or "bc_agent.py" in t.output), t.output
        elif name.startswith("DAgger"):
            assert t.score == t.max_score, t.output     # bc_agent.py is replaced by the stub for DAgger's checks


@pytest.mark.slow
@pytest.mark.parametrize("release", ["release1", "release2"])
def test_submissions_written_against_an_earlier_release_get_full_marks_in_the_core_scope(tmp_path, release):
    """Students hold an earlier release's files (tests/fixtures/release1: the first; release2: the last before the
    full scope, whose framework had fit and rollout): their non-TODO code calls framework methods (budget_left,
    demo_dataset, fit, rollout, ...) that the grader replaces with its own; filled with the reference they earn every
    point of the core scope, their four methods, on the grader's current framework."""
    from grader.reference_submissions import earlier_release_submission
    from learning.agents import todo_manifest

    sub = earlier_release_submission(tmp_path / "sub", release)
    report = grade(sub, include_hidden=True, include_performance=False, scope="core")
    assert report.score == pytest.approx(report.max_score), [(t.name, t.output) for t in report.tests if not t.passed]
    from grader.grade import UNIT_CHECKS

    core_parts = {p.name for key in ("bc_loss", "dagger_select", "dagger_aggregate", "dart_step")
                  for p in UNIT_CHECKS[key].parts}                    # the four core methods' checks, nothing else
    assert {t.name.split(" (")[0] for t in report.tests if t.max_score > 0} == core_parts
    # their train() loops, through the grader's training path (sandbox, expert oracle, budget), on tiny budgets
    from grader.context import GradingContext
    from grader.intake import find_student_files
    from grader.isolation import sandbox_policy
    from grader.performance import evaluate_trained
    from grader.workspace import make_scratch

    manifest = todo_manifest("core")
    files = find_student_files(sub, [m.file_name for m in manifest.values()])
    scratch, private = make_scratch()
    ctx = GradingContext(sandbox_policy(2), scratch, private, files, manifest, present={f: True for f in files})
    tiny = {"demo_episodes": 1, "epochs": 2, "rounds": 2, "samples_per_round": 300, "epochs_per_round": 1,
            "max_samples": 1500, "eval_episodes": 1, "final_eval_episodes": 1}
    for agent, extra in (("dagger", {"beta0": 0.5}), ("dart", {"noise_std": 0.2})):
        spec = {"agent": agent, "env": "hopper", "config": {**tiny, **extra}, "eval_episodes": 1}
        value, why = evaluate_trained(ctx, spec, seed=1, eval_seed=2)
        assert value is not None, f"{agent}: {why}"


@pytest.mark.slow
@pytest.mark.optional
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt install bubblewrap)")
def test_ordinary_user_mode_with_bubblewrap_hides_secrets_and_kills_daemons(tmp_path):
    """GRADER_SANDBOX=user forces the ordinary-user path; with bubblewrap it must still hide the grader's secrets,
    keep /tmp private, and leave nothing running. It sees only the system folders and Python: a readable copy
    of the solutions beside the grader (a second checkout, another class's submissions) stays invisible too."""
    tag = f"il_bwrap_{os.getpid()}"
    body, decoy = search_with_a_copy_beside_the_repo(tag)
    body = body.replace("    raise RuntimeError(", "    open('/tmp/" + tag + "', 'w').write('x')\n"
                        + daemon(f"/tmp/{tag}_pid", 30, "pass") + "    raise RuntimeError(")
    sub = write_submission(tmp_path / "sub", loss_attack(body))
    env = dict(os.environ, GRADER_SANDBOX="user")
    with readable_copy(decoy):
        p = subprocess.run([sys.executable, "-m", "grader", str(sub), "--out", str(tmp_path / "r.json"), "--only",
                            "bc_loss,dagger_aggregate", "--no-hidden"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    assert "bubblewrap" in p.stderr
    data = json.loads((tmp_path / "r.json").read_text())
    bc = by_prefix(data, "BC loss")[0]
    assert bc["score"] == 0 and "NOTFOUND" in bc["output"], bc["output"]
    assert by_prefix(data, "DAgger aggregation")[0]["score"] == 10
    assert not Path(f"/tmp/{tag}").exists() and not Path(f"/tmp/{tag}_pid").exists()   # its /tmp was private
    leftovers = subprocess.run(["pgrep", "-u", str(os.getuid()), "-f", "grader_child.py"], capture_output=True,
                               text=True).stdout.split()
    assert leftovers == []


def test_only_regular_student_files_are_taken_from_a_submission(tmp_path):
    """FIFOs, links (to the solution or /etc), huge sparse files and zip bombs are never read or unpacked."""
    import zipfile

    from grader.intake import MAX_STUDENT_FILE_BYTES, materialize

    names = ["bc_agent.py", "dagger_agent.py", "dart_agent.py"]
    sub = tmp_path / "sub"
    (sub / "learning").mkdir(parents=True)
    os.mkfifo(sub / "learning" / "dart_agent.py")                                  # would block a reader
    os.symlink(ROOT / "grader" / "solution" / "bc_solution.py", sub / "learning" / "bc_agent.py")
    with open(sub / "learning" / "dagger_agent.py", "wb") as f:                    # 8 GiB, sparse
        f.truncate(8 << 30)
    (sub / "junk").mkdir()
    for i in range(200):
        (sub / "junk" / f"{i}.txt").write_text("x")
    out = materialize(sub, tmp_path / "m1", names)
    files = {p.name: p for p in out.rglob("*") if p.is_file()}
    assert set(files) == {"dagger_agent.py"} and files["dagger_agent.py"].stat().st_size == MAX_STUDENT_FILE_BYTES + 1
    z = tmp_path / "s.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        link = zipfile.ZipInfo("learning/bc_agent.py")
        link.external_attr = (0o120777 << 16)
        f.writestr(link, "/etc/passwd")
        f.writestr("learning/dart_agent.py", b"\0" * (64 << 20))                  # 64 MB of zeros, tiny zipped
        f.writestr("bomb.bin", b"\0" * (64 << 20))
        f.writestr("learning/dagger_agent.py", "x = 1\n")
    out = materialize(z, tmp_path / "m2", names)
    files = {p.name: p for p in out.rglob("*") if p.is_file()}
    assert set(files) == {"dart_agent.py", "dagger_agent.py"}
    assert files["dart_agent.py"].stat().st_size == MAX_STUDENT_FILE_BYTES + 1


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_MODE, reason="root mode's network namespace and IPC cleanup")
def test_no_network_and_no_ipc_left_behind(tmp_path):
    """A child cannot reach a server on this machine (own network namespace, where the kernel allows it), and a
    SysV shared-memory segment it creates is removed with its check."""
    import socket

    from grader.isolation import sandbox_policy

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    body = f'''    import ctypes, socket
    ctypes.CDLL(None).shmget(0, 4096, 0o1000 | 0o600)          # IPC_PRIVATE, IPC_CREAT
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
        reached = "CONNECTED"
    except OSError:
        reached = "NOCONNECT"
    raise RuntimeError(reached)
'''
    try:
        report = grade(write_submission(tmp_path / "sub", loss_attack(body)), include_hidden=False,
                       include_performance=False, only={"bc_loss"})
    finally:
        server.close()
    bc = next(t for t in report.tests if t.name.startswith("BC loss"))
    assert bc.score == 0
    if sandbox_policy().netns:
        assert "NOCONNECT" in bc.output, bc.output
    owners = [int(ln.split()[7]) for ln in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    assert not [o for o in owners if UID_BASE <= o < UID_BASE + 256]


# ----------------------------------------------------------------------------------------------- issue 23: budgets
def test_answers_are_read_only_when_they_match_the_checks_schema():
    """The one answer reader refuses unknown, missing, object, wrongly shaped and oversized arrays before reading any
    of them (a forged header never makes the grader allocate), and returns exactly the declared arrays otherwise."""
    import io

    from grader.answers import AnswerError, Field, read_answer

    schema = {"loss": Field((), "f"), "grads": Field((10,), "f"), "rows": Field((None, 3), "f", 300)}

    def npz(**arrays) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    good = {"loss": np.array(1.5), "grads": np.zeros(10), "rows": np.ones((7, 3), np.float32)}
    out = read_answer(npz(**good), schema)
    assert set(out) == set(schema) and out["rows"].shape == (7, 3) and float(out["loss"]) == 1.5
    bad = {
        "unexpected array 'extra'": dict(good, extra=np.zeros(2)),
        "'rows' is missing": {k: v for k, v in good.items() if k != "rows"},
        "has shape (1, 10)": dict(good, grads=np.zeros((1, 10))),        # would broadcast against (10,)
        "has shape (7, 4)": dict(good, rows=np.ones((7, 4))),
        "more than the 300": dict(good, rows=np.ones((101, 3))),
        "not a plain float": dict(good, grads=np.array(["x"] * 10)),
    }
    for phrase, arrays in bad.items():
        with pytest.raises(AnswerError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
            read_answer(npz(**arrays), schema)
    hdr = io.BytesIO()         # an object array, written by hand (np.savez would pickle it)
    np.lib.format.write_array_header_1_0(hdr, {"descr": "|O", "fortran_order": False, "shape": (10,)})
    import zipfile

    buf = io.BytesIO(npz(**{k: v for k, v in good.items() if k != "grads"}))
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("grads.npy", hdr.getvalue() + b"\0" * 80)
    with pytest.raises(AnswerError):
        read_answer(buf.getvalue(), schema)
    with pytest.raises(AnswerError, match="unreadable"):
        read_answer(b"not a zip", schema)


def test_any_exception_while_scoring_costs_only_that_check():
    """MemoryError (a forged answer that makes the parent allocate) or any other exception in a check's scoring is
    that check's 0 with a message, never a grader error; the sandbox's own failure still stops the grading."""
    from grader.context import Variant
    from grader.grade import _guarded
    from grader.isolation import SandboxError

    v = Variant(seed=1, env="hopper", batch=4)
    for exc in (MemoryError(), RecursionError(), OverflowError(), ZeroDivisionError(), np.linalg.LinAlgError()):
        def boom(ctx, v, exc=exc):
            raise exc

        res = _guarded(boom, None, "dagger_select", v)
        assert [r.score for r in res] == [0, 0] and type(exc).__name__ in res[0].output
    with pytest.raises(SandboxError):
        _guarded(lambda ctx, v: (_ for _ in ()).throw(SandboxError("x")), None, "bc_loss", v)


FORGED_ANSWER = """    import os
    import numpy as np
    np.savez("../out/result.npz", loss=np.ones(3), has_graph=np.ones(3, bool), grads=np.zeros(({rows}, 1)))
    open("../out/DONE", "w").write("done")
    os._exit(0)
"""


@pytest.mark.slow
def test_a_forged_answer_of_an_unexpected_shape_costs_only_its_check(tmp_path, monkeypatch):
    """A result.npz whose grads would broadcast against the reference's (a (n, 1) array against (n,): n² floats in the
    root parent) is refused by the schema with a clear message; a MemoryError while scoring another check (here
    raised on purpose) costs only that check; the third check is unaffected and the grading completes."""
    import grader.checks_dagger

    def out_of_memory(*args):
        raise MemoryError

    monkeypatch.setattr(grader.checks_dagger._RowIndex, "problems", out_of_memory)     # DAgger aggregation's scoring
    sub = write_submission(tmp_path / "sub", loss_attack(FORGED_ANSWER.format(rows=1 << 16)))
    report = grade(sub, include_hidden=False, include_performance=False,
                   only={"bc_loss", "dagger_aggregate", "dart_step"})
    by = {t.name.split(" (")[0]: t for t in report.tests}
    for part in ("BC loss: gradients", "BC loss: value"):
        assert by[part].score == 0 and "has shape (65536, 1)" in by[part].output, by[part].output
    assert by["DAgger aggregation"].score == 0 and "MemoryError" in by["DAgger aggregation"].output
    for name in ("Noise injection: clean label", "Noise injection: noisy executed action"):
        assert by[name].score == by[name].max_score, by[name].output


def test_answers_are_opened_with_no_link_anywhere_on_the_path(tmp_path):
    """A child that owns a folder on the answer's path could replace it by a link to a folder holding a file it cannot
    read (as root the parent would read it into the feedback): every component is opened without following links,
    and a file with a second hard link is refused."""
    from grader.runner import ChildResult, read_output

    secret = tmp_path / "secret"
    secret.mkdir(mode=0o700)
    (secret / "error.json").write_text('{"type": "RuntimeError", "message": "TOPSECRET"}')
    check = tmp_path / "check"
    check.mkdir()
    (check / "out").symlink_to(secret)                              # the answer folder is a link
    res = ChildResult(returncode=0, timed_out=False, seconds=1.0, out=check / "out")
    assert read_output(res, "error.json") is None
    (check / "out").unlink()
    (check / "real").mkdir()
    (check / "real" / "out").mkdir()
    (check / "out").symlink_to(check / "real")                      # a link higher up: out -> real, out/out
    assert read_output(ChildResult(0, False, 1.0, check / "out" / "out"), "DONE") is None
    (check / "real" / "out" / "DONE").write_text("done")
    assert read_output(ChildResult(0, False, 1.0, check / "real" / "out"), "DONE") == b"done"
    os.link(secret / "error.json", check / "real" / "out" / "error.json")   # a hard link to someone else's file
    assert read_output(ChildResult(0, False, 1.0, check / "real" / "out"), "error.json") is None


SWAP_ANSWER_FOLDER = """    import os
    tried = []
    for attempt in (lambda: os.rename("../out", "../out_old"), lambda: os.rmdir("../out"),
                    lambda: os.symlink({secret!r}, "../out")):
        try:
            attempt()
            tried.append("ok")
        except OSError as e:
            tried.append(type(e).__name__)
    try:
        os.symlink({secret!r} + "/error.json", "../out/error.json")
    except OSError:
        pass
    open("../out/DONE", "w").write("done")
    os._exit(0)
"""


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_MODE, reason="a root-only file exists to be stolen only when the grader runs as root")
def test_a_child_cannot_make_the_root_parent_read_a_root_only_file(tmp_path):
    """The child replaces its answer folder (or the answer) by a link to a root-only error.json: its check folder is
    the grader's (it cannot rename or replace out/), and the parent follows no link on the path."""
    secret = tmp_path / "rootonly"
    secret.mkdir(mode=0o700)
    (secret / "error.json").write_text('{"type": "RuntimeError", "message": "TOPSECRET"}')
    sub = write_submission(tmp_path / "sub", loss_attack(SWAP_ANSWER_FOLDER.format(secret=str(secret))))
    report = grade(sub, include_hidden=False, include_performance=False, only={"bc_loss"})
    bc = next(t for t in report.tests if t.name.startswith("BC loss"))
    assert bc.score == 0 and "TOPSECRET" not in bc.output, bc.output


def test_a_zip_of_thousands_of_padded_copies_unpacks_one_file_per_name(tmp_path, monkeypatch):
    """A small zip of thousands of padded copies of a student file (and of folders) makes the grader write one file per
    student file name, the best candidate (a parent named learning, then the shallowest path), before any check."""
    import zipfile

    from grader.intake import MAX_STUDENT_FILE_BYTES, find_student_files, materialize

    names = ["bc_agent.py", "dagger_agent.py", "dart_agent.py"]
    padded = b"# padding\n" + b" " * (MAX_STUDENT_FILE_BYTES - 20) + b"\n"
    z = tmp_path / "copies.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        for i in range(3000):
            f.writestr(f"copies/{i}/deep/bc_agent.py", padded)
            f.writestr(f"copies/{i}/learning/dart_agent.py", padded)
        f.writestr("proj/learning/bc_agent.py", "# the real one\n")
        f.writestr("bc_agent.py", "# shallow, but not in learning/\n")
        f.writestr("proj/learning/dagger_agent.py", "# dagger\n")
    assert z.stat().st_size < 8 << 20
    out = materialize(z, tmp_path / "m", names)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["copies/0/learning/dart_agent.py", "proj/learning/bc_agent.py", "proj/learning/dagger_agent.py"]
    assert sum((out / f).stat().st_size for f in files) <= 3 * (MAX_STUDENT_FILE_BYTES + 1)
    assert find_student_files(out, names)["bc_agent.py"].read_text() == "# the real one\n"
    import grader.intake

    monkeypatch.setattr(grader.intake, "MAX_SUBMISSION_ENTRIES", 5000)   # counted from the zip's end record
    with pytest.raises(grader.intake.SubmissionError, match="more than 5,000 entries"):
        materialize(z, tmp_path / "m3", names)
    monkeypatch.undo()
    folder = tmp_path / "folder"                       # the same order for a folder submission
    for rel in ("a/b/learning/bc_agent.py", "learning/bc_agent.py", "bc_agent.py", "x/dart_agent.py"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(rel)
    out = materialize(folder, tmp_path / "m2", names)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == ["learning/bc_agent.py",
                                                                                       "x/dart_agent.py"]


def test_the_visible_output_says_nothing_about_hidden_checks():
    """Before publication the top-level output and the console table give the visible points only: neither the hidden
    checks' total nor their count (GRADER_SHOW_HIDDEN=1 shows them to a TA)."""
    from grader.context import CheckResult
    from grader.grade import GradeReport, format_table, to_results_json

    tests = [CheckResult("BC loss (public variant, hopper, batch 32)", 7.5, 7.5, "ok"),
             CheckResult("BC loss (hidden variant, ant, batch 57)", 0.0, 7.5, "wrong", visibility="after_published"),
             CheckResult("DAgger aggregation (hidden variant, ant)", 5.0, 5.0, "ok", visibility="after_published")]
    report = GradeReport(tests, 12.0)
    data = to_results_json(report)
    assert data["output"] == "Autograded 7.5 / 7.5 visible points; hidden checks are published later."
    table = format_table(report, show_hidden=False)
    assert "hidden variant" not in table and "20.0" not in table and "12.50" not in table and "7.50" in table
    assert "hidden variant" in format_table(report, show_hidden=True)
    assert to_results_json(GradeReport(tests[:1], 1.0))["output"] == "Autograded 7.5 / 7.5."


def test_copies_with_input_columns_rescaled_into_the_normalizer_are_recognised():
    """An expert copy whose input columns are rescaled and shifted, the scale and shift absorbed by its normalizer
    (the same function), is still a copy; a fresh policy whose normalizer is fit on the demos is not."""
    import torch

    from grader.performance import copies_expert
    from learning.checkpoint import load_policy
    from learning.policy import GaussianMLPPolicy

    expert, _ = load_policy(ROOT / "data" / "models" / "expert_cheetah.pt")
    copy, _ = load_policy(ROOT / "data" / "models" / "expert_cheetah.pt")
    g = torch.Generator().manual_seed(0)
    c = torch.exp(torch.randn(expert.obs_dim, generator=g).abs() * 2)       # scales from 1 to ~100 (no clipping)
    shift = torch.randn(expert.obs_dim, generator=g)
    norm, first = copy.obs_normalizer, copy.net[0]
    with torch.no_grad():
        std = torch.sqrt(norm.var + norm.eps)
        first.bias.add_(first.weight @ shift)                # z' = (z - shift) / c: W' = W·c, b' = b + W·shift
        norm.mean.add_(shift * std)
        first.weight.mul_(c[None, :])
        norm.var.copy_((std * c) ** 2 - norm.eps)
    obs = np.random.default_rng(0).normal(size=(64, expert.obs_dim)).astype(np.float32)
    assert np.allclose(copy.act(obs), expert.act(obs), atol=1e-3)            # the same function
    assert copies_expert(copy, "cheetah")
    with np.load(ROOT / "data" / "demos" / "cheetah.npz") as f:
        demos = f["obs"]
    for seed in range(3):
        torch.manual_seed(seed)
        fresh = GaussianMLPPolicy(expert.obs_dim, expert.act_dim, expert.hidden_sizes, squash_mean=False)
        fresh.obs_normalizer.fit(demos)
        assert not copies_expert(fresh, "cheetah")


@needs_tmpfs
def test_renaming_its_folder_does_not_blind_the_disk_guard(tmp_path):
    """The guard measures the check's own files through a folder descriptor opened before the child starts: a child
    that renames its folder and then fills it is still stopped (the old guard's statvfs on a path said "not
    exceeded" once the path was gone)."""
    with own_tmpfs(tmp_path / "fs", 256, 20_000) as fs:
        check = fs / "check"
        check.mkdir()
        script = tmp_path / "blind.py"
        script.write_text(f"""
import os, time
os.rename({str(check)!r}, {str(fs / "moved")!r})
block = b"x" * (1 << 20)
for i in range(150):
    with open({str(fs / "moved")!r} + "/f%d" % i, "wb") as f:
        f.write(block)
    time.sleep(0.01)
open({str(tmp_path / "finished")!r}, "w").close()
""")
        spec = {"argv": [sys.executable, str(script)], "cwd": str(check), "check_dir": str(check),
                "env": {"PATH": "/usr/bin:/bin"}, "timeout": 60, "uid": None, "netns": False, "clean_dirs": [],
                "stderr_path": str(tmp_path / "err"), "oracle": None,
                "limits": {"mem_bytes": 4 << 30, "cpu_s": 60, "file_bytes": 1 << 26, "nproc": 64,
                           "disk_bytes": 32 << 20}}
        status = run_supervisor(spec, tmp_path)
        assert status["disk_exceeded"] and not (tmp_path / "finished").exists(), status


@needs_tmpfs
def test_the_supervisor_watches_the_limits_while_a_child_ignores_the_oracles_answers(tmp_path):
    """A child asks the expert about 65,536 states (a 1.5 MB answer, more than a pipe holds), never reads the answer,
    and fills its folder: the supervisor, blocked on writing the answer, still stops it for its disk at once."""
    from grader.performance import export_expert

    with own_tmpfs(tmp_path / "fs", 256, 20_000) as fs:
        script = tmp_path / "deaf.py"
        script.write_text(f"""
import os, struct, time
import numpy as np
r, w = (int(x) for x in os.environ["GRADER_ORACLE_FDS"].split(","))
x = np.random.default_rng(0).normal(size=(65536, 17)).astype(np.float32)
os.write(w, struct.pack("<II", 65536, 17))
view = memoryview(x.tobytes())
while view:
    view = view[os.write(w, view):]
time.sleep(1)
block = b"x" * (1 << 20)
for i in range(150):
    with open({str(fs)!r} + "/f%d" % i, "wb") as f:
        f.write(block)
time.sleep(120)
""")
        spec = {"argv": [sys.executable, str(script)], "cwd": str(fs), "env": {"PATH": "/usr/bin:/bin"},
                "timeout": 100, "uid": None, "netns": False, "clean_dirs": [], "stderr_path": str(tmp_path / "err"),
                "limits": {"mem_bytes": 4 << 30, "cpu_s": 100, "file_bytes": 1 << 26, "nproc": 64,
                           "disk_bytes": 32 << 20},
                "oracle": {"expert_npz": str(export_expert("cheetah", tmp_path)), "obs_dim": 17, "act_dim": 6,
                           "budget": 100_000, "repo_root": str(ROOT)}}
        t0 = time.time()
        status = run_supervisor(spec, tmp_path)
        assert status["disk_exceeded"] and not status["timed_out"], status
        assert time.time() - t0 < 40 and status["all_dead"]


MANY = r"""
import ctypes, json, mmap, os, sys, time
out = {"forked": 0, "memfds": 0, "memfd_bytes": 0, "big_memfd": "", "nofile": 0}
pids = []
for _ in range(40):                       # many processes, each holding memory
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        m = mmap.mmap(-1, 64 << 20)
        m[::4096] = b"x" * (len(m) // 4096)
        time.sleep(60)
        os._exit(0)
    pids.append(pid)
out["forked"] = len(pids)
libc = ctypes.CDLL(None, use_errno=True)
fds = []
for i in range(200):                      # memfds: outside RLIMIT_AS, inside RLIMIT_FSIZE and RLIMIT_NOFILE
    fd = libc.memfd_create(b"x", 0)
    if fd < 0:
        break
    fds.append(fd)
    try:
        os.ftruncate(fd, 2 << 20)          # beyond RLIMIT_FSIZE (1 MB here)
        out["big_memfd"] = "allowed"
    except OSError as e:
        out["big_memfd"] = type(e).__name__
    try:
        os.pwrite(fd, b"y" * (1 << 20), 0)
        out["memfd_bytes"] += os.fstat(fd).st_size
    except OSError:
        pass
out["memfds"] = len(fds)
for fd in fds[-4:]:                       # room to list them and to write the report
    os.close(fd)
out["nofile"] = len(os.listdir("/proc/self/fd")) + 4 - 1
json.dump(out, open(sys.argv[1], "w"))
"""


@pytest.mark.skipif(not ROOT_MODE, reason="RLIMIT_NPROC counts a sandbox uid's processes (root mode)")
def test_memory_is_bounded_for_the_whole_check_processes_and_memfds_included(tmp_path):
    """Several processes of one check and memory in memfds (never mapped, outside RLIMIT_AS): RLIMIT_NPROC (per sandbox
    uid, threads included), RLIMIT_NOFILE and RLIMIT_FSIZE bound them, so the check holds at most
    nproc × (address space + nofile × file size) (grader/README.md)."""
    from grader.isolation import sandbox_policy
    from grader.runner import CHILD_FILE_MB, CHILD_NOFILE, CHILD_NPROC
    from grader.workspace import chown_tree, make_scratch, new_check_dir, remove_scratch

    uid = sandbox_policy().acquire()
    scratch, private = make_scratch()
    try:
        d = new_check_dir(scratch, "many")
        (d.ws / "many.py").write_text(MANY)
        chown_tree(d.path, uid)
        spec = {"argv": [sys.executable, "-I", str(d.ws / "many.py"), str(d.run / "out.json")],
                "cwd": str(d.run), "check_dir": str(d.path), "env": {"PATH": "/usr/bin:/bin"}, "timeout": 60,
                "uid": uid, "netns": False, "clean_dirs": [], "stderr_path": str(private / "err"), "oracle": None,
                "limits": {"mem_bytes": 1 << 30, "cpu_s": 60, "file_bytes": 1 << 20, "nproc": CHILD_NPROC,
                           "nofile": 32}}
        status = run_supervisor(spec, private)
        assert (d.run / "out.json").exists(), (status, (private / "err").read_text()[-1500:])
        seen = json.loads((d.run / "out.json").read_text())
    finally:
        sandbox_policy().release(uid)
        remove_scratch(scratch)
    assert status["all_dead"] and [p for p in sandbox_processes() if f" uid {uid} " in p] == []
    assert seen["forked"] < CHILD_NPROC, seen                  # the uid's processes and threads, this one included
    assert seen["memfds"] <= 32 and seen["nofile"] <= 32 and seen["big_memfd"] == "OSError", seen
    assert seen["memfd_bytes"] <= 32 << 20, seen
    assert CHILD_NOFILE * CHILD_FILE_MB <= 1024                 # the default bound stated in the README


@pytest.mark.skipif(not ROOT_MODE, reason="root mode's per-check file system")
def test_where_root_may_mount_each_check_folder_is_its_own_small_tmpfs(tmp_path):
    from grader.isolation import sandbox_policy
    from grader.workspace import make_scratch, new_check_dir, remove_check_dir, remove_scratch
    from grader.supervisor import CHECK_FS_MB

    if not sandbox_policy().mountns:
        pytest.skip("root may not mount here (no CAP_SYS_ADMIN): the disk guard alone bounds a check")
    scratch, _ = make_scratch()
    try:
        d = new_check_dir(scratch, "fs")
        assert os.path.ismount(d.path) and d.run.is_dir()
        st = os.statvfs(d.path)
        assert st.f_blocks * st.f_frsize <= CHECK_FS_MB << 20
        remove_check_dir(d)
        assert not d.path.exists()
        d2 = new_check_dir(scratch, "fs")
    finally:
        remove_scratch(scratch)
    assert not scratch.exists() and not os.path.ismount(d2.path)
    assert str(scratch) not in Path("/proc/self/mountinfo").read_text()


FILL_FILES = """    import os
    n = 0
    try:
        while n < 200000:
            open("f%d" % n, "w").close()
            n += 1
    except OSError:
        pass
    raise RuntimeError("created %d files" % n)
"""


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_MODE, reason="two gradings as root, inside a tmpfs of their own")
@pytest.mark.parametrize("mountns", ["auto", "off"])
def test_a_file_creating_submission_does_not_stop_a_concurrent_correct_one(mountns, tmp_path):
    """Two gradings at once on one small file system (their scratch folders in a tmpfs of their own, TMPDIR): one
    creates files until it is stopped, the other is correct. The attacker is stopped by its own check's limits (its
    own tmpfs where root may mount, the disk guard on its own files otherwise) and loses only its check; the correct
    submission keeps every point."""
    fs_path = Path(f"/tmp/il_fs_{os.getpid()}")          # a mount point sandbox uids may traverse (tmp_path is 0700)
    with own_tmpfs(fs_path, 1024, 60_000) as fs:
        subs = {"mallory": write_submission(tmp_path / "mallory", loss_attack(FILL_FILES)),
                "alice": write_submission(tmp_path / "alice")}
        env = dict(os.environ, TMPDIR=str(fs), GRADER_MOUNTNS=mountns, PYTHONWARNINGS="ignore")
        procs = {}
        for i, (who, sub) in enumerate(subs.items()):
            procs[who] = subprocess.Popen(
                [sys.executable, "-m", "grader", str(sub), "--out", str(tmp_path / f"{who}.json"), "--only",
                 "bc_loss,dagger_aggregate", "--no-hidden", "--jobs", "1"], cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                env=dict(env, GRADER_SANDBOX_UID_BASE=str(UID_BASE + 100 + 10 * i)))
        errs = {who: p.communicate(timeout=900)[1] for who, p in procs.items()}
        assert all(p.returncode == 0 for p in procs.values()), errs
        left = os.listdir(fs)
    fs_path.rmdir()
    alice = json.loads((tmp_path / "alice.json").read_text())
    mallory = json.loads((tmp_path / "mallory.json").read_text())
    assert alice["score"] == 25, [t["output"] for t in alice["tests"]]      # BC loss 15 + DAgger aggregation 10
    bc = by_prefix(mallory, "BC loss")[0]
    assert bc["score"] == 0 and by_prefix(mallory, "DAgger aggregation")[0]["score"] == 10, mallory
    assert "stopped: its files took more than" in bc["output"] or "created" in bc["output"], bc["output"]
    assert left == [], left                                        # every scratch folder (and tmpfs) is gone


HOG = r"""
import ctypes, mmap, os, sys, time
if sys.argv[1] == "processes":            # five processes of 150 MB each, under a 1 GB address-space limit apiece
    for _ in range(5):
        if os.fork() == 0:
            m = mmap.mmap(-1, 150 << 20)
            m[::4096] = b"x" * (len(m) // 4096)
            time.sleep(60)
            os._exit(0)
else:                                     # memfds, never mapped: outside RLIMIT_AS
    libc = ctypes.CDLL(None, use_errno=True)
    fds = []
    for _ in range(6):
        fd = libc.memfd_create(b"x", 0)
        fds.append(fd)
        for off in range(0, 100 << 20, 1 << 20):
            os.pwrite(fd, b"y" * (1 << 20), off)
time.sleep(60)
"""


@pytest.mark.parametrize("how", ["processes", "memfds"])
def test_the_supervisor_stops_a_check_whose_processes_hold_too_much_memory_together(how, tmp_path):
    """RLIMIT_AS bounds each process, not the check: the supervisor adds up the resident memory of every process of
    the check and the memfds they hold, and stops the check beyond its budget (here 400 MB; --mem-mb in grading)."""
    from grader.runner import ChildResult

    (tmp_path / "hog.py").write_text(HOG)
    spec = {"argv": [sys.executable, "-I", str(tmp_path / "hog.py"), how], "cwd": str(tmp_path),
            "env": {"PATH": "/usr/bin:/bin"}, "timeout": 50, "uid": None, "netns": False, "clean_dirs": [],
            "stderr_path": str(tmp_path / "err"), "oracle": None,
            "limits": {"mem_bytes": 1 << 30, "cpu_s": 60, "file_bytes": 128 << 20, "nproc": 64, "nofile": 64,
                       "check_mem_bytes": 400 << 20}}
    t0 = time.time()
    status = run_supervisor(spec, tmp_path)
    assert status["mem_exceeded"] and status["all_dead"] and not status["timed_out"], status
    assert time.time() - t0 < 30
    res = ChildResult(returncode=status["returncode"], timed_out=False, seconds=1.0, out=tmp_path,
                      mem_exceeded=True, mem_limit=status["mem_limit"])
    assert not res.finished and "more than 400 MB of memory together" in res.message()


@pytest.mark.skipif(not ROOT_MODE, reason="a sandbox uid's files outside its folder are counted in root mode")
def test_without_a_private_tmp_the_disk_guard_counts_the_uids_files_in_shared_folders(tmp_path):
    """Root mode without a mount namespace: /tmp is the machine's. What the check's uid writes into a world-writable
    folder counts against its own budget (here a world-writable tmpfs of this test's own stands for /tmp)."""
    from grader.isolation import sandbox_policy
    from grader.workspace import chown_tree, make_scratch, new_check_dir, remove_scratch

    shared = Path(f"/tmp/il_shared_{os.getpid()}")
    uid = sandbox_policy().acquire()
    scratch, private = make_scratch()
    try:
        with own_tmpfs(shared, 256, 20_000):
            d = new_check_dir(scratch, "shared")
            (d.ws / "fill.py").write_text(f"""
import os, time
os.makedirs({str(shared / "mine" / "deep")!r})
for i in range(150):
    with open({str(shared / "mine" / "deep")!r} + "/f%d" % i, "wb") as f:
        f.write(b"x" * (1 << 20))
    time.sleep(0.01)
open({str(d.run / "finished")!r}, "w").close()
""")
            chown_tree(d.path, uid)
            spec = {"argv": [sys.executable, "-I", str(d.ws / "fill.py")], "cwd": str(d.run), "check_dir": str(d.path),
                    "env": {"PATH": "/usr/bin:/bin"}, "timeout": 60, "uid": uid, "netns": False,
                    "clean_dirs": [str(shared)], "stderr_path": str(private / "err"), "oracle": None,
                    "limits": {"mem_bytes": 1 << 30, "cpu_s": 60, "file_bytes": 1 << 24, "nproc": 6, "nofile": 32,
                               "disk_bytes": 32 << 20}}
            status = run_supervisor(spec, private)
            assert status["disk_exceeded"] and not (d.run / "finished").exists(), status
            assert status["files_removed"] >= 1 and not (shared / "mine").exists()     # and cleaned after the check
        shared.rmdir()
    finally:
        sandbox_policy().release(uid)
        remove_scratch(scratch)

"""Child-process side of the grader: runs student code on one job and writes plain-data results.

Usage (by grader.runner only): python -I -B grader_child.py JOB.json OUT_DIR
Writes OUT_DIR/result.npz (arrays only) or OUT_DIR/error.json, then OUT_DIR/DONE.
Nothing here decides a score: the parent checks the arrays against its own reference, and reads
error.json as untrusted data (it keeps only a whitelisted, shortened excerpt).
Expert queries go over a pipe to the trusted supervisor (the expert's weights are not in this process).
"""
import json
import os
import sys
import traceback

WS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, WS)


class RemoteExpert:
    """Quacks like a policy for ``act(obs, deterministic=True)``; answered by the supervisor."""

    def __init__(self, fds: str, obs_dim: int, act_dim: int):
        r, w = (int(x) for x in fds.split(","))
        self.rf, self.wf = os.fdopen(r, "rb", buffering=0), os.fdopen(w, "wb", buffering=0)
        self.obs_dim, self.act_dim = obs_dim, act_dim

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.rf.read(n - len(buf))
            if not chunk:
                raise RuntimeError("the expert oracle closed the connection")
            buf += chunk
        return buf

    def act(self, obs, deterministic: bool = True, **_):
        import struct

        import numpy as np

        x = np.ascontiguousarray(np.asarray(obs, np.float32))
        single = x.ndim == 1
        x = x.reshape(-1, self.obs_dim)
        self.wf.write(struct.pack("<II", len(x), self.obs_dim) + x.tobytes())
        status, rows = struct.unpack("<II", self._read(8))
        if status != 0:
            raise RuntimeError("expert query budget exhausted (each labelled sample costs one expert query)")
        a = np.frombuffer(self._read(rows * self.act_dim * 4), np.float32).reshape(rows, self.act_dim).copy()
        return a[0] if single else a


class RemoteEnvs:
    """The pipe to the supervisor's env server (assignment 2's performance checks): the child holds no simulator."""

    HEADER, REQUEST = "<II", "<III"          # grader/supervisor.py: HEADER, ENV_HEADER

    def __init__(self, fds: str):
        r, w = (int(x) for x in fds.split(","))
        self.rf, self.wf = os.fdopen(r, "rb", buffering=0), os.fdopen(w, "wb", buffering=0)

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.rf.read(n - len(buf))
            if not chunk:
                raise RuntimeError("the environment server closed the connection")
            buf += chunk
        return buf

    def request(self, op: int, index: int, payload: bytes = b"") -> bytes:
        import struct

        self.wf.write(struct.pack(self.REQUEST, op, index, len(payload)) + payload)
        status, n = struct.unpack(self.HEADER, self._read(8))
        if status != 0:
            raise RuntimeError("environment step budget exhausted (the grader counts every step of the training)")
        return self._read(n)

    def make(self, env_cfg=None):
        return RemoteEnv(self)


class RemoteEnv:
    """gymnasium's reset/step on an environment the supervisor steps (ENV_MAKE, ENV_RESET, ENV_STEP = 1, 2, 3)."""

    def __init__(self, conn: RemoteEnvs):
        import struct

        import numpy as np
        from gymnasium.spaces import Box

        self.conn = conn
        body = conn.request(1, 0)
        self.index, obs_dim, act_dim = struct.unpack_from("<III", body)
        low = np.frombuffer(body[12:12 + 4 * act_dim], np.float32).copy()
        high = np.frombuffer(body[12 + 4 * act_dim:12 + 8 * act_dim], np.float32).copy()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.observation_space = Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = Box(low, high, dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        import struct

        import numpy as np

        body = self.conn.request(2, self.index, struct.pack("<q", 0 if seed is None else int(seed)))
        return np.frombuffer(body, np.float32).copy(), {}

    def step(self, action):
        import struct

        import numpy as np

        a = np.ascontiguousarray(np.asarray(action, np.float32).reshape(self.act_dim))
        body = self.conn.request(3, self.index, a.tobytes())
        obs = np.frombuffer(body[:4 * self.obs_dim], np.float32).copy()
        reward, terminated, truncated = struct.unpack("<dBB", body[4 * self.obs_dim:])
        return obs, reward, bool(terminated), bool(truncated), {}

    def close(self):
        pass


def use_remote_envs(fds: str) -> None:
    """Every env the framework makes is one the supervisor steps (the modules that imported make_env by name)."""
    import importlib

    conn = RemoteEnvs(fds)
    for name in ("envs.builder", "envs", "learning.trainer", "learning.policy_gradient", "learning.parameter_search",
                 "learning.policy_search"):
        module = importlib.import_module(name)
        if hasattr(module, "make_env"):
            module.make_env = conn.make


def student_module(module: str):
    """The student's file ``learning/<x>_agent.py`` as it sits in this workspace: the module ``submission.<x>_agent``."""
    import importlib

    return importlib.import_module("submission." + module.rsplit(".", 1)[1])


# what every class body gets, or may harmlessly declare; any other special method of a student's class (e.g.
# __getattribute__, __getattr__, __new__, __init_subclass__, __set_name__ hooks) could route the framework's own
# attributes back to the student's code, so the check refuses it with a message naming it
PLAIN_DUNDERS = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__firstlineno__",
                 "__static_attributes__", "__annotations__", "__annotate__", "__annotate_func__",
                 "__annotations_cache__", "__orig_bases__", "__parameters__", "__init__", "__classcell__"}


def splice(framework: type, student: type, todo) -> type:
    """The framework's class running the student's TODO methods ``todo``: a subclass of the student's class in which
    every other attribute the framework's class defines (train, fit, rollout, room, __init__, config_class, the other
    files' TODO methods, ...) is the framework's own again. Helper methods and attributes the student adds stay
    (they are not the framework's), and super() inside the student's methods still works."""
    todo = set(todo)
    if type(student) is not type:
        raise TypeError(f"{student.__name__} uses a metaclass ({type(student).__name__}): the grader runs plain "
                        "classes only, as in the handout's file")
    for cls in student.__mro__:
        if cls in framework.__mro__:
            continue
        special = sorted(n for n in vars(cls) if n.startswith("__") and n.endswith("__") and n not in PLAIN_DUNDERS)
        if special:
            raise TypeError(f"{cls.__name__} defines {', '.join(special)}: the grader runs your TODO methods and plain "
                            "helper methods only; remove it")
    restored = {}
    for cls in reversed(framework.__mro__[:-1]):            # base first, so the most derived definition wins
        for name, value in vars(cls).items():
            if name in todo or (name.startswith("__") and name != "__init__"):
                continue
            restored[name] = value
    restored["__module__"] = framework.__module__
    return type(framework.__name__, (student,), restored)


def student_class(job):
    """The framework's agent class with the student's TODO methods spliced in (see :func:`splice`), and reference
    methods (grader_ref) for the listed other TODOs."""
    import importlib

    framework = getattr(importlib.import_module(job["module"]), job["class_name"])
    student = getattr(student_module(job["module"]), job["class_name"])
    if not (isinstance(student, type) and issubclass(student, framework.__mro__[1])):
        raise TypeError(f"{job['class_name']} in learning/{job['module'].rsplit('.', 1)[1]}.py must stay a subclass "
                        f"of {framework.__mro__[1].__name__}, as in the handout's file")
    cls = splice(framework, student, job["todo"])
    methods = {m: getattr(importlib.import_module(f"grader_ref.{mod}"), m)
               for m, mod in job.get("reference", {}).items()}
    return type(cls.__name__, (cls,), methods) if methods else cls


def make_agent(job, policy_file=None, expert_file=None, cfg_over=None):
    import numpy as np

    from learning.agents import build_agent
    from learning.checkpoint import load_policy

    a = build_agent(job["agent"], job["env"], out_dir=os.path.join(os.getcwd(), "agent_out"),
                    agent_cls=student_class(job),
                    config={"agent": job["agent"], "env": job["env"], **(cfg_over or {})}, quiet=True,
                    progress=False)
    if policy_file:
        a.policy, _ = load_policy(policy_file)
        a.action_low = a.policy.action_low.numpy().copy()
        a.action_high = a.policy.action_high.numpy().copy()
    if expert_file:
        a._expert, _ = load_policy(expert_file)
    a.rng = np.random.default_rng(job["seed"])
    return a


def _seed_globals(seed):
    """Seed the global RNGs student code may use (random, numpy, torch): a regrade gives identical answers."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def job_bc_loss(job, out):
    """compute_loss on consecutive batches of one agent, backward after each (as fit() does).
    Writes loss (K,) float64, has_graph (K,) bool, grads (K, P) float64 (P: policy parameters, named order)."""
    import numpy as np
    import torch

    a = make_agent(job, job["policy"])
    _seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs, act, sizes = f["obs"], f["actions"], [int(n) for n in f["sizes"]]
    losses, graphs, grads = [], [], []
    start = 0
    for n in sizes:
        o, x = torch.as_tensor(obs[start:start + n].copy()), torch.as_tensor(act[start:start + n].copy())
        start += n
        a.policy.zero_grad(set_to_none=True)
        loss = a.compute_loss(o, x)
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"compute_loss returned {type(loss).__name__}, not a torch.Tensor")
        if loss.dim() != 0:       # fit() refuses anything else
            raise TypeError(f"compute_loss returned a tensor of shape {tuple(loss.shape)}, not a scalar (shape ())")
        losses.append(float(loss.detach().item()))
        graphs.append(bool(loss.requires_grad))
        if loss.requires_grad:
            loss.backward()
        grads.append(np.concatenate([np.zeros(p.numel(), np.float64) if p.grad is None
                                     else p.grad.detach().double().reshape(-1).numpy()
                                     for _, p in a.policy.named_parameters()]))
    np.savez(os.path.join(out, "result.npz"), loss=np.array(losses, np.float64), has_graph=np.array(graphs, bool),
             grads=np.stack(grads).astype(np.float64))


MAX_FIT_CALLS = 300           # compute_loss calls and optimizer steps recorded per job (a right fit makes ~25)


def _flat_grads(params, grads):
    """One float64 vector of ``grads`` (one per parameter, None → zeros) in ``params``' order."""
    import numpy as np

    return np.concatenate([np.zeros(p.numel(), np.float64) if g is None else g.detach().double().reshape(-1).numpy()
                           for p, g in zip(params, grads)])


def _rows(x, dim, what):
    """A batch passed to compute_loss (tensor or array) as float64 rows (b, dim)."""
    import numpy as np
    import torch

    r = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    if r.ndim != 2 or r.shape[1] != dim:
        raise ValueError(f"compute_loss got {what} of shape {tuple(r.shape)}; expected (batch, {dim})")
    return r.copy()


def _float32(x):
    """float64 tensors and arrays as float32 tensors (the reference loss's dtype); anything else as it is."""
    import numpy as np
    import torch

    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return torch.as_tensor(x, dtype=torch.float32)
    if isinstance(x, torch.Tensor) and x.dtype == torch.float64:
        return x.float()
    return x


class _FitRecord:
    """What fit does, as plain lists: each compute_loss call (rows, value, graph, the fresh gradient of that loss) and
    each self.optimizer.step() (the parameters' .grad then, and how many calls came before it)."""

    def __init__(self, params):
        self.params = params
        self.calls, self.steps, self.n_calls, self.n_steps = [], [], 0, 0
        self.fit_index = 0

    def on_loss(self, obs, act, loss, obs_dim, act_dim):
        import torch

        self.n_calls += 1
        if len(self.calls) >= MAX_FIT_CALLS:
            return
        graph = isinstance(loss, torch.Tensor) and loss.requires_grad
        grads = torch.autograd.grad(loss, self.params, retain_graph=True, allow_unused=True) if graph \
            else [None] * len(self.params)
        self.calls.append((self.fit_index, _rows(obs, obs_dim, "observations"), _rows(act, act_dim, "actions"),
                           float(loss.detach().double().item()), graph, _flat_grads(self.params, grads)))

    def on_step(self):
        self.n_steps += 1
        if len(self.steps) >= MAX_FIT_CALLS:
            return
        grads = [p.grad for p in self.params]
        self.steps.append((self.fit_index, all(g is None for g in grads), min(self.n_calls, MAX_FIT_CALLS),
                           _flat_grads(self.params, grads)))


def _recording_adam(agent, rec):
    """The framework's Adam over ``agent.policy`` (settings from its config) that tells ``rec`` of each step()."""
    from learning.optim import Adam

    class RecordingAdam(Adam):
        def step(self, closure=None):
            rec.on_step()
            return super().step(closure)

    return RecordingAdam(agent.policy.parameters(), lr=agent.cfg.learning_rate, weight_decay=agent.cfg.weight_decay)


def job_bc_fit(job, out):
    """fit called on one agent for each (rows, epochs) of ``fits`` (consecutive slices of the inputs), with the
    reference compute_loss (recorded: rows, value, fresh gradient) and a recording self.optimizer (the framework's
    Adam). Writes per call: call_fit, call_sizes, call_graph (C,), call_loss (C,), call_obs/call_act (sum of sizes,
    dim), call_grads (C, P); per step: step_fit (S,), step_none (S,) all .grad None, step_after (S,) calls before it,
    step_grads (S, P); per fit: ret (F,) the returned value as float (NaN if none), ret_ok (F,), full_loss (F, 2) the
    whole slice's loss before and after, param_change (F,) max |Δθ|, own_optimizer (F,) self.optimizer kept; counts
    (2,) calls and steps in all."""
    import numpy as np
    import torch

    from learning.demos import Dataset

    a = make_agent(job, job["policy"], cfg_over=job["cfg"])
    params = list(a.policy.parameters())
    rec = _FitRecord(params)
    a.optimizer = opt = _recording_adam(a, rec)
    cls = type(a)
    reference_loss = cls.compute_loss
    obs_dim, act_dim = a.obs_dim, a.act_dim

    def compute_loss(self, obs, expert_actions):       # float64 or NumPy rows: the student's own loss may take them
        loss = reference_loss(self, _float32(obs), _float32(expert_actions))
        rec.on_loss(obs, expert_actions, loss, obs_dim, act_dim)
        return loss

    def full_loss(o, x):
        with torch.no_grad():
            return float(reference_loss(a, torch.as_tensor(o), torch.as_tensor(x)).double().item())

    _seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs, act = f["obs"], f["actions"]
    rets, oks, losses, changes, owns = [], [], [], [], []
    start = 0
    for k, (n, epochs) in enumerate(job["fits"]):
        o, x = obs[start:start + n].copy(), act[start:start + n].copy()
        start += n
        before = [p.detach().clone() for p in params]
        loss_before = full_loss(o, x)
        rec.fit_index = k
        cls.compute_loss = compute_loss
        try:
            value = a.fit(Dataset(o.copy(), x.copy()), int(epochs))
        finally:
            cls.compute_loss = reference_loss
        try:
            rets.append(float(value))
            oks.append(True)
        except (TypeError, ValueError, RuntimeError):
            rets.append(float("nan"))
            oks.append(False)
        losses.append((loss_before, full_loss(o, x)))
        changes.append(max(float((p.detach() - b).abs().max()) for p, b in zip(params, before)))
        owns.append(a.optimizer is opt)
    calls, steps = rec.calls, rec.steps
    p = sum(q.numel() for q in params)
    np.savez(os.path.join(out, "result.npz"),
             call_fit=np.array([c[0] for c in calls], np.int64),
             call_sizes=np.array([len(c[1]) for c in calls], np.int64),
             call_obs=np.concatenate([c[1] for c in calls]) if calls else np.zeros((0, obs_dim)),
             call_act=np.concatenate([c[2] for c in calls]) if calls else np.zeros((0, act_dim)),
             call_loss=np.array([c[3] for c in calls], np.float64),
             call_graph=np.array([c[4] for c in calls], bool),
             call_grads=np.stack([c[5] for c in calls]) if calls else np.zeros((0, p)),
             step_fit=np.array([s[0] for s in steps], np.int64),
             step_none=np.array([s[1] for s in steps], bool),
             step_after=np.array([s[2] for s in steps], np.int64),
             step_grads=np.stack([s[3] for s in steps]) if steps else np.zeros((0, p)),
             ret=np.array(rets, np.float64), ret_ok=np.array(oks, bool),
             full_loss=np.array(losses, np.float64).reshape(-1, 2), param_change=np.array(changes, np.float64),
             own_optimizer=np.array(owns, bool), counts=np.array([rec.n_calls, rec.n_steps], np.int64))


def _call_pairs(fn, obs, repeats, act_dim):
    """Call ``fn`` (one state → (executed, label)) ``repeats`` times over all states in turn, as a rollout calls it
    step after step; states are passed as float64 like the env's. Returns two (N, repeats, act_dim) float64 arrays."""
    import numpy as np

    exe = np.zeros((len(obs), repeats, act_dim))
    lab = np.zeros((len(obs), repeats, act_dim))
    for k in range(repeats):
        for i, o in enumerate(obs):
            e, l = fn(o.astype(np.float64))
            exe[i, k] = np.array(np.asarray(e, np.float64), np.float64).reshape(act_dim)
            lab[i, k] = np.array(np.asarray(l, np.float64), np.float64).reshape(act_dim)
    return exe, lab


def job_dagger_select(job, out):
    """select_action for each β in turn, ``repeats`` × N calls each, on one agent.
    Writes exec, label: (n_betas, N, repeats, act_dim) float64."""
    import numpy as np

    a = make_agent(job, job["policy"], job["expert"])
    _seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs = f["obs"]
    exe, lab = zip(*(_call_pairs(lambda o, beta=beta: a.select_action(o, float(beta)), obs, job["repeats"], a.act_dim)
                     for beta in job["betas"]))
    np.savez(os.path.join(out, "result.npz"), exec=np.stack(exe), label=np.stack(lab))


MAX_AGG_ROWS = 5_000           # answers stay small: the rounds give a few hundred pairs


def job_dagger_aggregate(job, out):
    """aggregate over several rounds on one agent, as DAggerAgent.train calls it: self.dataset = aggregate(
    self.dataset, round's states, round's labels). Writes obs (T, obs_dim) float64 and actions (T, act_dim) float64:
    the datasets returned after each round, one after the other, and lengths (rounds,) int64 (T = lengths.sum())."""
    import numpy as np

    from learning.demos import Dataset

    a = make_agent(job, job["policy"])
    _seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        demo_o, demo_a = f["data_obs"], f["data_actions"]
        visited, labels, sizes = f["visited_obs"], f["labels"], [int(n) for n in f["round_sizes"]]
    a.demo_dataset = lambda *args, **kwargs: Dataset(demo_o.copy(), demo_a.copy())    # the run's demos
    a.dataset = a.demo_dataset()
    rows_o, rows_a, lengths = [], [], []
    start = 0
    for k, n in enumerate(sizes, 1):
        new = a.aggregate(a.dataset, visited[start:start + n].copy(), labels[start:start + n].copy())
        start += n
        o = np.array(np.asarray(new.obs), dtype=np.float64)
        x = np.array(np.asarray(new.actions), dtype=np.float64)
        if o.ndim != 2 or x.ndim != 2 or o.shape[1] != a.obs_dim or x.shape[1] != a.act_dim or len(o) != len(x):
            raise ValueError(f"round {k}: aggregate returned a dataset with obs {o.shape} and actions {x.shape}; "
                             f"expected (n, {a.obs_dim}) and (n, {a.act_dim})")
        if sum(lengths) + len(o) > MAX_AGG_ROWS:
            raise ValueError(f"round {k}: aggregate returned {len(o)} pairs, far more than the rounds gave")
        rows_o.append(o)
        rows_a.append(x)
        lengths.append(len(o))
        a.dataset = new
    np.savez(os.path.join(out, "result.npz"), obs=np.concatenate(rows_o), actions=np.concatenate(rows_a),
             lengths=np.array(lengths, np.int64))


def job_dart_step(job, out):
    """noisy_expert_step ``repeats`` × N calls on one agent. Writes exec, label: (N, repeats, act_dim) float64."""
    import numpy as np

    a = make_agent(job, job["policy"], job["expert"], cfg_over={"noise_std": job["noise_std"]})
    _seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs = f["obs"]
    exe, lab = _call_pairs(a.noisy_expert_step, obs, job["repeats"], a.act_dim)
    np.savez(os.path.join(out, "result.npz"), exec=exe, label=lab)


MAX_ROUND_ROWS = 5_000          # rows of the datasets and collections a round answer may hold (a few hundred expected)
MAX_ROUND_CALLS = 32            # collect_round or fit calls per round the answer records (one each expected)


def _as_float(x):
    """float(x), or None if x is not a number."""
    try:
        return float(x)
    except Exception:  # noqa: BLE001 - student values may be anything
        return None


def _round_rows(d):
    """(obs, labels) float64 of a Dataset, or None if ``d`` is not one."""
    import numpy as np

    from learning.demos import Dataset

    if not isinstance(d, Dataset):
        return None
    return np.array(d.obs, np.float64), np.array(d.actions, np.float64)


def _recorders(a, dagger, current, collects, collected, fits):
    """Wrap collect_round and fit on the instance ``a``: each call's arguments and result are appended to the lists
    (the class's methods, the reference's, run inside)."""
    cls = type(a)

    def collect_round(n, *args, **kwargs):
        beta = (args[0] if args else kwargs.get("beta")) if dagger else None
        rec = [current[0], _as_float(n), _as_float(beta) if dagger else float("nan"), -1.0]
        rec = [float("nan") if x is None else x for x in rec]
        if sum(1 for c in collects if c[0] == current[0]) >= MAX_ROUND_CALLS:
            raise ValueError(f"collect_round was called more than {MAX_ROUND_CALLS} times in round {current[0]}")
        collects.append(rec)
        data = cls.collect_round(a, n, *args, **kwargs)
        rows = _round_rows(data)
        if rows is not None:
            if sum(len(o) for o, _ in collected) + len(rows[0]) > MAX_ROUND_ROWS:
                raise ValueError("the rounds collected far more pairs than their n")
            rec[3] = float(len(rows[0]))
            collected.append(rows)
        return data

    def fit(dataset, epochs, *args, **kwargs):
        if sum(1 for f in fits if f[0] == current[0]) >= MAX_ROUND_CALLS:
            raise ValueError(f"fit was called more than {MAX_ROUND_CALLS} times in round {current[0]}")
        rows = _round_rows(dataset)
        rec = [current[0], -1.0, _as_float(epochs), float("nan"), float("nan"), float("nan")]
        if rows is not None:
            rec[1], rec[3], rec[4] = float(len(rows[0])), float(rows[0].sum()), float(rows[1].sum())
        rec = [float("nan") if x is None else x for x in rec]
        fits.append(rec)
        loss = cls.fit(a, dataset, epochs, *args, **kwargs)
        value = _as_float(loss)
        rec[5] = float("nan") if value is None else value
        return loss

    a.collect_round, a.fit = collect_round, fit


def job_round(job, out):
    """Rounds 1..K of DAgger or noise injection through the framework's ``run_round`` (which enforces the sample
    budget), on one agent whose ``self.dataset`` starts as the given data (as if round 0 had run) and whose
    collect_round and fit (the reference's) are recorded. Writes:
    rounds (K, 7) float64: reached (0/1), len(self.dataset) before and after (-1: not a Dataset), env steps before and
    after, train_round's return as a float (NaN if none), 1 if it returned a number;
    collects (C, 4) float64: round, n, β (NaN for noise injection), pairs returned (-1: raised);
    collected_obs (R, obs_dim), collected_act (R, act_dim) float64: the pairs collect_round returned, in call order;
    data_obs (T, obs_dim), data_act (T, act_dim) float64: self.dataset after each reached round, one after the other;
    fits (F, 6) float64: round, dataset length (-1: not a Dataset), epochs, sum of its obs, sum of its labels, fit's
    return; error (1,) str: the record of the exception that stopped the rounds ("" if none); raised_in (1,) int64:
    0 none, 1 inside train_round, 2 in the framework's checks after it."""
    import numpy as np

    from learning.demos import Dataset

    dagger = job["agent"] == "dagger"
    a = make_agent(job, None, job["expert"], cfg_over=job["config"])
    _seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        demo_o, demo_a = f["data_obs"], f["data_actions"]
    a.demo_dataset = lambda *args, **kwargs: Dataset(demo_o.copy(), demo_a.copy())    # the run's demos
    a.dataset = a.demo_dataset()
    a.fit_normalizer(a.dataset)          # as round 0 does
    current, collects, collected, fits = [0], [], [], []
    _recorders(a, dagger, current, collects, collected, fits)
    inside = [False]
    rounds = np.full((job["rounds"], 7), np.nan)
    rounds[:, 0] = 0

    def train_round(i):
        inside[0] = True
        ret = type(a).train_round(a, i)
        inside[0] = False
        value = _as_float(ret)
        rounds[i - 1, 5:] = (np.nan, 0.0) if value is None else (value, 1.0)
        return ret

    a.train_round = train_round
    data, error, raised_in = [], "", 0
    for i in range(1, job["rounds"] + 1):
        current[0] = i
        rounds[i - 1, :5] = (1, len(a.dataset), np.nan, a.env.steps, np.nan)
        inside[0] = False
        try:
            a.run_round(i)
        except Exception as e:  # noqa: BLE001 - the parent names the mistake; the message goes to the feedback
            error, raised_in = _error_record(e), 1 if inside[0] else 2
        rows = _round_rows(a.dataset)
        rounds[i - 1, 2] = -1 if rows is None else len(rows[0])
        rounds[i - 1, 4] = a.env.steps
        if rows is not None:
            if sum(len(o) for o, _ in data) + len(rows[0]) > MAX_ROUND_ROWS:
                raise ValueError(f"round {i}: self.dataset holds {len(rows[0])} pairs, far more than the rounds gave")
            data.append(rows)
        if error:
            break

    def stack(parts, k, dim):
        return np.concatenate([p[k] for p in parts]) if parts else np.zeros((0, dim))

    np.savez(os.path.join(out, "result.npz"), rounds=rounds,
             collects=np.array(collects, np.float64).reshape(-1, 4), fits=np.array(fits, np.float64).reshape(-1, 6),
             collected_obs=stack(collected, 0, a.obs_dim), collected_act=stack(collected, 1, a.act_dim),
             data_obs=stack(data, 0, a.obs_dim), data_act=stack(data, 1, a.act_dim), error=np.array([error]),
             raised_in=np.array([raised_in], np.int64))


class _TooManyResets(RuntimeError):
    """A round reset the env far more often than n steps can need (a loop that only resets stops here)."""


class _BoundedTrace(list):
    """The env's record (TrainingEnv.trace) that refuses to grow past ``limit`` entries."""

    limit = 0

    def append(self, item):
        if len(self) >= self.limit:
            raise _TooManyResets("collect_round reset the env far more often than its n steps need")
        super().append(item)


# what a refused step or a wrong return value was, as codes: no text of the student's process reaches the parent (the
# workspace of a collection check holds reference code, grader/feedback.py)
REFUSALS = (("finished episode", 1), ("more environment steps", 2), ("needs an action of shape", 3), ("NaN", 4))
RETURN_TYPES = ((tuple, 1), (list, 2), (type(None), 3), (dict, 5))


def _return_code(data):
    """What collect_round returned instead of a Dataset: 1 tuple, 2 list, 3 None, 4 NumPy array, 5 dict, 0 other."""
    import numpy as np

    if isinstance(data, np.ndarray):
        return 4
    return next((code for kind, code in RETURN_TYPES if isinstance(data, kind)), 0)


def _collect_rounds(job, out, cfg_over=None):
    """collect_round for each (n, beta) of job["calls"] in turn (beta None: noise injection's collect_round(n)), each
    in its own ``with a.env.collection(n)`` block as the framework runs a round, in a TrainingEnv whose episodes end
    after job["max_steps"] steps. Stops after the first call that went wrong.

    Writes the env's record, every reset and step, R entries: kind (R,) int64 (0 reset, 1 step), seed (R,) int64
    (resets; -1 for steps), action (R, act_dim) float64 (steps: the action as passed), obs (R, obs_dim) float64 (the
    reset's or the step's returned observation), reward (R,) float64, terminated, truncated (R,) bool; per call (C):
    records (entries of the record), status (0 returned a Dataset, 1 the env refused a step (EpisodeError), 2 reset
    too often, 3 not run, 4 returned something else, 5 a Dataset of the wrong widths), detail (status 1: REFUSALS'
    code; status 4: _return_code), widths (C, 2) (the Dataset's obs and label widths), rows (pairs returned), kept
    (rows written, at most 2n + 2); and the returned pairs one call after the other: data_obs (sum kept, obs_dim),
    data_labels (sum kept, act_dim) float64."""
    import numpy as np

    from envs.builder import make_env, resolve_env_config
    from envs.training_env import EpisodeError, TrainingEnv
    from learning.demos import Dataset

    a = make_agent(job, job["policy"], job["expert"], cfg_over=cfg_over)
    env_cfg = resolve_env_config(job["env"])
    env_cfg.max_episode_steps = int(job["max_steps"])
    a.env = TrainingEnv(make_env(env_cfg), job["seed"], a.action_low, a.action_high)
    trace = _BoundedTrace()
    a.env.trace = trace
    _seed_globals(job["seed"])
    calls = job["calls"]
    records, status, detail, widths, rows, kept = [], [], [], [], [], []
    data_o, data_x = [np.zeros((0, a.obs_dim))], [np.zeros((0, a.act_dim))]
    for n, beta in calls:
        start = len(trace)
        trace.limit = start + 3 * int(n) + 5
        code, why, data = 0, 0, None
        try:
            with a.env.collection(n):
                data = a.collect_round(int(n)) if beta is None else a.collect_round(int(n), float(beta))
        except EpisodeError as e:
            code, why = 1, next((c for text, c in REFUSALS if text in str(e)), 0)
        except _TooManyResets:
            code = 2
        o = x = np.zeros((0, 0))
        if code == 0 and not isinstance(data, Dataset):
            code, why = 4, _return_code(data)
        if code == 0:
            o = np.array(np.asarray(data.obs), dtype=np.float64)
            x = np.array(np.asarray(data.actions), dtype=np.float64)
            if o.ndim != 2 or x.ndim != 2 or o.shape[1] != a.obs_dim or x.shape[1] != a.act_dim or len(o) != len(x):
                code = 5
        records.append(len(trace) - start)
        status.append(code)
        detail.append(why)
        widths.append((o.shape[-1] if o.ndim else 0, x.shape[-1] if x.ndim else 0))
        keep = min(len(o), 2 * int(n) + 2) if code == 0 else 0
        rows.append(len(o) if code == 0 else 0)
        kept.append(keep)
        if code:
            break
        data_o.append(o[:keep])
        data_x.append(x[:keep])
    for _ in range(len(calls) - len(status)):
        records.append(0)
        status.append(3)
        detail.append(0)
        widths.append((0, 0))
        rows.append(0)
        kept.append(0)
    entries = list(trace)
    kind = np.array([0 if e[0] == "reset" else 1 for e in entries], np.int64)
    act = np.zeros((len(entries), a.act_dim))
    obs = np.zeros((len(entries), a.obs_dim))
    seed = np.full(len(entries), -1, np.int64)
    reward = np.zeros(len(entries))
    term = np.zeros(len(entries), bool)
    trunc = np.zeros(len(entries), bool)
    for i, e in enumerate(entries):
        if e[0] == "reset":
            seed[i], obs[i] = e[1], e[2]
        else:
            act[i], obs[i], reward[i], term[i], trunc[i] = e[1], e[2], e[3], e[4], e[5]
    np.savez(os.path.join(out, "result.npz"), kind=kind, seed=seed, action=act, obs=obs, reward=reward,
             terminated=term, truncated=trunc, records=np.array(records, np.int64),
             status=np.array(status, np.int64), detail=np.array(detail, np.int64),
             widths=np.array(widths, np.int64).reshape(-1, 2), rows=np.array(rows, np.int64),
             kept=np.array(kept, np.int64), data_obs=np.concatenate(data_o), data_labels=np.concatenate(data_x))


def job_dagger_collect(job, out):
    """DAgger's collect_round(n, beta) for each (n, beta) of job["calls"]: see :func:`_collect_rounds`."""
    _collect_rounds(job, out)


def job_dart_collect(job, out):
    """Noise injection's collect_round(n) for each n of job["calls"] (with noise_std job["noise_std"]): see
    :func:`_collect_rounds`."""
    _collect_rounds(job, out, cfg_over={"noise_std": job["noise_std"]})


MAX_CEM_EVALS = 4              # evaluate_candidate calls an iteration answer records: at most 4 × population + 4


def _float_array(x, what):
    """``x`` (NumPy array, torch tensor, list, ...) as a float64 NumPy array, or a TypeError naming ``what``."""
    import numpy as np

    try:
        if hasattr(x, "detach") and hasattr(x, "cpu"):
            x = x.detach().cpu().double().numpy()
        return np.array(np.asarray(x, np.float64), np.float64)
    except (TypeError, ValueError, RuntimeError, AttributeError):
        raise TypeError(f"{what} returned a {type(x).__name__}, not an array of numbers") from None


def _shape_row(x):
    """(ndim, first dim, second dim) of an array, -1 where it has no such dimension."""
    return [x.ndim, *(list(x.shape[:2]) + [-1, -1])[:2]]


def _padded(x, size):
    """The flat values of ``x``, cut or padded with NaN to ``size``."""
    import numpy as np

    flat = np.full(size, np.nan)
    v = x.reshape(-1)[:size]
    flat[:len(v)] = v
    return flat


def _cem_agent(job, mean, std, rng_seed, global_seed, cfg_over=None):
    """A fresh CEM agent whose search distribution is (mean, std) and whose self.rng is seeded with ``rng_seed``;
    the global RNGs seeded with ``global_seed``."""
    import numpy as np

    a = make_agent(job, cfg_over={"hidden_sizes": [], "eval_episodes": 0, "final_eval_episodes": 0,
                                  **(cfg_over or {})})
    a.mean, a.std = mean.copy(), std.copy()
    a.rng = np.random.default_rng(int(rng_seed))
    _seed_globals(int(global_seed))
    return a


def job_cem_sample(job, out):
    """sample_candidates(n) for each n of each run (rng seed, global seed, sizes) of job["runs"], each run on a fresh
    agent with self.mean, self.std from in.npz. Writes, over all calls in order: values (sum n·P,) float64 (each
    call's values flat, cut or padded with NaN to n·P), shapes (C, 3) int64 (ndim, first and second dimension, -1:
    none), num_params (1,) int64."""
    import numpy as np

    with np.load(job["inputs"], allow_pickle=False) as f:
        mean, std = f["mean"], f["std"]
    values, shapes, num_params = [], [], 0
    for rng_seed, global_seed, sizes in job["runs"]:
        a = _cem_agent(job, mean, std, rng_seed, global_seed)
        num_params = a.num_params
        for n in sizes:
            x = _float_array(a.sample_candidates(int(n)), "sample_candidates")
            shapes.append(_shape_row(x))
            values.append(_padded(x, int(n) * a.num_params))
    np.savez(os.path.join(out, "result.npz"), values=np.concatenate(values), shapes=np.array(shapes, np.int64),
             num_params=np.array([num_params], np.int64))


def _pair(res, size):
    """refit's result as (code, mean, std, sizes): code 0 a pair, 1 None, 2 something else; mean and std flat float64
    (cut or padded with NaN to ``size``), sizes their element counts (-1: not a pair)."""
    import numpy as np

    nan = np.full(size, np.nan)
    if res is None:
        return 1, nan, nan, [-1, -1]
    try:
        m, s = res
    except (TypeError, ValueError):
        return 2, nan, nan, [-1, -1]
    m, s = _float_array(m, "refit (its mean)"), _float_array(s, "refit (its std)")
    return 0, _padded(m, size), _padded(s, size), [m.size, s.size]


def job_cem_refit(job, out):
    """refit(candidates, scores) for each case of job["cases"] (population N, elite_count K, min_std), each on a fresh
    agent whose self.mean, self.std are the case's old ones (in.npz: candidates (sum N, P), scores (sum N,),
    old_mean, old_std (cases, P)). Writes per case: code (C,) int64 (0 returned a pair, 1 None, 2 other), sizes
    (C, 2) int64, mean, std (C, P) float64 (the returned pair, NaN-padded), self_mean, self_std (C, P) float64
    (self.mean and self.std after the call, NaN-padded)."""
    import numpy as np

    with np.load(job["inputs"], allow_pickle=False) as f:
        cands, scores, old_mean, old_std = f["candidates"], f["scores"], f["old_mean"], f["old_std"]
    codes, sizes, means, stds, self_means, self_stds = [], [], [], [], [], []
    start = 0
    for i, (n, k, min_std) in enumerate(job["cases"]):
        a = _cem_agent(job, old_mean[i], old_std[i], job["seed"], job["seed"],
                       {"population": int(n), "elite_count": int(k), "min_std": float(min_std)})
        p = a.num_params
        code, m, s, sz = _pair(a.refit(cands[start:start + n].copy(), scores[start:start + n].copy()), p)
        start += n
        codes.append(code)
        sizes.append(sz)
        means.append(m)
        stds.append(s)
        self_means.append(_padded(_float_array(a.mean, "self.mean"), p))
        self_stds.append(_padded(_float_array(a.std, "self.std"), p))
    np.savez(os.path.join(out, "result.npz"), code=np.array(codes, np.int64), sizes=np.array(sizes, np.int64),
             mean=np.stack(means), std=np.stack(stds), self_mean=np.stack(self_means), self_std=np.stack(self_stds))


def job_cem_iteration(job, out):
    """One search_iteration on an agent (population, elite_count, min_std of job["cfg"]; self.mean, self.std from
    in.npz; self.rng seeded with job["rng_seed"]) whose evaluate_candidate is a recorder scoring θ as −‖θ − target‖²
    (no environment). Writes: evaluated (E, P) float64 (the arguments, in call order, at most MAX_CEM_EVALS ×
    population + 4), counts (2,) int64 (calls in all, calls whose argument was not P numbers), ret_code (1,) int64
    (0 returned something, 1 None), ret_shape (3,) int64, ret (population,) float64 (the returned scores, NaN-padded),
    state_sizes (2,) int64 and mean_after, std_after (P,) float64 (self.mean, self.std afterwards, NaN-padded);
    sampled (S, P) float64 the rows self.sample_candidates returned, call after call (at most as many as evaluated),
    sample_counts (2,) int64 (its calls, the rows of the first; -1: none)."""
    import numpy as np

    with np.load(job["inputs"], allow_pickle=False) as f:
        mean, std, target = f["mean"], f["std"], f["target"]
    a = _cem_agent(job, mean, std, job["rng_seed"], job["seed"], job["cfg"])
    p, n = a.num_params, int(job["cfg"]["population"])
    evaluated, counts = [], [0, 0]

    def evaluate_candidate(theta, *args, **kwargs):
        counts[0] += 1
        x = _float_array(theta, "the candidate passed to evaluate_candidate").reshape(-1)
        if x.size != p:
            counts[1] += 1
            return 0.0
        if len(evaluated) < MAX_CEM_EVALS * n + 4:
            evaluated.append(x)
        return float(-np.sum((x - target) ** 2))

    sampled, sample_counts = [], [0, -1]
    sample = type(a).sample_candidates

    def sample_candidates(size, *args, **kwargs):        # the population as drawn (the release's own method)
        x = sample(a, size, *args, **kwargs)
        sample_counts[0] += 1
        try:
            rows = _float_array(x, "sample_candidates").reshape(-1, p)
        except (TypeError, ValueError):
            return x
        if sample_counts[0] == 1:
            sample_counts[1] = len(rows)
        if sum(len(r) for r in sampled) + len(rows) <= MAX_CEM_EVALS * n + 4:
            sampled.append(rows)
        return x

    a.evaluate_candidate, a.sample_candidates = evaluate_candidate, sample_candidates
    res = a.search_iteration()
    ret = np.full(n, np.nan)
    shape = [-1, -1, -1]
    if res is not None:
        r = _float_array(res, "search_iteration")
        shape = _shape_row(r)
        ret = _padded(r, n)
    m, s = _float_array(a.mean, "self.mean"), _float_array(a.std, "self.std")
    np.savez(os.path.join(out, "result.npz"), evaluated=np.array(evaluated, np.float64).reshape(-1, p),
             counts=np.array(counts, np.int64), ret_code=np.array([int(res is None)], np.int64),
             ret_shape=np.array(shape, np.int64), ret=ret, state_sizes=np.array([m.size, s.size], np.int64),
             mean_after=_padded(m, p), std_after=_padded(s, p),
             sampled=np.concatenate(sampled) if sampled else np.zeros((0, p)),
             sample_counts=np.array(sample_counts, np.int64))


def _pg_agent(job):
    """The policy-gradient agent of a pg_* job: its settings (job["cfg"]), the given policy (job["policy"], if any)
    and the critic's weights from in.npz's ``critic`` (if there)."""
    import numpy as np
    import torch

    a = make_agent(job, job.get("policy"), cfg_over=job["cfg"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        vec = f["critic"] if "critic" in f.files else None
    if vec is not None:
        n = sum(p.numel() for p in a.critic.parameters())
        if n != vec.size:
            raise ValueError(f"the grader's critic has {vec.size} parameters, the agent's {n}")
        torch.nn.utils.vector_to_parameters(torch.as_tensor(vec, dtype=torch.float32), a.critic.parameters())
    return a


def _pg_vector(x, n, what):
    """A (n,) result of the student's (array, list or tensor) as float64, or a ValueError naming the shape."""
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    r = np.array(x, dtype=np.float64)
    if r.shape != (n,):
        raise ValueError(f"{what} returned an array of shape {r.shape}; expected ({n},)")
    return r


def _pg_vector_calls(job, out, method):
    """``method`` (reward_to_go or gae_advantages) on each batch of in.npz (``sizes`` consecutive slices), with
    self.cfg.discount and gae_lambda set to the batch's γ and λ before the call. Writes out (sum of sizes,) float64,
    changed (K,) bool: the call changed one of its input arrays."""
    import numpy as np

    a = _pg_agent(job)
    _seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    results, changed = [], []
    start = 0
    for n, gamma, lam in zip(data["sizes"].tolist(), data["gammas"].tolist(), data["lambdas"].tolist()):
        sl = slice(start, start + n)
        start += n
        r, t, e, nv, v = (data[k][sl].copy() for k in ("rewards", "terminated", "ends", "next_values", "values"))
        args = (r, t, e, nv) if method == "reward_to_go" else (r, v, nv, t, e)
        kept = [x.copy() for x in args]
        a.cfg.discount, a.cfg.gae_lambda = float(gamma), float(lam)
        results.append(_pg_vector(getattr(a, method)(*args), n, method))
        changed.append(any(x.shape != k.shape or not np.array_equal(x, k) for x, k in zip(args, kept)))
    np.savez(os.path.join(out, "result.npz"), out=np.concatenate(results), changed=np.array(changed, bool))


def job_pg_rtg(job, out):
    """reward_to_go on each batch of in.npz: see :func:`_pg_vector_calls`."""
    _pg_vector_calls(job, out, "reward_to_go")


def job_pg_gae(job, out):
    """gae_advantages on each batch of in.npz: see :func:`_pg_vector_calls`."""
    _pg_vector_calls(job, out, "gae_advantages")


def _pg_loss_calls(job, out, method, names, params):
    """``method`` on consecutive slices (in.npz ``sizes``) of the arrays ``names``, backward after each. Writes loss
    (K,) float64, has_graph (K,) bool, grads (K, P) float64 (``params``' gradients, in order)."""
    import numpy as np
    import torch

    with np.load(job["inputs"], allow_pickle=False) as f:
        data = {k: f[k] for k in names}
        sizes = [int(n) for n in f["sizes"]]
    losses, graphs, grads = [], [], []
    start = 0
    for n in sizes:
        args = [torch.as_tensor(data[k][start:start + n].copy()) for k in names]
        start += n
        for p in params:
            p.grad = None
        loss = method(*args)
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"the loss is a {type(loss).__name__}, not a torch.Tensor")
        if loss.dim() != 0:
            raise TypeError(f"the loss has shape {tuple(loss.shape)}, not a scalar (shape ())")
        losses.append(float(loss.detach().double().item()))
        graphs.append(bool(loss.requires_grad))
        if loss.requires_grad:
            loss.backward()
        grads.append(np.concatenate([np.zeros(p.numel(), np.float64) if p.grad is None
                                     else p.grad.detach().double().reshape(-1).numpy() for p in params]))
    np.savez(os.path.join(out, "result.npz"), loss=np.array(losses, np.float64), has_graph=np.array(graphs, bool),
             grads=np.stack(grads).astype(np.float64))


def job_pg_actor_loss(job, out):
    """actor_loss(obs, actions, advantages) on consecutive batches: see :func:`_pg_loss_calls` (the policy's
    parameters)."""
    a = _pg_agent(job)
    _seed_globals(job["seed"])
    _pg_loss_calls(job, out, a.actor_loss, ("obs", "actions", "advantages"), list(a.policy.parameters()))


def job_pg_critic_loss(job, out):
    """critic_loss(obs, targets) on consecutive batches: see :func:`_pg_loss_calls` (the critic's parameters)."""
    a = _pg_agent(job)
    _seed_globals(job["seed"])
    _pg_loss_calls(job, out, a.critic_loss, ("obs", "targets"), list(a.critic.parameters()))


def _pg_batches(job):
    """The learning.rollouts.Batch es of in.npz (``sizes`` consecutive slices), each with its own arrays."""
    import numpy as np

    from learning.rollouts import Batch

    with np.load(job["inputs"], allow_pickle=False) as f:
        data = {k: f[k] for k in ("obs", "actions", "rewards", "next_obs", "terminated", "ends", "sizes")}
    batches, start = [], 0
    for n in data["sizes"].tolist():
        sl = slice(start, start + n)
        start += n
        batches.append(Batch(*(data[k][sl].copy() for k in ("obs", "actions", "rewards", "next_obs", "terminated",
                                                            "ends"))))
    return batches


def job_pg_estimate(job, out):
    """estimate_advantages on each batch of in.npz with its settings row (baseline, normalize_advantages, discount,
    gae_lambda). Writes advantages, targets (sum of sizes,) float64, changed (K,) bool: the batch's arrays changed."""
    import numpy as np

    a = _pg_agent(job)
    _seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        settings = f["settings"].tolist()
    advs, tgts, changed = [], [], []
    for batch, (baseline, normalize, gamma, lam) in zip(_pg_batches(job), settings):
        kept = [x.copy() for x in vars(batch).values()]
        a.cfg.baseline, a.cfg.normalize_advantages = bool(baseline), bool(normalize)
        a.cfg.discount, a.cfg.gae_lambda = float(gamma), float(lam)
        res = a.estimate_advantages(batch)
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise TypeError(f"estimate_advantages returned {type(res).__name__}, not a pair (advantages, targets)")
        advs.append(_pg_vector(res[0], len(batch), "estimate_advantages (advantages)"))
        tgts.append(_pg_vector(res[1], len(batch), "estimate_advantages (targets)"))
        changed.append(any(not np.array_equal(x, k) for x, k in zip(vars(batch).values(), kept)))
    np.savez(os.path.join(out, "result.npz"), advantages=np.concatenate(advs), targets=np.concatenate(tgts),
             changed=np.array(changed, bool))


def job_pg_update(job, out):
    """update on each batch of in.npz in turn, on one agent with fresh Adam optimizers (the framework's, counting
    their steps). Writes per call: actor_params (K, P_actor), critic_params (K, P_critic) float64 after the call,
    steps (K, 2) int64 the actor's and critic's optimizer steps in the call, losses (K, 2) float64 the returned
    actor_loss and critic_loss (NaN if not numbers), returned (K,) bool: update returned a dict with both keys."""
    import numpy as np
    import torch

    from learning.optim import Adam

    a = _pg_agent(job)
    counts = [0, 0]

    def counting(params, lr, i):
        class CountingAdam(Adam):
            def step(self, closure=None):
                counts[i] += 1
                return super().step(closure)

        return CountingAdam(params, lr=lr)

    a.actor_optimizer = counting(a.policy.parameters(), a.cfg.learning_rate, 0)
    a.critic_optimizer = counting(a.critic.parameters(), a.cfg.critic_learning_rate, 1)
    _seed_globals(job["seed"])
    actor, critic, steps, losses, returned = [], [], [], [], []
    for batch in _pg_batches(job):
        counts[0] = counts[1] = 0
        res = a.update(batch)
        ok = isinstance(res, dict) and "actor_loss" in res and "critic_loss" in res
        values = [_as_float(res[k]) if ok else None for k in ("actor_loss", "critic_loss")]
        losses.append([float("nan") if x is None else x for x in values])
        returned.append(ok)
        steps.append(list(counts))
        actor.append(torch.nn.utils.parameters_to_vector(a.policy.parameters()).detach().double().numpy())
        critic.append(torch.nn.utils.parameters_to_vector(a.critic.parameters()).detach().double().numpy())
    np.savez(os.path.join(out, "result.npz"), actor_params=np.stack(actor), critic_params=np.stack(critic),
             steps=np.array(steps, np.int64), losses=np.array(losses, np.float64), returned=np.array(returned, bool))


def job_train(job, out):
    import torch

    from envs.builder import env_dims, make_env, resolve_env_config
    from learning.agents import build_agent

    torch.set_num_threads(1)
    env_cfg = resolve_env_config(job["env"])
    if os.environ.get("GRADER_ENV_FDS"):
        use_remote_envs(os.environ["GRADER_ENV_FDS"])
    expert = None
    fds = os.environ.get("GRADER_ORACLE_FDS")
    if fds:
        expert = RemoteExpert(fds, *env_dims(make_env(env_cfg)))
    a = build_agent(job["agent"], env_cfg, out_dir=os.path.join(os.getcwd(), "train_out"), config=job["config"],
                    agent_cls=student_class(job), expert=expert, quiet=True, progress=False)
    every = int(job.get("snapshot_every") or 0)
    if every > 0:            # the policy every `every` iterations, for the grader to evaluate (assignment 2)
        end_iteration = a.end_iteration

        def end_and_snapshot(*args, **kwargs):
            row = end_iteration(*args, **kwargs)
            if a.iteration % every == 0:
                a.save_model(os.path.join(out, f"model_{a.iteration}.pt"))
            return row

        a.end_iteration = end_and_snapshot
    a.run()
    a.save_model(os.path.join(out, "model.pt"))


def job_inspect(job, out):

    import numpy as np

    info = []
    for agent, spec in job["manifest"].items():
        try:
            cls = getattr(student_module(spec["module"]), spec["class_name"])
            for m in spec["methods"]:
                ok = callable(getattr(cls, m, None)) and m in cls.__dict__
                info.append(f"{agent}:{m}:{int(ok)}:")
        except BaseException as e:  # noqa: BLE001 - report any import failure as data
            info.append(f"{agent}:IMPORT:0:{_error_record(e)}")
    np.savez(os.path.join(out, "result.npz"), info=np.array(info))


JOBS = {"bc_loss": job_bc_loss, "bc_fit": job_bc_fit, "dagger_select": job_dagger_select,
        "dagger_aggregate": job_dagger_aggregate, "dagger_collect": job_dagger_collect, "dagger_round": job_round,
        "dart_step": job_dart_step, "dart_collect": job_dart_collect, "dart_round": job_round,
        "cem_sample": job_cem_sample, "cem_refit": job_cem_refit, "cem_iteration": job_cem_iteration,
        "pg_rtg": job_pg_rtg, "pg_gae": job_pg_gae, "pg_actor_loss": job_pg_actor_loss,
        "pg_critic_loss": job_pg_critic_loss, "pg_estimate": job_pg_estimate, "pg_update": job_pg_update,
        "train": job_train, "inspect": job_inspect}


def _error_record(e: BaseException) -> str:
    """JSON: exception type, message and the frames in the student's files (the parent sanitizes it)."""
    frames = [(os.path.basename(fs.filename), fs.lineno, fs.name) for fs in traceback.extract_tb(e.__traceback__)
              if fs.filename.endswith("_agent.py")]
    if isinstance(e, SyntaxError) and e.filename and e.filename.endswith("_agent.py"):
        frames.append((os.path.basename(e.filename), e.lineno or 0, "<module>"))
    return json.dumps({"type": type(e).__name__, "message": str(e)[:1000], "frames": frames[-3:]})


def main() -> None:
    job_path, out = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    import warnings

    warnings.filterwarnings("ignore")
    try:
        _seed_globals(int(job.get("seed", 0)))     # before any job: the train job's student code too
        JOBS[job["kind"]](job, out)
    except BaseException as e:  # noqa: BLE001 - student code may raise anything, SystemExit included
        with open(os.path.join(out, "error.json"), "w") as f:
            f.write(_error_record(e))
    with open(os.path.join(out, "DONE"), "w") as f:
        f.write("done")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

"""Jobs of behavioral cloning's checks: ``compute_loss`` (values and gradients over several batches) and ``fit``
(every loss call and optimizer step recorded)."""
import os

from .agent import make_agent, seed_globals


def job_bc_loss(job, out):
    """compute_loss on consecutive batches of one agent, backward after each (as fit() does).
    Writes loss (K,) float64, has_graph (K,) bool, grads (K, P) float64 (P: policy parameters, named order)."""
    import numpy as np
    import torch

    a = make_agent(job, job["policy"])
    seed_globals(job["seed"])
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

    seed_globals(job["seed"])
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

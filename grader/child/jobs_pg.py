"""Jobs of the policy-gradient checks: ``reward_to_go`` and ``gae_advantages`` on crafted batches, the two losses'
values and gradients, ``estimate_advantages`` and ``update`` from a known start."""
import os

from .agent import make_agent, seed_globals
from .plain import as_float


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
    seed_globals(job["seed"])
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
    seed_globals(job["seed"])
    _pg_loss_calls(job, out, a.actor_loss, ("obs", "actions", "advantages"), list(a.policy.parameters()))


def job_pg_critic_loss(job, out):
    """critic_loss(obs, targets) on consecutive batches: see :func:`_pg_loss_calls` (the critic's parameters)."""
    a = _pg_agent(job)
    seed_globals(job["seed"])
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
    seed_globals(job["seed"])
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
    seed_globals(job["seed"])
    actor, critic, steps, losses, returned = [], [], [], [], []
    for batch in _pg_batches(job):
        counts[0] = counts[1] = 0
        res = a.update(batch)
        ok = isinstance(res, dict) and "actor_loss" in res and "critic_loss" in res
        values = [as_float(res[k]) if ok else None for k in ("actor_loss", "critic_loss")]
        losses.append([float("nan") if x is None else x for x in values])
        returned.append(ok)
        steps.append(list(counts))
        actor.append(torch.nn.utils.parameters_to_vector(a.policy.parameters()).detach().double().numpy())
        critic.append(torch.nn.utils.parameters_to_vector(a.critic.parameters()).detach().double().numpy())
    np.savez(os.path.join(out, "result.npz"), actor_params=np.stack(actor), critic_params=np.stack(critic),
             steps=np.array(steps, np.int64), losses=np.array(losses, np.float64), returned=np.array(returned, bool))

"""The check of BC's training loop ``BCAgent.fit``: epochs of shuffled minibatches, one step of ``self.optimizer`` per
minibatch with that minibatch's gradient, the last epoch's mean loss returned, watched through the reference loss and
the optimizer."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from grader.answers import Field
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.unit_inputs import learner_policy, sample_obs

# ------------------------------------------------------------------------------------------------ fit (TODO 1b)

FIT_EPOCHS = 3              # the first fit call: 3 epochs over N = 4·batch + (seed mod batch) pairs
SMALL_EPOCHS = 2            # the second: 2 epochs over fewer pairs than batch_size (B = min(batch_size, N) = N)
FIT_LR = 3e-3
MAX_FIT_CALLS = 300         # grader/child/jobs_bc.py records at most this many compute_loss calls and optimizer steps
FIT_PLACEHOLDER = ("fit is the placeholder: it computes no minibatch loss, takes no gradient step and returns NaN: "
                   "fill in the TODO block")
NEW_OPTIMIZER = ("step self.optimizer, the framework's Adam (a new optimizer per call loses its state and is not "
                 "checkpointed)")


def _fit_calls(v: Variant) -> list[tuple[int, int]]:
    """(pairs N, epochs) of the consecutive fit calls on one agent: N a multiple of the batch size or not (by variant),
    then N smaller than the batch size."""
    return [(4 * v.batch + v.seed % v.batch, FIT_EPOCHS), (v.batch // 2 + 1, SMALL_EPOCHS)]


def _fit_schema(obs_dim: int, act_dim: int, n_params: int, rows: int, fits: int) -> dict[str, Field]:
    """What grader/child/jobs_bc.py's job_bc_fit writes (at most MAX_FIT_CALLS calls and steps, each call's rows at
    most all the pairs)."""
    c, r = MAX_FIT_CALLS, MAX_FIT_CALLS * rows
    return {"call_fit": Field((None,), "iu", c), "call_sizes": Field((None,), "iu", c),
            "call_obs": Field((None, obs_dim), "f", r * obs_dim), "call_act": Field((None, act_dim), "f", r * act_dim),
            "call_loss": Field((None,), "f", c), "call_graph": Field((None,), "b", c),
            "call_grads": Field((None, n_params), "f", c * n_params),
            "step_fit": Field((None,), "iu", c), "step_none": Field((None,), "b", c),
            "step_after": Field((None,), "iu", c), "step_grads": Field((None, n_params), "f", c * n_params),
            "ret": Field((fits,), "f"), "ret_ok": Field((fits,), "b"), "full_loss": Field((fits, 2), "f"),
            "param_change": Field((fits,), "f"), "own_optimizer": Field((fits,), "b"), "counts": Field((2,), "iu")}


@dataclass
class _FitRun:
    """One fit call as the child recorded it. Its minibatches are the compute_loss calls with a graph (every call
    when none has one); rows are indices into this call's pairs (-1: not one of its pairs, -2: obs and action rows of
    different pairs)."""

    n: int
    epochs: int
    batch: int                      # B = min(cfg.batch_size, N)
    batch_size: int                 # cfg.batch_size
    rows: list[np.ndarray]          # per minibatch: its pairs' indices
    losses: np.ndarray              # (C,) the minibatches' loss values
    grads: np.ndarray               # (C, P) the fresh gradient of each minibatch's loss
    calls: int                      # compute_loss calls (with or without a graph)
    graph_calls: int
    step_none: np.ndarray           # (S,) every .grad None at the step
    step_last: np.ndarray           # (S,) the latest minibatch before the step (-1: none)
    step_grads: np.ndarray          # (S, P) the parameters' .grad at the step
    ret: float
    ret_ok: bool
    loss_before: float              # the reference loss on all N pairs before and after the call
    loss_after: float
    change: float                   # max |Δθ| over the call
    own_optimizer: bool             # self.optimizer is still the framework's
    must_improve: bool = True       # the loss over the pairs must go down (the first call: Adam's state is fresh)

    def where(self) -> str:
        return f"fit on N = {self.n} pairs, {self.epochs} epochs, batch_size {self.batch_size}"


class _PairIndex:
    """Maps rows passed to compute_loss back to the dataset's pairs (exact float32 match, else the nearest row)."""

    def __init__(self, obs: np.ndarray, act: np.ndarray):
        self.obs, self.act = obs.astype(np.float64), act.astype(np.float64)
        self.obs_key = {r.tobytes(): i for i, r in enumerate(obs.astype(np.float32))}
        self.act_key = {r.tobytes(): i for i, r in enumerate(act.astype(np.float32))}

    @staticmethod
    def _find(rows: np.ndarray, table: np.ndarray, keys: dict[bytes, int]) -> np.ndarray:
        out = np.array([keys.get(r.tobytes(), -1) for r in rows.astype(np.float32)], np.int64)
        for i in np.flatnonzero(out < 0):
            d = np.abs(table - rows[i]).max(axis=1)
            j = int(np.argmin(d))
            if d[j] <= 1e-5 * (1.0 + float(np.abs(table[j]).max())):
                out[i] = j
        return out

    def pairs(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        """(b,) global pair index per row; -1 not a pair, -2 observation and action of different pairs."""
        io_, ia = self._find(obs, self.obs, self.obs_key), self._find(act, self.act, self.act_key)
        return np.where((io_ < 0) | (ia < 0), -1, np.where(io_ == ia, io_, -2))


def _fit_runs(out: dict[str, np.ndarray], fits: list[tuple[int, int]], batch_size: int, index: _PairIndex,
              n_params: int) -> list[_FitRun]:
    """Split the child's answer into one :class:`_FitRun` per fit call."""
    sizes = np.asarray(out["call_sizes"], np.int64)
    call_fit, step_fit = np.asarray(out["call_fit"], np.int64), np.asarray(out["step_fit"], np.int64)
    c, s = len(sizes), len(step_fit)
    obs, act = np.asarray(out["call_obs"], np.float64), np.asarray(out["call_act"], np.float64)
    if len(call_fit) != c or sizes.sum() != len(obs) or len(obs) != len(act) or np.any(sizes < 0) \
            or len(out["call_loss"]) != c or len(out["call_graph"]) != c or len(out["call_grads"]) != c \
            or len(out["step_none"]) != s or len(out["step_after"]) != s or len(out["step_grads"]) != s:
        raise ValueError("inconsistent fit answer")
    cuts = np.cumsum([0, *sizes])
    pair = index.pairs(obs, act)
    offsets = np.cumsum([0, *(n for n, _ in fits)])
    graph = np.asarray(out["call_graph"], bool)
    grads = np.asarray(out["call_grads"], np.float64).reshape(c, n_params)
    step_grads = np.asarray(out["step_grads"], np.float64).reshape(s, n_params)
    runs = []
    for k, (n, epochs) in enumerate(fits):
        mine = call_fit == k
        batches = np.flatnonzero(mine & graph) if np.any(mine & graph) else np.flatnonzero(mine)
        rows = []
        for i in batches:
            p = pair[cuts[i]:cuts[i + 1]]
            local = p - offsets[k]
            rows.append(np.where(p == -2, -2, np.where((p >= 0) & (local >= 0) & (local < n), local, -1)))
        steps = np.flatnonzero(step_fit == k)
        after = np.asarray(out["step_after"], np.int64)[steps]          # calls made before each step (all fits)
        last = np.searchsorted(batches, after, side="left") - 1       # latest minibatch of this call before it
        loss = np.asarray(out["full_loss"], np.float64)[k]
        runs.append(_FitRun(
            n=n, epochs=epochs, batch=min(batch_size, n), batch_size=batch_size, rows=rows,
            losses=np.asarray(out["call_loss"], np.float64)[batches], grads=grads[batches],
            calls=int(mine.sum()), graph_calls=int((mine & graph).sum()),
            step_none=np.asarray(out["step_none"], bool)[steps], step_last=last, step_grads=step_grads[steps],
            ret=float(out["ret"][k]), ret_ok=bool(out["ret_ok"][k]), loss_before=float(loss[0]),
            loss_after=float(loss[1]), change=float(out["param_change"][k]),
            own_optimizer=bool(out["own_optimizer"][k]), must_improve=k == 0))
    return runs


def check_bc_fit(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """fit on one agent, twice (N pairs over 3 epochs, then fewer pairs than batch_size over 2), with the reference
    compute_loss and the framework's Adam as self.optimizer, both recorded in the child."""
    loop_name, step_name = BC_FIT.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol, low, high = learner_policy(v.env, rng)
    obs_dim, act_dim = pol.obs_dim, pol.act_dim
    fits = _fit_calls(v)
    total = sum(n for n, _ in fits)
    obs = sample_obs(pol, total, rng)
    act = rng.uniform(low, high, (total, act_dim)).astype(np.float32)
    n_params = sum(p.numel() for p in pol.parameters())
    out, why = run_unit(ctx, BC_FIT, v, {"obs": obs, "actions": act}, {"policy": pol},
                        schema=_fit_schema(obs_dim, act_dim, n_params, total, len(fits)), tested=BC_FIT.methods,
                        fits=[list(f) for f in fits],
                        cfg={"batch_size": v.batch, "learning_rate": FIT_LR, "hidden_sizes": [32, 32]})
    if out is None:
        return [CheckResult(loop_name, 0, 1, why), CheckResult(step_name, 0, 1, why)]
    calls, steps = (int(x) for x in np.asarray(out["counts"]).reshape(2))
    rets = np.asarray(out["ret"], np.float64)
    if calls == 0 and steps == 0 and not np.any(np.isfinite(rets)):
        return [CheckResult(loop_name, 0, 1, FIT_PLACEHOLDER), CheckResult(step_name, 0, 1, FIT_PLACEHOLDER)]
    if calls > MAX_FIT_CALLS or steps > MAX_FIT_CALLS:
        why = (f"fit made {calls} compute_loss calls and {steps} optimizer steps over {len(fits)} calls with at most "
               f"{sum(-(-n // min(v.batch, n)) * e for n, e in fits)} minibatches in all")
        return [CheckResult(loop_name, 0, 1, why), CheckResult(step_name, 0, 1, why)]
    runs = _fit_runs(out, fits, v.batch, _PairIndex(obs, act), n_params)
    return [_fit_part(loop_name, runs, _loop_problems, _loop_summary),
            _fit_part(step_name, runs, _step_problems, _step_summary)]


def _fit_part(name: str, runs: list[_FitRun], problems: Callable[[_FitRun], list[str]],
              summary: Callable[[list[_FitRun]], str]) -> CheckResult:
    """0 with the first fit call's problems (named), else 1 with the summary."""
    for i, run in enumerate(runs):
        found = problems(run)
        if found:
            later = " (the first call was right)" if i else ""
            return CheckResult(name, 0, 1, f"{run.where()}{later}: " + "; ".join(found))
    return CheckResult(name, 1, 1, summary(runs))


def _epochs(rows: list[np.ndarray]) -> list[list[np.ndarray]]:
    """The minibatches grouped into epochs: a new epoch starts at the first minibatch that reuses a pair."""
    epochs: list[list[np.ndarray]] = []
    seen: set[int] = set()
    for r in rows:
        s = set(r.tolist())
        if not epochs or seen & s:
            epochs.append([])
            seen = set()
        epochs[-1].append(r)
        seen |= s
    return epochs


def _consecutive(r: np.ndarray) -> bool:
    return bool(np.array_equal(np.sort(r), np.arange(r.min(), r.min() + len(r))))


def _small_hint(f: _FitRun) -> str:
    """What N < batch_size asks for ('' when N >= batch_size)."""
    if f.n >= f.batch_size:
        return ""
    return f": with N < batch_size, B = min(self.cfg.batch_size, N) = {f.n} (one minibatch of all the pairs)"


def _loop_problems(f: _FitRun) -> list[str]:
    """Part 1: which pairs each epoch uses, in which minibatches and order; the epochs; the returned value."""
    if not f.rows:
        return ["fit never calls self.compute_loss (one loss per minibatch)" + _small_hint(f)]
    bad = int(sum(np.sum(r == -1) for r in f.rows))
    if bad:
        return [f"{bad} of the rows passed to self.compute_loss are not pairs of the dataset: pass the dataset's rows "
                "as they are (dataset.obs, dataset.actions; compute_loss normalizes them)"]
    if any(np.any(r == -2) for r in f.rows):
        return ["observations and actions passed to compute_loss are unpaired: index both with the same rows"]
    if any(len(set(r.tolist())) < len(r) for r in f.rows):
        return ["a minibatch holds the same pair more than once: each epoch is a permutation of the pairs (every pair "
                "once), not indices drawn with replacement"]
    b = f.batch
    want = f"B = min(self.cfg.batch_size, N) = {b}"
    sizes = sorted({len(r) for r in f.rows})
    if sizes[0] == 0:
        return ["fit passes an empty minibatch to compute_loss (its mean loss is NaN): every minibatch holds at least "
                "one pair"]
    if sizes[-1] > b:
        return [f"minibatches of {', '.join(map(str, sizes))} pairs; expected {want} (a last one may be smaller)"]
    epochs = _epochs(f.rows)
    for e, ep in enumerate(epochs, 1):
        if sum(len(r) < b for r in ep) > 1:
            return [f"epoch {e} has minibatches of {', '.join(str(len(r)) for r in ep)} pairs; expected {want}, only "
                    "the epoch's last minibatch may be smaller"]
        used = sum(len(r) for r in ep)
        if f.n - used >= b:
            return [f"epoch {e} uses {used} of the {f.n} pairs: every pair once per epoch (only a last minibatch "
                    f"smaller than {b} may be left out)"]
    if len(epochs) != f.epochs:
        return [f"it makes {len(epochs)} passes over the data (epochs) where epochs = {f.epochs} were asked"]
    if b < f.n:
        found = _order_problems(epochs)
        if found:
            return found
    return _return_problems(f, epochs)


def _order_problems(epochs: list[list[np.ndarray]]) -> list[str]:
    """Each epoch in a fresh random order: not the dataset's order, not fixed minibatches, not a repeated order."""
    fixed = [all(_consecutive(r) for r in ep) for ep in epochs]
    if all(fixed):
        seq = np.concatenate(epochs[0])
        if np.array_equal(seq, np.sort(seq)):
            return ["the pairs are not shuffled: every epoch visits them in the dataset's order; draw a fresh random "
                    "order each epoch (self.rng.permutation(N))"]
        return ["only the order of fixed minibatches of consecutive rows is shuffled: shuffle the pairs themselves "
                "(self.rng.permutation(N)) each epoch"]
    if any(fixed):
        return [f"epoch {fixed.index(True) + 1} is not shuffled (minibatches of consecutive rows): draw a fresh random "
                "order each epoch"]
    parts = [frozenset(frozenset(r.tolist()) for r in ep) for ep in epochs]
    for j in range(1, len(parts)):
        for i in range(j):
            if parts[i] == parts[j]:
                return [f"epochs {i + 1} and {j + 1} use the same minibatches: the order is drawn once; draw a fresh "
                        "order at every epoch (inside the epoch loop)"]
    return []


def _close_loss(x: float, ref: float) -> bool:
    return abs(x - ref) <= 1e-4 * max(1.0, abs(ref))


def _return_problems(f: _FitRun, epochs: list[list[np.ndarray]]) -> list[str]:
    """The returned value: the mean of the last epoch's minibatch losses (per minibatch, or per pair)."""
    k = sum(len(ep) for ep in epochs[:-1])
    last, sizes = f.losses[k:], np.array([len(r) for r in epochs[-1]], np.float64)
    want = float(last.mean())
    if not f.ret_ok:
        return ["fit's return value is not a number: return the mean of the last epoch's minibatch losses as a float"]
    if not math.isfinite(f.ret):
        return [f"fit returns {f.ret} (the placeholder's NaN?): return the mean of the last epoch's minibatch losses "
                f"({want:.5f})"]
    if _close_loss(f.ret, want) or _close_loss(f.ret, float(last @ sizes / sizes.sum())):
        return []
    named = {"the last minibatch's loss": float(last[-1]),
             "the mean over every epoch's minibatches": float(f.losses.mean()),
             "the sum of the last epoch's minibatch losses": float(last.sum()),
             "the first epoch's mean loss": float(f.losses[:len(epochs[0])].mean()),
             "the loss of the whole dataset after training": f.loss_after}
    what = next((n for n, x in named.items() if _close_loss(f.ret, x)), "")
    return [f"fit returns {f.ret:.5f}" + (f", {what}" if what else "")
            + f"; expected the mean of the last epoch's minibatch losses, {want:.5f}"]


def _loop_summary(runs: list[_FitRun]) -> str:
    f, small = runs[0], runs[-1]
    sizes = ", ".join(str(len(r)) for r in _epochs(f.rows)[0])
    return (f"{f.epochs} epochs over N = {f.n} pairs in a fresh random order, minibatches of {sizes} pairs (batch_size "
            f"{f.batch_size}), every pair once per epoch; then {small.epochs} epochs of one minibatch of all "
            f"{small.n} < batch_size pairs; returned the last epoch's mean minibatch loss ({f.ret:.5f})")


def _close_step(g: np.ndarray, ref: np.ndarray) -> bool:
    scale = float(np.nanmax(np.abs(ref), initial=0.0)) if np.any(np.isfinite(ref)) else 0.0
    return bool(np.allclose(g, ref, rtol=1e-4, atol=1e-7 + 1e-5 * scale, equal_nan=True))


def _step_problems(f: _FitRun) -> list[str]:
    """Part 2: one step of self.optimizer per minibatch, with that minibatch's gradient, and the loss goes down."""
    if not f.own_optimizer:
        return ["self.optimizer was replaced by another optimizer: " + NEW_OPTIMIZER]
    if f.calls and not f.graph_calls:
        return ["every compute_loss call ran without autograd (under torch.no_grad()?): the loss needs its graph for "
                "backward"]
    steps = len(f.step_none)
    if not f.rows and not steps:
        return ["no minibatch loss and no gradient step" + _small_hint(f)]
    if steps == 0:
        if f.change > 0:
            return ["self.optimizer was never stepped, yet the parameters changed: " + NEW_OPTIMIZER]
        return ["no gradient step: after loss.backward(), call self.optimizer.step() for every minibatch"]
    if steps != len(f.rows):
        return [f"{steps} steps of self.optimizer for {len(f.rows)} minibatches: take one step per minibatch"]
    if np.all(f.step_none) or not np.any(f.step_grads):
        return ["no gradient reaches the parameters at self.optimizer.step(): backward not called, or called on a "
                "detached loss (no .item(), .detach() or new tensor between the loss and backward), or the gradients "
                "are cleared between backward and step"]
    for j in range(steps):
        why = _step_diagnosis(f, j)
        if why:
            return [why]
    if f.must_improve and not f.loss_after < f.loss_before:
        return [f"the loss over the whole dataset did not go down ({f.loss_before:.5f} → {f.loss_after:.5f})"]
    return []


def _step_diagnosis(f: _FitRun, j: int) -> str:
    """'' if step j used the gradient of the latest minibatch's loss, else what it used."""
    k, g = int(f.step_last[j]), f.step_grads[j]
    at = f"at step {j + 1} of {len(f.step_none)}"
    if k < 0:
        return f"{at} self.optimizer.step() comes before any minibatch loss: compute the loss, backward, then step"
    ref = f.grads[k]
    if _close_step(g, ref):
        return ""
    if f.step_none[j] or not np.any(g):
        return (f"{at} no gradient reaches the parameters: backward not called, or called on a detached loss, or the "
                "gradients are cleared between backward and step")
    for i in range(k - 1, -1, -1):
        if _close_step(g, f.grads[i:k + 1].sum(axis=0)):
            return ("gradients accumulate across batches: clear them (zero_grad) before each backward "
                    f"({at} the gradient is the sum of {k - i + 1} minibatches')")
    if k >= 1 and _close_step(g, f.grads[k - 1]):
        return (f"{at} the gradient is the previous minibatch's: self.optimizer.step() comes before loss.backward() "
                "(zero_grad, backward, then step)")
    scale = float(g @ ref / max(float(ref @ ref), 1e-30))
    if _close_step(g, scale * ref):
        return (f"{at} the gradient is {scale:.4g} × that of the minibatch's loss: back-propagate the loss itself "
                "(loss.backward())")
    return f"{at} the parameters' gradients differ from the gradient of that step's minibatch loss"


def _step_summary(runs: list[_FitRun]) -> str:
    steps = sum(len(f.step_none) for f in runs)
    f = runs[0]
    return (f"{steps} steps of self.optimizer over {len(runs)} fit calls, one per minibatch, each with that "
            f"minibatch's fresh gradient; the loss over the dataset went from {f.loss_before:.5f} to "
            f"{f.loss_after:.5f}")


BC_FIT = CheckSpec(
    key="bc_fit", agent="bc", run=check_bc_fit, methods=("fit",),
    public=(Variant(seed=105, env="hopper", batch=16),),
    parts=(
        Part("BC training loop: epochs and minibatches", 5.0,
             "`fit` (with the reference `compute_loss`) called twice on one agent: on N = 4·batch_size + (seed mod "
             "batch_size) distinct random pairs for 3 epochs (a multiple of batch_size in one variant, not in the "
             "other), then on fewer pairs than batch_size for 2 epochs; the rows passed to `compute_loss` are mapped "
             "back to the pairs. Every epoch uses each pair at most once, in minibatches of B = min(batch_size, N) "
             "with at most one smaller one, leaving fewer than B pairs out; exactly `epochs` epochs; a fresh random "
             "order each epoch (any source of randomness); the returned value is the mean of the last epoch's "
             "minibatch losses (per minibatch or per pair; returning the last minibatch's loss loses these points). "
             "Feedback names pairs drawn with replacement, empty minibatches, unpaired or changed rows, wrong batch "
             "sizes, pairs left out, the wrong number of epochs, no shuffling, fixed minibatches, the same order "
             "every epoch, and the returned value"),
        Part("BC training loop: gradient steps", 5.0,
             "`self.optimizer` (the framework's Adam, recorded) is stepped once per minibatch, and at each step the "
             "parameters' gradients equal the fresh gradient of that minibatch's loss; the loss over the whole "
             "dataset goes down over the first call. Feedback names gradients accumulating across minibatches (no "
             "zero_grad), no gradients (backward not called, or on a detached loss), a step before backward, a "
             "scaled loss, and another optimizer stepped instead of `self.optimizer` (a new optimizer per call)")),
    handout_parts=(
        ("BC training loop: epochs and minibatches",
         "unit check of `fit` (with the reference loss) on seeded data: every epoch a fresh random order, each pair "
         "at most once, minibatches of min(batch_size, N), the right number of epochs; it returns the mean of the "
         "last epoch's minibatch losses"),
        ("BC training loop: gradient steps",
         "one step of `self.optimizer` per minibatch with that minibatch's gradient (no accumulation across "
         "minibatches), and the loss goes down")))

"""The unit check of BC's training loop ``fit`` (grader/checks_bc/fit.py BC_FIT, grader/child/jobs_bc.py
job_bc_fit): the reference and other correct styles get every point, the stub none, and each mistake loses exactly its
part with feedback naming it. The scoring helpers are also checked on hand-made records (no child)."""
import numpy as np
import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.checks_bc.fit import (BC_FIT, FIT_PLACEHOLDER, _epochs, _FitRun, _loop_problems,  # noqa: E402
                              _step_problems)
from grader.grade import grade  # noqa: E402
from grader.reference_submissions import solution_source, write_submission  # noqa: E402

LOOP, STEPS = (p.name for p in BC_FIT.parts)
FIT = "def fit(self, dataset, epochs):\n"

# a right loop written from scratch (drops the last partial batch); the mistakes below each change one thing
BASE = FIT + """
    obs, act = torch.as_tensor(dataset.obs), torch.as_tensor(dataset.actions)
    n = len(dataset)
    b = min(self.cfg.batch_size, n)
    for _ in range(epochs):
        order = torch.as_tensor(self.rng.permutation(n))
        losses = []
        for s in range(0, n - b + 1, b):
            rows = order[s:s + b]
            loss = self.compute_loss(obs[rows], act[rows])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
    return sum(losses) / len(losses)
"""


def _edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new)


CORRECT = {
    "the reference": solution_source("fit", "bc"),
    "torch.randperm, last partial batch kept, zero_grad() to zeros, loss.item() sum / count": FIT + """
    obs, act = torch.as_tensor(dataset.obs), torch.as_tensor(dataset.actions)
    n = len(obs)
    b = min(self.cfg.batch_size, n)
    for _ in range(epochs):
        perm = torch.randperm(n)
        total, count = 0.0, 0
        for i in range(0, n, b):
            idx = perm[i:i + b]
            loss = self.compute_loss(obs[idx], act[idx])
            self.optimizer.zero_grad(set_to_none=False)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
            count += 1
    return total / count
""",
    "NumPy indexing then torch.as_tensor, zero_grad after the step, mean of detached tensors": FIT + """
    n = len(dataset)
    b = min(self.cfg.batch_size, n)
    for _ in range(epochs):
        order = self.rng.permutation(n)
        losses = []
        for start in range(0, n, b):
            rows = order[start:start + b]
            loss = self.compute_loss(torch.as_tensor(dataset.obs[rows]), torch.as_tensor(dataset.actions[rows]))
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad()
            losses.append(loss.detach())
    return float(torch.stack(losses).mean())
""",
    "float64 rows, torch.split of a permutation, policy.zero_grad, per-pair mean, a no-grad evaluation call": FIT + """
    import numpy as np
    obs = torch.as_tensor(np.asarray(dataset.obs, np.float64))
    act = torch.as_tensor(np.asarray(dataset.actions, np.float64))
    n = len(dataset)
    for epoch in range(epochs):
        perm = torch.as_tensor(self.rng.permutation(n)).flip(0)
        total, seen = 0.0, 0
        for batch in torch.split(perm, min(self.cfg.batch_size, n)):
            loss = self.compute_loss(obs[batch], act[batch])
            self.policy.zero_grad()
            loss.backward()
            self.optimizer.step()
            total, seen = total + loss.item() * len(batch), seen + len(batch)
        with torch.no_grad():
            self.compute_loss(obs[:5], act[:5])
    return total / seen
""",
}

BROKEN = {  # name → (fit source, {part that loses its points: a phrase of its feedback}); the other part keeps its
    "missing zero_grad": (_edit("            self.optimizer.zero_grad()\n", ""),
                          {STEPS: "gradients accumulate across batches: clear them (zero_grad) before each backward"}),
    "detached loss": (_edit("            loss.backward()\n",
                            "            torch.tensor(loss.item(), requires_grad=True).backward()\n"),
                      {STEPS: "backward not called, or called on a detached loss"}),
    "no backward": (_edit("            loss.backward()\n", ""), {STEPS: "backward not called"}),
    "a new optimizer per call": (
        _edit("    for _ in range(epochs):\n",
              "    opt = torch.optim.Adam(self.policy.parameters(), lr=self.cfg.learning_rate)\n"
              "    for _ in range(epochs):\n").replace("self.optimizer.", "opt."),
        {STEPS: "step self.optimizer, the framework's Adam (a new optimizer per call loses its state"}),
    "step before backward": (_edit("            loss.backward()\n            self.optimizer.step()\n",
                                   "            self.optimizer.step()\n            loss.backward()\n"),
                             {STEPS: "no gradient reaches the parameters"}),
    "no shuffling": (_edit("torch.as_tensor(self.rng.permutation(n))", "torch.arange(n)"),
                     {LOOP: "the pairs are not shuffled"}),
    "the same order every epoch": (
        _edit("    for _ in range(epochs):\n        order = torch.as_tensor(self.rng.permutation(n))\n",
              "    order = torch.as_tensor(self.rng.permutation(n))\n    for _ in range(epochs):\n"),
        {LOOP: "use the same minibatches: the order is drawn once"}),
    "indices drawn with replacement": (
        _edit("rows = order[s:s + b]", "rows = torch.as_tensor(self.rng.integers(0, n, b))"),
        {LOOP: "not indices drawn with replacement"}),
    "a fixed batch size": (_edit("b = min(self.cfg.batch_size, n)", "b = min(32, n)"),
                           {LOOP: "expected B = min(self.cfg.batch_size, N) = "}),
    "one epoch too few": (_edit("range(epochs)", "range(epochs - 1)"),
                          {LOOP: "it makes 2 passes over the data (epochs) where epochs = 3 were asked"}),
    "returns the last minibatch's loss": (_edit("return sum(losses) / len(losses)", "return losses[-1]"),
                                          {LOOP: "the last minibatch's loss; expected the mean of the last epoch's"}),
    "batch_size without min(·, N)": (
        _edit("b = min(self.cfg.batch_size, n)", "b = self.cfg.batch_size").replace("/ len(losses)",
                                                                                 "/ max(1, len(losses))"),
        {LOOP: "with N < batch_size, B = min(self.cfg.batch_size, N)",
         STEPS: "with N < batch_size, B = min(self.cfg.batch_size, N)"}),
}


def _grade(tmp_path, src: str):
    report = grade(write_submission(tmp_path / "sub", {"fit": src}), include_performance=False, only={"bc_fit"})
    parts = [t for t in report.tests if t.max_score > 0]
    assert len(parts) == 4, [t.name for t in report.tests]        # 2 parts × (public, hidden) variant
    return parts


@pytest.mark.parametrize("style", sorted(CORRECT))
def test_correct_styles_get_every_point(style, tmp_path):
    parts = _grade(tmp_path, CORRECT[style])
    assert all(t.score == t.max_score for t in parts), [(t.name, t.output) for t in parts if not t.passed]
    assert sum(t.max_score for t in parts) == 10


def test_the_stub_gets_nothing_and_is_told_so(tmp_path):
    parts = _grade(tmp_path, FIT + '    last_epoch_loss = float("nan")\n    return last_epoch_loss\n')
    assert all(t.score == 0 and t.output == FIT_PLACEHOLDER for t in parts), [(t.name, t.output) for t in parts]


@pytest.mark.parametrize("bug", sorted(BROKEN))
def test_each_mistake_loses_exactly_its_part_with_feedback_naming_it(bug, tmp_path):
    src, losing = BROKEN[bug]
    for t in _grade(tmp_path, src):
        part = t.name.split(" (")[0]
        if part in losing:
            assert t.score == 0 and losing[part] in t.output, f"{bug}: {t.name}: {t.output}"
        else:
            assert t.score == t.max_score, f"{bug}: {t.name} should keep its points: {t.output}"


# ---------------------------------------------------------------------------------- the scoring, on hand-made records

def _run(rows: list[list[int]], n: int = 10, batch: int = 4, epochs: int = 2, losses=None, ret=None,
         step_grads=None) -> _FitRun:
    """A recorded fit call whose minibatches are ``rows``, stepped right after each one with its own gradient."""
    c = len(rows)
    losses = np.arange(1.0, c + 1.0) if losses is None else np.asarray(losses, float)
    grads = np.eye(c, 5 + c)
    per_epoch = _epochs([np.array(r) for r in rows])
    last = losses[c - len(per_epoch[-1]):]
    return _FitRun(n=n, epochs=epochs, batch=min(batch, n), batch_size=batch, rows=[np.array(r) for r in rows],
                   losses=losses, grads=grads, calls=c, graph_calls=c, step_none=np.zeros(c, bool),
                   step_last=np.arange(c), step_grads=grads.copy() if step_grads is None else step_grads,
                   ret=float(last.mean()) if ret is None else ret, ret_ok=True, loss_before=2.0, loss_after=1.0,
                   change=0.1, own_optimizer=True)


RIGHT = [[3, 7, 1, 9], [0, 5, 2, 8], [4, 6], [9, 2, 6, 0], [1, 3, 8, 5], [7, 4]]


def test_epochs_start_at_the_first_reused_pair():
    assert [len(e) for e in _epochs([np.array(r) for r in RIGHT])] == [3, 3]
    assert [len(e) for e in _epochs([np.array(r) for r in RIGHT[:2] + RIGHT[3:5]])] == [2, 2]   # last 2 dropped


def test_a_right_record_has_no_problems_and_dropping_the_last_batch_is_fine():
    assert _loop_problems(_run(RIGHT)) == [] and _step_problems(_run(RIGHT)) == []
    dropped = RIGHT[:2] + RIGHT[3:5]
    assert _loop_problems(_run(dropped)) == [] and _step_problems(_run(dropped)) == []


def test_the_return_value_may_be_the_per_minibatch_or_the_per_pair_mean():
    losses = [1.0, 2.0, 3.0, 4.0, 5.0, 9.0]
    per_pair = (4 * 4.0 + 4 * 5.0 + 2 * 9.0) / 10
    assert _loop_problems(_run(RIGHT, losses=losses, ret=6.0)) == []
    assert _loop_problems(_run(RIGHT, losses=losses, ret=per_pair)) == []
    assert "the last minibatch's loss" in _loop_problems(_run(RIGHT, losses=losses, ret=9.0))[0]
    assert "mean over every epoch's" in _loop_problems(_run(RIGHT, losses=losses, ret=4.0))[0]
    assert "placeholder" in _loop_problems(_run(RIGHT, ret=float("nan")))[0]


def test_pairs_left_out_unpaired_rows_and_empty_minibatches_are_named():
    assert "empty minibatch" in _loop_problems(_run(RIGHT[:3] + [[]] + RIGHT[3:]))[0]
    assert "epoch 1 uses 4 of the 10 pairs" in _loop_problems(_run([[0, 1, 2, 3], [0, 4, 5, 6]]))[0]
    assert "unpaired" in _loop_problems(_run([[0, 1, -2, 3]] + RIGHT[1:]))[0]
    assert "not pairs of the dataset" in _loop_problems(_run([[0, 1, -1, 3]] + RIGHT[1:]))[0]


def test_one_step_per_minibatch_with_its_own_gradient():
    right = _run(RIGHT)
    late = _run(RIGHT, step_grads=np.vstack([np.zeros(right.grads.shape[1]), right.grads[:-1]]))
    late.step_none[0] = True
    assert "no gradient reaches the parameters" in _step_problems(late)[0]
    previous = _run(RIGHT, step_grads=np.vstack([right.grads[:1], right.grads[:-1]]))
    assert "previous minibatch's" in _step_problems(previous)[0]
    fewer = _run(RIGHT)
    fewer.step_none, fewer.step_last, fewer.step_grads = fewer.step_none[::2], fewer.step_last[1::2], \
        fewer.step_grads[1::2]
    assert "3 steps of self.optimizer for 6 minibatches" in _step_problems(fewer)[0]
    worse = _run(RIGHT)
    worse.loss_after = 3.0
    assert "did not go down" in _step_problems(worse)[0]


def test_the_core_scope_does_not_grade_fit(tmp_path):
    """fit is a TODO of the full scope only: a core-scope grading has no BC training loop parts."""
    report = grade(write_submission(tmp_path / "sub", scope="core"), include_performance=False, only={"bc_fit"},
                   scope="core")
    assert not [t for t in report.tests if t.max_score > 0], [t.name for t in report.tests]

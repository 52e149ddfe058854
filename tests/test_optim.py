"""learning/optim.py: torch's Adam to the bit, without importing torch._dynamo (70 MB and a second per process)."""
import subprocess
import sys

import torch

from conftest import ROOT
from learning.optim import Adam


def _train(cls: type, steps: int = 40) -> tuple[list[torch.Tensor], dict]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(17, 32), torch.nn.Tanh(), torch.nn.Linear(32, 6))
    opt = cls(net.parameters(), lr=3e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(16, 17, generator=gen), torch.randn(16, 6, generator=gen)
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()], opt.state_dict()


def test_the_same_parameters_and_state_as_torchs_adam():
    ours, ours_state = _train(Adam)
    theirs, their_state = _train(torch.optim.Adam)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert ours_state["param_groups"] == their_state["param_groups"]
    for k, v in their_state["state"].items():
        assert all(torch.equal(v[name], ours_state["state"][k][name]) for name in v)
    untrained, _ = _train(Adam, steps=0)
    assert not any(torch.equal(a, b) for a, b in zip(ours, untrained))           # it did train


def test_an_imitation_agents_training_step_does_not_import_dynamo(tmp_path):
    code = ("import sys, numpy as np; from learning.agents import build_agent; "
            f"a = build_agent('bc', 'hopper', {{'demo_episodes': 1, 'epochs': 1}}, out_dir={str(tmp_path)!r}, "
            "solution=True, quiet=True); "
            "a.fit(a.demo_dataset(1), 1); "
            "print(a.grad_steps > 0, 'torch._dynamo' in sys.modules, 'sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["True", "False", "False"], out.stdout + out.stderr

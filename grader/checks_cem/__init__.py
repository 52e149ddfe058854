"""The CEM unit checks (``learning/cem_agent.py``), one module per TODO: ``sample_candidates`` (:mod:`.sample`: n
independent draws of N(μ, diag(σ²)), every random number from ``self.rng``), ``refit`` (:mod:`.refit`: mean and σ of
the K best candidates, σ divided by K and floored at ``min_std``, returned) and ``search_iteration``
(:mod:`.iteration`: a population sampled, each candidate scored once in order, the scores returned, the refit stored),
each mistake named.

The parent knows every input: the search distribution, the agents' generator seeds, the crafted populations and the
recorder's score function, so it computes the reference itself (the reference draw is
``mean + std * rng.standard_normal((n, P))`` with ``rng = np.random.default_rng(seed)``).
"""
from grader.checks_cem.iteration import CEM_ITERATION
from grader.checks_cem.refit import CEM_REFIT
from grader.checks_cem.sample import CEM_SAMPLE

CHECKS = (CEM_SAMPLE, CEM_REFIT, CEM_ITERATION)

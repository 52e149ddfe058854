"""The policy-gradient unit checks (``learning/pg_agent.py``), one module per TODO pair: the reward-to-go
(:mod:`.rtg`) and GAE(λ) (:mod:`.gae`) over crafted batches of concatenated episodes (:mod:`.batches`: terminations,
time-limit truncations, a batch cut at the end, one-step episodes, several discounts and λ), the actor's and the
critic's losses (:mod:`.losses`: values and gradients over several calls on one agent), ``estimate_advantages`` and
``update`` (:mod:`.update`).

Every input comes from the variant's seeded generator; the child (grader/child/jobs_pg.py, ``job_pg_*``) only calls the
student's method and writes plain arrays; the references and the named wrong versions are computed here. A scalar
recursion is linear, so a mistake in one aspect (the values inside an episode, or the episode boundaries; the TD
errors, or the λ-recursion) is judged separately: a part passes when its aspect is right even if the other is wrong
(the other part names that mistake).
"""
from grader.checks_pg.gae import PG_GAE
from grader.checks_pg.losses import PG_ACTOR_LOSS, PG_CRITIC_LOSS
from grader.checks_pg.rtg import PG_RTG
from grader.checks_pg.update import PG_ESTIMATE, PG_UPDATE

CHECKS = (PG_RTG, PG_GAE, PG_ACTOR_LOSS, PG_CRITIC_LOSS, PG_ESTIMATE, PG_UPDATE)

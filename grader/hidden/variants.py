"""Hidden variants of the unit checks (other seeds, observation/action sizes and batch sizes)."""
from grader.context import Variant

HIDDEN_VARIANTS = {
    "bc_loss": [Variant(seed=9151, env="ant", batch=57, hidden=True)],
    "bc_fit": [Variant(seed=9160, env="ant", batch=20, hidden=True)],       # N = 4·20 + 9160 mod 20 = 80
    "dagger_select": [Variant(seed=9252, env="cheetah", batch=50, hidden=True)],
    "dagger_aggregate": [Variant(seed=9353, env="ant", batch=23, hidden=True)],
    "dart_step": [Variant(seed=9454, env="cheetah", batch=70, hidden=True)],
    "dagger_round": [Variant(seed=9555, env="ant", batch=33, hidden=True)],
    "dart_round": [Variant(seed=9656, env="walker", batch=47, hidden=True)],
    "dagger_collect": [Variant(seed=9555, env="cheetah", batch=180, hidden=True)],
    "dart_collect": [Variant(seed=9656, env="cheetah", batch=260, hidden=True)],
    "cem_sample": [Variant(seed=9761, env="cheetah", batch=3000, hidden=True)],
    "cem_refit": [Variant(seed=9762, env="walker", batch=31, hidden=True)],
    "cem_iteration": [Variant(seed=9763, env="hopper", batch=23, hidden=True)],
    "pg_rtg": [Variant(seed=9717, env="hopper", batch=61, hidden=True)],
    "pg_gae": [Variant(seed=9818, env="walker", batch=53, hidden=True)],
    "pg_actor_loss": [Variant(seed=9919, env="ant", batch=45, hidden=True)],
    "pg_critic_loss": [Variant(seed=9020, env="walker", batch=41, hidden=True)],
    "pg_estimate": [Variant(seed=9121, env="ant", batch=47, hidden=True)],
    "pg_update": [Variant(seed=9222, env="walker", batch=51, hidden=True)],
}

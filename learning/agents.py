"""Agent registry, the one agent factory (:func:`build_agent`) and the one manifest of the student's TODO methods.

Each student agent class declares ``todo_methods`` (the methods written in its own file); everything
else (the grader, the release builder, calibration, tests) derives what it needs from :func:`todo_manifest`.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from util.config import REPO_ROOT, ConfigError

if TYPE_CHECKING:
    from envs.builder import EnvConfig

IMITATION_AGENTS = {            # assignment 1: imitation learning
    "bc": ("learning.bc_agent", "BCAgent"),
    "dagger": ("learning.dagger_agent", "DAggerAgent"),
    "dart": ("learning.dart_agent", "DARTAgent"),
}
POLICY_SEARCH_AGENTS = {        # assignment 2: policy search
    "cem": ("learning.cem_agent", "CEMAgent"),
    "pg": ("learning.pg_agent", "PGAgent"),
}
STUDENT_AGENTS = {**IMITATION_AGENTS, **POLICY_SEARCH_AGENTS}
ASSIGNMENTS = {"a1": tuple(IMITATION_AGENTS), "a2": tuple(POLICY_SEARCH_AGENTS)}   # folder → its agents
DEFAULT_ASSIGNMENT = "a1"
AGENT_NAMES = sorted([*STUDENT_AGENTS, "expert"])


SCOPES = ("core", "full")   # core: the loss, DAgger's action choice and aggregation, the noisy step; full: + the loops
DEFAULT_SCOPE = "full"      # the scope this copy grades and ships (tools/make_release.py --scope rewrites this line)


@dataclass(frozen=True)
class TodoFile:
    """One student file in one scope: ``learning/<file_name>`` holding ``class_name``, whose TODO ``methods`` the
    student writes; ``depends_on`` are the student's TODO methods of parent classes (other files) this agent also
    runs, and ``reference_methods`` the TODO methods outside the scope that it runs (the reference's, in grading)."""

    agent: str                 # agent name: bc, dagger, dart
    module: str                # learning.bc_agent
    class_name: str            # BCAgent
    methods: tuple[str, ...]   # TODO methods the student writes in this file (in this scope)
    depends_on: tuple[str, ...]  # TODO methods of parent classes (other files, in this scope) this agent also runs
    reference_methods: tuple[str, ...] = ()  # TODO methods outside the scope this agent runs (own and inherited)
    scope: str = "full"

    @property
    def file_name(self) -> str:
        return self.module.rsplit(".", 1)[1] + ".py"

    @property
    def all_methods(self) -> tuple[str, ...]:
        """Every in-scope TODO method a full run of this agent calls: inherited ones first."""
        return self.depends_on + self.methods


def agent_class(name: str) -> type:
    if name not in STUDENT_AGENTS:
        raise ConfigError(f"Unknown agent '{name}'. Available agents: {', '.join(AGENT_NAMES)}.")
    module, cls = STUDENT_AGENTS[name]
    return getattr(importlib.import_module(module), cls)


def describe_assignments() -> str:
    """The assignments and their agents in words, for help texts and errors: ``a1 (bc, dagger, dart), a2 (cem, pg)``."""
    return ", ".join(f"{a} ({', '.join(agents)})" for a, agents in ASSIGNMENTS.items())


def check_assignment(assignment: str) -> str:
    if assignment not in ASSIGNMENTS:
        raise ConfigError(f"Unknown assignment '{assignment}'. Assignments: {describe_assignments()}.")
    return assignment


def assignment_of(agent: str) -> str:
    """The assignment whose folder holds ``agent``'s configs (a1 for bc, a2 for pg)."""
    for assignment, agents in ASSIGNMENTS.items():
        if agent in agents:
            return assignment
    raise ConfigError(f"Unknown agent '{agent}'. Available agents: {', '.join(AGENT_NAMES)}.")


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ConfigError(f"Unknown scope '{scope}'. Scopes: {', '.join(SCOPES)} (core: today's four TODO methods; "
                          "full: also the training loop, the collection loops and the rounds).")
    return scope


def _declared(cls: type) -> dict[str, str]:
    """TODO method → its scope, as ``cls`` declares them in its own body (``todo_methods``)."""
    declared = cls.__dict__.get("todo_methods", {})
    if not isinstance(declared, dict) or any(v not in SCOPES for v in declared.values()):
        raise TypeError(f"{cls.__name__}.todo_methods must map each TODO method to one of {SCOPES}")
    return dict(declared)


def in_scope(method_scope: str, scope: str) -> bool:
    """A method declared for ``method_scope`` is written by the student in ``scope`` (full contains core)."""
    return SCOPES.index(method_scope) <= SCOPES.index(scope)


def todo_manifest(scope: str | None = None, assignment: str = DEFAULT_ASSIGNMENT) -> dict[str, TodoFile]:
    """agent name → :class:`TodoFile` for the agents of ``assignment`` in ``scope`` (default :data:`DEFAULT_SCOPE`),
    read from the framework's own agent classes (``todo_methods``)."""
    scope = check_scope(scope or DEFAULT_SCOPE)
    out = {}
    for agent in ASSIGNMENTS[check_assignment(assignment)]:
        module = STUDENT_AGENTS[agent][0]
        cls = agent_class(agent)
        own = _declared(cls)
        inherited: dict[str, str] = {}
        for base in reversed(cls.__mro__[1:]):
            inherited.update({m: sc for m, sc in _declared(base).items() if m not in inherited})
        out[agent] = TodoFile(
            agent, module, cls.__name__,
            methods=tuple(m for m, sc in own.items() if in_scope(sc, scope)),
            depends_on=tuple(m for m, sc in inherited.items() if in_scope(sc, scope)),
            reference_methods=tuple(m for m, sc in {**inherited, **own}.items() if not in_scope(sc, scope)),
            scope=scope)
    return out


def todo_owner(agent: str, method: str) -> str:
    """The agent whose file holds the TODO ``method`` that ``agent`` runs (its own or a parent class's: DAgger's
    ``fit`` is BC's; DAgger and noise injection each have their own ``collect_round``)."""
    by_class = {cls_name: name for name, (_, cls_name) in STUDENT_AGENTS.items()}
    for cls in agent_class(agent).__mro__:
        if method in _declared(cls):
            return by_class[cls.__name__]
    raise KeyError(f"{method} is not a TODO method of agent '{agent}'")


def method_scopes(assignment: str = DEFAULT_ASSIGNMENT) -> dict[str, str]:
    """Every TODO method name of ``assignment`` → the smallest scope in which the student writes it."""
    return {m: sc for agent in ASSIGNMENTS[check_assignment(assignment)]
            for m, sc in _declared(agent_class(agent)).items()}


def default_agent_config(agent: str, env_name: str) -> Path:
    """<assignment>/<agent>_<env>.yaml (the student's tuned config: a1/bc_cheetah.yaml, a2/pg_pendulum.yaml)."""
    return REPO_ROOT / assignment_of(agent) / f"{agent}_{env_name}.yaml"


def build_agent(name: str, env: "str | EnvConfig", overrides: dict[str, Any] | None = None, *,
                out_dir: str | os.PathLike, config_path: str | os.PathLike | None = None, solution: bool = False,
                expert: Any = None, progress: bool = True, quiet: bool = False, device: str = "cpu",
                video_every: int = 0, tensorboard: bool = True, config: dict[str, Any] | None = None,
                agent_cls: type | None = None) -> Any:
    """The one way run.py and the tools build an agent ready to ``run()`` (the one verb of every trainer).

    Args:
        name: bc, dagger, dart (assignment 1), pg, cem (assignment 2), or expert (the expert trainer its config
            names: TD3, SAC, TQC or ARS).
        env: a short name (cheetah, ...), an env YAML path, or an :class:`EnvConfig`.
        overrides: config keys replacing the YAML's (e.g. ``{"seed": 3, "max_samples": 5000}``; for the
            expert, keys of the ``trainer:`` section such as ``total_steps``).
        out_dir: the run's output folder.
        config_path: the agent YAML (default ``<assignment>/<agent>_<env>.yaml``, a1 or a2; expert:
            ``data/agents/expert_<env>.yaml``).
        solution: (TAs) the reference TODO methods instead of the student's, through the hook in
            :mod:`util.solutions` (an error in the student release).
        expert: an object with ``act(obs, deterministic=True)`` answering ``expert_action`` (default: the expert file).
        progress: progress bar on a terminal; quiet: no bar, no printed rows, no TensorBoard files.
        device: torch device for training; video_every: a video every N iterations; tensorboard: event files.
        config: the whole agent config as a dict instead of a YAML file (the grader's own settings).
        agent_cls: the class to build instead of the registered one (the grader: a student's class, possibly with
            reference methods for the TODOs it inherits).
    Raises:
        ConfigError: unknown agent, missing or invalid config, a config for another agent or env.
    """
    from envs.builder import EnvConfig, resolve_env_config
    from util.config import load_config

    env_cfg = env if isinstance(env, EnvConfig) else resolve_env_config(env)
    if name == "expert":
        return _build_expert_trainer(env_cfg, overrides, out_dir, config_path, progress, quiet)
    cls = agent_cls if agent_cls is not None else agent_class(name)
    if solution:
        from util.solutions import solution_hook

        cls = solution_hook()(cls, name)
    if config is not None:
        from util.config import from_dict

        path = Path("<config>")
        cfg = from_dict(cls.config_class, {**config, **(overrides or {})}, "agent config")
    else:
        path = Path(config_path) if config_path else default_agent_config(name, env_cfg.name)
        if not path.is_file():
            folder = assignment_of(name)
            examples = sorted(p.name for p in (REPO_ROOT / folder).glob(f"{name}_*.yaml"))
            example = f"{folder}/{examples[0]}" if examples else f"{folder}/{name}_<env>.yaml"
            raise ConfigError(f"Agent config not found: {path}. Create it (copy {example}) "
                              "or pass --agent_config PATH.")
        cfg = load_config(cls.config_class, path, overrides)
    if cfg.agent != name:
        raise ConfigError(f"{path} is a config for agent '{cfg.agent}', not '{name}'. Pass the {name} config.")
    if cfg.env != env_cfg.name:
        raise ConfigError(f"{path} says env: {cfg.env}, but the run is on env '{env_cfg.name}'. Pass the config "
                          f"for {env_cfg.name} ({assignment_of(name)}/{name}_{env_cfg.name}.yaml) or fix its env: key.")
    extra = {"expert": expert} if name in IMITATION_AGENTS else {}
    agent = cls(env_cfg, cfg, out_dir, device=device, progress=progress, quiet=quiet, **extra)
    agent.video_every = video_every
    agent.tensorboard = tensorboard and not quiet
    return agent


def _build_expert_trainer(env_cfg: Any, overrides: dict[str, Any] | None, out_dir: str | os.PathLike,
                          config_path: str | os.PathLike | None, progress: bool, quiet: bool) -> Any:
    from learning.expert import load_expert_config, trainer_classes, trainer_config

    cfg, source = load_expert_config(env_cfg.name, None if config_path is None else str(config_path))
    if cfg.env != env_cfg.name:
        raise ConfigError(f"{source} says env: {cfg.env}, but the run is on env '{env_cfg.name}'. "
                          "Pass the expert config for this env or fix its env: key.")
    trainer_cfg = trainer_config(cfg, source, overrides)
    _, trainer_cls = trainer_classes(trainer_cfg.algo)
    return trainer_cls(env_cfg, trainer_cfg, out_dir, progress=progress, quiet=quiet)

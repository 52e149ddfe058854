"""The student's agent as a check runs it: the student's TODO methods spliced onto the framework's classes
(:func:`splice`), the reference's methods for the other TODOs a check needs, the agent built by the framework's factory,
the global RNGs seeded."""
import os


def student_module(module: str):
    """The student's file ``learning/<x>_agent.py`` in this workspace: the module ``submission.<x>_agent``."""
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


def seed_globals(seed):
    """Seed the global RNGs student code may use (random, numpy, torch): a regrade gives identical answers."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

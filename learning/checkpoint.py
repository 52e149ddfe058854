"""Weights-only model files.

A policy file is a ``torch.save`` of plain data only (dicts, lists, str, numbers, tensors)::

    {"format": "il-mujoco-policy", "version": 1,
     "spec": {...GaussianMLPPolicy.spec()...},
     "state_dict": {...tensors...},
     "meta": {"env_id": "HalfCheetah-v5", ...}}

It is always read with ``torch.load(..., weights_only=True)``, so a file carrying a pickle
payload (arbitrary Python objects) is refused instead of executed.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from learning.policy import GaussianMLPPolicy
from util.errors import UserError
from util.fsio import atomic_save

POLICY_FORMAT = "il-mujoco-policy"
FORMAT_VERSION = 1


class CheckpointError(UserError):
    """A model/checkpoint file is missing, corrupt, unsafe or for another task."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file unique to this process, then rename (a kill never leaves half a file)."""
    atomic_save(path, lambda tmp: torch.save(obj, tmp),
                "checkpoint" if "checkpoint" in Path(path).name else "model file")


def safe_torch_load(path: str | os.PathLike, what: str = "model file", hint: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` with clear errors for missing/corrupt/unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}.{(' ' + hint) if hint else ''}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"Refusing to load {what} {path}: it contains Python objects other than tensors and plain data "
            f"(a pickle payload), which weights-only loading forbids. Re-save it with this project's tools. "
            f"({str(e).splitlines()[0]})"
        ) from None
    except Exception as e:  # a damaged file can fail anywhere inside the unpickler
        raise CheckpointError(
            f"{what} {path} is corrupt or not a PyTorch file "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
            f"Re-create it.{(' ' + hint) if hint else ''}"
        ) from None


def save_policy(path: str | os.PathLike, policy: GaussianMLPPolicy, meta: dict[str, Any] | None = None) -> None:
    """Save ``policy`` (architecture spec + weights + normalizer) as a weights-only file."""
    atomic_torch_save(
        {
            "format": POLICY_FORMAT,
            "version": FORMAT_VERSION,
            "spec": policy.spec(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()},
            "meta": dict(meta or {}),
        },
        path,
    )


def load_policy(
    path: str | os.PathLike,
    obs_dim: int | None = None,
    act_dim: int | None = None,
    env_id: str | None = None,
    hint: str = "",
) -> tuple[GaussianMLPPolicy, dict[str, Any]]:
    """Load a policy file into a fresh :class:`GaussianMLPPolicy`.

    If ``obs_dim`` / ``act_dim`` / ``env_id`` are given, a file made for another task is refused.
    Returns (policy in eval mode, meta dict).
    """
    data = safe_torch_load(path, "model file", hint)
    if not isinstance(data, dict) or data.get("format") != POLICY_FORMAT:
        raise CheckpointError(
            f"{path} is not a policy file of this project (expected format '{POLICY_FORMAT}'). "
            "Pass a model.pt written by run.py or tools/train_expert.py."
        )
    if data.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {data.get('version')}, this code reads version "
                              f"{FORMAT_VERSION}.")
    spec, meta = data.get("spec"), data.get("meta", {})
    if not isinstance(spec, dict) or not isinstance(data.get("state_dict"), dict):
        raise CheckpointError(f"{path} is missing its 'spec' or 'state_dict' entry; the file is damaged.")
    file_env = meta.get("env_id")
    if env_id is not None and file_env is not None and file_env != env_id:
        raise CheckpointError(f"{path} was trained on {file_env}, not {env_id}. Use a model for {env_id} "
                              "(or pick --env to match).")
    if obs_dim is not None and spec.get("obs_dim") != obs_dim:
        raise CheckpointError(
            f"{path} expects observations of size {spec.get('obs_dim')}, but this env gives {obs_dim}: "
            "the model is for another task. Use a model trained on this env."
        )
    if act_dim is not None and spec.get("act_dim") != act_dim:
        raise CheckpointError(f"{path} outputs actions of size {spec.get('act_dim')}, but this env needs {act_dim}: "
                              "the model is for another task.")
    try:
        policy = GaussianMLPPolicy.from_spec(spec)
        policy.load_state_dict(data["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} does not match its declared architecture ({str(e).splitlines()[0]}); "
                              "the file is damaged.") from None
    policy.eval()
    return policy, meta

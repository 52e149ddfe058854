"""What every expert trainer (the off-policy ones, :mod:`learning.expert.off_policy`, and ARS,
:mod:`learning.expert.ars`) shares beyond :class:`learning.trainer.Trainer`: the ``run`` options ``max_steps`` and
``warm_start``, signals deferred to step boundaries, the counters every expert run keeps, the end of an evaluation
(model.pt, best_model.pt and the kept ``snapshots/``, the candidates of ``--install``), the final model and the
compact checkpoint (:func:`save_compact`) a warm start continues from.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from envs.builder import EnvConfig
from learning.checkpoint import CheckpointError, save_policy
from learning.lifecycle import Run
from learning.policy import GaussianMLPPolicy
from learning.trainer import Trainer
from util.errors import UserError

# what a compact checkpoint folder holds (checkpoint.pt is required, the rest is copied when present),
# plus the run's snapshots/ (the policies of its best evaluations: candidates for --install)
COMPACT_FILES = ("checkpoint.pt", "log.txt", "config.json", "best_model.pt", "model.pt")
SNAPSHOTS = "snapshots"
KEEP_SNAPSHOTS = 5


class ExpertTrainer(Trainer):
    """Base of the expert trainers: :meth:`run` takes ``max_steps`` and ``warm_start``; SIGINT/SIGTERM stop at the
    next step boundary with a checkpoint. Subclasses supply the loop (``train``), checkpoints, ``load_warm_start``,
    ``policy()`` and ``policy_meta()``."""

    ALGO = ""
    name = "expert"
    tensorboard = False
    step_boundary_signals = True
    bar_interval = 5.0

    def __init__(self, env_cfg: EnvConfig, cfg: Any, out_dir: str | os.PathLike, progress: bool = True,
                 quiet: bool = False):
        """``quiet``: no progress bar and no printed log rows."""
        super().__init__(env_cfg, cfg, out_dir, progress, quiet)
        # counters (all saved in the checkpoint)
        self.step = 0                     # environment steps
        self.episode = 0
        self.best_eval = -float("inf")
        self.warm_starts = 0
        self.snapshots: list[tuple[float, int]] = []   # (evaluation return, step) of the kept snapshots/
        self._max_steps: int | None = None
        self._warm_start: Path | None = None

    def bar_label(self) -> str:
        return f"{self.ALGO} {self.env_cfg.name}"

    def position(self) -> str:
        return f"step {self.step}"

    # ------------------------------------------------------------------ what an algorithm supplies
    def policy(self) -> GaussianMLPPolicy:
        """The deterministic actor as a plain policy (what is evaluated and saved as ``model.pt``)."""
        raise NotImplementedError

    def policy_meta(self) -> dict[str, Any]:
        """The model files' metadata (training cost, steps, versions)."""
        raise NotImplementedError

    def load_warm_start(self, source: Path) -> None:
        """Continue from a compact checkpoint folder (or a run folder, or a checkpoint file) ``source``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False, overwrite: bool = False, *, max_steps: int | None = None,
            warm_start: str | os.PathLike | None = None) -> dict[str, float]:
        """Train until the config's end (or about ``max_steps`` more environment steps); returns the final step and
        best evaluation. ``warm_start``: a compact checkpoint folder to continue from, into a new run folder."""
        self._warm_start = warm_start_source(warm_start, resume, self.out_dir)
        self._max_steps = max_steps
        return super().run(resume=resume, overwrite=overwrite)

    def begin(self, resuming: bool) -> int | None:
        if resuming or self._warm_start is None:
            return super().begin(resuming)
        self.load_warm_start(self._warm_start)
        # the warm start's log, best model and snapshots come along: the learning curve goes on
        return self.iteration if copy_run_files(self._warm_start, self.out_dir, self.snapshots) else None

    def finish(self, run: Run) -> dict[str, float]:
        """The final checkpoint and model.pt."""
        self.tick()
        self.save_checkpoint()
        save_policy(self.out_dir / "model.pt", self.policy(), self.policy_meta())
        return {"step": self.step, "best_eval": self.best_eval}

    def keep_policy(self, policy: GaussianMLPPolicy, eval_return: float) -> None:
        """After an evaluation: model.pt, best_model.pt when it is the best so far, and the kept snapshots/."""
        meta = self.policy_meta()
        save_policy(self.out_dir / "model.pt", policy, meta)
        if eval_return > self.best_eval:
            self.best_eval = eval_return
            save_policy(self.out_dir / "best_model.pt", policy, {**meta, "eval_return": eval_return})
        keep_snapshot(self.out_dir, self.snapshots, meta["train_steps"], policy, meta, eval_return)


def warm_start_source(warm_start: str | os.PathLike | None, resume: bool, run_dir: Path) -> Path | None:
    """``--warm_start``'s folder (or checkpoint file), refused with ``--resume`` or when it is the run folder."""
    if warm_start is None:
        return None
    source = Path(warm_start)
    if resume:
        raise UserError("--warm_start and --resume exclude each other: --resume continues the run in "
                        "--run_dir; --warm_start starts a new run from a compact checkpoint.")
    if source.resolve() == run_dir.resolve():
        raise UserError(f"--warm_start {source} is the run folder itself: write the new run into another "
                        "--run_dir (the compact checkpoint is never overwritten by training).")
    return source


def copy_run_files(source: Path, run_dir: Path, snapshots: list[tuple[float, int]]) -> bool:
    """A warm start's earlier files into the new run folder: its log.txt (the learning curve goes on), best_model.pt
    and the kept ``snapshots`` (earlier candidates stay candidates). Returns whether there was a log."""
    folder = source if source.is_dir() else source.parent
    names = ["best_model.pt", *(f"{SNAPSHOTS}/step_{step:08d}.pt" for _, step in snapshots)]
    for name in names:
        if (folder / name).is_file():
            (run_dir / name).parent.mkdir(exist_ok=True)
            shutil.copyfile(folder / name, run_dir / name)
    if (folder / "log.txt").is_file():
        shutil.copyfile(folder / "log.txt", run_dir / "log.txt")
        return True
    return False


def snapshot_path(run_dir: Path, step: int) -> Path:
    return run_dir / SNAPSHOTS / f"step_{step:08d}.pt"


def keep_snapshot(run_dir: Path, snapshots: list[tuple[float, int]], step: int, policy: GaussianMLPPolicy,
                  meta: dict[str, Any], eval_return: float) -> None:
    """Keep the policies of a run's ``KEEP_SNAPSHOTS`` best evaluations in snapshots/ (install's candidates).

    ``snapshots``: the (evaluation return, step) of those kept, updated in place (the trainer checkpoints it).
    An evaluation of a few episodes is noisy, so --install re-measures all of them on its own selection episodes.
    """
    if len(snapshots) >= KEEP_SNAPSHOTS and eval_return <= min(snapshots)[0]:
        return
    snapshot_path(run_dir, step).parent.mkdir(exist_ok=True)
    save_policy(snapshot_path(run_dir, step), policy, {**meta, "eval_return": eval_return})
    snapshots.append((eval_return, step))
    if len(snapshots) > KEEP_SNAPSHOTS:
        dropped = min(snapshots)
        snapshots.remove(dropped)
        snapshot_path(run_dir, dropped[1]).unlink(missing_ok=True)


def save_compact(run_dir: str | os.PathLike, dest: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Copy a run's compact checkpoint (``COMPACT_FILES``, no replay) into ``dest``; returns the files written.

    ``dest`` must be empty or absent unless ``overwrite`` (then its compact files are replaced).
    """
    src, out = Path(run_dir), Path(dest)
    if not (src / "checkpoint.pt").is_file():
        raise CheckpointError(f"{src} holds no checkpoint.pt: train (or resume) there first, or pick the run folder "
                              "with --run_dir.")
    if out.resolve() == src.resolve():
        raise UserError(f"--save_compact {out} is the run folder itself: name another folder "
                        "(e.g. data/training/<env>).")
    if out.exists() and not out.is_dir():
        raise UserError(f"--save_compact {out} is a file, not a folder: name a folder.")
    present = [f for f in COMPACT_FILES if (out / f).exists()]
    if present and not overwrite:
        raise UserError(f"{out} already holds a compact checkpoint ({', '.join(present)}). Add --overwrite to "
                        "replace it, or name another folder.")
    out.mkdir(parents=True, exist_ok=True)
    (out / SNAPSHOTS).mkdir(exist_ok=True)
    names = [n for n in COMPACT_FILES if (src / n).is_file()]
    names += [f"{SNAPSHOTS}/{p.name}" for p in sorted((src / SNAPSHOTS).glob("step_*.pt"))]
    written = []
    for name in names:
        tmp = out / f".{name.replace('/', '_')}.{os.getpid()}.tmp"
        shutil.copyfile(src / name, tmp)
        os.replace(tmp, out / name)
        written.append(out / name)
    # a stale file from an older compact checkpoint would mislead a warm start or an install
    for p in [out / n for n in COMPACT_FILES] + list((out / SNAPSHOTS).glob("step_*.pt")):
        if p.exists() and p not in written:
            p.unlink()
    return written

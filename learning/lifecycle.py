"""The life of one training run in its output folder, shared by the imitation agents and the expert trainers.

A :class:`Run` owns everything about a run that is not the algorithm:

* the output folder: created (or a clear error when it cannot be), locked for the run's lifetime so a
  second run into the same folder stops at once, and never overwritten by accident: a folder that
  holds a run is refused unless ``resume`` (continue it) or ``overwrite`` (delete it, start again);
* ``config.json`` (the run's settings); ``resume`` with other settings is refused, listing the differences;
* ``log.txt`` (through :class:`TextLogger`, replaced atomically at every row), the progress bar;
* the learning-curve plot and the schedule of periodic videos.

Checkpoint and model contents belong to the algorithm (``learning.checkpoint`` writes them atomically).

Typical use (``Trainer.run`` in ``learning/trainer.py``, the one verb of the imitation agents and expert trainers)::

    with Run(out_dir, settings, resume=resume, overwrite=overwrite) as run:
        if run.resuming:
            load the checkpoint (run.checkpoint_path)
        run.start(LOG_COLUMNS, resume_iteration, total, initial, desc, unit)
        ... run.log(row); run.advance(1, test=...) ...
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from learning.checkpoint import CheckpointError
from learning.logger import TextLogger
from util.errors import UserError
from util.fsio import FolderLock, atomic_write, ensure_folder, remove_stale_temporaries
from util.progress import progress_bar
from util.text import short

# files a run writes into its folder (removed by overwrite=True); the first four mark a folder as holding a run
RUN_FILES = ("checkpoint.pt", "log.txt", "model.pt", "config.json", "curve.png", "replay.npz", "best_model.pt")
RUN_MARKERS = RUN_FILES[:4]


class RunExistsError(UserError):
    """The output folder already holds a run and neither resume nor overwrite was asked for."""


class Run:
    """One run's output folder, lock, settings, log, progress bar, checkpoint, model, plot and videos.

    Args:
        out_dir: the run's folder (created if needed).
        settings: plain data describing the run (agent, env, config): written to ``config.json`` and
            compared with it on resume.
        resume: continue the run in ``out_dir`` (its checkpoint, if it wrote one yet).
        overwrite: delete a run already in ``out_dir`` and start again.
        progress: draw a progress bar (only when stderr is a terminal); otherwise rows are echoed if ``echo``.
        echo: print each log row when there is no progress bar.
        tensorboard: also write TensorBoard event files when tensorboard is installed.
        video_every: record a video every N iterations into ``<out_dir>/videos/`` (0: never).
    """

    def __init__(self, out_dir: str | os.PathLike, settings: dict[str, Any], *, resume: bool = False,
                 overwrite: bool = False, progress: bool = True, echo: bool = True, tensorboard: bool = True,
                 video_every: int = 0):
        self.out_dir = Path(out_dir)
        self.settings = json.loads(json.dumps(settings, default=str))
        self.resume, self.overwrite = resume, overwrite
        self.progress, self.echo, self.tensorboard, self.video_every = progress, echo, tensorboard, video_every
        self.resuming = False   # True once opened if a checkpoint is continued
        self.logger: TextLogger | None = None
        self.bar: Any = None
        self._lock = FolderLock(self.out_dir)

    # ------------------------------------------------------------------ paths
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    @property
    def config_path(self) -> Path:
        return self.out_dir / "config.json"

    @property
    def model_path(self) -> Path:
        return self.out_dir / "model.pt"

    # ------------------------------------------------------------------ open / close
    def __enter__(self) -> "Run":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Create and lock the folder, then apply the resume / overwrite / refuse-to-clobber rules."""
        ensure_folder(self.out_dir)
        self._lock.acquire()
        try:
            remove_stale_temporaries(self.out_dir)
            self._check_folder()
        except BaseException:
            self._lock.release()
            raise

    def _check_folder(self) -> None:
        found = [f for f in RUN_MARKERS if (self.out_dir / f).exists()]
        if self.resume:
            if not self.config_path.exists() and not self.checkpoint_path.exists():
                raise CheckpointError(f"checkpoint not found: {self.checkpoint_path}. There is no run to resume in "
                                      f"{self.out_dir}: start without --resume.")
            self._compare_settings()
            self.resuming = self.checkpoint_path.exists()
            if not self.resuming:
                print(f"note: the run in {self.out_dir} stopped before its first checkpoint; starting it from the "
                      "beginning.")
        elif found:
            if not self.overwrite:
                raise RunExistsError(
                    f"{self.out_dir} already holds a run ({', '.join(found)}). Add --resume to continue it, or "
                    "--overwrite to delete it and start again (or pick another --out_dir).")
            self._delete_run_files()
        if not self.resuming or not self.config_path.exists():
            atomic_write(self.config_path, json.dumps(self.settings, indent=2) + "\n", "config file")

    def _compare_settings(self) -> None:
        if not self.config_path.exists():
            return
        try:
            saved = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{self.config_path} is damaged ({short(e)}); cannot check what the run was "
                                  "started with. Use --overwrite to start again.") from None
        diffs = settings_differences(saved, self.settings)
        if diffs:
            raise CheckpointError(
                f"--resume: the run in {self.out_dir} was started with other settings: {'; '.join(diffs)}. "
                "Resume with the run's settings, or use --overwrite to start again.")

    def _delete_run_files(self) -> None:
        for name in RUN_FILES:
            (self.out_dir / name).unlink(missing_ok=True)
        for p in self.out_dir.glob("events.out.tfevents.*"):
            p.unlink(missing_ok=True)
        for folder in ("videos", "snapshots"):
            shutil.rmtree(self.out_dir / folder, ignore_errors=True)

    def start(self, columns: list[str], resume_iteration: int | None, total: int, initial: int, desc: str,
              unit: str, **bar_kwargs: Any) -> None:
        """Open ``log.txt`` (keeping rows up to ``resume_iteration`` when resuming) and the progress bar."""
        self.bar = progress_bar(self.progress, total=total, initial=initial, desc=desc, unit=unit,
                                dynamic_ncols=True, **bar_kwargs)
        self.logger = TextLogger(self.out_dir / "log.txt", columns, resume_iteration=resume_iteration,
                                 echo=self.echo and self.bar is None, tensorboard=self.tensorboard)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.logger is not None:
            self.logger.close()
            self.logger = None
        self._lock.release()

    # ------------------------------------------------------------------ during the run
    def log(self, row: dict[str, Any]) -> None:
        if self.logger is None:
            raise RuntimeError("Run.log before Run.start")
        self.logger.log(row)

    def advance(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(**postfix)

    def video_path(self, iteration: int) -> Path | None:
        """Where this iteration's video goes, or None when no video is due."""
        if self.video_every and iteration % self.video_every == 0:
            return self.out_dir / "videos" / f"iter_{iteration:04d}.mp4"
        return None

    def plot(self, title: str, expert_return: float | None, x: str = "Samples") -> None:
        """``curve.png``: Test_Return against the log's column ``x`` (a failed plot never loses a finished run)."""
        try:
            from util.plotting import plot_runs

            plot_runs([self.out_dir / "log.txt"], x=x, y="Test_Return", title=title,
                      out=self.out_dir / "curve.png", expert_return=expert_return)
        except Exception as e:  # noqa: BLE001
            print(f"warning: could not write curve.png ({short(e)})")


def settings_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences 'key: saved → current' between two settings trees (config keys unprefixed)."""
    a, b = _flatten(saved), _flatten(current)
    absent = "(absent)"
    return [f"{k}: {short(a.get(k, absent))} → {short(b.get(k, absent))}"
            for k in sorted(set(a) | set(b)) if a.get(k, absent) != b.get(k, absent)]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = str(k) if prefix in ("", "config") else f"{prefix}.{k}"
        out.update(_flatten(v, name) if isinstance(v, dict) and v else {name: v})
    return out

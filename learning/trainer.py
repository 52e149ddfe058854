"""The one base of every trainer: the imitation agents (BC, DAgger, noise injection) and the expert trainers
(TD3, SAC, TQC, ARS).

A :class:`Trainer` owns everything about training that is not the algorithm:

* its settings ``cfg`` (with a ``seed``), the output folder, a training and an evaluation env, the task's
  dimensions and action bounds, a NumPy generator and torch seeded with ``cfg.seed``;
* wall-time and CPU-time accounting that continues across resumes (:meth:`tick`);
* the one public verb, :meth:`run`: the ``with Run(...)`` block of :mod:`learning.lifecycle` (folder, lock,
  config.json, log, progress bar), resume from the checkpoint, the algorithm's loop (:meth:`train`), and
  interrupts: Ctrl-C (and SIGTERM, which ``util.cli.run_main`` turns into Ctrl-C) stops the loop, the trainer
  saves what continues the run (:meth:`on_interrupt`) and the KeyboardInterrupt goes on. A trainer with
  ``step_boundary_signals`` defers SIGINT/SIGTERM to the next :meth:`step_boundary` its loop calls, so the
  checkpoint saved there is exactly an uninterrupted run's state.

A subclass supplies the algorithm: :meth:`train` (the loop), :meth:`save_checkpoint`, :meth:`load_checkpoint`,
what a new run starts from (:meth:`start_fresh`), its log columns and what :meth:`finish` returns.
"""
from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.builder import EnvConfig, action_bounds, env_dims, make_env
from learning.lifecycle import Run
from util.signals import StepBoundaryInterrupts


class StopAtStepBoundary(KeyboardInterrupt):
    """A deferred SIGINT/SIGTERM acted on at a step boundary (the trainer's state is a consistent one)."""


class Trainer:
    """Base of every trainer; see the module docstring. ``run()`` is the one public verb."""

    name = "trainer"                   # the run's agent name (config.json) and the progress bar's label
    LOG_COLUMNS: list[str] = []
    unit = "it"                        # the progress bar's unit
    bar_interval: float | None = None  # the progress bar's minimum seconds between redraws (None: its default)
    step_boundary_signals = False      # defer SIGINT/SIGTERM to step_boundary() (else Ctrl-C lands where it lands)
    tensorboard = True                 # also write TensorBoard event files when tensorboard is installed
    video_every = 0                    # record a video every N iterations (run.py --video_every)

    def __init__(self, env_cfg: EnvConfig, cfg: Any, out_dir: str | os.PathLike, progress: bool = True,
                 quiet: bool = False):
        """``quiet``: no progress bar, no printed log rows, no TensorBoard files."""
        self.env_cfg, self.cfg = env_cfg, cfg
        self.out_dir = Path(out_dir)
        self.progress = progress and not quiet
        self.echo = not quiet
        if quiet:
            self.tensorboard = False
        self.env = make_env(env_cfg)
        self.eval_env = make_env(env_cfg)
        self.obs_dim, self.act_dim = env_dims(self.env)
        self.action_low, self.action_high = action_bounds(self.env)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.iteration = 0                # finished iterations (log rows)
        self.wall_time = 0.0              # training seconds, all sessions of the run together
        self.cpu_time = 0.0               # CPU seconds of the training processes (their cost in core-seconds)
        self.signals: StepBoundaryInterrupts | None = None
        self._run: Run | None = None
        self.start_clock()

    # ------------------------------------------------------------------ time
    def start_clock(self) -> None:
        """This session's clocks start; :meth:`tick` adds their time to what earlier sessions spent."""
        self._wall_base, self._wall_start = self.wall_time, time.time()
        self._cpu_base, self._cpu_start = self.cpu_time, time.process_time()

    def tick(self) -> None:
        """``wall_time`` and ``cpu_time`` = time before this session + time in this session."""
        self.wall_time = self._wall_base + (time.time() - self._wall_start)
        self.cpu_time = self._cpu_base + (time.process_time() - self._cpu_start)

    # ------------------------------------------------------------------ files and settings
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def run_settings(self) -> dict[str, Any]:
        """What defines this run (written to config.json; ``--resume`` must match it)."""
        return {"agent": self.name, "env": self.env_cfg.name, "env_id": self.env_cfg.env_id, "config": asdict(self.cfg)}

    def bar_label(self) -> str:
        return f"{self.name} {self.env_cfg.name}"

    # ------------------------------------------------------------------ what the algorithm supplies
    def train(self) -> None:
        """The algorithm's loop, continuing from the restored counters; inside :meth:`run`."""
        raise NotImplementedError

    def save_checkpoint(self) -> None:
        """Everything needed to continue the run exactly, to ``checkpoint_path``."""
        raise NotImplementedError

    def load_checkpoint(self) -> None:
        """Restore what :meth:`save_checkpoint` wrote (``run(resume=True)``)."""
        raise NotImplementedError

    def start_fresh(self) -> None:
        """Prepare a new run (nothing to restore)."""

    def begin(self, resuming: bool) -> int | None:
        """Before the loop: continue the checkpoint (``resuming``) or start afresh. Returns the iteration after
        which log.txt goes on (None: a new log)."""
        if resuming:
            self.load_checkpoint()
            return self.iteration
        self.start_fresh()
        return None

    def progress_total(self) -> int:
        """The progress bar's length (in ``unit``)."""
        return 1

    def progress_position(self) -> int:
        """Where the progress bar starts (in ``unit``)."""
        return self.iteration

    def step_boundary(self) -> None:
        """Called by the loop between two steps: a deferred signal stops the run here (:class:`StopAtStepBoundary`)."""
        if self.signals is not None and self.signals.requested:
            raise StopAtStepBoundary

    def on_interrupt(self, at_step_boundary: bool) -> None:
        """Ctrl-C or a signal stopped :meth:`train`: save what continues the run, say how (the interrupt goes on).

        ``at_step_boundary``: it stopped at :meth:`step_boundary`, so the state is exactly an uninterrupted run's
        (then a checkpoint is saved); otherwise it landed anywhere (a second signal) and nothing is saved."""
        if at_step_boundary:
            self.tick()
            self.save_checkpoint()
            print(f"\nInterrupted at {self.position()}: checkpoint saved to {self.checkpoint_path}; "
                  "continue with --resume.")

    def position(self) -> str:
        """Where the run is, for messages."""
        return f"iteration {self.iteration}"

    def finish(self, run: Run) -> Any:
        """After the loop, inside the run (the folder still locked): final files; returns :meth:`run`'s result."""
        return None

    # ------------------------------------------------------------------ the verb
    def interrupts(self) -> AbstractContextManager[StepBoundaryInterrupts | None]:
        return StepBoundaryInterrupts() if self.step_boundary_signals else nullcontext()

    def run(self, resume: bool = False, overwrite: bool = False) -> Any:
        """Train (or continue with ``resume``) in the output folder; returns :meth:`finish`'s result.

        The folder follows :class:`learning.lifecycle.Run`'s rules: locked for the run; a folder already holding
        a run is refused unless ``resume`` (continue it) or ``overwrite`` (start again). An interrupt saves what
        continues the run (:meth:`on_interrupt`) and re-raises KeyboardInterrupt.
        """
        with Run(self.out_dir, self.run_settings(), resume=resume, overwrite=overwrite, progress=self.progress,
                 echo=self.echo, tensorboard=self.tensorboard, video_every=self.video_every) as run, \
                self.interrupts() as signals:
            resume_iteration = self.begin(run.resuming)
            bar = {} if self.bar_interval is None else {"mininterval": self.bar_interval}
            run.start(self.LOG_COLUMNS, resume_iteration, total=self.progress_total(),
                      initial=self.progress_position(), desc=self.bar_label(), unit=self.unit, **bar)
            self.start_clock()
            self._run, self.signals = run, signals
            try:
                self.train()
            except KeyboardInterrupt as e:
                self.on_interrupt(at_step_boundary=isinstance(e, StopAtStepBoundary))
                raise
            finally:
                self._run, self.signals = None, None
            return self.finish(run)

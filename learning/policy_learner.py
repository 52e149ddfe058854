"""The base of the agents that learn one Gaussian policy and hand it in as ``model.pt``: assignment 1's imitation
agents (:class:`learning.imitation.ImitationAgent`) and assignment 2's policy-search agents
(:class:`learning.policy_search.PolicySearchAgent`).

What they share beyond :class:`learning.trainer.Trainer`: after each iteration, :meth:`publish` logs the row, records
the video due then, saves ``model.pt`` and the checkpoint, and advances the progress bar; Ctrl-C saves the model so
far (:meth:`on_interrupt`); the end of a run saves the model, evaluates it on held-out episodes and draws
``curve.png`` (:meth:`finish`). A subclass supplies ``self.policy``, ``evaluate``, ``model_meta``, the checkpoint and
the algorithm, and says what the curve's x axis is (:attr:`CURVE_X`) and which reference line it shows
(:meth:`curve_reference`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from envs.builder import episode_seed
from learning.checkpoint import save_policy
from learning.evaluation import TEST_PURPOSE, EvalResult
from learning.lifecycle import Run
from learning.trainer import Trainer


class PolicyLearner(Trainer):
    """A trainer whose product is ``self.policy`` (a :class:`learning.policy.GaussianMLPPolicy`)."""

    CURVE_X = "Samples"                # the log column curve.png plots Test_Return against

    # ------------------------------------------------------------------ what a subclass supplies
    def evaluate(self, episodes: int, purpose: str = "eval", seed: int | None = None) -> EvalResult:
        raise NotImplementedError

    def model_meta(self) -> dict[str, Any]:
        """What model.pt records besides the weights (env, agent, counters, seed)."""
        raise NotImplementedError

    def curve_reference(self) -> float | None:
        """A return drawn as a horizontal line on curve.png (assignment 1: the expert's), or None."""
        return None

    # ------------------------------------------------------------------ shared
    def publish(self, row: dict[str, Any], **progress: Any) -> None:
        """The end of an iteration: log ``row``, record the video due at this iteration, save model.pt and the
        checkpoint, advance the progress bar by one (``progress``: the fields it shows)."""
        run = self._run
        if run is not None:
            run.log(row)
            video = run.video_path(self.iteration)
            if video is not None:
                self.record_video(video)
        self.save_model(self.out_dir / "model.pt")
        self.save_checkpoint()
        if run is not None:
            run.advance(1, **progress)

    def record_video(self, path: str | os.PathLike) -> Path:
        """Render one held-out episode of the current policy (mean action) to ``path`` (MP4, GIF fallback)."""
        from envs.video import record_video

        written, _ = record_video(self.env_cfg, lambda o: self.policy.act(o, deterministic=True), path,
                                  seed=episode_seed(self.cfg.seed, "video", self.iteration))
        return written

    def save_model(self, path: str | os.PathLike) -> None:
        save_policy(path, self.policy, self.model_meta())

    def on_interrupt(self, at_step_boundary: bool) -> None:
        """Ctrl-C: save the model trained so far (the checkpoint of the last finished iteration continues the run)."""
        self.save_model(self.out_dir / "model.pt")
        print(f"\nInterrupted: model so far saved to {self.out_dir / 'model.pt'}; "
              f"continue with --resume (from iteration {self.iteration}).")

    def finish(self, run: Run) -> EvalResult:
        """Save model.pt, evaluate on held-out episodes (``final_eval_episodes``), draw curve.png."""
        self.save_model(self.out_dir / "model.pt")
        res = (self.evaluate(self.cfg.final_eval_episodes, purpose=TEST_PURPOSE)
               if self.cfg.final_eval_episodes > 0 else EvalResult())
        if self.cfg.eval_episodes > 0:              # the curve is Test_Return: nothing to draw without it
            run.plot(f"{self.name} on {self.env_cfg.name}", self.curve_reference(), x=self.CURVE_X)
        return res

"""Headless video of a policy (MuJoCo's EGL backend when there is no display) and a live viewer."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from envs.builder import make_env
from util.progress import progress_bar


def ensure_headless_gl() -> None:
    """Pick MuJoCo's EGL backend when no display exists (must run before MuJoCo renders)."""
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def record_video(env_cfg, act_fn: Callable[[np.ndarray], np.ndarray], path: str | os.PathLike, seed: int,
                 max_steps: int | None = None, fps: int | None = None, progress: bool = False,
                 width: int = 480, height: int = 360) -> tuple[Path, float]:
    """Render one episode of ``act_fn`` (obs (obs_dim,) → env action (act_dim,)) to ``path``.

    Frames (H, W, 3) uint8 are streamed to the encoder as they are rendered, so memory stays flat whatever
    the episode length. MP4 (H.264, imageio-ffmpeg) unless ``path`` ends in .gif or no MP4 encoder is
    available (then a half-size GIF of at most ~300 frames is written beside it). The file appears
    atomically. Returns (file written, episode return).
    """
    ensure_headless_gl()
    from util.fsio import atomic_path, check_output_file

    path = check_output_file(path, "video")
    limit = max_steps or env_cfg.max_episode_steps
    writer, path, keep = _open_writer(path, fps or 30, limit)
    env = make_env(env_cfg, render_mode="rgb_array", width=width, height=height)
    bar = progress_bar(progress, total=limit, desc="render", unit="frame", leave=False)
    total = 0.0
    try:
        with writer, atomic_path(path, "video") as tmp:
            writer.open(tmp)
            obs, _ = env.reset(seed=seed)
            writer.add(env.render())
            for step in range(limit):
                obs, r, term, trunc, _ = env.step(act_fn(obs))
                total += float(r)
                if keep(step + 1):
                    writer.add(env.render())
                if bar is not None:
                    bar.update(1)
                if term or trunc:
                    break
            writer.close()
    finally:
        if bar is not None:
            bar.close()
        env.close()
    return path, total


class _Writer:
    """An imageio writer opened lazily on a temporary path (see :func:`record_video`)."""

    def __init__(self, fmt: str, fps: int, step: int = 1):
        self.fmt, self.fps, self.step = fmt, fps, step
        self._w = None

    def open(self, tmp: Path) -> None:
        import imageio.v2 as imageio

        if self.fmt == "mp4":
            self._w = imageio.get_writer(tmp, format="FFMPEG", fps=self.fps, codec="libx264", quality=7,
                                         macro_block_size=8, ffmpeg_log_level="error")
        else:
            self._w = imageio.get_writer(tmp, format="GIF", mode="I", duration=1000 * self.step / self.fps, loop=0)

    def add(self, frame: np.ndarray) -> None:
        self._w.append_data(frame if self.fmt == "mp4" else frame[::2, ::2])

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_writer(path: Path, fps: int, limit: int) -> tuple[_Writer, Path, Callable[[int], bool]]:
    """(writer, path to write, which frame indices to keep): MP4 when possible, else a GIF fallback."""
    if path.suffix.lower() != ".gif":
        try:
            import imageio.v2 as imageio

            probe = imageio.get_writer(path.with_name(f".{path.stem}.probe.mp4"), format="FFMPEG", fps=fps)
            probe.close()
            path.with_name(f".{path.stem}.probe.mp4").unlink(missing_ok=True)
            return _Writer("mp4", fps), path, lambda i: True
        except Exception as e:  # noqa: BLE001 - no ffmpeg backend: fall back to GIF
            path.with_name(f".{path.stem}.probe.mp4").unlink(missing_ok=True)
            gif = path.with_suffix(".gif")
            print(f"note: cannot write MP4 ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                  f"writing {gif} instead (pip install imageio-ffmpeg for MP4)")
            path = gif
    step = max(1, (limit + 1) // 300)  # keep GIFs small: at most ~300 frames
    return _Writer("gif", fps, step), path, lambda i: i % step == 0


def visualize(env_cfg, act_fn, seed: int, episodes: int = 1) -> None:
    """Live MuJoCo viewer; raises RuntimeError with the alternative when there is no display."""
    if not has_display():
        raise RuntimeError("--visualize needs a display, and none was found (DISPLAY is not set). "
                           "Record a video instead: --video out.mp4")
    env = make_env(env_cfg, render_mode="human")
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            while True:
                obs, _, term, trunc, _ = env.step(act_fn(obs))
                if term or trunc:
                    break
    finally:
        env.close()

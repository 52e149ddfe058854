"""Headless video of a policy (MuJoCo's EGL backend when there is no display) and a live viewer."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np


def ensure_headless_gl() -> None:
    """Pick MuJoCo's EGL backend when no display exists (must run before MuJoCo renders)."""
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def render_episode(env_cfg, act_fn: Callable[[np.ndarray], np.ndarray], seed: int, max_steps: int | None = None,
                   width: int = 480, height: int = 360, progress: bool = False) -> tuple[list[np.ndarray], float]:
    """Roll out ``act_fn`` for one episode and return (RGB frames (H, W, 3) uint8, return)."""
    ensure_headless_gl()
    from envs.builder import make_env

    env = make_env(env_cfg, render_mode="rgb_array", width=width, height=height)
    try:
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
        total, steps = 0.0, 0
        limit = max_steps or env_cfg.max_episode_steps
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=limit, desc="render", unit="frame", leave=False)
        while steps < limit:
            obs, r, term, trunc, _ = env.step(act_fn(obs))
            frames.append(env.render())
            total += float(r)
            steps += 1
            if bar is not None:
                bar.update(1)
            if term or trunc:
                break
        if bar is not None:
            bar.close()
    finally:
        env.close()
    return frames, total


def write_video(frames: list[np.ndarray], path: str | os.PathLike, fps: int = 30) -> Path:
    """Write MP4 (H.264 via imageio-ffmpeg); fall back to a GIF next to it if MP4 cannot be written.

    Returns the path actually written.
    """
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() != ".gif":
        try:
            with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=8,
                                    ffmpeg_log_level="error") as w:
                for f in frames:
                    w.append_data(f)
            return path
        except Exception as e:  # noqa: BLE001 - no ffmpeg backend: fall back to GIF
            path.unlink(missing_ok=True)
            gif = path.with_suffix(".gif")
            print(f"note: cannot write MP4 ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                  f"writing {gif} instead (pip install imageio-ffmpeg for MP4)")
            path = gif
    step = max(1, len(frames) // 300)  # keep GIFs small: at most ~300 frames
    imageio.mimsave(path, [f[::2, ::2] for f in frames[::step]], duration=1000 * step / fps, loop=0)
    return path


def record_video(env_cfg, act_fn, path: str | os.PathLike, seed: int, max_steps: int | None = None,
                 fps: int | None = None, progress: bool = False) -> tuple[Path, float]:
    """Render one episode of ``act_fn`` to ``path``; returns (file written, episode return)."""
    frames, ret = render_episode(env_cfg, act_fn, seed, max_steps, progress=progress)
    return write_video(frames, path, fps or 30), ret


def visualize(env_cfg, act_fn, seed: int, episodes: int = 1) -> None:
    """Live MuJoCo viewer; raises RuntimeError with the alternative when there is no display."""
    if not has_display():
        raise RuntimeError("--visualize needs a display, and none was found (DISPLAY is not set). "
                           "Record a video instead: --video out.mp4")
    from envs.builder import make_env

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

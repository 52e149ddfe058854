"""Progress bars only where someone watches them: on a terminal, never in logs, CI output or batch jobs."""
from __future__ import annotations

import sys
from typing import Any


def interactive() -> bool:
    """True when stderr (where tqdm draws) is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_bar(enabled: bool = True, **kwargs: Any):
    """A tqdm bar, or None when disabled or when stderr is not a terminal (no carriage-return frames in files)."""
    if not enabled or not interactive():
        return None
    from tqdm import tqdm

    return tqdm(**kwargs)

"""Learning-curve plots from log.txt files (used by run.py and tools/plot_log.py)."""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from util.logfile import read_log
from util.fsio import atomic_save


def group_label(path: str | os.PathLike) -> str:
    """Runs are grouped by their folder name with a trailing ``_seed<N>`` / ``_s<N>`` removed."""
    name = Path(path).resolve().parent.name
    for sep in ("_seed", "_s"):
        head, _, tail = name.rpartition(sep)
        if head and tail.isdigit():
            return head
    return name


def plot_runs(logs: Sequence[str | os.PathLike], x: str = "Samples", y: str = "Test_Return", title: str = "",
              out: str | os.PathLike = "curve.png", expert_return: float | None = None,
              labels: Sequence[str] | None = None, references: dict[str, float] | None = None) -> Path:
    """Plot ``y`` against ``x``; runs sharing a label become a mean line with a ±std band.

    ``labels`` gives one group label per log (default: :func:`group_label`). ``expert_return`` and
    ``references`` ({name: value}) draw horizontal reference lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for i, path in enumerate(logs):
        rows = read_log(path)
        if not rows:
            raise ValueError(f"{path} has no data rows yet")
        for col in (x, y):
            if col not in rows[0]:
                raise ValueError(f"column '{col}' not in {path}; columns: {', '.join(rows[0])}")
        xs = np.array([r[x] for r in rows], float)
        ys = np.array([r[y] for r in rows], float)
        measured = np.isfinite(ys)            # rows without a measurement (NaN: no evaluation that iteration)
        xs, ys = xs[measured], ys[measured]
        if len(ys) == 0:
            raise ValueError(f"{path} has no {y} values yet (every row is NaN)")
        groups[labels[i] if labels else group_label(path)].append((xs, ys))

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for label, runs in groups.items():
        if len(runs) == 1:
            xs, ys = runs[0]
            ax.plot(xs, ys, marker="o", ms=3, label=label)
            continue
        grid = np.unique(np.concatenate([r[0] for r in runs]))
        lo, hi = max(r[0].min() for r in runs), min(r[0].max() for r in runs)
        grid = grid[(grid >= lo) & (grid <= hi)]
        if len(grid) == 0:
            grid = runs[0][0]
        ys = np.stack([np.interp(grid, r[0], r[1]) for r in runs])
        mean, std = ys.mean(0), ys.std(0)
        line, = ax.plot(grid, mean, label=f"{label} (n={len(runs)})")
        ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    refs = dict(references or {})
    if expert_return is not None:
        refs = {"expert": expert_return, **refs}
    for i, (name, val) in enumerate(refs.items()):
        ax.axhline(val, ls="--", lw=1, color=["k", "gray", "tab:brown", "tab:pink"][i % 4], label=f"{name} ({val:.0f})")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel(y.replace("_", " "))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    try:
        atomic_save(out, fig.savefig, "plot")  # a kill never leaves half an image
    finally:
        plt.close(fig)
    return out

"""Per-iteration text log (``log.txt``) read by ``tools/plot_log.py``.

Format: a header line of tab-separated column names, then one tab-separated row per iteration.
Columns always include Iteration, Samples, Wall_Time, Train_Return, Test_Return.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from util.fsio import atomic_write
from util.logfile import read_log  # noqa: F401 - the log's reader lives beside its format


def tensorboard_writer(log_dir: str | os.PathLike):
    """A TensorBoard SummaryWriter, or None when tensorboard is not installed (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 - ImportError, or a broken optional install: train without it
        return None
    return SummaryWriter(log_dir=str(log_dir))


class TextLogger:
    """Write ``log.txt`` rows; on resume, keeps the rows up to the resumed iteration.

    The whole file is replaced atomically at every row (logs hold at most a few hundred rows), so a kill
    at any instant leaves the previous or the new version, never a cut row. If TensorBoard is installed,
    every numeric column is also written as a scalar (x = Samples) to event files beside ``log.txt``.
    """

    def __init__(self, path: str | os.PathLike, columns: list[str], resume_iteration: int | None = None,
                 echo: bool = True, tensorboard: bool = True):
        self.path = Path(path)
        self.columns = list(columns)
        self.echo = echo
        self.rows: list[list[str]] = []
        if resume_iteration is not None and self.path.is_file():
            self.rows = [[_fmt(r.get(c, float("nan"))) for c in self.columns]
                         for r in read_log(self.path) if r.get("Iteration", 0) <= resume_iteration]
        self._flush()
        self.tb = tensorboard_writer(self.path.parent) if tensorboard else None

    def _flush(self) -> None:
        text = "".join("\t".join(r) + "\n" for r in [self.columns, *self.rows])
        atomic_write(self.path, text, "log file")

    def log(self, row: dict[str, Any]) -> None:
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"unknown log columns {sorted(unknown)}")
        self.rows.append([_fmt(row.get(c, float("nan"))) for c in self.columns])
        self._flush()
        if self.tb is not None:
            step = int(row.get("Samples", row.get("Iteration", 0)))
            for k, v in row.items():
                if k not in ("Iteration", "Samples") and isinstance(v, (int, float)) and not math.isnan(float(v)):
                    self.tb.add_scalar(k, float(v), step)
            self.tb.flush()
        if self.echo:
            print(" | ".join(f"{c} {_fmt(row[c])}" for c in self.columns if c in row), flush=True)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.6g}" if abs(v) < 1e5 else f"{v:.1f}"
    return str(v)

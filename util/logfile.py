"""Reading ``log.txt``: a header of tab-separated column names, then one tab-separated row per iteration
(written by :class:`learning.logger.TextLogger`, read by the plots and the tests)."""
from __future__ import annotations

import os
from pathlib import Path


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """Parse a log.txt into a list of {column: float} rows."""
    path = Path(path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a log.txt (binary or not UTF-8 text). Pass the log.txt of a run.") from None
    if not lines:
        raise ValueError(f"log file {path} is empty")
    if "\t" not in lines[0] or "\x00" in lines[0]:
        raise ValueError(f"{path} is not a log.txt (no tab-separated header). Pass the log.txt of a run.")
    header = lines[0].split("\t")
    rows = []
    for ln in lines[1:]:
        vals = ln.split("\t")
        if len(vals) != len(header):
            continue  # a row cut off by an interruption
        row = {}
        for k, v in zip(header, vals, strict=True):
            try:
                row[k] = float(v)
            except ValueError:
                row[k] = float("nan")
        rows.append(row)
    return rows

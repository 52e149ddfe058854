"""Benchmark tables kept in the docs: a new run's rows replace the rows of the same keys, the others stay.

Used by ``tools/benchmark_a1.py`` (rows keyed by task) and ``tools/benchmark_a2.py`` (rows keyed by agent and task),
so that benchmarking some rows again never drops the others, and each row says which command measured it.
"""
from __future__ import annotations

import re


def row_key(row: str, key_columns: int = 1) -> tuple[str, ...]:
    """The first ``key_columns`` cells of a Markdown table row."""
    return tuple(c.strip() for c in row.split("|")[1:1 + key_columns])


def merge_table_rows(old: str, new: str, key_columns: int = 1) -> str:
    """``new``'s rows replace the rows of the same keys in ``old``; the other rows are kept, in place, and new keys
    come last.

    Raises ValueError when the two tables have different columns (benchmark every variant to update a doc)."""
    old_lines, new_lines = old.strip().splitlines(), new.strip().splitlines()
    if len(old_lines) < 2 or old_lines[:2] != new_lines[:2]:
        if not old.strip():
            return new
        raise ValueError("the table in the doc has other columns than this run's; run every variant "
                         "(leave --variants out) to update the docs")
    rows = {row_key(r, key_columns): r for r in new_lines[2:]}
    merged = [rows.pop(row_key(r, key_columns), r) for r in old_lines[2:]]
    return "\n".join(old_lines[:2] + merged + list(rows.values()))


PROVENANCE = re.compile(r"^- `(?P<command>[^`]+)` \((?P<date>[^)]+)\): (?P<rows>.+)$")
SINGLE = re.compile(r"^Measured with `(?P<command>[^`]+)` \((?P<date>[^)]+)\)\.$")
EVERY_ROW = "every row"


def merge_measured_block(old: str, table: str, command: str, date: str, key_columns: int) -> str:
    """The text between a doc's markers after a run of ``command`` measured ``table``'s rows: the table merged
    (:func:`merge_table_rows`) and, above it, which command measured which rows (one line when one run measured every
    row; else one bullet per command, newest last, each row by the last command that names it)."""
    lines = old.strip().splitlines()
    old_table = "\n".join(ln for ln in lines if ln.startswith("|"))
    merged = merge_table_rows(old_table, table, key_columns)
    all_keys = [row_key(r, key_columns) for r in merged.splitlines()[2:]]
    new_keys = [row_key(r, key_columns) for r in table.strip().splitlines()[2:]]
    if set(new_keys) >= set(all_keys):
        return f"Measured with `{command}` ({date}).\n\n{merged}\n"
    sources = []                                         # (command, date, keys or None for every row)
    for ln in lines:
        if m := SINGLE.match(ln):
            sources.append((m["command"], m["date"], None))
        elif m := PROVENANCE.match(ln):
            keys = None if m["rows"] == EVERY_ROW else [tuple(k.split(" ")) for k in m["rows"].split(", ")]
            sources.append((m["command"], m["date"], keys))
    kept, claimed = [(command, date, new_keys)], set(new_keys)      # newest first: a row is its last command's
    for cmd, day, keys in reversed(sources):
        left = [k for k in (all_keys if keys is None else keys) if k not in claimed]
        if left:
            kept.insert(0, (cmd, day, None if keys is None else left))
        claimed.update(all_keys if keys is None else keys)
    bullets = [f"- `{cmd}` ({day}): " + (EVERY_ROW if keys is None else ", ".join(" ".join(k) for k in keys))
               for cmd, day, keys in kept]
    return ("Measured with (each row by the last command that lists it):\n" + "\n".join(bullets)
            + f"\n\n{merged}\n")

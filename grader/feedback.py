"""What of a child's own words may reach a student's feedback: a short, sanitized, whitelisted excerpt.

A child's error report (``error.json``) is untrusted text. Performance checks, and unit checks that run
reference methods (``run_unit``'s ``tested``, the core scope), have reference code of other TODOs in their
workspace, so there only a builtin exception name and a line number in one of the student's files are shown;
unit checks whose workspace holds no secret also show the function name and a shortened, printable excerpt of
the message.
"""
from __future__ import annotations

import builtins
import json
import re

from learning.agents import ASSIGNMENTS, todo_manifest

STUDENT_FILES = tuple(spec.file_name for a in ASSIGNMENTS for spec in todo_manifest(None, a).values())
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
_EXTRA_TYPES = {"LinAlgError"}


def sanitize(text: str, limit: int = 160) -> str:
    """Printable, single-line, at most ``limit`` characters."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exception_name(name: object) -> str:
    if isinstance(name, str) and (name in _EXTRA_TYPES or (
            name in vars(builtins) and isinstance(vars(builtins)[name], type)
            and issubclass(vars(builtins)[name], BaseException))):
        return name
    return "an exception"


def describe_error(raw: bytes | None, show_message: bool, line_counts: dict[str, int] | None = None) -> str:
    """One line about the exception a child reported (``raw`` is its error.json). With ``line_counts`` (student file
    name → its number of lines), a line number is shown only if that line exists in the submitted file: code the
    student compiles at made-up line numbers must not turn the number into a channel out of the check."""
    try:
        rec = json.loads((raw or b"").decode("utf-8", "replace"))
        if not isinstance(rec, dict):
            raise ValueError
    except ValueError:
        return "your code raised an exception"
    kind = _exception_name(rec.get("type"))
    where = ""
    frames = rec.get("frames")
    if isinstance(frames, list) and frames:
        last = frames[-1]
        if (isinstance(last, list) and len(last) == 3 and last[0] in STUDENT_FILES
                and isinstance(last[1], int) and 0 < last[1] < 100_000):
            func = last[2] if show_message and isinstance(last[2], str) and _IDENT.match(last[2]) else ""
            real = line_counts is None or last[1] <= line_counts.get(last[0], 0)
            where = (f" at learning/{last[0]}, line {last[1]}" if real else f" in learning/{last[0]}") + \
                (f", in {func}" if func else "")
    if kind == "SystemExit":
        return f"your code called sys.exit{where}"
    text = f"your code raised {kind}{where}"
    if show_message:
        msg = sanitize(rec.get("message", ""), 160)
        if msg:
            text += f": {msg}"
    else:
        text += (" (messages are not shown where the grader's reference code runs beside yours: the performance "
                 "checks and the unit checks that run reference methods; a local run shows them)")
    return text

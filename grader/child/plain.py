"""What the student's code gave, as plain data for the parent: a number (or None), an exception's record."""
import json
import os
import traceback


def as_float(x):
    """float(x), or None if x is not a number."""
    try:
        return float(x)
    except Exception:  # noqa: BLE001 - student values may be anything
        return None


def error_record(e: BaseException) -> str:
    """JSON: exception type, message and the frames in the student's files (the parent sanitizes it)."""
    frames = [(os.path.basename(fs.filename), fs.lineno, fs.name) for fs in traceback.extract_tb(e.__traceback__)
              if fs.filename.endswith("_agent.py")]
    if isinstance(e, SyntaxError) and e.filename and e.filename.endswith("_agent.py"):
        frames.append((os.path.basename(e.filename), e.lineno or 0, "<module>"))
    return json.dumps({"type": type(e).__name__, "message": str(e)[:1000], "frames": frames[-3:]})

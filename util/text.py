"""Short, safe renderings of user-supplied values for one-line error messages."""
from __future__ import annotations

from typing import Any

MAX_QUOTE = 60


def short(value: Any, limit: int = MAX_QUOTE) -> str:
    """``repr`` of a value (``str`` of an exception), cut to ``limit`` characters with an ellipsis, on one line."""
    return clip(str(value) if isinstance(value, BaseException) else repr(value), limit)


def clip(text: str, limit: int = 200) -> str:
    """The first line of ``text``, cut to ``limit`` characters with an ellipsis."""
    text = text.splitlines()[0] if text.strip() else text
    return text if len(text) <= limit else text[: limit - 1] + "…"

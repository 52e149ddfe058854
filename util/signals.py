"""Signals that act only at step boundaries.

Inside :class:`StepBoundaryInterrupts`, SIGINT and SIGTERM only set a flag; the training loop calls
:meth:`StepBoundaryInterrupts.check` between two steps, which raises ``KeyboardInterrupt`` there, so the
state saved on interruption is exactly the state an uninterrupted run has at that step. A second signal
raises at once (an escape hatch if a step hangs); nothing is saved then.
"""
from __future__ import annotations

import signal
import threading
from typing import Any


class StepBoundaryInterrupts:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal arrived since the last step boundary."""
        if self.requested:
            raise KeyboardInterrupt

    def __enter__(self) -> "StepBoundaryInterrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

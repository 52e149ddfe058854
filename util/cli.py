"""Turn the project's user errors into one clear message and a non-zero exit."""
from __future__ import annotations

import sys
from typing import Callable

from util.errors import UserError
from util.text import clip


def user_error_types() -> tuple[type[BaseException], ...]:
    """The project's user errors all derive from ``util.errors.UserError`` (ConfigError, CheckpointError,
    DemoError, OutputPathError, FolderBusyError, RunExistsError, ...); OS errors on user paths are user errors too.
    Plain ValueErrors stay one line as well: libraries' argument checks (gymnasium, numpy parsing a value the user
    gave) raise them, and files of earlier releases raise ValueError for their own checks."""
    return (UserError, ValueError, OSError)


def error_line(e: BaseException) -> str:
    """One line for a user error; OS errors name the path and the reason."""
    if isinstance(e, OSError) and e.filename is not None:
        text = f"cannot use {clip(str(e.filename), 120)}: {e.strerror or type(e).__name__}."
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())


def _graceful_signals() -> None:
    """SIGTERM (e.g. a job scheduler or `kill`) and SIGINT behave like Ctrl-C: the run saves and stops.

    SIGINT is re-armed too, because shells start background jobs with SIGINT ignored.
    """
    def interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    _set_handler(interrupt)


def _set_handler(handler: Callable[..., object] | int) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):  # not in the main thread / unsupported platform
            pass


def run_main(main: Callable[[], int]) -> int:
    """Call ``main``; print ``error: ...`` for user errors (exit 2) and exit 130 on Ctrl-C or SIGTERM."""
    import signal

    _graceful_signals()
    try:
        try:
            return int(main() or 0)
        finally:
            # the run has ended (its state is saved): a signal while the process exits (atexit callbacks, torch's
            # finalizers) changes nothing, instead of raising KeyboardInterrupt into them and printing a traceback
            _set_handler(signal.SIG_IGN)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except user_error_types() as e:
        print(f"error: {error_line(e)}", file=sys.stderr)
        return 2

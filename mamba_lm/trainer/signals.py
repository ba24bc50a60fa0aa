"""Graceful stop: SIGTERM (and a first Ctrl-C) ask the loop to save a checkpoint and stop.

The handler only sets a flag; the loop looks at it between steps, so a checkpoint is never
written from inside a signal handler or in the middle of an optimizer step. A second Ctrl-C
interrupts at once (KeyboardInterrupt), as usual. After such a stop the training command exits
with ``exit_status``: 128 + the signal's number (143 for SIGTERM, 130 for Ctrl-C), the shell's
convention, so a job script tells a stopped run (resume it) from a finished one (status 0).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """Installs the handlers while active (``with StopRequest() as stop: ... if stop.requested: ...``)."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


def exit_status(signal_name: str | None) -> int:
    """The exit status of a run that a signal stopped: 128 + its number; 0 for ``None`` (finished).

    A name that is not a signal's (the stop reached this process from another one) counts as SIGTERM.
    """
    if signal_name is None:
        return 0
    number = signal.Signals[signal_name] if signal_name in signal.Signals.__members__ else signal.SIGTERM
    return 128 + int(number)

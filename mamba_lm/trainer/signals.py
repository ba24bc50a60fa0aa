"""Graceful stop: SIGTERM (and a first Ctrl-C) ask the loop to save a checkpoint and exit cleanly.

The handler only sets a flag; the loop looks at it between steps, so a checkpoint is never
written from inside a signal handler or in the middle of an optimizer step. A second Ctrl-C
interrupts at once (KeyboardInterrupt), as usual.
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

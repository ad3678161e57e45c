"""Every catchable "stop" signal is Ctrl-C: SIGINT (Ctrl-C), SIGTERM (`kill`, a job scheduler, a
container stop, a notebook runtime) and SIGHUP (a closed terminal), where the platform has them.

During training a signal sets a flag checked between steps (`StopFlag`), so the loop saves a
checkpoint at the current step and prints the resume command; elsewhere it raises `Stopped` (a
`KeyboardInterrupt`). The exit status is 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM,
129 for SIGHUP), as a shell reports it. Light: imports nothing heavy.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable

from .profiles import PAUSE_ENV

STOP_SIGNALS: tuple[int, ...] = tuple(getattr(signal, name) for name in
                                      ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """A stop signal turned into KeyboardInterrupt; `signum` says which, `str()` the message."""

    def __init__(self, message: str = "", signum: int = signal.SIGINT) -> None:
        super().__init__(*([message] if message else []))
        self.signum = signum


def signal_of(err: BaseException) -> int:
    """The signal behind an interruption (a plain KeyboardInterrupt is Ctrl-C)."""
    return getattr(err, "signum", signal.SIGINT)


def exit_status(signum: int) -> int:
    """128 + the signal number: what a shell reports for a process the signal stopped."""
    return 128 + signum


def by_signal(signum: int) -> str:
    """' by SIGTERM' for a signal other than Ctrl-C, '' for Ctrl-C (the usual case)."""
    return "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"


def install(handler: Callable) -> dict[int, object]:
    """Set `handler` for every stop signal (main thread only); returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def restore(previous: dict[int, object]) -> None:
    """Put back the handlers `install` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def ignore_all() -> None:
    """Ignore further stop signals (main thread only), so they cannot break an exit."""
    install(signal.SIG_IGN)


def raise_stopped(signum: int, frame) -> None:
    """A handler: one stop signal stops the command (`Stopped`); later ones are ignored, so a
    second press cannot break the exit (atexit callbacks, the message being printed)."""
    ignore_all()
    raise Stopped(signum=signum)


class StopFlag:
    """Turns every stop signal into a flag checked between steps, so a checkpoint is never half a
    step; a second signal stops at once."""

    def __init__(self) -> None:
        self.raised, self.signum, self._previous = False, signal.SIGINT, {}

    def __enter__(self) -> StopFlag:
        self._previous = install(self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.raised:  # a second signal stops at once
            raise Stopped(signum=signum)
        self.raised, self.signum = True, signum

    def __exit__(self, *exc) -> None:
        restore(self._previous)


def pause_for_tests(step: int, stop: StopFlag) -> None:
    """Testing hook: with `D2L_PAUSE_AT_STEP=N`, print a marker line after step N and wait for
    a signal there, so interruption tests kill or interrupt a run at a known step."""
    if os.environ.get(PAUSE_ENV) != str(step):
        return
    print(f"paused at step {step}", flush=True)
    while not stop.raised:  # SIGKILL ends the process; a stop signal sets the flag and saves
        time.sleep(0.02)

"""Ctrl-C as one clean stop: a process-wide flag that environment workers check before restarting.

A terminal sends SIGINT to the whole process group, so the Java simulators (ScienceWorld,
TextWorldExpress) die at the same moment Python gets KeyboardInterrupt. Their worker threads then
see a dead JVM and, without this flag, would restart and replay it (actrl/envs/jvm.py); with it
they stop at once with `EnvInterruptedError`, and the command prints one line and exits 130
(actrl/cli.py). Resume needs nothing from here: every stage writes its output as it goes.

    install()       # in the main thread, before any work (actrl.cli.main does it)
    interrupted()   # True after the first Ctrl-C
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_INTERRUPTED = threading.Event()


def interrupted() -> bool:
    """True once SIGINT reached this process (or `mark_interrupted` was called)."""
    return _INTERRUPTED.is_set()


def mark_interrupted() -> None:
    _INTERRUPTED.set()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def install() -> None:
    """SIGINT sets the flag, then raises KeyboardInterrupt in the main thread as Python's default does."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)


__all__ = ["install", "interrupted", "mark_interrupted"]

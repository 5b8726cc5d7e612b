"""Finding and killing the real Java processes of an environment (no mocks): by PID, through /proc."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields after "pid (comm)": state, ppid, pgrp, ...


def alive(pid: int) -> bool:
    """True while the process runs (a zombie has already closed its sockets: dead)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def java_children(parent: int) -> list[int]:
    """PIDs of the live `java` processes whose parent is `parent`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if fields and comm == "java" and int(fields[1]) == parent and fields[0] not in ("Z", "X"):
            out.append(int(entry.name))
    return sorted(out)


def kill_jvm(pid: int, timeout: float = 10.0) -> None:
    """SIGKILL `pid` and wait until it is dead."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + timeout
    while alive(pid):
        assert time.time() < deadline, f"java process {pid} survived SIGKILL"
        time.sleep(0.05)

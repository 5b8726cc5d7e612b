"""Java simulators behind py4j (ScienceWorld, TextWorldExpress): start, restart on death, close safely.

Both packages wrap one JVM per environment object. What can go wrong, and what this module does:
1. The JVM dies mid-episode (killed, out of memory): py4j raises `Py4JError` ("An error occurred
   while calling o2.step") on the call in flight and `Py4JNetworkError` / `ConnectionRefusedError`
   on the next ones. `JavaServer.call` treats any py4j or socket error that is not a Java-side
   exception (`Py4JJavaError`) as a death: the old process is stopped, a fresh one started, the
   adapter's `restore` replays the episode, and the call runs once more. A second death in the
   same call is one `EnvUnavailableError`. `restarts` counts the restarts.
2. Ctrl-C: the terminal's SIGINT kills the JVMs of the process group too; after it
   (`actrl.interrupts.interrupted()`) a death is an `EnvInterruptedError`, never a restart.
3. A Java that starts and dies: one `EnvUnavailableError`, and the half-built package object is
   disarmed so its `__del__` (which calls `close()` on a missing `_gateway`) stays silent.
4. py4j logs every failed call with a traceback (its own logger, and the root logger through
   `logging.exception`); a dead JVM is handled here, so its logger is quieted to CRITICAL unless
   the user set a level for it, and its root-logger records are filtered out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from typing import Any, TypeVar

from actrl.envs.base import EnvError, EnvUnavailableError
from actrl.interrupts import interrupted

R = TypeVar("R")

_PY4J_LOG = logging.getLogger("py4j")
if _PY4J_LOG.level == logging.NOTSET:
    _PY4J_LOG.setLevel(logging.CRITICAL)


class _NoPy4JTracebacks(logging.Filter):
    """py4j also logs through the root logger (`logging.exception` in GatewayClient.send_command):
    one traceback per failed call, hundreds on Ctrl-C; this drops those records (choice 4)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}py4j{os.sep}" not in record.pathname


if not any(isinstance(f, _NoPy4JTracebacks) for f in logging.getLogger().filters):
    logging.getLogger().addFilter(_NoPy4JTracebacks())


class EnvInterruptedError(EnvError):
    """The simulator stopped because the user interrupted the command (Ctrl-C)."""


def one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def is_jvm_death(e: BaseException) -> bool:
    """True for errors of a dead or unreachable JVM; False for an exception thrown by Java code."""
    from py4j.protocol import Py4JError, Py4JJavaError

    return isinstance(e, (Py4JError, OSError)) and not isinstance(e, Py4JJavaError)


def java_process(package: Any) -> Any:
    """The `subprocess.Popen` of a package object's JVM, or None."""
    return getattr(getattr(package, "_gateway", None), "java_process", None)


def shutdown(package: Any) -> None:
    """Close a package object whatever state it is in, and make sure its JVM is gone (choice 3)."""
    package.close = lambda: None  # its __del__ calls close(); once (here) is enough
    gateway = getattr(package, "_gateway", None)
    if gateway is None:
        return
    proc = java_process(package)
    with contextlib.suppress(Exception):  # a dead JVM cannot be told to shut down
        gateway.shutdown()
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - a JVM that ignores SIGTERM is killed
            proc.kill()
            proc.wait()


def construct(cls: type, env_name: str, **kwargs: Any) -> Any:
    """`cls(**kwargs)` for a package class that launches a JVM; a failed launch is one clean error."""
    package = cls.__new__(cls)
    try:
        package.__init__(**kwargs)
    except Exception as e:  # py4j launch errors vary: missing jar, JVM exiting at start
        shutdown(package)
        java = shutil.which("java") or "java"
        raise EnvUnavailableError(
            f"{env_name}: the Java server did not start ({one_line(e)}); check that `{java} -version` works"
        ) from None
    return package


class JavaServer:
    """One package object (one JVM), started on first use and restarted when it dies (choice 1)."""

    def __init__(self, env_name: str, launch: Callable[[], Any]):
        """launch: returns a started package object (through `construct`)."""
        self.env_name = env_name
        self._launch = launch
        self.package: Any = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The running JVM's process id (None before the first call)."""
        proc = java_process(self.package)
        return proc.pid if proc is not None else None

    def get(self) -> Any:
        if self.package is None:
            self.package = self._launch()
        return self.package

    def stop(self) -> None:
        package, self.package = self.package, None
        if package is not None:
            shutdown(package)

    def _dead(self, e: Exception) -> None:
        """Stop the dead JVM; raise when this death must not be answered with a restart."""
        if not is_jvm_death(e):
            raise e
        self.stop()
        if interrupted():
            raise EnvInterruptedError(f"{self.env_name}: interrupted") from None

    def call(self, fn: Callable[[Any], R], restore: Callable[[], None]) -> R:
        """fn(package); if its JVM died, restart it, `restore()` the episode, and run fn once more."""
        try:
            return fn(self.get())
        except Exception as e:  # noqa: BLE001 - non-death errors are re-raised by _dead
            self._dead(e)
        self.restarts += 1
        try:
            restore()
            return fn(self.get())
        except Exception as e:  # noqa: BLE001
            self._dead(e)
            raise EnvUnavailableError(
                f"{self.env_name}: the Java server died again right after a restart ({one_line(e)}); "
                "check memory and the Java installation"
            ) from None


class JavaBacked:
    """What a JVM-backed adapter exposes about its server (`self._java`, a JavaServer)."""

    _java: JavaServer

    @property
    def restarts(self) -> int:
        """Java processes restarted after a crash (choice 1)."""
        return self._java.restarts

    @property
    def pid(self) -> int | None:
        """The Java server's process id (None until the first call)."""
        return self._java.pid

    def start(self) -> None:
        """Start the Java server now (it otherwise starts at the first reset)."""
        self._java.get()


__all__ = ["EnvInterruptedError", "JavaBacked", "JavaServer", "construct", "is_jvm_death", "java_process", "shutdown"]

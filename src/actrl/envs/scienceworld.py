"""ScienceWorld (Wang et al., 2022) behind the `TextEnv` protocol: 30 science tasks, gold paths.

The ACT paper's third benchmark; its expert trajectories D_expert are the simulator's gold action
sequences. Used by `actrl collect --env scienceworld ...`, `actrl eval agent --env scienceworld`
and the demo; `python bench/env_step.py` measures the step speed.

Choices (the paper and the package leave these open):
1. Fast step path: `step` calls the Java server's own `step` and reads score and completion
   (3 py4j calls). The package's `env.step` also builds ~400 valid actions, `look`, `inventory`
   and the task description on every call; admissible actions are computed only in
   `admissible_actions()` (the same `get_valid_action_object_combinations` list `env.step` returns).
2. Reset: `load(task, variation, generateGoldPath=True)` then the first move "look around", as the
   package's own `reset()` does; `Observation.text` is that look-around text. Every reset reloads, so
   any task can follow any other.
3. Determinism: the simulator seeds its random generator with the variation, but lists objects
   (and draws parts of the gold path) in hash-set order, which follows the JVM's identity hash
   codes and so changes from one load to the next (e.g. the order of the paint cups in the art
   studio, the flower pot a gold path uses). The Java server is started with
   `-XX:hashCode=2` (constant identity hashes; passed through JAVA_TOOL_OPTIONS while it starts,
   see `deterministic_jvm`), which makes loads of a variation identical: the same actions give the
   same observations (checked on two variations of all 30 tasks), and the gold path is the same
   too except in a few tasks (test-conductivity wires its circuit either way), so
   `expert_actions()` is the path drawn at this reset. Step speed is unchanged.
4. Scores: ScienceWorld reports -100 when the agent ruins the task (e.g. focuses on the wrong
   object). We report `score = max(0, raw)`, end the episode, and keep `info["raw_score"]` and
   `info["failed"]`. `won` is the simulator's task-completed flag (score 100 on every gold path).
5. `valid` is False when the parser rejected the text ("No known action matches that input.",
   "Unknown action. ..."). An "Ambiguous request" prompt counts as valid: the command was understood
   and the simulator waits for a number (the gold paths answer these with "0"); `info["ambiguous"]`
   marks it.
6. Step limit: counts agent actions (not simulator ticks: "wait" is 10 ticks) and is
   max(max_steps, len(gold) + GOLD_MARGIN), so a limit never cuts a gold path. Default 100, the
   package's own `envStepLimit`.
7. A dead Java process is restarted once per call (actrl/envs/jvm.py): a fresh server, the same
   task reloaded, the actions taken so far replayed, then the call retried; `restarts` counts them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

from actrl.envs.base import (
    EnvError,
    Observation,
    StepResult,
    Task,
    TextEnv,
)
from actrl.envs.jvm import JavaBacked, JavaServer, construct, shutdown
from actrl.envs.util import GOLD_MARGIN, java_ints, require_java, unknown_task

R = TypeVar("R")
INVALID_PREFIXES = ("No known action matches that input.", "Unknown action.")
AMBIGUOUS_PREFIX = "Ambiguous request"

# task name -> (train, dev, test) variation lists; the split rule lives in the Java server, so it is
# asked once per task and process (loading a task without a gold path takes ~0.1 s).
_SPLITS: dict[str, dict[str, list[int]]] = {}
_SPLITS_LOCK = threading.Lock()

DETERMINISTIC_JVM_OPTIONS = "-XX:+IgnoreUnrecognizedVMOptions -XX:+UnlockExperimentalVMOptions -XX:hashCode=2"
_LAUNCH_LOCK = threading.Lock()


@contextlib.contextmanager
def deterministic_jvm() -> Iterator[None]:
    """Java servers launched inside this block use constant identity hash codes (choice 3).

    Use it around `scienceworld.ScienceWorldEnv(...)` to get the adapter's exact worlds from the
    package directly (the fast-path test and bench/env_step.py do).
    """
    with _LAUNCH_LOCK:
        old = os.environ.get("JAVA_TOOL_OPTIONS")
        os.environ["JAVA_TOOL_OPTIONS"] = f"{old} {DETERMINISTIC_JVM_OPTIONS}" if old else DETERMINISTIC_JVM_OPTIONS
        try:
            yield
        finally:
            if old is None:
                del os.environ["JAVA_TOOL_OPTIONS"]
            else:
                os.environ["JAVA_TOOL_OPTIONS"] = old


class ScienceWorldEnv(JavaBacked, TextEnv):
    """ScienceWorld tasks; `Task.name` is the task name ("boil"), `Task.variation` its variation index."""

    name: ClassVar[str] = "scienceworld"
    default_max_steps: ClassVar[int] = 100  # the package's envStepLimit default
    cheap_admissible: ClassVar[bool] = False  # ~400 actions per state: 10x a plain step

    def __init__(self, max_steps: int | None = None, simplifications: str = ""):
        """max_steps: step limit (None: 100), raised to len(gold) + 10 when the gold path is longer;
        simplifications: ScienceWorld's comma-separated simplification string ("easy", "openDoors", ...).
        """
        require_java(self.name)
        if max_steps is not None and max_steps < 1:
            raise EnvError(f"scienceworld: max_steps={max_steps}: expected >= 1 (or None for {self.default_max_steps})")
        self.max_steps = max_steps or self.default_max_steps
        self.simplifications = simplifications
        self._java = JavaServer(self.name, self._launch)  # scienceworld.ScienceWorldEnv, started lazily
        self._task: Task | None = None
        self._gold: list[str] = []
        self._actions: list[str] = []  # actions taken since reset (replayed after a restart)
        self._score = 0.0
        self._done = False
        self._limit = self.max_steps
        self._task_description = ""

    # ------------------------------------------------------------------ simulator process

    def _launch(self) -> Any:
        from scienceworld import ScienceWorldEnv as _Package

        with deterministic_jvm():  # the adapter applies its own step limit (choice 6)
            sw = construct(_Package, self.name, envStepLimit=10**9)
        if self.simplifications:
            known = ["easy", *sw.get_possible_simplifications()]
            for item in self.simplifications.split(","):
                if item not in known:
                    shutdown(sw)
                    raise EnvError(f"scienceworld: unknown simplification '{item}'; expected some of {', '.join(known)}")
        return sw

    def _server(self) -> Any:
        return self._java.get().server

    def _stop(self) -> None:
        self._java.stop()

    def _call(self, fn: Callable[[Any], R]) -> R:
        """Run fn(server); on a dead Java process restart it, restore the episode, and retry once."""
        return self._java.call(lambda sw: fn(sw.server), self._restore)

    def _restore(self) -> None:
        """Put the running episode back into the server: reload its task and replay its actions."""
        if self._task is None:
            return
        self._load(self._task)
        server = self._server()
        for action in self._actions:
            server.step(action)

    def _load(self, task: Task) -> str:
        server = self._server()
        server.load(task.name, task.variation, self.simplifications, True)
        return server.step("look around")

    # ------------------------------------------------------------------ tasks

    def task_names(self) -> list[str]:
        from scienceworld.constants import ID2TASK
        from scienceworld.utils import infer_task

        return [infer_task(n) for n in ID2TASK.values()]  # paper order: 1-1 boil, 1-2 melt, ...

    def _check_name(self, name: str) -> None:
        if name not in self.task_names():
            raise unknown_task(name, self.task_names(), self.name)

    def variations(self, task_name: str, split: str) -> list[int]:
        """The variation indices of `task_name` in `split` (the package's getVariationsTrain/Dev/Test)."""
        self.check_split(split)
        self._check_name(task_name)
        with _SPLITS_LOCK:
            if task_name not in _SPLITS:

                def ask(server: Any) -> dict[str, list[int]]:
                    server.load(task_name, 0, "", False)
                    return {
                        "train": java_ints(server.getVariationsTrain()),
                        "dev": java_ints(server.getVariationsDev()),
                        "test": java_ints(server.getVariationsTest()),
                    }

                _SPLITS[task_name] = self._call(ask)
                self._call(lambda s: self._restore())  # the server held this episode's task
        return _SPLITS[task_name][split]

    def tasks(self, split: str, task_names: list[str] | None = None) -> list[Task]:
        self.check_split(split)
        names = self.task_names() if task_names is None else task_names
        for n in names:
            self._check_name(n)
        return [Task(self.name, n, v, split) for n in names for v in self.variations(n, split)]

    # ------------------------------------------------------------------ episode

    def reset(self, task: Task) -> Observation:
        if task.env != self.name:
            raise EnvError(f"scienceworld: task {task.id} belongs to environment '{task.env}'")
        self._task = None  # the previous episode is abandoned
        allowed = self.variations(task.name, task.split)
        if task.variation not in allowed:
            raise EnvError(
                f"scienceworld: task '{task.name}' has no variation {task.variation} in split '{task.split}' "
                f"(variations {allowed[0]}-{allowed[-1]})"
            )
        electrical = "power-component" in task.name or "conductivity" in task.name
        if electrical and "noElectricalAction" in self.simplifications.split(","):
            raise EnvError(f"scienceworld: task '{task.name}' needs electrical actions; drop 'noElectricalAction'")
        self._task, self._actions = task, []
        first = self._call(lambda s: self._load(task))
        self._gold = self._call(lambda s: list(s.getGoldActionSequence()))
        self._task_description = self._call(lambda s: s.getTaskDescription())
        self._score, self._done = 0.0, False
        self._limit = max(self.max_steps, len(self._gold) + GOLD_MARGIN)
        return Observation(self._task_description, first, info={"max_steps": self._limit, "task_id": task.id})

    def _require_episode(self) -> Task:
        if self._task is None:
            raise EnvError("scienceworld: no episode running; call reset(task) first")
        return self._task

    def step(self, action: str) -> StepResult:
        self._require_episode()
        if self._done:
            raise EnvError("scienceworld: the episode is over; call reset(task) to start another")
        observation = self._call(lambda s: s.step(action))
        self._actions.append(action)
        raw = round(100 * self._call(lambda s: s.getScore()))
        won = bool(self._call(lambda s: s.getCompleted())) and raw >= 0
        failed = raw < 0
        score = float(max(raw, 0))
        truncated = len(self._actions) >= self._limit and not (won or failed)
        reward, self._score = score - self._score, score
        self._done = won or failed or truncated
        info = {
            "raw_score": raw,
            "failed": failed,
            "truncated": truncated,
            "ambiguous": observation.startswith(AMBIGUOUS_PREFIX),
        }
        valid = not observation.startswith(INVALID_PREFIXES)
        return StepResult(observation, reward, self._done, won, score, valid, info)

    def admissible_actions(self) -> list[str]:
        self._require_episode()
        return self._call(lambda s: list(s.getValidActionObjectCombinations()))

    def expert_actions(self) -> list[str]:
        self._require_episode()
        return list(self._gold)

    # ------------------------------------------------------------------ bookkeeping

    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments that shape episodes (recorded in trajectory meta)."""
        return {"max_steps": self.max_steps, "simplifications": self.simplifications, "gold_margin": GOLD_MARGIN}

    def versions(self) -> dict[str, str]:
        return {"scienceworld": importlib.metadata.version("scienceworld")}

    def close(self) -> None:
        """Stop the Java server; safe to call twice and on an instance whose __init__ failed."""
        if getattr(self, "_java", None) is not None:
            self._stop()
        self._task = None

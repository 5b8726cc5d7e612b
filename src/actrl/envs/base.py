"""The text-environment protocol every benchmark adapter implements.

Gymnasium-shaped, text in / text out. An environment lists its tasks per split, `reset(task)`
starts an episode and returns the first `Observation`, `step(action)` returns a `StepResult`.
Admissible actions are computed only when asked (`admissible_actions()`), because some
simulators (ScienceWorld) spend most of a step computing them. `expert_actions()` gives the
environment's expert (gold) action sequence for the current task; the ACT paper builds its
expert trajectories D_expert from these.

Contract (checked by `actrl.envs.checks.check_env` and the determinism test):
- `tasks(split)` is deterministic and each `Task` is hashable and JSON-serialisable.
- `reset(task)` followed by the same actions gives the same observations and scores.
- `step` never raises for a bad action string: the simulator's own answer is returned and
  `StepResult.valid` is False when the environment rejected it.
- scores are on 0-100 (ScienceWorld's scale); `won` is the benchmark's success criterion.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

SPLITS = ("train", "dev", "test")


class EnvError(RuntimeError):
    """Base class for environment errors a user can act on."""


class UnknownTaskError(EnvError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownSplitError(EnvError, ValueError):
    pass


class EnvUnavailableError(EnvError):
    """The simulator cannot start (missing Java, missing data, unreachable server)."""


@dataclass(frozen=True)
class Task:
    """One playable game: environment name, task (game) name, variation/seed, split."""

    env: str
    name: str
    variation: int
    split: str

    @property
    def id(self) -> str:
        return f"{self.env}/{self.name}/{self.split}/{self.variation}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls(env=d["env"], name=d["name"], variation=int(d["variation"]), split=d["split"])


@dataclass
class Observation:
    """What the agent sees after `reset`: the task description and the first observation."""

    task_description: str
    text: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    """What the agent sees after `step`.

    reward: the change in score this step (0-100 scale);
    score: the episode score so far (0-100); won: the benchmark's success criterion;
    valid: False when the environment did not understand or could not apply the action.
    """

    observation: str
    reward: float
    done: bool
    won: bool
    score: float
    valid: bool = True
    info: dict[str, Any] = field(default_factory=dict)


class TextEnv(abc.ABC):
    """One environment instance plays one episode at a time; make several for parallel episodes."""

    name: ClassVar[str]
    #: steps after which an episode ends, unless the task's expert path is longer
    default_max_steps: ClassVar[int] = 50
    #: admissible actions come with every step for free (collect records them by default)
    cheap_admissible: ClassVar[bool] = False

    @abc.abstractmethod
    def task_names(self) -> list[str]:
        """All task (game) names this environment offers."""

    @abc.abstractmethod
    def tasks(self, split: str, task_names: list[str] | None = None) -> list[Task]:
        """The tasks of a split (train/dev/test), optionally restricted to some task names."""

    @abc.abstractmethod
    def reset(self, task: Task) -> Observation:
        """Start an episode of `task`."""

    @abc.abstractmethod
    def step(self, action: str) -> StepResult:
        """Apply one action; never raises for a malformed action."""

    @abc.abstractmethod
    def admissible_actions(self) -> list[str]:
        """Valid actions in the current state (may be slow; call only when needed)."""

    @abc.abstractmethod
    def expert_actions(self) -> list[str]:
        """The expert's full action sequence for the current task, from its initial state."""

    def versions(self) -> dict[str, str]:
        """Package versions that define this environment's grammar and tasks (recorded in runs)."""
        return {}

    def start(self) -> None:  # noqa: B027 - optional hook
        """Start the simulator process now rather than at the first reset (an `EnvPool` warms
        environments this way while a model loads); nothing for in-process environments."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the simulator (Java process, server connection)."""

    def __enter__(self) -> TextEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def check_split(split: str, splits: tuple[str, ...] = SPLITS) -> None:
        if split not in splits:
            raise UnknownSplitError(f"unknown split '{split}'; expected one of {', '.join(splits)}")

"""TextWorldExpress (Jansen & Côté, 2022) behind the `TextEnv` protocol: the fast second environment.

Not a benchmark of the ACT paper: small text games (kitchen cleanup, cooking, coin search, map
reading, ...) that step thousands of times a second, so tests and quick experiments run the whole
pipeline in seconds. `actrl collect --env textworld_express --split train --num 20 --out ...`.

Choices:
1. Games: all eight the package offers; `Task.name` is the game, `Task.variation` the seed.
   Splits are the package's game folds: the seeds of fold "train"/"dev"/"test" (getSeedsTrain/Dev/
   Test: 0-999, 10000-10999, 20000-20999 in 1.1.0); a seed outside its fold is an error (the
   package would silently accept it).
2. Game parameters are small and fixed per game so episodes are a handful of steps (DEFAULT_PARAMS:
   one room, one item, no doors); `game_params={"twc": {"numLocations": 2}}` overrides them.
3. Scores: the package's normalised score (0-1) times 100, floored at 0; `won` is `tasksuccess`;
   the episode ends on success, `taskfailure`, or the step limit (agent actions, raised to
   len(gold) + GOLD_MARGIN when the gold path is longer).
4. `valid` is False when the game answers "Unknown action..." (its parser's only rejection).
5. Admissible actions come with every step's infos (`validActions`), so they are cached from the
   last step and returned for free (`cheap_admissible = True`).
6. A dead Java process is restarted once per call (actrl/envs/jvm.py): a fresh server, the game
   loaded, the seed reset, the actions taken so far replayed, then the call retried.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from actrl.envs.base import SPLITS, EnvError, Observation, StepResult, Task, TextEnv
from actrl.envs.jvm import JavaBacked, JavaServer, construct
from actrl.envs.util import GOLD_MARGIN, java_ints, require_java, unknown_task

GAMES = ("cookingworld", "twc", "coin", "mapreader", "arithmetic", "sorting", "simonsays", "peckingorder")
# per game: the smallest sensible world (choice 2); keys are the package's gameParams names
DEFAULT_PARAMS: dict[str, dict[str, int]] = {
    "cookingworld": {"numLocations": 1, "numIngredients": 2, "numDistractorItems": 0, "includeDoors": 0, "limitInventorySize": 0},
    "twc": {"numLocations": 1, "numItemsToPutAway": 1, "includeDoors": 0, "limitInventorySize": 0},
    "coin": {"numLocations": 1, "numDistractorItems": 0, "includeDoors": 0, "limitInventorySize": 0},
    "mapreader": {"numLocations": 3, "maxDistanceApart": 1, "maxDistractorItemsPerLocation": 0, "includeDoors": 0, "limitInventorySize": 0},
    "arithmetic": {},
    "sorting": {},
    "simonsays": {},
    "peckingorder": {},
}
INVALID_PREFIX = "Unknown action"
R = TypeVar("R")


class TextWorldExpressEnv(JavaBacked, TextEnv):
    """TextWorldExpress games; `Task.name` is the game ("coin"), `Task.variation` the seed."""

    name: ClassVar[str] = "textworld_express"
    default_max_steps: ClassVar[int] = 50
    cheap_admissible: ClassVar[bool] = True

    def __init__(self, max_steps: int | None = None, game_params: dict[str, dict[str, int]] | None = None):
        """max_steps: step limit (None: 50); game_params: per-game overrides of DEFAULT_PARAMS."""
        require_java(self.name)
        if max_steps is not None and max_steps < 1:
            raise EnvError(f"{self.name}: max_steps={max_steps}: expected >= 1 (or None for {self.default_max_steps})")
        self.max_steps = max_steps or self.default_max_steps
        self.game_params = {g: dict(p) for g, p in DEFAULT_PARAMS.items()}
        for game, params in (game_params or {}).items():
            if game not in GAMES:
                raise unknown_task(game, list(GAMES), self.name, "game in game_params")
            if not isinstance(params, dict):
                raise EnvError(f"{self.name}: game_params['{game}']: expected a mapping like {{numLocations: 2}}, got {params!r}")
            self.game_params[game].update(params)
        self._java = JavaServer(self.name, self._launch)  # textworld_express.TextWorldExpressEnv, started lazily
        self._actions: list[str] = []  # actions taken since reset (replayed after a restart)
        self._loaded_game: str | None = None
        self._seeds: dict[str, dict[str, list[int]]] = {}  # game -> split -> seeds
        self._task: Task | None = None
        self._gold: list[str] = []
        self._valid_actions: list[str] = []
        self._steps = 0
        self._score = 0.0
        self._done = False
        self._limit = self.max_steps

    def _launch(self) -> Any:
        from textworld_express import TextWorldExpressEnv as _Package

        return construct(_Package, self.name, envStepLimit=10**9)  # the adapter applies its own limit

    def _env(self) -> Any:
        return self._java.get()

    def _call(self, fn: Callable[[Any], R]) -> R:
        """fn(package env); on a dead Java process restart it, replay the episode, and retry once."""
        return self._java.call(fn, self._restore)

    def _restore(self) -> None:
        """A fresh server has no game loaded: load the episode's game, reset its seed, replay its actions."""
        self._loaded_game = None
        if self._task is None:
            return
        self._load(self._task.name)
        self._env().reset(seed=self._task.variation, gameFold=self._task.split, generateGoldPath=True)
        for action in self._actions:
            self._env().step(action)

    def _load(self, game: str) -> None:
        if self._loaded_game == game:
            return
        params = ",".join(f"{k}={v}" for k, v in self.game_params[game].items())
        try:
            self._env().load(game, params)
        except ValueError as e:
            raise EnvError(f"{self.name}: game '{game}' rejected game_params '{params}': {str(e).strip()}") from None
        self._loaded_game = game

    # ------------------------------------------------------------------ tasks

    def task_names(self) -> list[str]:
        return list(GAMES)

    def seeds(self, game: str, split: str) -> list[int]:
        """The seeds of `game` in fold `split` (the package's getSeedsTrain/Dev/Test)."""
        self.check_split(split)
        if game not in GAMES:
            raise unknown_task(game, list(GAMES), self.name, "game")
        if game not in self._seeds:

            def ask(twx: Any) -> dict[str, list[int]]:
                self._load(game)
                folds = {"train": twx.server.getSeedsTrain(), "dev": twx.server.getSeedsDev(),
                         "test": twx.server.getSeedsTest()}
                return {s: java_ints(folds[s]) for s in SPLITS}

            self._seeds[game] = self._call(ask)
            if self._task is not None and self._task.name != game:  # the server held this episode's game
                self._call(lambda twx: self._restore())
        return self._seeds[game][split]

    def tasks(self, split: str, task_names: list[str] | None = None) -> list[Task]:
        self.check_split(split)
        games = self.task_names() if task_names is None else task_names
        return [Task(self.name, g, seed, split) for g in games for seed in self.seeds(g, split)]

    # ------------------------------------------------------------------ episode

    def reset(self, task: Task) -> Observation:
        if task.env != self.name:
            raise EnvError(f"{self.name}: task {task.id} belongs to environment '{task.env}'")
        self._task, self._actions = None, []  # the previous episode is abandoned
        seeds = self.seeds(task.name, task.split)
        if task.variation not in seeds:
            raise EnvError(
                f"{self.name}: seed {task.variation} is not in the '{task.split}' fold of '{task.name}' "
                f"(seeds {seeds[0]}-{seeds[-1]})"
            )

        def start(twx: Any) -> tuple[str, dict[str, Any], list[str]]:
            self._load(task.name)
            obs, info = twx.reset(seed=task.variation, gameFold=task.split, generateGoldPath=True)
            return obs, info, list(twx.getGoldActionSequence())

        obs, info, self._gold = self._call(start)
        self._task = task
        self._valid_actions = list(info["validActions"])
        self._steps, self._score, self._done = 0, 0.0, False
        self._limit = max(self.max_steps, len(self._gold) + GOLD_MARGIN)
        return Observation(info["taskDescription"], obs, info={"max_steps": self._limit, "task_id": task.id})

    def _require_episode(self) -> None:
        if self._task is None:
            raise EnvError(f"{self.name}: no episode running; call reset(task) first")

    def step(self, action: str) -> StepResult:
        self._require_episode()
        if self._done:
            raise EnvError(f"{self.name}: the episode is over; call reset(task) to start another")
        obs, _, _, info = self._call(lambda twx: twx.step(action))
        self._actions.append(action)
        self._steps += 1
        self._valid_actions = list(info["validActions"])
        won, failed = bool(info["tasksuccess"]), bool(info["taskfailure"])
        score = max(0.0, 100.0 * float(info["score"]))
        truncated = self._steps >= self._limit and not (won or failed)
        reward, self._score = score - self._score, score
        self._done = won or failed or truncated
        extra = {"raw_score": info["scoreRaw"], "failed": failed, "truncated": truncated}
        return StepResult(obs, reward, self._done, won, score, not obs.startswith(INVALID_PREFIX), extra)

    def admissible_actions(self) -> list[str]:
        self._require_episode()
        return list(self._valid_actions)

    def expert_actions(self) -> list[str]:
        self._require_episode()
        return list(self._gold)

    # ------------------------------------------------------------------ bookkeeping

    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments that shape episodes (recorded in trajectory meta)."""
        return {"max_steps": self.max_steps, "game_params": self.game_params, "gold_margin": GOLD_MARGIN}

    def versions(self) -> dict[str, str]:
        return {"textworld-express": importlib.metadata.version("textworld-express")}

    def close(self) -> None:
        """Stop the Java server; safe to call twice and on an instance whose __init__ failed."""
        if getattr(self, "_java", None) is not None:
            self._java.stop()
        self._task = None
        self._loaded_game = None

"""Fetch: a tiny text house for trying actrl on your own environment (the README's worked example).

    pip install --no-deps -e examples/fetch      # declares the `actrl.envs` entry point `fetch`
    actrl check-env fetch                         # the protocol check: PASS
    actrl collect --env fetch --split train --num 8 --out runs/fetch/experts.jsonl

Four rooms around a hall; a task is "bring the <object> to the <room>". The variation (seed) places
the object and picks the start and target rooms. Score: 50 for taking the object, 100 for putting
it down in the target room (the win). The expert walks there through the hall, takes it, walks to
the target and puts it down. Splits: variations 0-9 train, 10-14 dev, 15-19 test.
"""

from __future__ import annotations

import random

from actrl.envs import EnvError, Observation, StepResult, Task, TextEnv, UnknownTaskError

OBJECTS = ("apple", "book", "key", "lamp")
ROOMS = ("kitchen", "bedroom", "garden", "study")  # each connects only to the hall
SPLIT_VARIATIONS = {"train": range(0, 10), "dev": range(10, 15), "test": range(15, 20)}


def _exits(room: str) -> list[str]:
    return list(ROOMS) if room == "hall" else ["hall"]


class FetchEnv(TextEnv):
    """One episode at a time; deterministic: the same task and actions give the same text."""

    name = "fetch"
    default_max_steps = 20
    cheap_admissible = True  # admissible actions are a few strings, computed for free

    def __init__(self, max_steps: int | None = None):
        self.max_steps = max_steps or self.default_max_steps
        self._task: Task | None = None
        self._done = True

    def task_names(self) -> list[str]:
        return list(OBJECTS)

    def tasks(self, split: str, task_names: list[str] | None = None) -> list[Task]:
        self.check_split(split, tuple(SPLIT_VARIATIONS))
        for n in task_names or []:
            if n not in OBJECTS:
                raise UnknownTaskError(f"fetch: unknown task '{n}' (known: {', '.join(OBJECTS)})")
        names = task_names or list(OBJECTS)
        return [Task(self.name, n, v, split) for n in names for v in SPLIT_VARIATIONS[split]]

    def reset(self, task: Task) -> Observation:
        if task.name not in OBJECTS or task.variation not in SPLIT_VARIATIONS.get(task.split, ()):
            raise UnknownTaskError(f"fetch: no task {task.id}; list them with tasks(split)")
        rng = random.Random(f"{task.name}/{task.variation}")
        self.obj_room, self.target = rng.sample(ROOMS, 2)
        self.room = rng.choice(("hall",) + ROOMS)
        self._task, self._done, self._steps, self._score, self.carrying = task, False, 0, 0.0, False
        return Observation(f"Bring the {task.name} to the {self.target}.", self._look())

    def _look(self) -> str:
        here = f" You see the {self._task.name}." if self.obj_room == self.room and not self.carrying else ""
        return f"You are in the {self.room}.{here} Exits: {', '.join(_exits(self.room))}."

    def step(self, action: str) -> StepResult:
        if self._task is None:
            raise EnvError("fetch: no episode running; call reset(task) first")
        if self._done:
            raise EnvError("fetch: the episode is over; call reset(task) to start another")
        obj, act = self._task.name, " ".join(action.lower().split())
        valid, score = True, self._score
        if act == "look":
            text = self._look()
        elif act == "inventory":
            text = f"You carry: {obj if self.carrying else 'nothing'}."
        elif act.startswith("go to ") and act[6:] in _exits(self.room):
            self.room = act[6:]
            text = self._look()
        elif act == f"take {obj}" and self.room == self.obj_room and not self.carrying:
            self.carrying, score = True, max(score, 50.0)
            text = f"You take the {obj}."
        elif act == f"put {obj}" and self.carrying:
            self.carrying, self.obj_room = False, self.room
            score = 100.0 if self.room == self.target else score
            text = f"You put down the {obj}."
        else:
            valid, text = False, "Nothing happens. Try: look, go to <room>, take <object>, put <object>."
        self._steps += 1
        won = score == 100.0
        self._done = won or self._steps >= self.max_steps
        reward, self._score = score - self._score, score
        return StepResult(text, reward, self._done, won, score, valid, {"truncated": self._done and not won})

    def admissible_actions(self) -> list[str]:
        if self._task is None or self._done:
            return []
        obj = self._task.name
        here = [f"take {obj}"] if self.room == self.obj_room and not self.carrying else []
        held = [f"put {obj}"] if self.carrying else []
        return ["look", "inventory"] + [f"go to {r}" for r in _exits(self.room)] + here + held

    def expert_actions(self) -> list[str]:
        if self._task is None:
            raise EnvError("fetch: no episode running; call reset(task) first")
        rng = random.Random(f"{self._task.name}/{self._task.variation}")
        obj_room, target = rng.sample(ROOMS, 2)
        start = rng.choice(("hall",) + ROOMS)
        path = (["go to hall"] if start not in ("hall", obj_room) else []) + ([] if start == obj_room else [f"go to {obj_room}"])
        return ["look"] + path + [f"take {self._task.name}", "go to hall", f"go to {target}", f"put {self._task.name}"]

    def versions(self) -> dict[str, str]:
        return {"actrl-example-fetch": "0.1.0"}

"""`check_env`: the `TextEnv` contract (envs/base.py) checked on a real episode, Gymnasium-style.

Run by tests/test_envs.py over every registered environment; an adapter author runs it as
`python -c "from actrl.envs import make; from actrl.envs.checks import check_env; e = make('NAME'); check_env(e, e.tasks('train')[0])"`.

What it checks, in order:
1. `tasks(split)` is deterministic, holds `task`, and every Task is hashable and JSON round-trips;
2. `reset` returns an Observation of strings; `expert_actions()` a non-empty list of strings;
   `admissible_actions()` a list of strings;
3. every expert step returns a StepResult with a string observation, a score in [0, 100] and
   reward == score change; the expert path ends (`done`) `won` at full score, possibly before its
   last action;
4. determinism: a second reset replaying the same actions gives identical observations and scores
   (the expert path itself may be redrawn per reset: ScienceWorld randomises it, the world it is
   played in is fixed);
5. a nonsense action returns a StepResult with `valid` False instead of raising.
"""

from __future__ import annotations

import json
import math
from typing import Any

from actrl.envs.base import EnvError, Observation, StepResult, Task, TextEnv

NONSENSE_ACTION = "xyzzy plugh frobnicate"


class EnvCheckError(EnvError, AssertionError):
    """An adapter broke the TextEnv contract; the message names the environment, task and rule."""


def _require(cond: bool, env: TextEnv, task: Task, rule: str) -> None:
    if not cond:
        raise EnvCheckError(f"{env.name} {task.id}: {rule}")


def _is_str_list(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(a, str) for a in x)


def _play(env: TextEnv, task: Task, actions: list[str]) -> tuple[Observation, list[StepResult]]:
    first = env.reset(task)
    return first, [env.step(a) for a in actions]


def check_env(env: TextEnv, task: Task) -> list[StepResult]:
    """Check the protocol on `task`; returns the expert episode's step results. Raises EnvCheckError."""
    tasks = env.tasks(task.split, [task.name])
    _require(tasks == env.tasks(task.split, [task.name]), env, task, "tasks(split) is not deterministic")
    _require(task in tasks, env, task, f"task is not listed by tasks('{task.split}')")
    _require(len(set(tasks)) == len(tasks), env, task, "tasks(split) lists a task twice")
    _require(Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task, env, task, "Task does not JSON round-trip")
    _require(task.name in env.task_names(), env, task, "task name is not in task_names()")

    first = env.reset(task)
    _require(isinstance(first, Observation), env, task, f"reset returned {type(first).__name__}, not Observation")
    _require(isinstance(first.text, str) and isinstance(first.task_description, str), env, task,
             "Observation.text and .task_description must be strings")
    _require(bool(first.task_description.strip()), env, task, "empty task description")
    expert = env.expert_actions()
    _require(_is_str_list(expert) and len(expert) > 0, env, task, f"expert_actions() must be a non-empty list of str, got {expert!r}")
    _require(_is_str_list(env.admissible_actions()), env, task, "admissible_actions() must be a list of str")

    results, score = [], 0.0
    for t, action in enumerate(expert):
        r = env.step(action)
        where = f"expert step {t} ('{action}')"
        _require(isinstance(r, StepResult), env, task, f"{where}: step returned {type(r).__name__}")
        _require(isinstance(r.observation, str), env, task, f"{where}: observation is not a string")
        _require(0.0 <= r.score <= 100.0, env, task, f"{where}: score {r.score} outside [0, 100]")
        _require(math.isclose(r.reward, r.score - score, abs_tol=1e-6), env, task,
                 f"{where}: reward {r.reward} != score change {r.score - score}")
        score = r.score
        results.append(r)
        if r.done:  # some gold paths carry actions past the win (ScienceWorld's trailing "wait1")
            break
    last = results[-1]
    _require(last.done and last.won and last.score == 100.0, env, task,
             f"the expert path ends with done={last.done} won={last.won} score={last.score}; expected a win at 100")

    played = expert[: len(results)]
    again_first, again = _play(env, task, played)
    _require(again_first.text == first.text, env, task, "two resets gave different first observations")
    for t, (a, b) in enumerate(zip(results, again, strict=True)):
        _require((a.observation, a.score, a.done, a.won) == (b.observation, b.score, b.done, b.won), env, task,
                 f"not deterministic: replaying the expert path diverged at step {t}")

    env.reset(task)
    bad = env.step(NONSENSE_ACTION)
    _require(isinstance(bad, StepResult) and bad.valid is False, env, task,
             f"the nonsense action '{NONSENSE_ACTION}' should give valid=False, got {bad!r}")
    return results

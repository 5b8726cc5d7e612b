"""`check_env`: the `TextEnv` contract (envs/base.py) checked on a real episode, Gymnasium-style.

    actrl check-env fetch                     # the first thing to run on a new environment
    actrl check-env my_pkg.envs:MyEnv --env-kwargs max_steps=30

Run by tests/test_envs.py over every registered environment; `actrl check-env NAME` runs it on the
first tasks of each split together with the checks below, and prints one PASS line or every problem
with its fix (`conformance`).

What `check_env` checks, in order:
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

What `conformance` adds: the class loads and has the protocol's methods (envs/plugins.py); the
tasks per split (a split the environment does not offer raises UnknownSplitError; train must have
tasks; Task.env is the environment's name and Task.split the split); admissible actions asked at
every expert state are lists of strings (a warning, not a failure, when a non-empty list lacks the
expert action: ScienceWorld's does); a step after the episode ended raises EnvError or returns
done=True; `close()` twice does not raise.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from typing import Any

from actrl.envs.base import SPLITS, EnvError, Observation, StepResult, Task, TextEnv, UnknownSplitError

NONSENSE_ACTION = "xyzzy plugh frobnicate"


class EnvCheckError(EnvError, AssertionError):
    """An adapter broke the TextEnv contract; the message names the environment, task and rule.

    `rule` is what failed, `fix` what the adapter should do instead (printed by `actrl check-env`).
    """

    def __init__(self, message: str, rule: str = "", fix: str = ""):
        super().__init__(message)
        self.rule, self.fix = rule or message, fix


def _require(cond: bool, env: TextEnv, task: Task, rule: str, fix: str = "") -> None:
    if not cond:
        raise EnvCheckError(f"{env.name} {task.id}: {rule}", rule, fix)


def _is_str_list(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(a, str) for a in x)


def _play(env: TextEnv, task: Task, actions: list[str]) -> tuple[Observation, list[StepResult]]:
    first = env.reset(task)
    return first, [env.step(a) for a in actions]


def check_env(env: TextEnv, task: Task) -> list[StepResult]:
    """Check the protocol on `task`; returns the expert episode's step results. Raises EnvCheckError."""
    tasks = env.tasks(task.split, [task.name])
    _require(tasks == env.tasks(task.split, [task.name]), env, task, "tasks(split) is not deterministic",
             "build the task list from fixed data or a fixed seed, in a fixed order")
    _require(task in tasks, env, task, f"task is not listed by tasks('{task.split}')",
             "tasks(split, [name]) must return the split's tasks of that name")
    _require(len(set(tasks)) == len(tasks), env, task, "tasks(split) lists a task twice", "give each task of a split a distinct (name, variation)")
    _require(Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task, env, task, "Task does not JSON round-trip",
             "use actrl.envs.Task with a str name and an int variation")
    _require(task.name in env.task_names(), env, task, "task name is not in task_names()",
             "task_names() must list every name tasks() uses")

    first = env.reset(task)
    _require(isinstance(first, Observation), env, task, f"reset returned {type(first).__name__}, not Observation",
             "return actrl.envs.Observation(task_description, text)")
    _require(isinstance(first.text, str) and isinstance(first.task_description, str), env, task,
             "Observation.text and .task_description must be strings", "convert them with str()")
    _require(bool(first.task_description.strip()), env, task, "empty task description",
             "say what the agent must do (the prompt shows it as Task: ...)")
    expert = env.expert_actions()
    _require(_is_str_list(expert) and len(expert) > 0, env, task, f"expert_actions() must be a non-empty list of str, got {expert!r}",
             "return the expert's whole action sequence from the initial state, as strings")
    _require(_is_str_list(env.admissible_actions()), env, task, "admissible_actions() must be a list of str",
             "return a list of command strings ([] when the environment cannot list them)")

    results, score = [], 0.0
    for t, action in enumerate(expert):
        r = env.step(action)
        where = f"expert step {t} ('{action}')"
        _require(isinstance(r, StepResult), env, task, f"{where}: step returned {type(r).__name__}",
                 "return actrl.envs.StepResult")
        _require(isinstance(r.observation, str), env, task, f"{where}: observation is not a string", "convert it with str()")
        _require(0.0 <= r.score <= 100.0, env, task, f"{where}: score {r.score} outside [0, 100]",
                 "rescale scores to 0-100 (100 = the task solved)")
        _require(math.isclose(r.reward, r.score - score, abs_tol=1e-6), env, task,
                 f"{where}: reward {r.reward} != score change {r.score - score}",
                 "set reward to the score after the step minus the score before it")
        score = r.score
        results.append(r)
        if r.done:  # some gold paths carry actions past the win (ScienceWorld's trailing "wait1")
            break
    last = results[-1]
    _require(last.done and last.won and last.score == 100.0, env, task,
             f"the expert path ends with done={last.done} won={last.won} score={last.score}; expected a win at 100",
             "expert_actions() must solve the task: the last step returns done=True, won=True, score=100")

    played = expert[: len(results)]
    again_first, again = _play(env, task, played)
    _require(again_first.text == first.text, env, task, "two resets gave different first observations",
             "seed every random choice from the task (name, variation), never from global state")
    for t, (a, b) in enumerate(zip(results, again, strict=True)):
        _require((a.observation, a.score, a.done, a.won) == (b.observation, b.score, b.done, b.won), env, task,
                 f"not deterministic: replaying the expert path diverged at step {t}",
                 "reset(task) must restore the whole world: the same actions must give the same text and scores")

    env.reset(task)
    bad = env.step(NONSENSE_ACTION)
    _require(isinstance(bad, StepResult) and bad.valid is False, env, task,
             f"the nonsense action '{NONSENSE_ACTION}' should give valid=False, got {bad!r}",
             "return StepResult(..., valid=False) for an action the environment does not understand")
    return results


# ----------------------------------------------------------------------------- actrl check-env


@dataclass
class Finding:
    """One broken rule: where (a split or task id), what failed, and what the adapter should do."""

    where: str
    problem: str
    fix: str


@dataclass
class Conformance:
    """What `actrl check-env` found: tasks per split (None: split not offered), episodes, problems."""

    env: str
    target: str
    tasks: dict[str, int | None] = field(default_factory=dict)
    episodes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    """rules an environment may have reason to break (ScienceWorld's admissible list lacks its gold actions)."""

    @property
    def passed(self) -> bool:
        return not self.findings

    def format(self) -> str:
        counts = ", ".join(f"{s} {'-' if n is None else n}" for s, n in self.tasks.items())
        warned = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        if self.passed:
            lines = [f"{self.env}: PASS{warned} ({self.target}; tasks {counts}; {len(self.episodes)} expert episodes "
                     "replayed, deterministic, admissible actions, invalid action, step after done, close twice)"]
        else:
            lines = [f"{self.env}: FAIL, {len(self.findings)} problem(s){warned} ({self.target}; tasks {counts})"]
        for kind, items in (("", self.findings), ("warning: ", self.warnings)):
            for f in items:
                lines += [f"- {kind}{f.where}: {f.problem}", f"  fix: {f.fix}"]
        return "\n".join(lines)


def _raised(where: str, what: str, e: Exception) -> Finding:
    return Finding(where, f"{what} raised {type(e).__name__}: {e}",
                   "reset/step/tasks must not raise on valid input; raise actrl.envs.EnvError for a user's mistake")


def _split_tasks(env: TextEnv, report: Conformance) -> list[Task]:
    """Tasks per split, and the tasks to play: two task names of train, the first of dev and test."""
    picked: list[Task] = []
    for split in SPLITS:
        where = f"tasks('{split}')"
        try:
            tasks = env.tasks(split)
        except UnknownSplitError:
            report.tasks[split] = None
            continue
        except Exception as e:  # an adapter's bug, reported as a finding
            report.findings.append(_raised(where, where, e))
            continue
        report.tasks[split] = len(tasks)
        wrong = [t for t in tasks if not isinstance(t, Task) or t.env != env.name or t.split != split]
        if wrong:
            report.findings.append(Finding(where, f"{wrong[0]!r} is not Task(env='{env.name}', split='{split}')",
                                           "build tasks as actrl.envs.Task(self.name, name, variation, split)"))
            continue
        if tasks:
            picked.append(tasks[0])
            other = next((t for t in tasks if t.name != tasks[0].name), None)
            if split == "train" and other is not None:
                picked.append(other)
    if not report.tasks.get("train"):
        report.findings.append(Finding("tasks('train')", "no training tasks",
                                       "offer a 'train' split: actrl collect and the recipes default to it"))
    return picked


def _check_admissible_and_end(env: TextEnv, task: Task, report: Conformance) -> Finding | None:
    """Admissible actions asked at each expert state are strings (a warning when the expert action is not
    among them: the RL reward's 0.1 and admissible-only pairs rely on the list); a step after done is refused."""
    from actrl.actions import same_action

    env.reset(task)
    warned = False
    for t, action in enumerate(env.expert_actions()):
        admissible = env.admissible_actions()
        if not _is_str_list(admissible):
            return Finding(task.id, f"expert step {t}: admissible_actions() returned {type(admissible).__name__}, not a list of str",
                           "return a list of command strings ([] when the environment cannot list them)")
        if admissible and not warned and not any(same_action(action, a) for a in admissible):
            report.warnings.append(Finding(task.id, f"expert step {t} ('{action}') is not in admissible_actions() ({len(admissible)} listed)",
                                           "list every action step() accepts in this state, or return [] when they cannot be listed"))
            warned = True
        if env.step(action).done:
            break
    try:
        after = env.step("look")
    except EnvError:
        return None
    if not (isinstance(after, StepResult) and after.done):
        return Finding(task.id, f"a step after the episode ended was played ({after!r})",
                       "raise actrl.envs.EnvError('the episode is over; call reset') or return done=True")
    return None


def conformance(name: str, env_kwargs: dict[str, Any] | None = None) -> Conformance:
    """Load, construct and check environment `name` on a few tasks of each split; never raises for
    a broken adapter after it loads (every problem is a Finding). Loading errors raise EnvError."""
    from actrl.envs import env_class, make, resolve

    target, _ = resolve(name)
    cls = env_class(name)
    report = Conformance(name, f"{cls.__module__}:{cls.__qualname__}")
    env = make(name, **(env_kwargs or {}))
    try:
        for task in _split_tasks(env, report):
            report.episodes.append(task.id)
            try:
                check_env(env, task)
                problem = _check_admissible_and_end(env, task, report)
            except EnvCheckError as e:
                problem = Finding(task.id, e.rule, e.fix)
            except Exception as e:  # an adapter's bug, reported as a finding
                problem = _raised(task.id, "playing the expert episode", e)
            if problem:
                report.findings.append(problem)
    finally:
        for attempt in ("close()", "close() a second time"):
            try:
                env.close()
            except Exception as e:
                report.findings.append(Finding(name, f"{attempt} raised {type(e).__name__}: {e}",
                                               "make close() idempotent: release the simulator once, then do nothing"))
                break
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="environment: a shipped or plugin name (fetch), or package.module:ClassName")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="adapter arguments, e.g. max_steps=30")


def run(args: argparse.Namespace) -> int:
    from actrl.config import parse_overrides

    report = conformance(args.name, parse_overrides(args.env_kwargs))
    print(report.format())
    return 0 if report.passed else 1

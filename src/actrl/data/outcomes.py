"""What each action of a critic pair leads to: Early Experience's rollouts from expert states.

From each pair's expert state s_t, the expert action a_t^* and the alternative a' are executed in
the environment, and both next observations are recorded. The Early Experience baselines read
them: self-reflection explains the expert action given both outcomes, implicit world modeling
learns to predict the alternative's outcome.

    from actrl.data.outcomes import EnvSpec, execute_pairs
    execute_pairs(read_pairs("runs/x/pairs.jsonl"), EnvSpec(name="scienceworld"), "runs/x/outcomes.jsonl")

Output: one JSON line per pair (pair_id, task_id, t, expert_action, alternative, and
`expert_outcome` / `alternative_outcome`, each {observation, valid, reward, score, done, won}),
appended and fsynced as each task finishes.

Choices the issue and paper left open:
1. Restoring s_t: no adapter offers a snapshot (the TextEnv protocol has none), so the state is
   rebuilt by resetting the pair's task and replaying the expert prefix (the actions in the
   state's history); adapters are deterministic under replay (checked at expert collection).
   The replayed observation must equal the pair's recorded one, else EnvError: the outcome
   would belong to another state.
2. One "walker" environment follows each task's expert path once; at every t with pairs, each
   alternative runs on a second environment replayed to t, and the expert action runs on the
   walker, which then stands at s_{t+1}. Cost per task: T + sum over pairs of (t + 1) steps.
3. Resume: pair ids already in the output file are skipped; `workers` tasks run at once, each
   worker with its own two environment instances.
4. The stages of one run share one outcomes file per (pairs file, environment settings)
   (`shared_outcomes_path`), so self-reflection and world modeling execute the pairs once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actrl.data.records import CriticPair, JsonlWriter, RecordError, read_jsonl
from actrl.envs import EnvError, Task, TextEnv, make


@dataclass
class EnvSpec:
    """The environment the pairs came from; a recipe fills it from its `env` section."""

    name: str = ""
    """a registered environment (actrl.envs.names())."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """adapter keyword arguments: must match those the expert trajectories were collected with."""
    workers: int = 1
    """tasks executed at once (each worker starts two simulator instances)."""

    def validate(self) -> None:
        if not self.name:
            raise ValueError("env.name is required: the environment the critic pairs came from, e.g. env.name=scienceworld")
        if self.workers < 1:
            raise ValueError(f"env.workers={self.workers}: expected >= 1")


def shared_outcomes_path(stage_dir: str | Path, pairs_path: str | Path, spec: EnvSpec) -> Path:
    """runs/<name>/seed<s>/stages/outcomes-<hash>.jsonl: one file per pairs file and environment (choice 4)."""
    key = json.dumps([str(Path(pairs_path).resolve()), spec.name, spec.kwargs], sort_keys=True, default=str)
    return Path(stage_dir).parent / f"outcomes-{hashlib.sha256(key.encode()).hexdigest()[:8]}.jsonl"


def task_from_id(task_id: str) -> Task:
    """'<env>/<name>/<split>/<variation>' -> Task (names may contain '/').

    >>> task_from_id('alfworld/pick_and_place/trial_1/valid_seen/3').name
    'pick_and_place/trial_1'
    """
    head, split, variation = task_id.rsplit("/", 2)
    env, _, name = head.partition("/")
    if not name or not variation.lstrip("-").isdigit():
        raise RecordError(f"task id '{task_id}': expected '<env>/<name>/<split>/<variation>'")
    return Task(env=env, name=name, variation=int(variation), split=split)


def _outcome(env: TextEnv, action: str) -> dict[str, Any]:
    r = env.step(action)
    return {"observation": r.observation, "valid": r.valid, "reward": r.reward, "score": r.score, "done": r.done, "won": r.won}


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _replay(env: TextEnv, task: Task, prefix: list[str], expected: str, pair_id: str) -> None:
    """Reset `task`, play `prefix`, and check the observation reached is the pair's (choice 1)."""
    observation = env.reset(task).text
    for i, action in enumerate(prefix):
        r = env.step(action)
        if r.done:
            raise EnvError(f"pair {pair_id}: the episode ended at expert step {i} ('{action}') during replay")
        observation = r.observation
    if not _same_text(observation, expected):
        raise EnvError(
            f"pair {pair_id}: replaying the expert prefix on {env.name} reached another observation than the pair "
            "records; were the pairs collected with other environment settings (env.kwargs)?"
        )


def execute_task(walker: TextEnv, side: TextEnv, pairs: list[CriticPair]) -> list[dict[str, Any]]:
    """Outcome records of the pairs of one task (choice 2)."""
    pairs = sorted(pairs, key=lambda p: (p.t, p.pair_id))
    task = task_from_id(pairs[0].task_id)
    longest = pairs[-1]
    if len(longest.state.history) != longest.t:
        raise RecordError(
            f"pair {longest.pair_id}: its state has {len(longest.state.history)} history steps, expected t={longest.t} "
            "(the expert prefix replayed to restore the state)"
        )
    path = [a for _, a in longest.state.history] + [longest.expert_action]  # a_0^* .. a_T^*
    by_t: dict[int, list[CriticPair]] = defaultdict(list)
    for p in pairs:
        by_t[p.t].append(p)
    records = []
    observation = walker.reset(task).text
    for t, expert_action in enumerate(path):
        for p in by_t.get(t, []):
            if not _same_text(observation, p.state.observation):
                raise EnvError(f"pair {p.pair_id}: the expert path of {p.task_id} reaches another observation at step {t}")
            _replay(side, task, path[:t], p.state.observation, p.pair_id)
            records.append(
                {
                    "pair_id": p.pair_id,
                    "task_id": p.task_id,
                    "t": t,
                    "expert_action": p.expert_action,
                    "alternative": p.alternative,
                    "alternative_outcome": _outcome(side, p.alternative),
                }
            )
        expert = _outcome(walker, expert_action)
        for rec in records[len(records) - len(by_t.get(t, [])) :]:
            rec["expert_outcome"] = expert
        if expert["done"] and t < longest.t:
            raise EnvError(f"task {task.id}: the expert path ended at step {t}, before the pair at step {longest.t}")
        observation = expert["observation"]
    return records


def execute_pairs(pairs: list[CriticPair], spec: EnvSpec, out: str | Path) -> list[dict[str, Any]]:
    """Outcomes of every pair, in `out` (resumed); returns all records of the given pairs."""
    out = Path(out)
    done = {r["pair_id"]: r for r in read_jsonl(out, allow_torn_tail=True)} if out.exists() else {}
    todo: dict[str, list[CriticPair]] = defaultdict(list)
    for p in pairs:
        if p.pair_id not in done:
            todo[p.task_id].append(p)
    if todo:
        print(f"[actrl] outcomes: executing {sum(map(len, todo.values()))} pairs of {len(todo)} tasks on {spec.name}")
        _run(todo, spec, out)
        done = {r["pair_id"]: r for r in read_jsonl(out)}
    return [done[p.pair_id] for p in pairs]


def _run(todo: dict[str, list[CriticPair]], spec: EnvSpec, out: Path) -> None:
    lock = threading.Lock()
    local = threading.local()
    opened: list[TextEnv] = []

    def envs() -> tuple[TextEnv, TextEnv]:
        if not hasattr(local, "envs"):
            local.envs = (make(spec.name, **spec.kwargs), make(spec.name, **spec.kwargs))
            with lock:
                opened.extend(local.envs)
        return local.envs

    with JsonlWriter(out) as writer:

        def job(task_pairs: list[CriticPair]) -> None:
            records = execute_task(*envs(), task_pairs)
            with lock:
                for rec in records:
                    writer.write(rec)

        try:
            with ThreadPoolExecutor(max_workers=min(spec.workers, len(todo))) as pool:
                for future in [pool.submit(job, ps) for ps in todo.values()]:
                    future.result()
        finally:
            for env in opened:
                env.close()

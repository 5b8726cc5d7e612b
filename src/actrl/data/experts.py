"""Expert trajectories D_expert: play each task's expert (gold) path and record (o_t, a_t^*) steps.

    actrl collect --env scienceworld --split train --num 20 --out runs/x/experts.jsonl
    actrl collect --env textworld_express --split train --num 40 --tasks coin,twc --per-task 5 \
        --workers 2 --record-admissible auto --env-kwargs max_steps=30 --out runs/x/experts.jsonl

From Python: `collect("scienceworld", "train", 20, out="runs/x/experts.jsonl")` returns the summary.
Output: `Trajectory` records (actrl.data.records), one JSON line each, written as episodes finish;
`steps_dataset(out)` reads them back as a `datasets.Dataset` of expert states.

Choices the paper left open:
1. Which tasks: the split's tasks (optionally only `tasks`, at most `per_task` variations of each,
   the first ones), interleaved round-robin across task names (variation 0 of every task, then
   variation 1, ...) so a small `num` still covers many tasks. `num` counts trajectories kept:
   collection walks further down the list past skipped tasks, and stops short only when the list
   runs out (the summary says so).
2. Replay check: every trajectory is replayed from a fresh reset of the same task; its
   observations and scores must come back identical and reach the expert's final score.
   Trajectories whose expert path does not win, or whose replay diverges, are skipped and counted.
3. Admissible actions per step: "auto" records them where the adapter computes them cheaply
   (`cheap_admissible`: TextWorldExpress yes, ScienceWorld no: ~400 per state), "always"/"never"
   force it.
4. Resume: rerunning with the same `out` skips tasks already in the file (they count toward `num`)
   and appends; skipped tasks are tried again. A file collected with other environment settings
   is an error, not a silent mix. With several workers, records land in the order episodes finish.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from actrl.config import ConfigError, differences, from_dict, load_yaml, parse_overrides
from actrl.data.records import JsonlWriter, RecordError, Step, Trajectory, read_jsonl
from actrl.envs import EnvError, Task, TextEnv, make
from actrl.outputs import output_file


@dataclass
class CollectConfig:
    """Expert collection (collect stage)."""

    env: str
    """registered environment name (actrl.envs.names())."""
    out: str
    """trajectories JSONL; an existing file is resumed."""
    split: str = "train"
    num: int = 20
    """trajectories to have in `out` for this selection (already present ones count)."""
    tasks: list[str] | None = None
    """task (game) names to draw from; None: all of the environment's."""
    per_task: int | None = None
    """at most this many variations of each task name; None: all."""
    workers: int = 2
    """environment instances stepping in parallel threads (each its own simulator process)."""
    record_admissible: Literal["auto", "always", "never"] = "auto"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments for the adapter, e.g. {max_steps: 30} or TWX {game_params: {twc: {numLocations: 2}}}."""

    def validate(self) -> None:
        if self.num < 1:
            raise ValueError(f"num={self.num}: expected >= 1")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: expected >= 1")
        if self.per_task is not None and self.per_task < 1:
            raise ValueError(f"per_task={self.per_task}: expected >= 1 (or null for all variations)")
        if not self.out:
            raise ValueError("out: expected a path for the trajectories JSONL")


# ----------------------------------------------------------------------------- one episode


def select_tasks(env: TextEnv, split: str, names: list[str] | None, per_task: int | None) -> list[Task]:
    """Candidate tasks in collection order (choice 1): round-robin over names, first variations first."""
    groups: dict[str, list[Task]] = {}
    for task in env.tasks(split, names):
        groups.setdefault(task.name, []).append(task)
    queues = [deque(g[:per_task] if per_task else g) for g in groups.values()]
    order: list[Task] = []
    while any(queues):
        order.extend(q.popleft() for q in queues if q)
    return order


def play_expert(env: TextEnv, task: Task, record_admissible: bool, meta: dict[str, Any]) -> Trajectory:
    """Reset `task` and play its expert path, recording o_t, a_t^*, reward, score, done per step."""
    first = env.reset(task)
    steps: list[Step] = []
    observation, score, won = first.text, 0.0, False
    for action in env.expert_actions():
        admissible = env.admissible_actions() if record_admissible else None
        r = env.step(action)
        steps.append(Step(observation, action, r.reward, r.score, r.done, admissible))
        observation, score, won = r.observation, r.score, r.won
        if r.done:
            break
    return Trajectory(task.to_dict(), first.task_description, steps, score, won, meta)


def replay_divergence(env: TextEnv, traj: Trajectory) -> str | None:
    """Replay `traj`'s actions from a fresh reset; None if everything matches, else what differed."""
    first = env.reset(Task.from_dict(traj.task))
    if first.text != traj.steps[0].observation:
        return "the first observation differs"
    for t, step in enumerate(traj.steps):
        r = env.step(step.action)
        nxt = traj.steps[t + 1].observation if t + 1 < len(traj.steps) else None
        if (nxt is not None and r.observation != nxt) or r.score != step.score or r.done != step.done:
            return f"step {t} ('{step.action}') gave a different observation or score"
    return None


def expert_trajectory(env: TextEnv, task: Task, record_admissible: bool, meta: dict[str, Any]) -> tuple[Trajectory | None, str, str]:
    """(trajectory, "", "") when kept, else (None, reason, detail): choice 2."""
    try:
        traj = play_expert(env, task, record_admissible, meta)
        if not traj.steps:
            return None, "no expert path", "expert_actions() was empty"
        if not traj.won:
            return None, "expert path does not win", f"ends at score {traj.final_score:g} after {len(traj.steps)} steps"
        diverged = replay_divergence(env, traj)
    except EnvError as e:
        return None, "environment error", str(e)
    if diverged:
        return None, "replay diverged", diverged
    return traj, "", ""


# ----------------------------------------------------------------------------- resume


def _existing(out: Path, meta: dict[str, Any], split: str) -> set[str]:
    """Task ids already in `out`; RecordError naming the line for malformed or mismatched records
    (other environment settings, or another split: a file never mixes splits)."""
    if not out.exists() or not out.read_text(encoding="utf-8").strip():
        return set()
    lines = [i for i, line in enumerate(out.read_text(encoding="utf-8").split("\n"), 1) if line.strip()]
    ids = set()
    for line, row in zip(lines, read_jsonl(out, allow_torn_tail=True), strict=False):
        try:
            traj = Trajectory.from_dict(row)
        except (KeyError, TypeError, ValueError) as e:
            raise RecordError(f"{out}:{line}: not a trajectory record ({type(e).__name__}: {e})") from None
        if str(traj.meta.get("source", "")).startswith("import:"):
            raise RecordError(f"{out}:{line}: a trajectory from {traj.meta['source']}; collected and imported "
                              "trajectories are never mixed: use another --out")
        settings = {k: traj.meta.get(k) for k in ("env", "params", "versions")}
        wanted = {k: meta[k] for k in settings}
        if settings != wanted:
            changed = "; ".join(differences(settings, wanted))
            raise RecordError(
                f"{out}:{line}: collected with other environment settings (file -> this run: {changed}); "
                "use another --out or the same environment settings"
            )
        if (found := traj.task.get("split")) != split:
            raise RecordError(
                f"{out}:{line}: a trajectory of split '{found}', this run collects split '{split}'; "
                "use another --out for each split"
            )
        ids.add(traj.task_id)
    return ids


# ----------------------------------------------------------------------------- collection


class _EnvPool:
    """One environment per worker thread; the first one made (for task listing) is handed to a worker."""

    def __init__(self, name: str, kwargs: dict[str, Any]):
        self.name, self.kwargs = name, kwargs
        self._local = threading.local()
        self._all: list[TextEnv] = []
        self._spare: list[TextEnv] = []
        self._lock = threading.Lock()

    def first(self) -> TextEnv:
        env = make(self.name, **self.kwargs)
        with self._lock:
            self._all.append(env)
            self._spare.append(env)
        return env

    def get(self) -> TextEnv:
        env = getattr(self._local, "env", None)
        if env is None:
            with self._lock:
                env = self._spare.pop() if self._spare else None
            if env is None:
                env = make(self.name, **self.kwargs)
                with self._lock:
                    self._all.append(env)
            self._local.env = env
        return env

    def restarts(self) -> int:
        """Simulator processes restarted after a crash, over all workers (JVM-backed adapters count them)."""
        return sum(getattr(env, "restarts", 0) for env in self._all)

    def close(self) -> None:
        for env in self._all:
            env.close()


def collect_config(cfg: CollectConfig, progress: bool = True) -> dict[str, Any]:
    """Collect replay-checked expert trajectories into `cfg.out`; returns the summary (choice 1-4)."""
    start, out = time.time(), output_file(cfg.out, "--out")  # before any simulator starts
    pool = _EnvPool(cfg.env, cfg.env_kwargs)
    try:
        env = pool.first()
        admissible = {"always": True, "never": False}.get(cfg.record_admissible, getattr(env, "cheap_admissible", False))
        params = json.loads(json.dumps(getattr(env, "params", cfg.env_kwargs)))
        meta = {"env": cfg.env, "versions": env.versions(), "params": params, "expert": "gold",
                "replay_checked": True, "admissible": admissible}
        done_ids = _existing(out, meta, cfg.split)
        candidates = select_tasks(env, cfg.split, cfg.tasks, cfg.per_task)
        already = sum(t.id in done_ids for t in candidates)
        todo = deque(t for t in candidates if t.id not in done_ids)
        collected, skipped = 0, []
        bar = tqdm(total=cfg.num, initial=min(already, cfg.num), desc=f"collect {cfg.env}/{cfg.split}",
                   unit="traj", disable=not progress)
        with bar, JsonlWriter(out) as writer, ThreadPoolExecutor(cfg.workers) as executor:  # bar closed on Ctrl-C too
            running: dict[Future, Task] = {}
            try:
                while True:
                    while todo and already + collected + len(running) < cfg.num:
                        task = todo.popleft()
                        running[executor.submit(lambda t=task: expert_trajectory(pool.get(), t, admissible, meta))] = task
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        task = running.pop(fut)
                        traj, reason, detail = fut.result()
                        if traj is not None:
                            writer.write(traj.to_dict())
                            collected += 1
                            bar.update(1)
                        else:
                            skipped.append({"task_id": task.id, "reason": reason, "detail": detail})
                            bar.set_postfix(skipped=len(skipped))
            finally:
                for fut in running:
                    fut.cancel()
    finally:
        restarts = pool.restarts()
        pool.close()
    return {
        "env": cfg.env, "split": cfg.split, "out": str(out), "requested": cfg.num,
        "already_in_file": already, "collected": collected, "total": already + collected,
        "skipped": skipped, "skipped_by_reason": dict(Counter(s["reason"] for s in skipped)),
        "candidates": len(candidates), "exhausted": already + collected < cfg.num,
        "seconds": round(time.time() - start, 1), "env_restarts": restarts,
    }


def collect(
    env_name: str,
    split: str,
    num: int,
    out: str | Path,
    *,
    tasks: list[str] | None = None,
    per_task: int | None = None,
    workers: int = 2,
    record_admissible: str = "auto",
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """`actrl collect` from Python (pipeline, demo): validates the settings, returns the summary dict."""
    data = {"env": env_name, "split": split, "num": num, "out": str(out), "tasks": tasks, "per_task": per_task,
            "workers": workers, "record_admissible": record_admissible, "env_kwargs": env_kwargs or {}}
    return collect_config(from_dict(CollectConfig, data, "collect"), progress)


def format_summary(s: dict[str, Any]) -> str:
    lines = [
        f"{s['out']}: {s['total']} trajectories ({s['collected']} collected now, {s['already_in_file']} already there; "
        f"{s['requested']} requested) from {s['env']}/{s['split']} in {s['seconds']}s"
    ]
    if s["skipped"]:
        lines.append(f"skipped {len(s['skipped'])}: " + ", ".join(f"{r} {n}" for r, n in s["skipped_by_reason"].items()))
        lines += [f"  {x['task_id']}: {x['reason']} ({x['detail']})" for x in s["skipped"]]
    if s.get("env_restarts"):
        lines.append(f"environment restarts: {s['env_restarts']} (a simulator process died; its episode was replayed)")
    if s["exhausted"]:
        lines.append(f"only {s['candidates']} candidate tasks in this selection: widen --tasks/--per-task for more")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", help="environment name, e.g. scienceworld, textworld_express")
    p.add_argument("--out", help="trajectories JSONL to write (resumes if present)")
    p.add_argument("--config", help="YAML with CollectConfig fields (flags override it)")
    p.add_argument("--split", help="train | dev | test (default train)")
    p.add_argument("--num", type=int, help="trajectories wanted (default 20)")
    p.add_argument("--tasks", help="comma-separated task (game) names, e.g. boil,melt")
    p.add_argument("--per-task", type=int, help="at most N variations of each task")
    p.add_argument("--workers", type=int, help="parallel environment instances (default 2)")
    p.add_argument("--record-admissible", choices=["auto", "always", "never"], help="admissible actions per step")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                   help="adapter arguments, e.g. max_steps=30 game_params.twc.numLocations=2")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    data = load_yaml(args.config) if args.config else {}
    flags = {"env": args.env, "out": args.out, "split": args.split, "num": args.num, "per_task": args.per_task,
             "workers": args.workers, "record_admissible": args.record_admissible}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.tasks is not None:
        data["tasks"] = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.env_kwargs:
        data["env_kwargs"] = {**data.get("env_kwargs", {}), **parse_overrides(args.env_kwargs)}
    for required in ("env", "out"):
        if not data.get(required):
            raise ConfigError(f"--{required} is required (or set '{required}' in --config)")
    summary = collect_config(from_dict(CollectConfig, data, args.config or "actrl collect"), progress=not args.quiet)
    print(format_summary(summary))
    return 0


__all__ = ["CollectConfig", "collect", "collect_config", "expert_trajectory", "format_summary", "select_tasks"]

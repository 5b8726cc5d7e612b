"""Agent evaluation: the policy acts in an environment, one action per step (ACT pipeline, step 6).

    actrl eval agent --model runs/x/stages/il --env scienceworld --split test --episodes 40
    actrl eval agent --model default --env textworld_express --episodes 8             # prompt, no thinking
    actrl eval agent --model default --env textworld_express --episodes 8 --thinking  # prompt, thinking

Episodes run in lockstep: up to `workers` episodes are live at once, each pinned to its own
environment instance (a thread pool with one instance per worker; the simulators are Java
processes, so their steps overlap). Every step makes ONE batched `generator.generate` call over
the action prompts of all live episodes, then applies the parsed actions in parallel. A worker
whose episode ends starts the next pending task, so the batch stays full until the tasks run out.

Output, written as episodes finish (a rerun skips episodes already written):
out_dir/<split>.episodes.jsonl (one JSON line per episode) and out_dir/<split>.json (settings,
environment versions, and the aggregates defined in actrl/eval/metrics.py).

Choices the paper left open:
1. Step limit: `max_steps`, default the environment's `default_max_steps` (50, ALFWorld's convention).
2. A completion without an <action> tag is an invalid step: the environment is not called, the
   step counts toward the limit, the next observation is FORMAT_FAILURE_OBSERVATION, and the
   history shows the (clipped) completion as the action taken.
3. Greedy decoding by default (temperature 0); sampling is configurable.
4. Admissible actions are computed only when the prompt shows them (`prompt.show_admissible`).
5. `select_tasks(..., episodes=N)` takes the first N tasks after interleaving the split's task
   names round-robin, so a small N still covers every task type.
6. Resume is refused when the episodes file was written with other settings (model, environment,
   step limit, prompt, decoding): results of different runs never mix in one file.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from actrl.config import ConfigError, to_dict
from actrl.data.prompts import PromptConfig, action_messages, parse_action, reply_token_limit
from actrl.data.records import JsonlWriter, State, read_jsonl
from actrl.envs import Task, TextEnv, env_class, make
from actrl.eval.metrics import aggregate, is_stuck
from actrl.models.generation import Generator, SamplingConfig

FORMAT_FAILURE_OBSERVATION = "Your answer was not understood: give the next action as <action>command</action>."
_HISTORY_ACTION_CHARS = 100  # a format failure shows this much of the completion in the history


def default_sampling(thinking: bool = False) -> SamplingConfig:
    """Greedy; stop after the action tag; room to reason when thinking."""
    return SamplingConfig(temperature=0.0, max_new_tokens=reply_token_limit(thinking, "action"), stop=["</action>"])


@dataclass
class EvalConfig:
    """Agent evaluation (`actrl eval agent`)."""

    max_steps: int | None = None
    """M: steps per episode; None uses the environment's default_max_steps (50 for ALFWorld)."""
    workers: int = 8
    """episodes played at once, each on its own environment instance (the generation batch)."""
    stuck_window: int = 3
    """an episode is stuck when its last this-many steps repeat one ineffective action (metrics.py)."""
    out_dir: str | None = None
    """where <split>.episodes.jsonl and <split>.json go; None keeps results in memory only."""
    model: str = ""
    """the evaluated policy's name, recorded in the outputs and checked on resume."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments for the environment adapter (`actrl.envs.make(env, **env_kwargs)`)."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    sampling: SamplingConfig = field(default_factory=default_sampling)
    progress: bool = True
    """show a progress bar of finished episodes."""

    def validate(self) -> None:
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps}: expected >= 1 (or null for the environment's default)")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: expected >= 1")
        if self.stuck_window < 1:
            raise ValueError(f"stuck_window={self.stuck_window}: expected >= 1")
        if self.sampling.n != 1:
            raise ValueError(f"sampling.n={self.sampling.n}: an agent takes one action per step; expected 1")
        if self.prompt.thinking and self.sampling.max_new_tokens < 128:
            raise ValueError(
                f"prompt.thinking with sampling.max_new_tokens={self.sampling.max_new_tokens} leaves no room "
                "to reason; set sampling.max_new_tokens >= 128 (e.g. 512)"
            )


@dataclass
class EvalResult:
    episodes: list[dict[str, Any]]  # per-episode records, in task order
    aggregates: dict[str, Any]
    timing: dict[str, float]  # this call: wall / generate / environment seconds, generate calls
    episodes_path: Path | None = None
    summary_path: Path | None = None


def select_tasks(env: TextEnv, split: str, episodes: int | None = None, task_names: list[str] | None = None) -> list[Task]:
    """The split's tasks, task names interleaved round-robin, cut to the first `episodes`."""
    tasks = env.tasks(split, task_names)
    by_name: dict[str, deque[Task]] = {}
    for t in tasks:
        by_name.setdefault(t.name, deque()).append(t)
    mixed: list[Task] = []
    while by_name:
        for name in list(by_name):
            mixed.append(by_name[name].popleft())
            if not by_name[name]:
                del by_name[name]
    if episodes is not None:
        if episodes < 1:
            raise ConfigError(f"episodes={episodes}: expected >= 1")
        mixed = mixed[:episodes]
    if not mixed:
        raise ConfigError(f"no tasks in split '{split}'" + (f" for task names {task_names}" if task_names else ""))
    return mixed


def _started(env_name: str, env_kwargs: dict[str, Any]) -> TextEnv:
    env = make(env_name, **env_kwargs)
    try:
        env.start()
    except BaseException:
        env.close()
        raise
    return env


class EnvPool:
    """Environment instances started once, in background threads, and lent to evaluation calls.

    ScienceWorld's JVMs take seconds each to start on two cores; a pool created before the model
    loads starts them while a vLLM engine warms up, and keeps them across episodes and calls:

        with EnvPool("scienceworld", {}, 8) as envs:
            gen = make_generator(model)                       # the JVMs start meanwhile
            evaluate_agent(gen, "scienceworld", tasks, cfg, envs=envs)
    """

    def __init__(self, env_name: str, env_kwargs: dict[str, Any], size: int):
        self.env_name, self.env_kwargs, self.size = env_name, dict(env_kwargs), size
        self._starter = ThreadPoolExecutor(max_workers=max(size, 1), thread_name_prefix="env-start")
        self._futures = [self._starter.submit(_started, env_name, env_kwargs) for _ in range(size)]
        self._envs: list[TextEnv] | None = None

    def envs(self, n: int) -> list[TextEnv]:
        """The first `n` instances, once started; if one failed to start, the others are closed and it re-raises."""
        if self._envs is None:
            started, error = [], None
            for f in self._futures:
                try:
                    started.append(f.result())
                except Exception as e:  # noqa: BLE001 - re-raised below once the started ones are closed
                    error = error or e
            self._starter.shutdown()
            if error is not None:
                for env in started:
                    env.close()
                raise error
            self._envs = started
        if n > len(self._envs):
            raise ConfigError(f"{n} environments wanted from a pool of {len(self._envs)}")
        return self._envs[:n]

    def close(self) -> None:
        """Wait for every start, then close every instance (a failed start already closed the others)."""
        with contextlib.suppress(Exception):
            self.envs(0)
        for env in self._envs or []:
            env.close()
        self._envs = []

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Worker:
    """One environment instance; plays one episode at a time."""

    def __init__(self, env_name: str, env_kwargs: dict[str, Any], admissible: bool, env: TextEnv | None = None):
        self.env = env if env is not None else make(env_name, **env_kwargs)
        self.admissible = admissible

    def reset(self, task: Task) -> tuple[str, str, list[str] | None]:
        obs = self.env.reset(task)
        return obs.task_description, obs.text, self.env.admissible_actions() if self.admissible else None

    def step(self, action: str) -> tuple[Any, list[str] | None]:
        result = self.env.step(action)
        return result, self.env.admissible_actions() if self.admissible and not result.done else None


@dataclass
class _Episode:
    """A live episode: the agent's state and what happened so far."""

    task: Task
    task_description: str
    observation: str
    admissible: list[str] | None
    max_steps: int
    history: list[tuple[str, str]] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)
    actions: list[str | None] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    score: float = 0.0
    won: bool = False
    done: bool = False

    def state(self) -> State:
        return State(self.task_description, list(self.history), self.observation, self.admissible)

    def record_step(self, completion: str, action: str | None, result: Any, admissible: list[str] | None) -> None:
        shown = action if action is not None else completion.strip()[:_HISTORY_ACTION_CHARS]
        self.history.append((self.observation, shown))
        self.completions.append(completion)
        self.actions.append(action)
        if result is None:  # format failure: the environment was not called
            self.observation, reward, valid = FORMAT_FAILURE_OBSERVATION, 0.0, False
        else:
            self.observation, reward, valid = result.observation, float(result.reward), bool(result.valid)
            self.score, self.won, self.done = float(result.score), bool(result.won), bool(result.done)
            self.admissible = admissible
        self.observations.append(self.observation)
        self.rewards.append(reward)
        self.valid.append(valid)

    @property
    def finished(self) -> bool:
        return self.done or len(self.actions) >= self.max_steps

    def to_record(self, stuck_window: int, settings_key: str) -> dict[str, Any]:
        format_failures = sum(a is None for a in self.actions)
        return {
            "task_id": self.task.id,
            "task": self.task.to_dict(),
            "won": self.won,
            "score": self.score,
            "steps": len(self.actions),
            "done": self.done,
            "format_failures": format_failures,
            "env_rejected": sum(not v for v in self.valid) - format_failures,
            "stuck": is_stuck(self.actions, self.observations, self.rewards, self.won, stuck_window),
            "task_description": self.task_description,
            "actions": self.actions,
            "completions": self.completions,
            "observations": self.observations,
            "rewards": self.rewards,
            "valid": self.valid,
            "settings_key": settings_key,
        }


def settings_key(env_name: str, max_steps: int, cfg: EvalConfig) -> str:
    """Hash of everything that changes an episode's outcome (not workers, batch size or paths)."""
    sampling = {k: v for k, v in to_dict(cfg.sampling).items() if k != "batch_size"}
    blob = {"model": cfg.model, "env": env_name, "env_kwargs": cfg.env_kwargs, "max_steps": max_steps,
            "prompt": to_dict(cfg.prompt), "sampling": sampling}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _load_done(path: Path, key: str) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    done = {}
    for i, rec in enumerate(read_jsonl(path, allow_torn_tail=True), start=1):
        if rec.get("settings_key") != key:
            raise ConfigError(
                f"{path}: episode {i} was written with other settings (model, environment, step limit, prompt "
                "or decoding); use another --out directory or delete the file to start over"
            )
        done[rec["task_id"]] = rec
    return done


def _parallel(pool: ThreadPoolExecutor, fn: Callable[..., Any], args: Sequence[Any]) -> list[Any]:
    return [f.result() for f in [pool.submit(fn, *a) for a in args]]


def _start_workers(
    pool: ThreadPoolExecutor, n: int, env_name: str, env_kwargs: dict[str, Any], admissible: bool
) -> list[_Worker]:
    """Start `n` environment instances in parallel; if one fails, close the others and re-raise."""
    futures = [pool.submit(_Worker, env_name, env_kwargs, admissible) for _ in range(n)]
    workers, error = [], None
    for f in futures:
        try:
            workers.append(f.result())
        except Exception as e:  # noqa: BLE001 - re-raised below once the started ones are closed
            error = error or e
    if error is not None:
        for w in workers:
            w.env.close()
        raise error
    return workers


def evaluate_agent(
    generator: Generator, env_name: str, tasks: Sequence[Task], cfg: EvalConfig, envs: EnvPool | None = None
) -> EvalResult:
    """Play every task once with `generator` as the policy; lockstep across `cfg.workers` episodes.

    envs: started environments to play on (kept open); None starts `cfg.workers` and closes them.
    """
    if envs is not None and (envs.env_name, envs.env_kwargs) != (env_name, cfg.env_kwargs):
        raise ConfigError(f"the environment pool holds {envs.env_name} {envs.env_kwargs}, not {env_name} {cfg.env_kwargs}")
    if not tasks:
        raise ConfigError("no tasks to evaluate")
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"duplicate tasks in the evaluation list (e.g. {next(i for i in ids if ids.count(i) > 1)})")
    max_steps = cfg.max_steps or env_class(env_name).default_max_steps
    key = settings_key(env_name, max_steps, cfg)
    split = "+".join(sorted({t.split for t in tasks}))
    out = Path(cfg.out_dir) if cfg.out_dir else None
    episodes_path = out / f"{split}.episodes.jsonl" if out else None
    summary_path = out / f"{split}.json" if out else None
    done = _load_done(episodes_path, key) if episodes_path else {}
    pending = deque(t for t in tasks if t.id not in done)

    timing = {"wall_s": 0.0, "generate_s": 0.0, "env_s": 0.0, "generate_calls": 0}
    versions: dict[str, str] = {}
    start = time.perf_counter()
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(pending), desc=f"eval {env_name}/{split}",
               unit="episode", disable=not cfg.progress)
    writer = JsonlWriter(episodes_path) if episodes_path and pending else None
    n_workers = min(cfg.workers, len(pending))
    pool = ThreadPoolExecutor(max_workers=max(n_workers, 1), thread_name_prefix="env")
    workers: list[_Worker] = []
    try:
        if n_workers:
            t0 = time.perf_counter()
            if envs is not None:
                workers = [_Worker(env_name, cfg.env_kwargs, cfg.prompt.show_admissible, e) for e in envs.envs(n_workers)]
            else:
                workers = _start_workers(pool, n_workers, env_name, cfg.env_kwargs, cfg.prompt.show_admissible)
            versions = workers[0].env.versions()
            timing["env_s"] += time.perf_counter() - t0
        slots: list[_Episode | None] = [None] * n_workers

        def refill(free: list[int]) -> None:
            starts = [(i, pending.popleft()) for i in free if pending]
            t0 = time.perf_counter()
            firsts = _parallel(pool, lambda i, task: workers[i].reset(task), starts)
            timing["env_s"] += time.perf_counter() - t0
            for (i, task), (description, text, admissible) in zip(starts, firsts, strict=True):
                slots[i] = _Episode(task, description, text, admissible, max_steps)

        refill(list(range(n_workers)))
        while any(slots):
            live = [(i, ep) for i, ep in enumerate(slots) if ep is not None]
            t0 = time.perf_counter()
            outs = generator.generate([action_messages(ep.state(), cfg.prompt) for _, ep in live], cfg.sampling)
            timing["generate_s"] += time.perf_counter() - t0
            timing["generate_calls"] += 1
            completions = [o[0] for o in outs]
            actions = [parse_action(c) for c in completions]
            to_step = [(i, a) for (i, _), a in zip(live, actions, strict=True) if a is not None]
            t0 = time.perf_counter()
            results = dict(zip([i for i, _ in to_step], _parallel(pool, lambda i, a: workers[i].step(a), to_step), strict=True))
            timing["env_s"] += time.perf_counter() - t0
            for (i, ep), completion, action in zip(live, completions, actions, strict=True):
                result, admissible = results.get(i, (None, None))
                ep.record_step(completion, action, result, admissible)
            free = []
            for i, ep in live:
                if ep.finished:
                    rec = ep.to_record(cfg.stuck_window, key)
                    done[rec["task_id"]] = rec
                    if writer:
                        writer.write(rec)
                    bar.update(1)
                    slots[i] = None
                    free.append(i)
            if free and pending:
                refill(free)
    finally:
        bar.close()
        if writer:
            writer.close()
        timing["env_restarts"] = sum(getattr(w.env, "restarts", 0) for w in workers)  # JVMs restarted, episodes replayed
        if envs is None:
            _parallel(pool, lambda w: w.env.close(), [(w,) for w in workers])
        pool.shutdown()
    timing["wall_s"] = time.perf_counter() - start

    episodes = [done[i] for i in ids]
    aggregates = aggregate(episodes)
    if summary_path:
        if not versions and summary_path.exists():  # everything resumed: keep the recorded versions
            versions = json.loads(summary_path.read_text()).get("versions", {})
        summary = {"env": env_name, "split": split, "model": cfg.model, "max_steps": max_steps,
                   "settings_key": key, "settings": to_dict(cfg), "versions": versions, "aggregates": aggregates}
        tmp = summary_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
        tmp.replace(summary_path)
    return EvalResult(episodes, aggregates, timing, episodes_path, summary_path)


# ----------------------------------------------------------------------------- CLI (actrl eval agent)

SUMMARY_COLUMNS = [("model", "model"), ("env", "env"), ("split", "split"), ("episodes", "episodes"),
                   ("success_rate", "success"), ("mean_score", "score"), ("mean_steps", "steps"),
                   ("invalid_rate", "invalid"), ("format_failure_rate", "no tag"), ("stuck_rate", "stuck")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actrl.eval.policy import add_policy_arguments

    parser.add_argument("--env", required=True, help="environment name (actrl.envs.names())")
    parser.add_argument("--split", default="test", help="task split (default test)")
    parser.add_argument("--episodes", type=int, help="first N tasks of the split, task names interleaved (default all)")
    parser.add_argument("--tasks", nargs="+", metavar="NAME", help="only these task names (space- or comma-separated)")
    parser.add_argument("--max-steps", type=int, help="step limit M (default: the environment's, 50 for ALFWorld)")
    parser.add_argument("--workers", type=int, help="episodes played at once, one environment each (default 8)")
    parser.add_argument("--out", help="output directory (default runs/eval/<model>/<env>); reruns resume")
    add_policy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from actrl.eval.metrics import format_table
    from actrl.eval.policy import build_config, check_policy, make_policy
    from actrl.outputs import output_dir

    overrides = [f"max_steps={args.max_steps}"] * (args.max_steps is not None)
    overrides += [f"workers={args.workers}"] * (args.workers is not None)
    cfg = build_config(EvalConfig, args, overrides + list(args.overrides))
    cfg.model = args.model + (f"+{args.lora}" if args.lora else "")  # the policy the generator loads
    out = args.out or cfg.out_dir or str(Path("runs") / "eval" / cfg.model.strip("/.~").replace("/", "_") / args.env)
    cfg.out_dir = str(output_dir(out, "--out"))  # before an environment starts or the model loads
    check_policy(args)
    names = [n.strip() for arg in args.tasks or [] for n in arg.split(",") if n.strip()] or None
    with make(args.env, **cfg.env_kwargs) as env:
        tasks = select_tasks(env, args.split, args.episodes, names)
    max_steps = cfg.max_steps or env_class(args.env).default_max_steps
    decoding = "greedy" if cfg.sampling.temperature == 0 else f"temperature {cfg.sampling.temperature}"
    print(f"{cfg.model} on {args.env}/{args.split}: {len(tasks)} episodes, max steps {max_steps}, "
          f"{min(cfg.workers, len(tasks))} at once, {decoding}, max new tokens {cfg.sampling.max_new_tokens}, "
          f"thinking {'on' if cfg.prompt.thinking else 'off'} -> {out}")
    with EnvPool(args.env, cfg.env_kwargs, min(cfg.workers, len(tasks))) as envs:  # started while the model loads
        policy = make_policy(args)
        try:
            result = evaluate_agent(policy, args.env, tasks, cfg, envs=envs)
        finally:
            policy.close()
    row = {"model": cfg.model, "env": args.env, "split": args.split, **result.aggregates}
    print(format_table([row], SUMMARY_COLUMNS))
    by_task = result.aggregates["by_task"]
    if len(by_task) > 1:
        rows = [{"task": name, **agg} for name, agg in by_task.items()]
        print(format_table(rows, [("task", "task"), ("episodes", "episodes"), ("success_rate", "success"),
                                  ("mean_score", "score")]))
    if result.timing.get("env_restarts"):
        print(f"environment restarts: {result.timing['env_restarts']} (a simulator process died; its episode was replayed)")
    print(f"wrote {result.episodes_path} and {result.summary_path}")
    return 0

"""ALFWorld (text engine): the paper's household benchmark, over the `alfworld` package's TextWorld games.

    pip install 'actrl[alfworld]'                  # alfworld + textworld[pddl] (~4 min: compiles fast-downward)
    export ALFWORLD_DATA=~/alfworld && alfworld-download
    actrl collect --env alfworld --split train --num 200 --out runs/alf/experts.jsonl
    actrl eval agent --env alfworld --split valid_seen ...   # ID (140 games); valid_unseen: OOD (134)

Each game is a `game.tw-pddl` (PDDL domain + problem + text grammar) beside the `traj_data.json`
the handcoded expert reads, under `$ALFWORLD_DATA/json_2.1.1/<split>/<task>/<trial>/`. The adapter
plays it with TextWorld's `PddlEnv` wrapped by alfworld's own `AlfredDemangler`/`AlfredInfos`
(exactly what `AlfredTWEnv` does), and takes expert actions from alfworld's `AlfredExpert`.
The same class reads the offline games of `actrl.envs.alfworld_gen` (registered as
"alfworld_generated"; their results are never ALFWorld numbers).

Choices the paper and the package leave open:
1. Splits: train / valid_seen (in-distribution) / valid_unseen (out-of-distribution); "dev" and
   "test" are accepted as aliases of valid_seen and valid_unseen, and `Task.split` always holds
   the ALFWorld name.
2. Games are selected as `AlfredTWEnv.collect_game_files` does (skip 'movable' and 'Sliced'
   trials, other task types, and games marked unsolvable), but a split with trajectories and no
   game files is an error naming the download step, not an empty list.
3. Task.name is the game's path under its split ("<task-type>-<obj>-...-<scene>/<trial>");
   `tasks(split, task_names)` accepts task types (e.g. "pick_two_obj_and_place") or game names,
   and lists games round-robin over task types, so the first N tasks mix all six types.
4. Observation.task_description is the "Your task is to: ..." sentence; Observation.text is the
   room description, without TextWorld's welcome banner.
5. An action equal to an admissible command after `normalize_action` (case, spaces, final period)
   is sent as that command; anything else is sent verbatim ("Nothing happens.", valid=False).
6. Score is 100 once the goal holds (won), else 0; reward is the change in score.
7. Experts: "handcoded" (alfworld's HandCodedTWAgent, stepped in a private copy of the game with
   Python's `random` seeded per game so the sequence is reproducible), "planner" (fast-downward's
   plan from the initial state), "walkthrough" (the sequence stored in game.tw-pddl by
   alfworld-generate). The expert sequence is computed once per game and cached.
8. Steps: `default_max_steps` = 50, the ALFWorld convention the paper follows; the evaluator
   enforces it, the environment never truncates.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.metadata
import json
import os
import random
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from actrl.actions import normalize_action
from actrl.envs.base import (
    EnvError,
    EnvUnavailableError,
    Observation,
    StepResult,
    Task,
    TextEnv,
    UnknownSplitError,
    UnknownTaskError,
)

SPLITS = ("train", "valid_seen", "valid_unseen")
SPLIT_ALIASES = {"dev": "valid_seen", "test": "valid_unseen"}
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
EXPERTS = ("handcoded", "planner", "walkthrough")
#: games per evaluation split in the released data after the standard filtering (ALFWorld paper)
PUBLISHED_GAME_COUNTS = {"valid_seen": 140, "valid_unseen": 134}
INSTALL_HINT = "pip install 'actrl[alfworld]' (alfworld and textworld[pddl]; compiles for ~4 minutes)"
DOWNLOAD_HINT = "export ALFWORLD_DATA=/path/to/alfworld_data && alfworld-download"
EXPERT_MAX_STEPS = 150  # the handcoded expert gives up after this many steps

# TextWorld's PDDL engine is not thread-safe: fast-downward's translator keeps module-level state
# (and rewrites sys.argv) and the text grammar shares one TatSu parser. Every load and step of
# every instance in the process takes this lock (threads still overlap the rest of their work).
ENGINE_LOCK = threading.RLock()


def require_alfworld() -> None:
    """Raise EnvUnavailableError with the install command when alfworld or its planner is missing."""
    try:
        import alfworld  # noqa: F401
        import fast_downward  # noqa: F401
        import textworld  # noqa: F401
    except ImportError as e:
        raise EnvUnavailableError(f"ALFWorld needs the '{e.name}' package: {INSTALL_HINT}") from None


def alfworld_version() -> str:
    try:
        return importlib.metadata.version("alfworld")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def command_grammar() -> str:
    """Which placement command the installed alfworld uses: 'move X to Y' (>=0.4) or 'put X in/on Y'."""
    require_alfworld()
    try:  # alfworld >= 0.4 ships its logic files; older releases read them from the download
        from alfworld.info import ALFRED_TWL2_PATH
    except ImportError:
        ALFRED_TWL2_PATH = default_data_dir().parent / "logic" / "alfred.twl2"
    if not Path(ALFRED_TWL2_PATH).exists():
        return "unknown (no alfred.twl2)"
    text = Path(ALFRED_TWL2_PATH).read_text()
    return "move {o} to {r}" if 'template :: "move {o} to {r}"' in text else "put {o} in/on {r}"


def resolve_split(split: str) -> str:
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        names = ", ".join(SPLITS + tuple(SPLIT_ALIASES))
        raise UnknownSplitError(f"unknown ALFWorld split '{split}'; expected one of {names}")
    return split


def task_type_of(game_name: str) -> str:
    """'pick_two_obj_and_place-Apple-None-Fridge-12/trial_x' -> 'pick_two_obj_and_place'."""
    return game_name.split("/", 1)[0].split("-", 1)[0]


def default_data_dir() -> Path:
    """$ALFWORLD_DATA/json_2.1.1 (alfworld-download's layout; ~/.cache/alfworld when unset)."""
    root = Path(os.environ.get("ALFWORLD_DATA", Path.home() / ".cache" / "alfworld")).expanduser()
    return root / "json_2.1.1"


def interleave_task_types(games: list[str]) -> list[str]:
    """Round-robin over task types (each type's games in name order), so any prefix mixes types.

    >>> interleave_task_types(["b-1/t", "b-2/t", "a-1/t", "c-1/t"])
    ['a-1/t', 'b-1/t', 'c-1/t', 'b-2/t']
    """
    by_type: dict[str, list[str]] = {}
    for g in sorted(games):
        by_type.setdefault(task_type_of(g), []).append(g)
    columns = [by_type[t] for t in sorted(by_type)]
    return [col[i] for i in range(max(map(len, columns), default=0)) for col in columns if i < len(col)]


def find_games(split_dir: Path, task_types: tuple[str, ...] = TASK_TYPES) -> list[str]:
    """Game names (paths under `split_dir`) that ALFWorld plays in this split, sorted."""
    games, missing = [], 0
    for traj in sorted(split_dir.glob("*/*/traj_data.json")):
        rel = traj.parent.relative_to(split_dir).as_posix()
        if "movable" in rel or "Sliced" in rel or task_type_of(rel) not in task_types:
            continue
        game = traj.parent / "game.tw-pddl"
        if not game.exists():
            missing += 1
            continue
        try:
            solvable = json.loads(game.read_text()).get("solvable")
        except json.JSONDecodeError as e:
            raise EnvError(f"{game}: not valid JSON ({e}); delete it and rerun {DOWNLOAD_HINT}") from None
        if solvable:
            games.append(rel)
    if missing and not games:
        raise EnvUnavailableError(
            f"{split_dir}: {missing} trials have traj_data.json but no game.tw-pddl; "
            f"the TextWorld game files are part of the download: {DOWNLOAD_HINT}"
        )
    if missing:
        warnings.warn(f"{split_dir}: {missing} trials without game.tw-pddl were skipped", stacklevel=2)
    return games


@contextlib.contextmanager
def seeded_random(seed: int):
    """Seed Python's global `random` (the handcoded expert draws from it) and restore it after."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def _game_seed(game_name: str, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{game_name}".encode()).hexdigest()[:8], 16)


def make_textworld_env(expert: str | None = None):
    """PddlEnv wrapped like AlfredTWEnv: demangled names, game file info, optionally the expert."""
    require_alfworld()
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredExpert, AlfredInfos
    from textworld.envs import PddlEnv

    infos = textworld.EnvInfos(admissible_commands=True, won=True, extras=["gamefile"])
    if expert == "handcoded":
        infos.extras.append("expert_plan")
    env = AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))
    if expert is not None:
        env = AlfredExpert(env, expert_type=expert)
    return env


@contextlib.contextmanager
def _translating():
    argv = list(sys.argv)
    with ENGINE_LOCK:
        try:
            yield
        finally:
            sys.argv[:] = argv


def load_and_reset(tw_env, game_file: Path):
    """Load a game into a wrapped PddlEnv and reset it (serialised: the PDDL translator is global)."""
    with _translating():
        try:
            tw_env.load(str(game_file))
            return tw_env.reset()
        except SystemExit:  # fast-downward's translator exits on a malformed problem
            raise EnvError(f"{game_file}: fast-downward could not translate its PDDL problem") from None


def play_expert(
    game_file: Path,
    expert: str = "handcoded",
    seed: int = 0,
    key: str = "",
    max_steps: int = EXPERT_MAX_STEPS,
) -> tuple[list[str], bool]:
    """(expert actions, won) for one game from its initial state; reproducible for a given (seed, key).

    `key` names the game (its path under the split) so the handcoded expert's random draws do not
    depend on where the game file lies.
    """
    if expert == "walkthrough":
        walkthrough = json.loads(Path(game_file).read_text()).get("walkthrough")
        if not walkthrough:
            raise EnvError(f"{game_file}: no stored walkthrough; use expert='handcoded' or 'planner'")
        return list(walkthrough), True  # replay decides whether it wins
    if expert not in EXPERTS:
        raise EnvError(f"unknown ALFWorld expert '{expert}'; expected one of {', '.join(EXPERTS)}")
    from alfworld.agents.expert import HandCodedAgentFailed

    env = make_textworld_env(expert)
    with seeded_random(_game_seed(key, seed)):
        state = load_and_reset(env, Path(game_file))
        if expert == "planner":
            return list(state["extra.expert_plan"]), True  # a plan, checked when replayed
        actions: list[str] = []
        won = bool(state["won"])
        try:
            while not won and len(actions) < max_steps:
                action = state["extra.expert_plan"][0]
                with ENGINE_LOCK:
                    state, _, _ = env.step(action)
                actions.append(action)
                won = bool(state["won"])
        except HandCodedAgentFailed:
            pass  # the expert ran out of subgoals: not won
        except Exception as e:  # AlfredExpert turns HandCodedAgentTimeout into Exception("Timeout")
            if str(e) != "Timeout":
                raise
    return actions, won


def split_intro(feedback: str) -> tuple[str, str]:
    """TextWorld's intro -> (task description, room description)."""
    body = feedback.split("=-", 2)[-1] if "-= Welcome" in feedback else feedback
    room, _, task = body.partition("Your task is to:")
    return task.strip(), room.strip()


class AlfWorldEnv(TextEnv):
    """ALFWorld's TextWorld games from a directory laid out like `$ALFWORLD_DATA/json_2.1.1`."""

    name = "alfworld"
    default_max_steps = 50

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        expert: str = "handcoded",
        task_types: list[str] | None = None,
        expert_seed: int = 0,
    ) -> None:
        if expert not in EXPERTS:
            raise EnvError(f"unknown ALFWorld expert '{expert}'; expected one of {', '.join(EXPERTS)}")
        bad = [t for t in task_types or [] if t not in TASK_TYPES]
        if bad:
            near = difflib.get_close_matches(bad[0], TASK_TYPES, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; expected some of {', '.join(TASK_TYPES)}"
            raise UnknownTaskError(f"unknown ALFWorld task type '{bad[0]}'{hint}")
        require_alfworld()
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        self._check_data_dir()
        self.expert = expert
        self.expert_seed = expert_seed
        self.task_types = tuple(task_types) if task_types else TASK_TYPES
        self._games: dict[str, list[str]] = {}
        self._expert_cache: dict[str, list[str]] = {}
        self._env = None
        self._task: Task | None = None
        self._state: Any = None
        self._won = False

    def _check_data_dir(self) -> None:
        if not self.data_dir.is_dir():
            raise EnvUnavailableError(f"ALFWorld data not found at {self.data_dir}: {DOWNLOAD_HINT}")
        absent = [s for s in SPLITS if not (self.data_dir / s).is_dir()]
        if absent:
            raise EnvUnavailableError(
                f"ALFWorld data at {self.data_dir} is incomplete (no {', '.join(absent)}/): {DOWNLOAD_HINT}"
            )

    # ------------------------------------------------------------------ tasks
    def games(self, split: str) -> list[str]:
        split = resolve_split(split)
        if split not in self._games:
            self._games[split] = find_games(self.data_dir / split, self.task_types)
            expected = PUBLISHED_GAME_COUNTS.get(split)
            real = self.data_dir.name == "json_2.1.1" and self.task_types == TASK_TYPES
            if real and expected and len(self._games[split]) != expected:
                warnings.warn(
                    f"{self.data_dir / split}: {len(self._games[split])} games, the published split has "
                    f"{expected}; results will not be comparable",
                    stacklevel=2,
                )
        return self._games[split]

    def task_names(self) -> list[str]:
        """Every game of every split (the task types are `self.task_types`)."""
        return sorted({g for split in SPLITS for g in self.games(split)})

    def tasks(self, split: str, task_names: list[str] | None = None) -> list[Task]:
        split = resolve_split(split)
        games = self.games(split)
        if task_names:
            known = set(games)
            for n in task_names:
                if n not in self.task_types and n not in known:
                    near = difflib.get_close_matches(n, list(self.task_types) + games, n=1)
                    hint = f"; did you mean '{near[0]}'?" if near else ""
                    raise UnknownTaskError(f"'{n}' is neither an ALFWorld task type nor a {split} game{hint}")
            wanted = set(task_names)
            games = [g for g in games if g in wanted or task_type_of(g) in wanted]
        return [Task(env=self.name, name=g, variation=0, split=split) for g in interleave_task_types(games)]

    def game_file(self, task: Task) -> Path:
        split = resolve_split(task.split)
        path = self.data_dir / split / task.name / "game.tw-pddl"
        if task.env != self.name or not path.exists():
            raise UnknownTaskError(
                f"no ALFWorld game '{task.name}' in {self.data_dir / split} (task {task.id})"
            )
        return path

    # ------------------------------------------------------------------ episode
    def reset(self, task: Task) -> Observation:
        path = self.game_file(task)
        if self._env is None:
            self._env = make_textworld_env()
        self._state = load_and_reset(self._env, path)
        self._task, self._won = task, bool(self._state["won"])
        description, room = split_intro(self._state["feedback"])
        return Observation(task_description=description, text=room, info={"game_file": str(path)})

    def _require_episode(self) -> None:
        if self._task is None:
            raise EnvError("call reset(task) before step()")

    def step(self, action: str) -> StepResult:
        self._require_episode()
        admissible = list(self._state["admissible_commands"])
        by_norm = {normalize_action(c): c for c in admissible}
        command = by_norm.get(normalize_action(action), action.strip())
        with ENGINE_LOCK:
            self._state, _, _ = self._env.step(command)
        won = bool(self._state["won"])
        reward = 100.0 if won and not self._won else 0.0
        self._won = self._won or won
        return StepResult(
            observation=self._state["feedback"].strip(),
            reward=reward,
            done=self._won,
            won=self._won,
            score=100.0 if self._won else 0.0,
            valid=command in admissible,
        )

    def admissible_actions(self) -> list[str]:
        self._require_episode()
        return list(self._state["admissible_commands"])

    def expert_actions(self) -> list[str]:
        self._require_episode()
        task = self._task
        if task.id not in self._expert_cache:
            actions, _ = play_expert(self.game_file(task), self.expert, self.expert_seed, key=task.name)
            self._expert_cache[task.id] = actions
        return list(self._expert_cache[task.id])

    def versions(self) -> dict[str, str]:
        try:
            textworld = importlib.metadata.version("textworld")
        except importlib.metadata.PackageNotFoundError:
            textworld = "not installed"
        return {
            "alfworld": alfworld_version(),
            "textworld": textworld,
            "alfworld_command_grammar": command_grammar(),
            "alfworld_expert": self.expert,
            "alfworld_data": str(self.data_dir),
        }

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

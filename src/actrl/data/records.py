"""Records that flow between stages: expert trajectories (D_expert) and critic pairs (D_critic).

Files are JSONL, one record per line, appended and flushed as they are produced so a killed
stage loses at most the line being written; `read_jsonl` names the file and line of anything
malformed, and ignores a torn last line only when asked to (resume). `steps_dataset` and
`pairs_dataset` give the same data as Hugging Face `datasets.Dataset`s (one row per state).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class RecordError(ValueError):
    """A data file is missing, empty or malformed; the message names the file and line."""


@dataclass
class State:
    """What the policy conditions on: task description, earlier (observation, action) pairs, now."""

    task_description: str
    history: list[tuple[str, str]]  # [(observation_i, action_i)] for i < t
    observation: str  # o_t
    admissible: list[str] | None = None  # admissible actions at o_t, when recorded

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_description": self.task_description,
            "history": [list(h) for h in self.history],
            "observation": self.observation,
            "admissible": self.admissible,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> State:
        return cls(
            task_description=d["task_description"],
            history=[(str(o), str(a)) for o, a in d.get("history", [])],
            observation=d["observation"],
            admissible=d.get("admissible"),
        )


@dataclass
class Step:
    """One expert step: the observation it was taken at, the expert action, what followed."""

    observation: str
    action: str  # the expert action a_t^*
    reward: float
    score: float  # episode score after the action (0-100)
    done: bool
    admissible: list[str] | None = None


@dataclass
class Trajectory:
    """An expert episode of one task; `steps[t].observation` is o_t, `steps[t].action` is a_t^*."""

    task: dict[str, Any]  # Task.to_dict()
    task_description: str
    steps: list[Step]
    final_score: float
    won: bool
    meta: dict[str, Any] = field(default_factory=dict)  # env versions, expert kind

    @property
    def task_id(self) -> str:
        t = self.task
        return f"{t['env']}/{t['name']}/{t['split']}/{t['variation']}"

    def states(self) -> Iterator[tuple[int, State, str]]:
        """(t, state s_t, expert action a_t^*) for every step."""
        history: list[tuple[str, str]] = []
        for t, step in enumerate(self.steps):
            yield t, State(self.task_description, list(history), step.observation, step.admissible), step.action
            history.append((step.observation, step.action))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        return cls(
            task=d["task"],
            task_description=d["task_description"],
            steps=[Step(**s) for s in d["steps"]],
            final_score=float(d["final_score"]),
            won=bool(d["won"]),
            meta=d.get("meta", {}),
        )


@dataclass
class CriticPair:
    """(state, expert action, alternative) with the order they are shown in (ACT's D_critic).

    expert_position is 1 when the expert action is "Action 1" in the critic prompt, else 2;
    it is drawn once per pair from a seeded generator and recorded, so every stage that reads
    the pair shows the same order.
    """

    pair_id: str  # "<task_id>#<t>#<k>"
    task_id: str
    t: int
    state: State
    expert_action: str
    alternative: str
    expert_position: int  # 1 or 2
    alternative_source: str = "sampled"  # sampled | admissible_resample | admissible_likelihood
    alternative_admissible: bool | None = None  # None: environment did not list admissible actions

    def __post_init__(self) -> None:
        if self.expert_position not in (1, 2):
            raise RecordError(f"pair {self.pair_id}: expert_position must be 1 or 2, got {self.expert_position}")
        from actrl.data.prompts import bare_action, same_action

        for name in ("expert_action", "alternative"):
            if not isinstance(getattr(self, name), str) or not bare_action(getattr(self, name)):
                raise RecordError(f"pair {self.pair_id}: {name} is empty ({getattr(self, name)!r}); "
                                  "a critic pair needs two actions")
        if same_action(bare_action(self.expert_action), bare_action(self.alternative)):
            raise RecordError(
                f"pair {self.pair_id}: the alternative '{self.alternative}' is the expert action "
                f"'{self.expert_action}' (compared without <action> tags); a critic pair needs two different actions"
            )

    @property
    def options(self) -> tuple[str, str]:
        """(Action 1, Action 2) as shown in the critic prompt."""
        return self.shown(self.expert_position)

    def shown(self, expert_position: int) -> tuple[str, str]:
        """(Action 1, Action 2) with the expert action at `expert_position`: the one place the order is set."""
        if expert_position == 1:
            return self.expert_action, self.alternative
        return self.alternative, self.expert_action

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CriticPair:
        d = dict(d)
        d["state"] = State.from_dict(d["state"])
        return cls(**d)


# ----------------------------------------------------------------------------- JSONL


def read_jsonl(path: str | Path, allow_torn_tail: bool = False) -> list[dict[str, Any]]:
    """All JSON objects of a JSONL file. A malformed line raises RecordError naming file:line.

    allow_torn_tail: ignore a malformed *last* line without a newline (a write cut by a kill).
    """
    path = Path(path)
    if not path.exists():
        raise RecordError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    torn_tail = not text.endswith("\n")
    out = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if allow_torn_tail and torn_tail and i == len(lines):
                break
            msg = e.msg.removesuffix(" at")  # "Unterminated string starting at" + " at column" read "at at"
            raise RecordError(f"{path}:{i}: not valid JSON ({msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise RecordError(f"{path}:{i}: expected a JSON object, got {type(obj).__name__}")
        out.append(obj)
    return out


def _parse(path: Path, rows: list[dict[str, Any]], cls: Any, what: str) -> list[Any]:
    if not rows:
        raise RecordError(f"{path}: no {what} in file (empty)")
    out = []
    for i, row in enumerate(rows, start=1):
        try:
            out.append(cls.from_dict(row))
        except RecordError as e:
            raise RecordError(f"{path}: record {i}: {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise RecordError(f"{path}: record {i}: not a {what} record ({type(e).__name__}: {e})") from None
    return out


def read_trajectories(path: str | Path) -> list[Trajectory]:
    return _parse(Path(path), read_jsonl(path), Trajectory, "trajectory")


def read_pairs(path: str | Path) -> list[CriticPair]:
    return _parse(Path(path), read_jsonl(path), CriticPair, "critic pair")


class JsonlWriter:
    """Append-only JSONL writer that flushes and fsyncs each record (resumable stages).

    On open it drops a torn last line (left by a kill mid-write), so appending continues cleanly.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                keep = data[: data.rfind(b"\n") + 1]
                self.path.write_bytes(keep)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Write a whole file atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- datasets


def step_rows(trajectories: Iterable[Trajectory]) -> Iterator[dict[str, Any]]:
    """One row per expert state: the columns the IL/RL stages and next-action accuracy read."""
    for traj in trajectories:
        for t, state, expert_action in traj.states():
            yield {
                "task_id": traj.task_id,
                "t": t,
                "state": json.dumps(state.to_dict(), ensure_ascii=False),
                "expert_action": expert_action,
                "admissible": state.admissible or [],
            }


def steps_dataset(path: str | Path):
    """Expert trajectories JSONL -> `datasets.Dataset` of expert states (state stored as JSON)."""
    from datasets import Dataset

    return Dataset.from_list(list(step_rows(read_trajectories(path))))


def pairs_dataset(path: str | Path):
    """Critic pairs JSONL -> `datasets.Dataset` (state stored as JSON)."""
    from datasets import Dataset

    rows = []
    for p in read_pairs(path):
        d = p.to_dict()
        d["state"] = json.dumps(d["state"], ensure_ascii=False)
        rows.append(d)
    return Dataset.from_list(rows)

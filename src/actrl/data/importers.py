"""Expert trajectories D_expert from data you already have: AgentGym's AgentTraj, chat-messages JSONL.

    actrl import agenttraj AgentTraj-L/alfworld_train.json --out runs/x/experts.jsonl
    actrl import chat logs.jsonl --out runs/x/experts.jsonl --env myenv --mapping mapping.yaml
    actrl import chat logs.jsonl --out runs/x/experts.jsonl 'action_regex=<cmd>(.+?)</cmd>'

Output: `Trajectory` records like `actrl collect`'s, each with meta {"source": "import:<format>",
"env": ..., "replay_checked": false, "input": ..., "line": N}. `actrl pairs`, `actrl train il/act`,
`actrl eval next-action` and a recipe's `data.experts` read them as they are; what needs an
environment (Early Experience, agent evaluation, admissible-only alternatives) refuses them with a
one-line error (`require_environment`).

Choices:
1. A conversation is a list of turns (role, text) mapped by a `TurnMapping`: turns of `task_roles`
   and the first `task_turns` observation turns form the task description; each later observation
   turn is o_t (consecutive ones are joined) and the action turn after it gives the expert action
   a_t^* through `action_regex` (its group `action`, else group 1; None: the whole turn). A task
   turn answered directly by an action is also o_0. Observations after the last action are dropped.
2. `acknowledgement`: an action turn holding no action before the first observation is the model
   agreeing to the instructions (AgentTraj's "OK") and is skipped; any other action turn from which
   the regex extracts nothing is an error naming its line and turn, never a silently dropped step.
3. Outcome: the formats carry no score, so every trajectory is recorded `won` at score 100 on its
   last step (`won: true`: AgentTraj keeps only successful trajectories), rewards 0 before it.
4. All or nothing: the whole input is mapped before anything is written, and an existing `--out`
   is never overwritten (the same import again is a no-op; other content is an error).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actrl.config import ConfigError, deep_merge, from_dict, load_yaml, parse_overrides
from actrl.data.records import RecordError, Step, Trajectory, read_jsonl, write_jsonl


@dataclass
class TurnMapping:
    """How one input record's turns become a task description, observations o_t and expert actions a_t^*."""

    turns_field: str = "messages"
    """the record's list of turns."""
    role_key: str = "role"
    content_key: str = "content"
    task_roles: list[str] = field(default_factory=lambda: ["system"])
    """roles whose turns are (part of) the task description."""
    observation_roles: list[str] = field(default_factory=lambda: ["user"])
    action_roles: list[str] = field(default_factory=lambda: ["assistant"])
    task_turns: int = 0
    """the first N observation turns are the task description, not observations (AgentTraj: 1)."""
    action_regex: str | None = None
    """extracts the action from an action turn (group 'action', else group 1); None: the whole turn."""
    acknowledgement: bool = False
    """skip an action turn without an action before the first observation (choice 2)."""
    id_field: str | None = "id"
    """the record field naming the task; missing: 'line<N>'."""
    env: str = "imported"
    """environment name recorded in Task.env and meta."""
    env_from_id: bool = False
    """take the environment from the id's prefix: AgentTraj 'alfworld_12' -> 'alfworld'."""
    split: str = "train"
    won: bool = True
    """record every trajectory as a win (choice 3); false: score 0."""

    def validate(self) -> None:
        if self.task_turns < 0:
            raise ValueError(f"task_turns={self.task_turns}: expected >= 0")
        if not self.observation_roles or not self.action_roles:
            raise ValueError("observation_roles and action_roles: expected at least one role each")
        if self.action_regex is not None:
            try:
                re.compile(self.action_regex)
            except re.error as e:
                raise ValueError(f"action_regex '{self.action_regex}': not a regular expression ({e})") from None


#: the formats `actrl import` knows: TurnMapping fields of each (a --mapping file or key=value overrides on top)
FORMATS: dict[str, dict[str, Any]] = {
    # AgentGym AgentTraj(-L): [{"item_id": "alfworld_12", "conversations": [{"from": "human"|"gpt", "value": ...}]}]
    "agenttraj": {
        "turns_field": "conversations", "role_key": "from", "content_key": "value",
        "task_roles": [], "observation_roles": ["human"], "action_roles": ["gpt"], "task_turns": 1,
        "action_regex": r"(?s).*Action:\s*(?P<action>[^\n]*\S)", "acknowledgement": True,
        "id_field": "item_id", "env_from_id": True,
    },
    # {"id": ..., "messages": [{"role": "system"|"user"|"assistant", "content": ...}]}
    "chat": {},
}


# ----------------------------------------------------------------------------- reading


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, record) of a JSONL file or of a JSON array (AgentTraj ships arrays); bad JSON names its line."""
    if not path.exists():
        raise RecordError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    start = len(text) - len(text.lstrip())
    if not text[start:start + 1] == "[":
        lines = [i for i, line in enumerate(text.split("\n"), 1) if line.strip()]
        yield from zip(lines, read_jsonl(path), strict=True)
        return
    decoder, i, line = json.JSONDecoder(), start + 1, text.count("\n", 0, start) + 1
    while True:
        j = len(text) - len(text[i:].lstrip())
        line, i = line + text.count("\n", i, j), j
        if text[i:i + 1] == "]":
            return
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise RecordError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        yield line, obj
        line, i = line + text.count("\n", i, end), end
        j = len(text) - len(text[i:].lstrip())
        line, i = line + text.count("\n", i, j), j
        if text[i:i + 1] == ",":
            i += 1
        elif text[i:i + 1] != "]":
            raise RecordError(f"{path}:{line}: not valid JSON (expected ',' or ']' after a record)")


# ----------------------------------------------------------------------------- mapping


def extract_action(text: str, pattern: str | None) -> str | None:
    """The action in an action turn, or None when the pattern finds none.

    >>> extract_action("Thought: the key is here.\\nAction: take key", FORMATS["agenttraj"]["action_regex"])
    'take key'
    >>> extract_action("OK", FORMATS["agenttraj"]["action_regex"]) is None
    True
    """
    if pattern is None:
        return text.strip() or None
    m = re.search(pattern, text)
    if not m:
        return None
    action = m.group("action") if "action" in m.re.groupindex else (m.group(1) if m.re.groups else m.group(0))
    return (action or "").strip() or None


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def conversation_to_trajectory(record: Any, m: TurnMapping, where: str, meta: dict[str, Any]) -> Trajectory:
    """One input record -> one expert Trajectory (choices 1-3); RecordError naming `where` and the turn."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    turns = record.get(m.turns_field)
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"{where}: no '{m.turns_field}' list of turns (wrong format? the formats: {', '.join(FORMATS)})")
    task_parts: list[str] = []
    steps: list[Step] = []
    observation: str | None = None
    observations_seen = 0
    for k, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get(m.role_key), str) or not isinstance(turn.get(m.content_key), str):
            raise RecordError(f"{where}: turn {k}: expected {{'{m.role_key}': str, '{m.content_key}': str}}, got {_preview(json.dumps(turn))}")
        role, text = turn[m.role_key], turn[m.content_key]
        if role in m.task_roles:
            task_parts.append(text.strip())
        elif role in m.observation_roles:
            observations_seen += 1
            if observations_seen <= m.task_turns:
                task_parts.append(text.strip())
            else:
                observation = text.strip() if observation is None else f"{observation}\n{text.strip()}"
        elif role in m.action_roles:
            action = extract_action(text, m.action_regex)
            if action is None:
                if m.acknowledgement and not steps and observation is None:
                    continue
                how = f"action_regex '{m.action_regex}'" if m.action_regex else "the mapping"
                raise RecordError(f"{where}: turn {k} ({role}): {how} extracts no action from '{_preview(text)}'")
            if observation is None:
                if steps or not task_parts:
                    raise RecordError(f"{where}: turn {k} ({role}): an action without an observation before it")
                observation = task_parts[-1]  # the task turn answered directly is also o_0 (choice 1)
            steps.append(Step(observation, action, 0.0, 0.0, False))
            observation = None
        else:
            known = ", ".join(m.task_roles + m.observation_roles + m.action_roles)
            raise RecordError(f"{where}: turn {k}: role '{role}' is not one of the mapping's roles ({known}); "
                              "set task_roles / observation_roles / action_roles")
    if not steps:
        raise RecordError(f"{where}: no action turn ({', '.join(m.action_roles)}) with an action")
    task_description = "\n\n".join(p for p in task_parts if p)
    if not task_description:
        raise RecordError(f"{where}: no task description; set task_roles (e.g. [system]) or task_turns: 1")
    last, score = steps[-1], 100.0 if m.won else 0.0
    last.reward, last.score, last.done = score, score, True
    ident = record.get(m.id_field) if m.id_field else None
    name = str(ident) if ident not in (None, "") else f"line{meta['line']}"
    env = m.env
    if m.env_from_id:
        if "_" not in name:
            raise RecordError(f"{where}: id '{name}' does not name an environment as '<env>_<n>'; set env=NAME and env_from_id=false")
        env = name.rsplit("_", 1)[0]
    task = {"env": env, "name": name, "variation": 0, "split": m.split}
    return Trajectory(task, task_description, steps, score, m.won, {**meta, "env": env})


def import_file(path: str | Path, fmt: str, mapping: TurnMapping) -> list[Trajectory]:
    """Every record of `path` as a Trajectory; the first unmappable record raises RecordError (file:line)."""
    path = Path(path)
    out, seen = [], {}
    for line, record in _records(path):
        meta = {"source": f"import:{fmt}", "input": str(path), "line": line, "replay_checked": False,
                "expert": "imported", "admissible": False, "params": {}, "versions": {}}
        traj = conversation_to_trajectory(record, mapping, f"{path}:{line}", meta)
        if traj.task_id in seen:
            raise RecordError(f"{path}:{line}: task '{traj.task['name']}' was already on line {seen[traj.task_id]}; each task once per file")
        seen[traj.task_id] = line
        out.append(traj)
    if not out:
        raise RecordError(f"{path}: no records (empty)")
    return out


def write_trajectories(trajectories: list[Trajectory], out: str | Path) -> bool:
    """Write `out` atomically; False when it already holds exactly these records (choice 4)."""
    out = Path(out)
    records = [t.to_dict() for t in trajectories]
    if out.exists() and out.stat().st_size:
        try:
            same = read_jsonl(out) == json.loads(json.dumps(records))
        except RecordError:
            same = False
        if same:
            return False
        raise RecordError(f"{out}: exists with other content; use another --out or delete it (it is never overwritten)")
    write_jsonl(out, records)
    return True


# ----------------------------------------------------------------------------- who needs an environment


def imported_source(trajectories: list[Trajectory]) -> str | None:
    """'import:<format>' when any trajectory was imported rather than collected, else None."""
    return next((t.meta["source"] for t in trajectories if str(t.meta.get("source", "")).startswith("import:")), None)


def require_environment(path: str | Path, trajectories: list[Trajectory], what: str) -> None:
    """RecordError when `what` (e.g. 'Early Experience executes actions') meets imported trajectories."""
    source = imported_source(trajectories)
    if source:
        raise RecordError(f"{path}: trajectories from {source} were not collected from an environment; {what}, "
                          "which needs one: collect with `actrl collect --env NAME`, or leave it out")


# ----------------------------------------------------------------------------- CLI


def mapping_for(fmt: str, mapping_file: str | None, overrides: list[str], env: str | None, split: str | None) -> TurnMapping:
    """The format's preset, then the mapping YAML, then key=value overrides and --env / --split."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown import format '{fmt}'; expected one of {', '.join(FORMATS)}")
    data = deep_merge(dict(FORMATS[fmt]), load_yaml(mapping_file) if mapping_file else {})
    data = deep_merge(data, parse_overrides(overrides))
    if env:
        data.update(env=env, env_from_id=False)
    if split:
        data["split"] = split
    return from_dict(TurnMapping, data, mapping_file or f"actrl import {fmt}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=list(FORMATS), help="agenttraj (AgentGym AgentTraj) or chat (messages JSONL)")
    p.add_argument("input", help="the file to import (JSONL, or a JSON array)")
    p.add_argument("--out", required=True, help="expert trajectories JSONL to write (never overwritten)")
    p.add_argument("--env", help="environment name to record (default: agenttraj from item_id, chat 'imported')")
    p.add_argument("--split", help="split to record: train (default), dev, test")
    p.add_argument("--mapping", help="YAML with TurnMapping fields (action_regex, task_roles, ...)")
    p.add_argument("overrides", nargs="*", help="TurnMapping key=value, e.g. 'action_regex=<cmd>(.+?)</cmd>' task_turns=1")


def run(args: argparse.Namespace) -> int:
    mapping = mapping_for(args.format, args.mapping, args.overrides, args.env, args.split)
    trajectories = import_file(args.input, args.format, mapping)
    written = write_trajectories(trajectories, args.out)
    steps = sum(len(t.steps) for t in trajectories)
    envs = ", ".join(sorted({t.task["env"] for t in trajectories}))
    state = "wrote" if written else "unchanged (already imported):"
    print(f"{state} {args.out}: {len(trajectories)} trajectories, {steps} expert steps from {args.input} "
          f"({args.format}; env {envs}, split {mapping.split}; outcome recorded as {'won' if mapping.won else 'lost'}, no replay check)")
    return 0


__all__ = ["FORMATS", "TurnMapping", "conversation_to_trajectory", "extract_action", "import_file",
           "imported_source", "require_environment", "write_trajectories"]

"""Next-action accuracy on held-out expert states: the paper's v1 ScienceWorld metric.

    actrl eval next-action --model runs/x/stages/il --experts runs/x/held_out.jsonl --out runs/x/eval/next_action.json

At every expert state s_t of the held-out trajectories (JSONL from `actrl collect`) the policy
generates one action with the action prompt, batched over all states; accuracy is the share whose
parsed action is the expert action a_t^* under `same_action` (the definition the RL reward uses).
Also reported: format_failure_rate (no <action> tag) and, where the trajectories recorded the
admissible actions, admissible_rate (share of predictions the environment listed).

With --out F, predictions are appended to F's stem + .predictions.jsonl as chunks of states finish
(a rerun skips states already predicted) and the metrics go to F.

Choices the paper left open:
1. A format failure counts as a wrong prediction (it stays in the accuracy denominator).
2. admissible_rate is over states with recorded admissible actions; a format failure counts as
   not admissible. It is NaN (printed "-") when no state recorded them.
3. Greedy decoding, 48 new tokens (512 with thinking), stop after </action>.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from actrl.config import ConfigError, to_dict
from actrl.data.prompts import PromptConfig, action_messages, parse_action, same_action
from actrl.data.records import JsonlWriter, State, Trajectory, read_jsonl, read_trajectories
from actrl.eval.rollouts import default_sampling  # an action reply decodes alike in both evaluations
from actrl.models.generation import Generator, SamplingConfig


@dataclass
class NextActionConfig:
    """Next-action accuracy (`actrl eval next-action`)."""

    prompt: PromptConfig = field(default_factory=PromptConfig)
    sampling: SamplingConfig = field(default_factory=default_sampling)
    """greedy, stop after the action tag; `for_prompt` gives a thinking prompt room to reason."""
    chunk_states: int = 256
    """states generated together, then written (the unit of resume)."""
    max_states: int | None = None
    """evaluate only the first this-many states (None: all)."""

    @classmethod
    def for_prompt(cls, prompt: PromptConfig, batch_size: int = 8) -> NextActionConfig:
        """The default decoding for `prompt` (512 new tokens when it asks for reasoning)."""
        sampling = default_sampling(prompt.thinking)
        sampling.batch_size = batch_size
        return cls(prompt=prompt, sampling=sampling)

    def validate(self) -> None:
        if self.sampling.n != 1:
            raise ValueError(f"sampling.n={self.sampling.n}: one prediction per state; expected 1")
        if self.chunk_states < 1:
            raise ValueError(f"chunk_states={self.chunk_states}: expected >= 1")
        if self.max_states is not None and self.max_states < 1:
            raise ValueError(f"max_states={self.max_states}: expected >= 1")


def next_action_metrics(
    completions: Sequence[str], expert_actions: Sequence[str], admissible: Sequence[list[str] | None]
) -> dict[str, float]:
    """Accuracy, format-failure rate and admissible rate of completions against expert actions.

    >>> m = next_action_metrics(["<action>open door</action>", "go north", "<action>look</action>"],
    ...                         ["Open door", "go north", "inventory"], [None, None, ["look", "inventory"]])
    >>> m["accuracy"], m["format_failure_rate"], m["admissible_rate"]
    (0.3333333333333333, 0.3333333333333333, 1.0)
    """
    if not (len(completions) == len(expert_actions) == len(admissible)):
        raise ValueError("completions, expert_actions and admissible must have the same length")
    if not completions:
        raise ValueError("no states to score")
    predicted = [parse_action(c) for c in completions]
    correct = sum(p is not None and same_action(p, e) for p, e in zip(predicted, expert_actions, strict=True))
    listed = [(p, adm) for p, adm in zip(predicted, admissible, strict=True) if adm]
    in_list = sum(p is not None and any(same_action(p, a) for a in adm) for p, adm in listed)
    n = len(completions)
    return {
        "accuracy": correct / n,
        "format_failure_rate": sum(p is None for p in predicted) / n,
        "admissible_rate": in_list / len(listed) if listed else math.nan,
        "states": n,
        "states_with_admissible": len(listed),
    }


def expert_states(trajectories: Sequence[Trajectory]) -> list[tuple[str, State, str]]:
    """(state key "<task_id>#<t>", state s_t, expert action a_t^*) for every expert step."""
    return [(f"{traj.task_id}#{t}", s, a) for traj in trajectories for t, s, a in traj.states()]


def evaluate_next_action(
    generator: Generator,
    trajectories: Sequence[Trajectory],
    cfg: NextActionConfig,
    predictions_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate one action per expert state and score it; resumes from `predictions_path`."""
    states = expert_states(trajectories)[: cfg.max_states]
    key = json.dumps({"prompt": to_dict(cfg.prompt), "sampling": to_dict(cfg.sampling)}, sort_keys=True)
    done: dict[str, str] = {}
    path = Path(predictions_path) if predictions_path else None
    if path and path.exists():
        for i, row in enumerate(read_jsonl(path, allow_torn_tail=True), start=1):
            if row.get("settings") != key:
                raise ConfigError(f"{path}: line {i} was written with other prompt/decoding settings; "
                                  "use another --out or delete the file")
            done[row["key"]] = row["completion"]
    todo = [s for s in states if s[0] not in done]
    writer = JsonlWriter(path) if path and todo else None
    bar = tqdm(total=len(states), initial=len(states) - len(todo), desc="next-action", unit="state",
               disable=not progress)
    try:
        for c in range(0, len(todo), cfg.chunk_states):
            chunk = todo[c : c + cfg.chunk_states]
            outs = generator.generate([action_messages(s, cfg.prompt) for _, s, _ in chunk], cfg.sampling)
            for (k, _, expert), o in zip(chunk, outs, strict=True):
                done[k] = o[0]
                if writer:
                    action = parse_action(o[0])
                    writer.write({"key": k, "expert_action": expert, "completion": o[0], "action": action,
                                  "correct": action is not None and same_action(action, expert), "settings": key})
            bar.update(len(chunk))
    finally:
        bar.close()
        if writer:
            writer.close()
    return next_action_metrics([done[k] for k, _, _ in states], [a for _, _, a in states],
                               [s.admissible for _, s, _ in states])


def next_action_accuracy(
    generator: Generator,
    experts: str | Path | Sequence[Trajectory],
    prompt: PromptConfig,
    batch_size: int = 8,
    predictions_path: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Next-action accuracy with the default decoding (greedy; 512 new tokens when thinking)."""
    trajectories = read_trajectories(experts) if isinstance(experts, (str, Path)) else experts
    cfg = NextActionConfig.for_prompt(prompt, batch_size)
    return evaluate_next_action(generator, trajectories, cfg, predictions_path, progress)


# ----------------------------------------------------------------------------- CLI (actrl eval next-action)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from actrl.eval.policy import add_policy_arguments

    parser.add_argument("--experts", required=True, help="held-out expert trajectories JSONL (actrl collect)")
    parser.add_argument("--out", help="metrics JSON to write; predictions go beside it (.predictions.jsonl)")
    parser.add_argument("--max-states", type=int, help="score only the first N expert states")
    add_policy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from actrl.eval.metrics import format_table
    from actrl.eval.policy import build_config, check_policy, make_policy
    from actrl.outputs import output_file

    overrides = list(args.overrides) + ([f"max_states={args.max_states}"] if args.max_states is not None else [])
    cfg = build_config(NextActionConfig, args, overrides)
    trajectories = read_trajectories(args.experts)
    out = output_file(args.out, "--out") if args.out else None  # before the model loads
    predictions = output_file(out.with_name(out.stem + ".predictions.jsonl"), "--out companion") if out else None
    check_policy(args)
    metrics = evaluate_next_action(make_policy(args), trajectories, cfg, predictions)
    result = {"model": args.model, "experts": args.experts, **metrics, "settings": to_dict(cfg)}
    print(format_table([result], [("model", "model"), ("states", "states"), ("accuracy", "accuracy"),
                                 ("format_failure_rate", "format failures"), ("admissible_rate", "admissible")]))
    if out:
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {out} and {predictions}")
    return 0

"""Held-out pair accuracy: how often the critic picks the expert action in unseen critic pairs.

The ACT paper's warning sign for a small model is position collapse: the training reward rises
while the critic just names one position. So accuracy is reported beside the rate of picking
"Action 1" and the share of pairs whose expert action is Action 1 (the accuracy of a collapsed
critic that always says 1).

    actrl eval pairs --model runs/x/stages/act/final --pairs runs/x/pairs_heldout.jsonl
    pair_accuracy(make_generator("default"), read_pairs("pairs.jsonl"), PromptConfig(), SamplingConfig(temperature=0))

Choices the paper left open:
1. Greedy decoding by default (one answer per pair); with temperature > 0 and n > 1 every sample
   counts, so accuracy is the mean over n samples.
2. A format failure (no parseable choice) counts as wrong in `accuracy`; `pick_first_rate` is over
   parseable answers only.
3. `both_orders` (default): every pair is asked in both orders, so half the questions have the
   expert first and a critic answering by position scores exactly 50%; `both_orders_accuracy` is
   the share of pairs judged right in both orders (0 for a position-only critic) and
   `recorded_order_accuracy` the accuracy on the orders stored in the pairs file alone.
4. With `predictions_path`, every answer is written (one line per question and sample: pair_id,
   order "recorded" or "swapped", expert_position, the options as shown, the raw answer, the
   parsed choice, correct), for the viewer and for reading what the critic said.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from actrl.config import to_dict
from actrl.data.critic import critic_question, critic_sampling, parse_choice
from actrl.data.prompts import PromptConfig
from actrl.data.records import CriticPair, read_pairs
from actrl.models.generation import Generator, SamplingConfig, make_generator
from actrl.models.loading import ModelConfig


def pair_accuracy(
    model: Generator | ModelConfig | str,
    pairs: list[CriticPair],
    prompt_cfg: PromptConfig,
    sampling: SamplingConfig | None = None,
    both_orders: bool = True,
    predictions_path: str | Path | None = None,
) -> dict[str, Any]:
    """{"accuracy", "pick_first_rate", "format_failure_rate", "expert_first_share", "n", ...} over `pairs`.

    With both_orders (choice 3) also "both_orders_accuracy" and "recorded_order_accuracy".
    """
    if not pairs:
        raise ValueError("pair_accuracy: no pairs to evaluate")
    sampling = sampling or critic_sampling(prompt_cfg.thinking)
    gen = make_generator(model, thinking=prompt_cfg.thinking) if isinstance(model, (str, ModelConfig)) else model
    orders = [[p.expert_position for p in pairs]]
    if both_orders:
        orders.append([3 - p.expert_position for p in pairs])
    asked: list[tuple[CriticPair, int]] = [(p, pos) for positions in orders for p, pos in zip(pairs, positions, strict=True)]
    outputs = gen.generate([critic_question(p, pos, prompt_cfg) for p, pos in asked], sampling)
    choices = [[parse_choice(text, *p.shown(pos), prompt_cfg.critic_answer) for text in samples]
               for (p, pos), samples in zip(asked, outputs, strict=True)]
    # per question, per sample: 1 right, 0 wrong, None no parseable choice
    scored = [[None if c is None else int(c == pos) for c in row] for (_, pos), row in zip(asked, choices, strict=True)]
    if predictions_path is not None:
        write_predictions(predictions_path, asked, outputs, choices)
    answers = [(pos, r) for (_, pos), row in zip(asked, scored, strict=True) for r in row]
    parsed = [(pos, r) for pos, r in answers if r is not None]
    # the chosen option is the expert's position when right, the other one when wrong
    firsts = sum((pos == 1) == bool(r) for pos, r in parsed)
    result = {
        "accuracy": sum(r == 1 for _, r in answers) / len(answers),
        "pick_first_rate": firsts / len(parsed) if parsed else None,  # None: no parseable answer
        "format_failure_rate": (len(answers) - len(parsed)) / len(answers),
        "expert_first_share": sum(pos == 1 for _, pos in asked) / len(asked),
        "n": len(pairs),
    }
    if both_orders:
        first, second = scored[: len(pairs)], scored[len(pairs) :]
        both = [a == 1 and b == 1 for ra, rb in zip(first, second, strict=True) for a, b in zip(ra, rb, strict=True)]
        recorded = [r == 1 for row in first for r in row]
        result["both_orders_accuracy"] = sum(both) / len(both)
        result["recorded_order_accuracy"] = sum(recorded) / len(recorded)
    return result


def write_predictions(
    path: str | Path,
    asked: list[tuple[CriticPair, int]],
    outputs: list[list[str]],
    choices: list[list[int | None]],
) -> Path:
    """Every answer of a pair evaluation as JSONL (choice 4), written whole through a temp file."""
    path = Path(path)
    lines = []
    for (p, pos), samples, picked in zip(asked, outputs, choices, strict=True):
        order = "recorded" if pos == p.expert_position else "swapped"
        options = list(p.shown(pos))
        for i, (text, choice) in enumerate(zip(samples, picked, strict=True)):
            lines.append(json.dumps({
                "pair_id": p.pair_id, "task_id": p.task_id, "t": p.t, "order": order, "expert_position": pos,
                "options": options, "alternative_source": p.alternative_source, "sample": i,
                "answer": text, "choice": choice, "correct": choice == pos,
            }))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- CLI (actrl eval pairs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="hub id, 'default', or a checkpoint directory")
    parser.add_argument("--pairs", required=True, help="critic pairs JSONL")
    parser.add_argument("--thinking", action="store_true", help="ask for reasoning before the answer")
    parser.add_argument("--prefill", action="store_true",
                        help="start each answer with <answer> (for a model that rarely writes the tag itself)")
    parser.add_argument("--history-window", type=int, default=PromptConfig.history_window)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    parser.add_argument("--n", type=int, default=1, help="samples per pair (temperature > 0)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 32, or 512 with --thinking")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backend", choices=["auto", "transformers", "vllm"], default="auto")
    parser.add_argument("--recorded-order-only", action="store_true",
                        help="ask each pair only in its recorded order (default: both orders)")
    parser.add_argument("--out", default=None,
                        help="write the result as JSON here; every answer goes beside it (.predictions.jsonl)")


FORMAT_WARNING_RATE = 0.5
"""warn when at least this share of answers has no parseable choice."""


def format_warning(result: dict[str, Any], prompt_cfg: PromptConfig, sampling: SamplingConfig) -> str | None:
    """A warning naming the fix when most answers had no parseable <answer> choice, else None.

    >>> format_warning({"format_failure_rate": 1.0}, PromptConfig(), critic_sampling())
    'warning: 100% of the answers had no parseable <answer>1</answer> or <answer>2</answer> (an unclosed or missing tag); accuracy counts them as wrong. Try --prefill (start the answer with <answer>) or more --max-new-tokens (now 32)'
    """
    rate = result["format_failure_rate"]
    if rate < FORMAT_WARNING_RATE:
        return None
    fixes = [] if prompt_cfg.prefill or prompt_cfg.thinking else ["--prefill (start the answer with <answer>)"]
    fixes.append(f"more --max-new-tokens (now {sampling.max_new_tokens})")
    return (f"warning: {rate:.0%} of the answers had no parseable <answer>1</answer> or <answer>2</answer> "
            f"(an unclosed or missing tag); accuracy counts them as wrong. Try {' or '.join(fixes)}")


def run(args: argparse.Namespace) -> int:
    import sys

    from actrl.config import from_dict
    from actrl.models.loading import resolve_model
    from actrl.outputs import output_file

    # everything a user typed is checked before the model loads: configs, pairs, the output path
    prompt_cfg = from_dict(PromptConfig, {"history_window": args.history_window, "thinking": args.thinking,
                                          "prefill": args.prefill}, "options")
    sampling = critic_sampling(args.thinking)
    sampling.temperature, sampling.n, sampling.batch_size = args.temperature, args.n, args.batch_size
    if args.max_new_tokens is not None:
        sampling.max_new_tokens = args.max_new_tokens
    sampling = from_dict(SamplingConfig, to_dict(sampling), "options")
    out = output_file(args.out, "--out") if args.out else None
    predictions = output_file(out.with_name(out.stem + ".predictions.jsonl"), "--out companion") if out else None
    pairs = read_pairs(args.pairs)
    if args.model != "default":
        resolve_model(args.model)
    gen = make_generator(args.model, backend=args.backend, thinking=args.thinking)
    result = {"model": args.model, "pairs": args.pairs, **pair_accuracy(gen, pairs, prompt_cfg, sampling, both_orders=not args.recorded_order_only,
                                                                      predictions_path=predictions)}
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        out.write_text(text + "\n")
    warning = format_warning(result, prompt_cfg, sampling)
    if warning:
        print(warning, file=sys.stderr)
    return 0

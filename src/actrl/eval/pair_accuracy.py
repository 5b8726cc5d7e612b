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
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from actrl.data.prompts import PromptConfig, critic_messages
from actrl.data.records import CriticPair, read_pairs
from actrl.models.generation import Generator, SamplingConfig, make_generator
from actrl.models.loading import ModelConfig
from actrl.train.rewards import act_choice


def default_sampling(thinking: bool = False) -> SamplingConfig:
    """Greedy; long enough for the answer tag (or for reasoning when thinking is on)."""
    return SamplingConfig(temperature=0.0, max_new_tokens=512 if thinking else 32, stop=["</answer>"])


def pair_accuracy(
    model: Generator | ModelConfig | str,
    pairs: list[CriticPair],
    prompt_cfg: PromptConfig,
    sampling: SamplingConfig | None = None,
) -> dict[str, Any]:
    """{"accuracy", "pick_first_rate", "format_failure_rate", "expert_first_share", "n"} over `pairs`."""
    if not pairs:
        raise ValueError("pair_accuracy: no pairs to evaluate")
    sampling = sampling or default_sampling(prompt_cfg.thinking)
    gen = make_generator(model, thinking=prompt_cfg.thinking) if isinstance(model, (str, ModelConfig)) else model
    prompts = [critic_messages(p.state, *p.options, prompt_cfg) for p in pairs]
    outputs = gen.generate(prompts, sampling)
    correct, failures, firsts, parsed = 0, 0, 0, 0
    for pair, samples in zip(pairs, outputs, strict=True):
        for text in samples:
            choice = act_choice(text, *pair.options)
            if choice is None:
                failures += 1
                continue
            parsed += 1
            firsts += choice == 1
            correct += choice == pair.expert_position
    total = sum(len(s) for s in outputs)
    return {
        "accuracy": correct / total,
        "pick_first_rate": firsts / parsed if parsed else None,  # None: no parseable answer
        "format_failure_rate": failures / total,
        "expert_first_share": sum(p.expert_position == 1 for p in pairs) / len(pairs),
        "n": len(pairs),
    }


# ----------------------------------------------------------------------------- CLI (actrl eval pairs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="hub id, 'default', or a checkpoint directory")
    parser.add_argument("--pairs", required=True, help="critic pairs JSONL")
    parser.add_argument("--thinking", action="store_true", help="ask for reasoning before the answer")
    parser.add_argument("--history-window", type=int, default=PromptConfig.history_window)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    parser.add_argument("--n", type=int, default=1, help="samples per pair (temperature > 0)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 32, or 512 with --thinking")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backend", choices=["auto", "transformers", "vllm"], default="auto")
    parser.add_argument("--out", default=None, help="write the result as JSON here")


def run(args: argparse.Namespace) -> int:
    pairs = read_pairs(args.pairs)
    prompt_cfg = PromptConfig(history_window=args.history_window, thinking=args.thinking)
    sampling = default_sampling(args.thinking)
    sampling.temperature, sampling.n, sampling.batch_size = args.temperature, args.n, args.batch_size
    if args.max_new_tokens:
        sampling.max_new_tokens = args.max_new_tokens
    gen = make_generator(args.model, backend=args.backend, thinking=args.thinking)
    result = {"model": args.model, "pairs": args.pairs, **pair_accuracy(gen, pairs, prompt_cfg, sampling)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0

"""Seconds per ACT (GRPO) step, split into generation+scoring and update, on the default model.

Builds the ACT stage's trainer exactly as `actrl train act` does (real TWX critic pairs from
tests/data, SmolLM2-135M-Instruct), runs a few optimizer steps per setting, and prints per-step
times, tokens/s and ratios against the first setting. Nothing is asserted: speed is read, not tested.

    .venv/bin/python bench/act_step.py                       # fp32 vs bf16 autocast vs LoRA on bf16
    .venv/bin/python bench/act_step.py --steps 4 --settings fp32 bf16 --model default
    .venv/bin/python bench/act_step.py --settings bf16-trl-head bf16   # TRL's log-prob head vs actrl's
    .venv/bin/python bench/act_step.py --settings bf16-g-prefills bf16 # G prefills per prompt vs one

Run it on a quiet machine: other processes on the cores distort every number.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from datasets import Dataset
from transformers import TrainerCallback

from actrl.config import load_config
from actrl.data.records import read_pairs
from actrl.train.act import ACTConfig, act_trainer, critic_rows
from actrl.train.common import load_policy, trl_prompt
from actrl.train.trl_compat import compact_lm_head

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "data" / "twx_coin_pairs.jsonl"
SETTINGS = {
    "fp32": ["model.dtype=float32"],
    "bf16": ["model.dtype=bfloat16"],  # fp32 master weights, bf16 autocast
    "lora-bf16": ["model.dtype=bfloat16", "lora.enabled=true", "lora.r=16"],
    "fp32-gc": ["model.dtype=float32", "gradient_checkpointing=true"],
    "bf16-no-stop": ["model.dtype=bfloat16", "stop_at_closing_tag=false"],  # completions run on past </answer>
    "bf16-trl-head": ["model.dtype=bfloat16"],  # TRL's fused head scoring every position (compact_lm_head off)
    "bf16-g-prefills": ["model.dtype=bfloat16", "share_prompt_prefill=false"],  # TRL prefills each prompt G times
}
TRL_HEAD = {"bf16-trl-head"}


class GrabLogs(TrainerCallback):
    def __init__(self) -> None:
        self.logs: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append(dict(logs or {}))


def measure(model: str, setting: str, steps: int, n_pairs: int, out: Path) -> dict[str, float]:
    overrides = [
        f"output_dir={out / setting}",
        f"model.name={model}",
        "num_generations=4",
        "per_device_batch_size=8",  # 2 prompts x G=4 per step
        f"max_steps={steps}",
        "save_steps=100000",
        "prompt.history_window=2",
        "prompt.prefill=true",  # as the CPU recipes: the reply starts with <answer>
        *SETTINGS[setting],
    ]
    cfg = load_config(ACTConfig, None, overrides)
    model_, tok, peft = load_policy(cfg)
    compact_lm_head(setting not in TRL_HEAD)  # load_policy turned it on; TRL_HEAD settings measure TRL's own
    rows = critic_rows(read_pairs(PAIRS)[:n_pairs], cfg.prompt, False)
    for row in rows:
        row["prompt"], row["reply_prefix"] = trl_prompt(row["prompt"], tok, cfg.prompt.thinking)
    trainer = act_trainer(cfg, model_, tok, peft, Dataset.from_list(rows))
    gen_times: list[float] = []
    inner = trainer._generate_and_score_completions

    def timed(inputs):  # bench-only instrumentation: time generation + reward scoring
        t = time.perf_counter()
        result = inner(inputs)
        gen_times.append(time.perf_counter() - t)
        return result

    trainer._generate_and_score_completions = timed
    grab = GrabLogs()
    trainer.add_callback(grab)
    trainer.train()
    step_logs = [m for m in grab.logs if "step_time" in m]
    # the first step includes one-off warm-up (allocations, kernel selection): report the rest
    step = [m["step_time"] for m in step_logs][1:] or [m["step_time"] for m in step_logs]
    gen = gen_times[1:] or gen_times
    completion_tokens = [m["completions/mean_length"] * 8 for m in step_logs][1:] or [0.0]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "step_s": mean(step),
        "gen_s": mean(gen),
        "update_s": mean(step) - mean(gen),
        "gen_tok_per_s": mean(completion_tokens) / mean(gen),
        "completion_len": mean(completion_tokens) / 8,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--settings", nargs="+", default=["fp32", "bf16", "lora-bf16"], choices=list(SETTINGS))
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="act_step_"))
    results = {}
    try:
        for setting in args.settings:
            results[setting] = measure(args.model, setting, args.steps, args.pairs, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    base = results[args.settings[0]]
    print(f"\nACT GRPO step, model={args.model}, 2 prompts x G=4, max 32 completion tokens, "
          f"mean of steps 2..{args.steps}")
    print(f"{'setting':<13} {'step s':>7} {'gen s':>7} {'update s':>8} {'tokens/completion':>17} {'gen tok/s':>9} "
          f"{'step vs ' + args.settings[0]:>14}")
    for name, r in results.items():
        print(f"{name:<13} {r['step_s']:7.2f} {r['gen_s']:7.2f} {r['update_s']:8.2f} {r['completion_len']:17.1f} "
              f"{r['gen_tok_per_s']:9.1f} "
              f"{base['step_s'] / r['step_s']:13.2f}x")


if __name__ == "__main__":
    main()

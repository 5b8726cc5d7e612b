"""Seconds per IL (SFT) step on the default model: actrl's compact LM head vs TRL's, and other settings.

Runs the IL stage exactly as `actrl train il` does (real TWX expert states from tests/data,
SmolLM2-135M-Instruct) for a few optimizer steps per setting and prints the mean step time of
steps 2.. and ratios against the first setting. Nothing is asserted: speed is read, not tested.

    .venv/bin/python bench/il_step.py                         # TRL's head vs compact head (bf16)
    .venv/bin/python bench/il_step.py --settings bf16 bf16-packing --steps 5

Run it on a quiet machine: other processes on the cores distort every number.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

import actrl.train.il as il
from actrl.config import load_config
from actrl.train.trl_compat import compact_lm_head

EXPERTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "twx_coin_experts.jsonl"
SETTINGS = {
    "bf16-trl-head": ["model.dtype=bfloat16"],  # TRL's fused head scoring every position (compact_lm_head off)
    "bf16": ["model.dtype=bfloat16"],
    "fp32": ["model.dtype=float32"],
    "bf16-packing": ["model.dtype=bfloat16", "packing=true", "per_device_batch_size=1", "max_length=2560"],  # ~8 states per packed row
}
TRL_HEAD = {"bf16-trl-head"}


class StepTimes(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._t = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._t)


def measure(model: str, setting: str, steps: int, out: Path) -> dict[str, float]:
    cfg = load_config(il.ILConfig, None, [
        f"output_dir={out / setting}", f"model.name={model}", "per_device_batch_size=8", f"max_steps={steps}",
        "save_steps=100000", "eval_fraction=0", "prompt.history_window=2", *SETTINGS[setting],
    ])
    timer = StepTimes()
    load_policy, attach = il.load_policy, il.attach

    def load(cfg_):  # bench-only instrumentation: the head setting, and a per-step timer
        loaded = load_policy(cfg_)
        compact_lm_head(setting not in TRL_HEAD)
        return loaded

    def attach_timer(trainer, *a):
        trainer.add_callback(timer)
        return attach(trainer, *a)

    il.load_policy, il.attach = load, attach_timer
    try:
        il.train_il(cfg, str(EXPERTS))
    finally:
        il.load_policy, il.attach = load_policy, attach
        compact_lm_head(True)
    rest = timer.times[1:] or timer.times  # the first step includes one-off warm-up
    return {"step_s": sum(rest) / len(rest)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--settings", nargs="+", default=["bf16-trl-head", "bf16"], choices=list(SETTINGS))
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="il_step_"))
    results = {}
    try:
        for setting in args.settings:
            results[setting] = measure(args.model, setting, args.steps, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    base = results[args.settings[0]]["step_s"]
    print(f"\nIL SFT step, model={args.model}, 8 expert states per step, mean of steps 2..{args.steps}")
    print(f"{'setting':<14} {'step s':>7} {'vs ' + args.settings[0]:>18}")
    for name, r in results.items():
        print(f"{name:<14} {r['step_s']:7.2f} {base / r['step_s']:17.2f}x")


if __name__ == "__main__":
    main()

"""`actrl train`: run one training stage (act, il, rl) from a YAML config plus key=value overrides,
or merge a LoRA checkpoint into its base model for the next stage.

    actrl train act --config configs/act.yaml --pairs runs/x/pairs.jsonl output_dir=runs/x/stages/act
    actrl train il --config configs/il.yaml --experts runs/x/experts.jsonl model.name=runs/x/stages/act/final
    actrl train rl --config configs/rl.yaml --experts runs/x/experts.jsonl model.name=runs/x/stages/il/final
    actrl train merge-lora --adapter runs/x/stages/act/final --out runs/x/stages/act/merged

Multi-process: `accelerate launch --config_file configs/accelerate/ddp.yaml -m actrl.cli train act ...`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from actrl.config import ConfigError, load_config
from actrl.outputs import output_dir
from actrl.train.common import StageConfig

STAGES = ("act", "il", "rl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    helps = {
        "act": "ACT stage: GRPO on critic pairs (which action is better?)",
        "il": "IL stage: SFT on expert actions",
        "rl": "RL stage: GRPO on next-action generation, expert-match reward",
    }
    for stage, help_ in helps.items():
        p = sub.add_parser(stage, help=help_, description=help_)
        p.add_argument("--config", default=None, help="stage YAML (keys: the stage's config dataclass)")
        if stage == "act":
            p.add_argument("--pairs", default=None, help="critic pairs JSONL")
        else:
            p.add_argument("--experts", default=None, help="expert trajectories JSONL")
        p.add_argument("overrides", nargs="*", help="config overrides, e.g. learning_rate=1e-6 lora.enabled=true")
    merge = sub.add_parser("merge-lora", help="merge a LoRA checkpoint into its base model (for the next stage)")
    merge.add_argument("--adapter", required=True, help="LoRA checkpoint directory")
    merge.add_argument("--out", required=True, help="output directory of the merged model")


def check_stage(cfg: StageConfig, data: str | None) -> None:
    """What a stage reads and writes, checked before any weights load: output_dir, the data file, the model."""
    from actrl.models.loading import resolve_model

    output_dir(cfg.output_dir, "output_dir")
    if data and not Path(data).is_file():
        raise ConfigError(f"{data}: no such data file")
    if cfg.model.name != "default":
        resolve_model(cfg.model.name)  # a missing directory or an unreachable hub id fails here


def run(args: argparse.Namespace) -> int:
    if args.stage == "merge-lora":
        from actrl.models.loading import check_lora_adapter
        from actrl.train.common import merge_lora

        check_lora_adapter(args.adapter, "--adapter")
        print(merge_lora(args.adapter, output_dir(args.out, "--out")))
        return 0
    if args.stage == "act":
        from actrl.train.act import ACTConfig, train_act

        cfg, data, train = load_config(ACTConfig, args.config, args.overrides), args.pairs, train_act
        data = data or cfg.pairs
    elif args.stage == "il":
        from actrl.train.il import ILConfig, train_il

        cfg, data, train = load_config(ILConfig, args.config, args.overrides), args.experts, train_il
    else:
        from actrl.train.rl import RLConfig, train_rl

        cfg, data, train = load_config(RLConfig, args.config, args.overrides), args.experts, train_rl
    check_stage(cfg, data or getattr(cfg, "experts", None))
    final = train(cfg, data)
    print(f"[actrl] {args.stage}: final checkpoint {Path(final)}")
    return 0

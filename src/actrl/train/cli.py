"""`actrl train`: run one registered training stage (act, il, rl and the baselines of
actrl.train.stages) from a YAML config plus key=value overrides, or merge a LoRA checkpoint into
its base model for the next stage.

    actrl train act --config configs/act.yaml --pairs runs/x/pairs.jsonl output_dir=runs/x/stages/act
    actrl train il --config configs/il.yaml --experts runs/x/experts.jsonl model.name=runs/x/stages/act/final
    actrl train rl --config configs/rl.yaml --experts runs/x/experts.jsonl model.name=runs/x/stages/il/final
    actrl train dpo --pairs runs/x/pairs.jsonl output_dir=runs/x/stages/dpo
    actrl train merge-lora --adapter runs/x/stages/act/final --out runs/x/stages/act/merged

Multi-process: `accelerate launch --config_file configs/accelerate/ddp.yaml -m actrl.cli train act ...`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from actrl.config import ConfigError, load_config
from actrl.outputs import output_dir
from actrl.train.common import StageConfig
from actrl.train.stages import STAGES

_DATA_HELP = {"pairs": "critic pairs JSONL (actrl pairs)", "experts": "expert trajectories JSONL (actrl collect)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for spec in STAGES.values():
        p = sub.add_parser(spec.name, help=spec.help, description=spec.help)
        p.add_argument("--config", default=None, help="stage YAML (keys: the stage's config dataclass)")
        for kind in spec.reads:  # the first is the data file; a further one is the config field of that name
            p.add_argument(f"--{kind}", default=None, help=_DATA_HELP[kind])
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
    spec = STAGES[args.stage]
    first, *more = spec.reads
    extra = [f"{kind}={getattr(args, kind)}" for kind in more if getattr(args, kind) is not None]
    cfg = load_config(spec.config_class(), args.config, [*args.overrides, *extra])
    data = getattr(args, first) or getattr(cfg, first, None)  # data paths may also be config fields
    train = spec.train_function()
    check_stage(cfg, data)
    final = train(cfg, data)
    print(f"[actrl] {args.stage}: final checkpoint {Path(final)}")
    return 0

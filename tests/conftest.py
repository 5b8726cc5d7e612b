"""Shared fixtures: the tiny random Llama with the SmolLM2 tokenizer, and paths to shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# no per-example deadline: property tests of pure functions failed it on a CPU busy with training
settings.register_profile("actrl", deadline=None)
settings.load_profile("actrl")

# `auto` means transformers in the suite (the tiny models are too small for vLLM's CPU attention, and
# an engine start costs ~15 s); the vLLM tests ask for backend=vllm, and test_vllm.py tests `auto` itself
os.environ.setdefault("ACTRL_BACKEND", "transformers")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A real (untrained) 3M-parameter Llama: trains and generates in well under a second."""
    from actrl.models.loading import build_tiny_model

    cache = Path(os.environ.get("ACTRL_CACHE", Path.home() / ".cache" / "actrl")) / "models" / "tiny-llama-test"
    return str(build_tiny_model(cache))


@pytest.fixture(scope="session")
def math500_path() -> Path:
    path = SHARED_DATA / "math500.jsonl"
    if not path.exists():
        pytest.fail(f"{path} is missing: tests expect ../shared/data beside the checkout")
    return path


@pytest.fixture(scope="session")
def varied_model_dir(tiny_model_dir) -> str:
    return _varied_model(tiny_model_dir, "tiny-llama-varied-test", heads=4, kv_heads=2)


@pytest.fixture(scope="session")
def vllm_model_dir(tiny_model_dir) -> str:
    """The varied tiny Llama with 32-dimensional heads, the smallest vLLM's CPU attention runs."""
    return _varied_model(tiny_model_dir, "tiny-llama-varied-hd32-test", heads=2, kv_heads=1)


def _varied_model(tiny_model_dir: str, name: str, heads: int, kv_heads: int) -> str:
    """A tiny random Llama whose greedy completions differ from prompt to prompt.

    The shared tiny model ties its output embeddings, so greedy decoding just repeats the last
    prompt token ("\\n" after the chat template) whatever the prompt; untied embeddings and a wider
    init make outputs prompt-dependent, so tests can tell whose completion is whose.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = Path(tiny_model_dir).with_name(name)
    if (out / "config.json").exists():
        return str(out)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        initializer_range=0.2,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    tmp = out.with_name(out.name + ".tmp")
    LlamaForCausalLM(config).save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    os.replace(tmp, out)
    return str(out)

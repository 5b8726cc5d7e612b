"""Batched generation (actrl.models.generation): order, n, seeds, stop strings, length limits."""

from __future__ import annotations

import pytest

from actrl.config import ConfigError
from actrl.models.generation import HFGenerator, SamplingConfig, make_generator, render_chat
from actrl.models.loading import ModelConfig

PROMPTS = [
    [{"role": "user", "content": text}]
    for text in [
        "hello",
        "open the door to the kitchen and look around the room carefully",
        "go north",
        "take apple from table",
        "look",
        "inventory",
    ]
]


@pytest.fixture(scope="module")
def varied(varied_model_dir) -> HFGenerator:
    return HFGenerator.load(ModelConfig(name=varied_model_dir, dtype="float32"))


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> HFGenerator:
    return HFGenerator.load(ModelConfig(name=tiny_model_dir, dtype="float32"))


def greedy(**kw) -> SamplingConfig:
    return SamplingConfig(temperature=0.0, max_new_tokens=kw.pop("max_new_tokens", 8), **kw)


def test_greedy_results_follow_input_order_whatever_the_batch_size(varied):
    by_batch = {b: varied.generate(PROMPTS, greedy(batch_size=b)) for b in (1, 4, 6)}
    assert by_batch[1] == by_batch[4] == by_batch[6]
    outs = [o[0] for o in by_batch[4]]
    assert len(set(outs)) >= 4, "the varied model should answer different prompts differently"
    # each result belongs to its own prompt: generating a prompt alone gives the same text
    for i in (0, 1, 5):
        assert varied.generate([PROMPTS[i]], greedy())[0] == by_batch[4][i]
    # reversing the inputs reverses the outputs
    assert varied.generate(PROMPTS[::-1], greedy(batch_size=4)) == by_batch[4][::-1]


def test_n_completions_per_prompt(varied):
    out = varied.generate(PROMPTS[:3], SamplingConfig(temperature=1.0, n=3, max_new_tokens=6, seed=1))
    assert [len(o) for o in out] == [3, 3, 3]
    assert all(len(set(o)) > 1 for o in out), "sampled completions of one prompt should differ"
    # greedy decoding with n > 1 returns n identical copies
    g = varied.generate(PROMPTS[:2], greedy(n=2))
    assert all(len(o) == 2 and o[0] == o[1] for o in g)


def test_same_seed_same_samples_other_seed_other_samples(varied):
    cfg = dict(temperature=1.0, n=2, max_new_tokens=8, batch_size=3)
    a = varied.generate(PROMPTS, SamplingConfig(seed=7, **cfg))
    b = varied.generate(PROMPTS, SamplingConfig(seed=7, **cfg))
    c = varied.generate(PROMPTS, SamplingConfig(seed=8, **cfg))
    assert a == b
    assert a != c


def test_shared_prompt_cache_gives_the_samples_of_plain_generate(varied):
    """n samples from one prefill per prompt (the default) = generate's n prefills, same seed."""
    cfg = SamplingConfig(temperature=1.0, n=3, max_new_tokens=8, batch_size=4, seed=5, stop=["."])
    seen: list[int] = []  # token positions each forward pass computes (rows x length)
    hook = varied.model.model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["input_ids"].numel()), with_kwargs=True)
    try:
        shared = varied.generate(PROMPTS, cfg)
        shared_tokens, seen[:] = sum(seen), []
        varied.share_prompt_cache = False
        plain = varied.generate(PROMPTS, cfg)
        plain_tokens = sum(seen)
    finally:
        varied.share_prompt_cache = True
        hook.remove()
    assert shared == plain
    assert all(len(set(o)) > 1 for o in shared), "the samples of one prompt should differ"
    # the prompts (padded) went through the model once instead of 3 times; decoding is the same
    prompt_tokens = sum(len(varied.tokenizer(render_chat(varied.tokenizer, p), add_special_tokens=False).input_ids) for p in PROMPTS)
    assert plain_tokens - shared_tokens >= 2 * prompt_tokens - 3 * len(PROMPTS)


def test_stop_string_cuts_generation_and_is_kept(varied):
    full = varied.generate(PROMPTS[:1], greedy(max_new_tokens=12))[0][0]
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert stop.strip(), f"pick a visible stop string from {full!r}"
    cut = varied.generate(PROMPTS[:1], greedy(max_new_tokens=12, stop=[stop]))[0][0]
    assert cut.endswith(stop)
    assert cut == full[: full.find(stop) + len(stop)]


def test_max_new_tokens_is_respected(tiny):
    # the tied tiny model's greedy output repeats the template's last token ("\n") until the limit
    for limit in (1, 5, 9):
        out = tiny.generate(PROMPTS[:2], greedy(max_new_tokens=limit))
        assert [o[0] for o in out] == ["\n" * limit] * 2


def test_bad_sampling_settings_are_rejected(tiny):
    for bad in (dict(temperature=-1.0), dict(top_p=0.0), dict(n=0), dict(batch_size=0)):
        with pytest.raises(ValueError):
            tiny.generate(PROMPTS[:1], SamplingConfig(**bad))
    with pytest.raises(ConfigError, match="backend"):
        make_generator("default", backend="tensorrt")


@pytest.mark.slow
def test_default_model_loads_and_generates():
    gen = make_generator("default", backend="transformers")
    prompt = [{"role": "user", "content": "Name one colour. Answer with one word."}]
    out = gen.generate([prompt, prompt], greedy(max_new_tokens=8))
    assert len(out) == 2 and out[0] == out[1]
    assert out[0][0].strip(), "SmolLM2 should answer with some text"
    assert gen.model.config.num_hidden_layers == 30  # SmolLM2-135M

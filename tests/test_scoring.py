"""Prefix-cached completion scoring equals scoring each full sequence from scratch."""

import torch

from actrl.data.prompts import PromptConfig, action_messages
from actrl.data.records import State
from actrl.models.generation import HFGenerator, render_chat
from actrl.models.scoring import completion_logprobs


def _full_sequence_logprob(gen, prompt, completion: str) -> float:
    tok, model = gen.tokenizer, gen.model
    p = tok(render_chat(tok, prompt), add_special_tokens=False).input_ids
    c = tok(completion, add_special_tokens=False).input_ids
    ids = torch.tensor([p + c])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    return float(sum(logp[len(p) - 1 + i, t] for i, t in enumerate(c)))


def test_cached_prefix_scores_match_full_forward_passes(tiny_model_dir):
    gen = HFGenerator.load(tiny_model_dir)
    gen.model.float()
    prompt = action_messages(State("Find the coin.", [("You are in the kitchen.", "look around")], "You see a door."), PromptConfig())
    cands = ["<action>open door</action>", "<action>go west</action>", "<action>take coin from the table now</action>"]
    got = completion_logprobs(gen, prompt, cands)
    want = [_full_sequence_logprob(gen, prompt, c) for c in cands]
    assert all(abs(g - w) < 1e-3 for g, w in zip(got, want, strict=True)), (got, want)


def test_prefilled_reply_start_is_not_scored_twice(tiny_model_dir):
    gen = HFGenerator.load(tiny_model_dir)
    gen.model.float()
    state = State("Find the coin.", [], "You see a door.")
    plain = action_messages(state, PromptConfig())
    filled = action_messages(state, PromptConfig(prefill=True))
    assert filled[-1] == {"role": "assistant", "content": "<action>"}
    a = completion_logprobs(gen, filled, ["<action>open door</action>"])[0]
    b = completion_logprobs(gen, filled, ["open door</action>"])[0]
    assert a == b and a != completion_logprobs(gen, plain, ["<action>open door</action>"])[0]

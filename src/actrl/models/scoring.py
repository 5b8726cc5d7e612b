"""Log-likelihood of given completions under a policy: log pi_theta(completion | prompt).

Used to pick the admissible alternative the initial policy finds most likely (critic pairs,
`fallback: admissible_likelihood`). One batched forward pass per prompt over all candidates.
"""

from __future__ import annotations

from typing import Any

from actrl.models.generation import Messages, render_chat


def completion_logprobs(generator: Any, prompt: Messages, completions: list[str]) -> list[float]:
    """Sum of token log-probabilities of each completion after the chat-rendered prompt."""
    import torch

    model, tok = getattr(generator, "model", None), getattr(generator, "tokenizer", None)
    if model is None or not hasattr(model, "forward"):
        raise ValueError("likelihood scoring needs the transformers backend (backend: transformers)")
    prefix = tok(render_chat(tok, prompt, getattr(generator, "thinking", None)), add_special_tokens=False).input_ids
    seqs = [prefix + tok(c, add_special_tokens=False).input_ids for c in completions]
    width = max(len(s) for s in seqs)
    pad = tok.pad_token_id
    ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
    out = []
    for i, s in enumerate(seqs):
        out.append(float(logp[i, len(prefix) - 1 : len(s) - 1].sum()))
    return out

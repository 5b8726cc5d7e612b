"""compact_lm_head: TRL's fused LM head projects only labelled positions on the CPU, with the same numbers."""

from __future__ import annotations

import pytest
import torch
import trl.trainer.utils as trl_utils
from transformers import AutoModelForCausalLM
from trl.trainer.utils import add_fused_lm_head

from actrl.train.trl_compat import compact_lm_head


@pytest.fixture
def fused_model(tiny_model_dir):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    yield model
    compact_lm_head(True)


def _run(model, monkeypatch, compact: bool):
    """(log_probs, entropy, grad of the LM head, rows projected) of one fused forward + backward."""
    compact_lm_head(compact)
    rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting(hidden, *args):
        rows.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(10, 1000, (3, 24), generator=g)
    mask = torch.ones_like(ids)
    mask[0, :6] = 0  # a left-padded prompt
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-5] = -100  # only the last 5 tokens (the completion) carry a label
    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    out.log_probs.sum().backward()
    grad = model.get_output_embeddings().weight.grad.clone()
    return out.log_probs.detach(), out.entropy.detach(), grad, rows[0]


def test_compact_head_projects_labelled_positions_only_with_identical_results(fused_model, monkeypatch):
    lp_full, ent_full, grad_full, rows_full = _run(fused_model, monkeypatch, compact=False)
    lp, ent, grad, rows = _run(fused_model, monkeypatch, compact=True)
    assert rows_full == 3 * 23  # TRL's CPU path: every shifted position
    assert rows == 3 * 5  # only the 5 labelled (completion) positions per row
    assert torch.allclose(lp, lp_full, atol=1e-5)
    assert torch.allclose(ent, ent_full, atol=1e-5)
    assert torch.allclose(grad, grad_full, atol=1e-5)
    assert (lp[:, :-5] == 0).all() and (lp[:, -5:] < 0).all()


def test_compact_head_leaves_gpu_devices_to_trl():
    compact_lm_head(True)
    assert trl_utils._use_triton(torch.device("cpu"))
    assert trl_utils._use_triton(torch.device("meta")) is False
    compact_lm_head(False)
    assert not trl_utils._use_triton(torch.device("cpu"))
    compact_lm_head(True)

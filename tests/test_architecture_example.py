"""docs/architecture.md's worked example is real: its stage module and registry line train the tiny model."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from train_support import PAIRS, overrides

from actrl.cli import main
from actrl.train import stages
from actrl.train.metrics import read_metrics

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def test_the_documented_new_stage_runs_from_actrl_train(tmp_path, tiny_model_dir, monkeypatch):
    module_code, registry_line = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[:2]
    (tmp_path / "doc_pairs_il.py").write_text(module_code)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = eval(registry_line.strip().rstrip(","), {"Stage": stages.Stage})  # the line as documented
    assert (spec.name, spec.module, spec.reads) == ("pairs_il", "actrl.train.pairs_il", ("pairs",))
    monkeypatch.setitem(stages.STAGES, spec.name, dataclasses.replace(spec, module="doc_pairs_il"))

    out = tmp_path / "stage"
    argv = ["train", "pairs_il", "--pairs", str(PAIRS), f"model.name={tiny_model_dir}", f"output_dir={out}",
            *overrides(max_steps=2, per_device_batch_size=4, save_steps=1, eval_fraction=0.0)]
    assert main(argv) == 0
    assert (out / "final" / "model.safetensors").exists() and (out / "config.yaml").exists()
    assert [m["step"] for m in read_metrics(out) if "loss" in m] == [1, 2]
    sys.modules.pop("doc_pairs_il", None)

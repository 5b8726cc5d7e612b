"""The layering check (python -m actrl.devtools.layers): actrl's imports only point down the layer table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actrl.devtools import layers

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_has_no_upward_import():
    proc = subprocess.run([sys.executable, "-m", "actrl.devtools.layers"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    assert "L2 data     data         ->" in proc.stdout and proc.stdout.rstrip().endswith(", 0 upward")


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "actrl"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_an_upward_import_inside_a_function_is_found_with_its_file_and_line(tmp_path, capsys):
    root = _package(tmp_path, {
        "models/__init__.py": "",
        "models/generation.py": "import os\n\ndef f():\n    from actrl.data.prompts import reply_prefix\n",
        "data/__init__.py": "",
        "data/prompts.py": "from ..models import generation\n",  # relative, downward: fine
    })
    assert layers.main(root) == 1
    out = capsys.readouterr().out
    assert ("actrl/models/generation.py:4: actrl.models.generation (L1 models) imports actrl.data.prompts "
            "(L2 data): upward") in out
    assert out.rstrip().endswith("2 imports, 1 upward")


def test_a_module_outside_the_layer_table_is_named(tmp_path):
    root = _package(tmp_path, {"plugins.py": "", "config.py": "import actrl.plugins\n"})
    with pytest.raises(KeyError, match=r"actrl.plugins: not in the layer table of actrl.devtools.layers; add 'plugins'"):
        layers.main(root)


def test_eval_importing_a_training_stage_is_refused_though_both_sit_in_one_layer(tmp_path, capsys):
    root = _package(tmp_path, {"train/__init__.py": "", "train/rewards.py": "", "eval/__init__.py": "",
                               "eval/pairs.py": "from actrl.train.rewards import *\n",
                               "train/act.py": "from actrl.eval import pairs\n"})  # train may use eval
    assert layers.main(root) == 1
    out = capsys.readouterr().out
    assert "actrl/eval/pairs.py:1: actrl.eval.pairs (L3 train) imports actrl.train.rewards (L3 train): forbidden" in out
    assert out.rstrip().endswith("2 imports, 1 upward")

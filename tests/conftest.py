"""Shared fixtures: the tiny random Llama with the SmolLM2 tokenizer, and paths to shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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

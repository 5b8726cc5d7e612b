"""Typed configs: unknown keys and wrong types are errors that name the field and the fix."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from actrl.config import ConfigError, from_dict, load_config, parse_overrides
from actrl.data.prompts import PromptConfig


@dataclass
class _Stage:
    lr: float = 1e-5
    steps: int = 10
    mode: Literal["a", "b"] = "a"
    prompt: PromptConfig = field(default_factory=PromptConfig)
    tags: list[str] = field(default_factory=list)


def test_nested_values_and_int_to_float():
    cfg = from_dict(_Stage, {"lr": 1, "prompt": {"history_window": 2}, "tags": ["x"]})
    assert cfg.lr == 1.0 and cfg.prompt.history_window == 2 and cfg.tags == ["x"]


def test_unknown_key_suggests_the_nearest():
    with pytest.raises(ConfigError, match=r"f.yaml: prompt: unknown key 'histroy_window'; did you mean 'history_window'"):
        from_dict(_Stage, {"prompt": {"histroy_window": 2}}, "f.yaml")


def test_wrong_types_and_literals_name_the_field():
    with pytest.raises(ConfigError, match=r"steps: expected an integer, got 'ten'"):
        from_dict(_Stage, {"steps": "ten"})
    with pytest.raises(ConfigError, match=r"mode: expected one of \['a', 'b'\]"):
        from_dict(_Stage, {"mode": "c"})
    with pytest.raises(ConfigError, match=r"history_window=-1: expected >= 0"):
        from_dict(_Stage, {"prompt": {"history_window": -1}})


def test_overrides_are_yaml_scalars_applied_over_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("lr: 0.1\nprompt:\n  thinking: false\n")
    cfg = load_config(_Stage, path, ["prompt.thinking=true", "steps=3"])
    assert cfg.lr == 0.1 and cfg.prompt.thinking is True and cfg.steps == 3
    assert parse_overrides(["a.b=1e-5"]) == {"a": {"b": 1e-5}}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["oops"])


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lr: 1\nsteps: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line \d+: not valid YAML"):
        load_config(_Stage, path)

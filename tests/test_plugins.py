"""Third-party environments: entry points, package.module:ClassName, one-line errors, `actrl check-env`."""

from __future__ import annotations

import textwrap

import pytest

from actrl.cli import main
from actrl.envs import PluginError, UnknownEnvError, make, names
from actrl.envs.checks import conformance

MODULES = {
    "good_env_mod": """
        from actrl_fetch import FetchEnv

        class GoodEnv(FetchEnv):
            name = "good"
        """,
    "half_env_mod": """
        from actrl.envs import TextEnv

        class HalfEnv(TextEnv):
            name = "half"
            def task_names(self): return []
            def tasks(self, split, task_names=None): return []
        """,
    "plain_env_mod": """
        class PlainEnv:  # every method, but not a TextEnv
            name = "plain"
            def task_names(self): ...
            def tasks(self, split, task_names=None): ...
            def reset(self, task): ...
            def step(self, action): ...
            def admissible_actions(self): ...
            def expert_actions(self): ...
            def close(self): ...
        """,
    "raising_env_mod": """
        raise RuntimeError("the simulator's licence file is missing")
        """,
    "sloppy_env_mod": """
        from actrl_fetch import FetchEnv

        from actrl.envs import StepResult

        class SloppyEnv(FetchEnv):
            '''Plays on after the episode ended and breaks on a second close().'''
            name = "sloppy"
            closed = False
            def step(self, action):
                if self._done:
                    return StepResult("You are still here.", 0.0, False, False, self._score)
                return super().step(action)
            def close(self):
                if self.closed:
                    raise RuntimeError("already closed")
                self.closed = True
        """,
}
ENTRY_POINTS = {  # plugin name -> target
    "good": "good_env_mod:GoodEnv",
    "gone": "no_such_package_xyz:Env",
    "nowhere": "good_env_mod:NoSuchClass",
    "half": "half_env_mod:HalfEnv",
    "plain": "plain_env_mod:PlainEnv",
    "raising": "raising_env_mod:Env",
}


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """A distribution on sys.path declaring `actrl.envs` entry points, as `pip install` leaves one."""
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    info = tmp_path / "fake_actrl_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-actrl-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[actrl.envs]\n" + "".join(f"{k} = {v}\n" for k, v in ENTRY_POINTS.items()))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_an_entry_point_names_an_environment_for_make_and_names(plugins):
    assert {"fetch", "good", "half", "gone"} <= set(names())
    env = make("good")
    assert type(env).__name__ == "GoodEnv" and len(env.tasks("train")) == 40


def test_a_class_path_reaches_an_environment_nobody_registered(plugins):
    env = make("good_env_mod:GoodEnv", max_steps=3)
    assert env.max_steps == 3
    report = conformance("good_env_mod:GoodEnv")
    assert report.passed and report.target == "good_env_mod:GoodEnv"
    assert report.tasks == {"train": 40, "dev": 20, "test": 20} and len(report.episodes) == 4


def test_an_unknown_name_suggests_the_nearest_plugin(plugins):
    with pytest.raises(UnknownEnvError, match=r"unknown environment 'fetsh'; did you mean 'fetch'\?"):
        make("fetsh")


@pytest.mark.parametrize("name,message", [
    ("gone", r"plugin 'gone' \(fake-actrl-plugins, entry point no_such_package_xyz:Env\): importing 'no_such_package_xyz' failed \(ModuleNotFoundError"),
    ("nowhere", r"plugin 'nowhere' .*: module 'good_env_mod' has no 'NoSuchClass'; point the entry point at the environment class"),
    ("half", r"HalfEnv does not implement the environment protocol: missing reset, step, admissible_actions, expert_actions \("),
    ("plain", r"PlainEnv does not subclass actrl.envs.TextEnv; subclass it"),
    ("raising", r"importing 'raising_env_mod' failed \(RuntimeError: the simulator's licence file is missing\)"),
    ("no_such_package_xyz:Env", r"environment class 'no_such_package_xyz:Env': importing 'no_such_package_xyz' failed"),
])
def test_a_broken_plugin_is_one_error_naming_it(plugins, name, message):
    with pytest.raises(PluginError, match=message):
        make(name)


@pytest.mark.parametrize("argv,prefix", [
    (["check-env", "half"], "actrl check-env"),
    (["collect", "--env", "gone", "--num", "1"], "actrl collect"),
])
def test_through_the_cli_a_broken_plugin_is_one_stderr_line_and_writes_nothing(plugins, tmp_path, capsys, argv, prefix):
    out = tmp_path / "out" / "experts.jsonl"
    assert main(argv + (["--out", str(out)] if argv[0] != "check-env" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(prefix) and "Traceback" not in err
    assert f"error: plugin '{argv[argv.index('--env') + 1] if '--env' in argv else argv[1]}' (fake-actrl-plugins, entry point " in err
    assert not out.exists()


def test_check_env_lists_every_broken_rule_with_its_fix(plugins, capsys):
    assert main(["check-env", "sloppy_env_mod:SloppyEnv"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "sloppy_env_mod:SloppyEnv: FAIL, 5 problem(s) (sloppy_env_mod:SloppyEnv; tasks train 40, dev 20, test 20)"
    problems = lines[1::2]
    assert [p.split(": ")[0] for p in problems[:4]] == [f"- sloppy/{t}" for t in ("apple/train/0", "book/train/0", "apple/dev/10", "apple/test/15")]
    assert all(": a step after the episode ended was played (StepResult(observation='You are still here.'" in p for p in problems[:4])
    assert problems[4] == "- sloppy_env_mod:SloppyEnv: close() a second time raised RuntimeError: already closed"
    assert lines[2] == "  fix: raise actrl.envs.EnvError('the episode is over; call reset') or return done=True"
    assert lines[-1] == "  fix: make close() idempotent: release the simulator once, then do nothing"


def test_a_shipped_environment_passes_the_check_env_command(capsys):
    assert main(["check-env", "textworld_express"]) == 0
    assert capsys.readouterr().out.startswith(
        "textworld_express: PASS (actrl.envs.textworld_express:TextWorldExpressEnv; tasks train 8000, dev 8000, test 8000; 4 expert")


def test_module_doctests_hold():
    import doctest

    import actrl.envs.plugins

    assert doctest.testmod(actrl.envs.plugins).failed == 0

"""Bad input through the real `actrl` command: one line on stderr, exit 2, nothing existing changed.

One test per class of mistake (issue #21), each over several commands: output paths, values out
of range, work checked before the expensive part, unknown environment arguments, unusable or
shared output files, malformed pair files, a Java that starts and dies, an unreachable hub id,
and the wording of the messages themselves. A `broken_model` directory (config.json without
weights) stands in for --model where a check must come before loading: had the model loaded
first, the error would be about the model.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from cli_support import actrl, assert_one_line_error, snapshot

DATA = Path(__file__).parent / "data"
EXPERTS = DATA / "twx_coin_experts.jsonl"
PAIRS = DATA / "twx_coin_pairs.jsonl"
MATH500 = Path(__file__).resolve().parents[2] / "shared" / "data" / "math500.jsonl"


@pytest.fixture
def work(tmp_path) -> Path:
    """A directory holding what a user already has: expert and pair files, a file, a directory."""
    shutil.copy(EXPERTS, tmp_path / "experts.jsonl")
    shutil.copy(PAIRS, tmp_path / "pairs.jsonl")
    (tmp_path / "a_file").write_text("not a directory\n")
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_dir" / "kept.txt").write_text("kept\n")
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    return tmp_path


def _recipe(work: Path, tiny: str = "default") -> Path:
    text = (Path(__file__).parent / "recipes_tiny_twx.yaml").read_text().replace("TINY", tiny)
    path = work / "recipe.yaml"
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- output paths

OUTPUT_PATHS = {
    "collect into /sys": (["collect", "--env", "textworld_express", "--num", "1", "--out", "/sys/actrl-x/e.jsonl"],
                          "actrl collect: error: --out /sys/actrl-x/e.jsonl: cannot create directory /sys/actrl-x"),
    "collect into a directory": (["collect", "--env", "textworld_express", "--num", "1", "--out", "{w}/a_dir"],
                                 "actrl collect: error: --out {w}/a_dir: is a directory"),
    "pairs under a file": (["pairs", "--experts", "{w}/experts.jsonl", "--model", "{w}/broken_model",
                            "--out", "{w}/a_file/pairs.jsonl"],
                           "actrl pairs: error: --out {w}/a_file/pairs.jsonl: {w}/a_file is a file, not a directory"),
    "train il under a file": (["train", "il", "--experts", "{w}/experts.jsonl", "model.name={w}/broken_model",
                               "output_dir={w}/a_file/il"],
                              "actrl train il: error: output_dir {w}/a_file/il: {w}/a_file is a file"),
    "eval agent into a file": (["eval", "agent", "--env", "textworld_express", "--model", "{w}/broken_model",
                                "--out", "{w}/a_file"], "actrl eval agent: error: --out {w}/a_file: is a file"),
    "eval next-action into /sys": (["eval", "next-action", "--experts", "{w}/experts.jsonl", "--model",
                                    "{w}/broken_model", "--out", "/sys/actrl-x/na.json"],
                                   "actrl eval next-action: error: --out /sys/actrl-x/na.json: cannot create"),
    "eval pairs into a directory": (["eval", "pairs", "--pairs", "{w}/pairs.jsonl", "--model", "{w}/broken_model",
                                     "--out", "{w}/a_dir"], "actrl eval pairs: error: --out {w}/a_dir: is a directory"),
    "eval reasoning into a directory": (["eval", "reasoning", "--bench", "math500", "--data", str(MATH500),
                                         "--model", "{w}/broken_model", "--out", "{w}/a_dir"],
                                        "actrl eval reasoning: error: --out {w}/a_dir: is a directory"),
    "run under a file": (["run", "{w}/recipe.yaml", "output_root={w}/a_file"],
                         "actrl run: error: run directory {w}/a_file/tiny-twx/seed0: {w}/a_file is a file"),
}


@pytest.mark.parametrize("case", list(OUTPUT_PATHS))
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(work, case):
    _recipe(work)
    args, expected = OUTPUT_PATHS[case]
    before = snapshot(work)
    proc = actrl(*[a.format(w=work) for a in args])
    assert_one_line_error(proc, expected.format(w=work))
    assert snapshot(work) == before


def test_pairs_creates_a_missing_output_directory_like_every_command(work, tiny_model_dir):
    out = work / "new_dir" / "deeper" / "pairs.jsonl"
    proc = actrl("pairs", "--experts", work / "experts.jsonl", "--model", tiny_model_dir, "--k", "1",
                 "max_new_tokens=4", "resample_rounds=0", "backend=transformers", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((out.parent / "pairs.meta.json").read_text())
    assert meta["counts"]["states"] == sum(len(json.loads(line)["steps"]) for line in EXPERTS.open())


# ----------------------------------------------------------------------------- values and order of checks

BAD_VALUES = {
    "eval pairs --history-window -1": (["eval", "pairs", "--pairs", "{w}/pairs.jsonl", "--model", "{w}/broken_model",
                                        "--history-window", "-1"], "history_window=-1: expected >= 0"),
    "eval pairs --n 0": (["eval", "pairs", "--pairs", "{w}/pairs.jsonl", "--model", "{w}/broken_model", "--n", "0"],
                         "n=0: expected >= 1"),
    "pairs prompt.history_window=-1": (["pairs", "--experts", "{w}/experts.jsonl", "--model", "{w}/broken_model",
                                        "--out", "{w}/p.jsonl", "prompt.history_window=-1"],
                                       "options: prompt: history_window=-1: expected >= 0"),
    "train il prompt.max_observation_chars=5": (["train", "il", "--experts", "{w}/experts.jsonl",
                                                 "model.name={w}/broken_model", "output_dir={w}/il",
                                                 "prompt.max_observation_chars=5"],
                                                "options: prompt: max_observation_chars=5: expected >= 20"),
    "eval next-action --max-states 0": (["eval", "next-action", "--experts", "{w}/experts.jsonl", "--model",
                                         "{w}/broken_model", "--max-states", "0"], "max_states=0: expected >= 1"),
    "eval agent --lora without adapter_config.json": (["eval", "agent", "--env", "textworld_express", "--model",
                                                       "{w}/broken_model", "--lora", "{w}/a_dir", "--out", "{w}/ev"],
                                                      "--lora {w}/a_dir: not a LoRA adapter (no adapter_config.json)"),
    "eval reasoning --lora missing": (["eval", "reasoning", "--bench", "math500", "--data", str(MATH500), "--model",
                                       "{w}/broken_model", "--lora", "{w}/nowhere", "--out", "{w}/r.json"],
                                      "--lora {w}/nowhere: no such directory"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_a_value_out_of_range_is_named_before_the_model_loads(work, case):
    args, needle = BAD_VALUES[case]
    before = snapshot(work)
    proc = actrl(*[a.format(w=work) for a in args])
    assert_one_line_error(proc, f"actrl {case.split(' -')[0].split(' prompt')[0]}: error:", needle.format(w=work))
    assert snapshot(work) == before


UNKNOWN_KWARGS = {
    "collect": ["collect", "--env", "textworld_express", "--num", "1", "--out", "{w}/e.jsonl",
                "--env-kwargs", "max_stpes=3"],
    "eval agent": ["eval", "agent", "--env", "textworld_express", "--model", "{w}/broken_model", "--out", "{w}/ev",
                   "env_kwargs.max_stpes=3"],
    "run": ["run", "{w}/recipe.yaml", "output_root={w}/runs", "env.kwargs.max_stpes=3"],
}


@pytest.mark.parametrize("case", list(UNKNOWN_KWARGS))
def test_an_unknown_environment_argument_is_named_with_the_nearest_accepted_one(work, case):
    _recipe(work)
    before = snapshot(work)
    proc = actrl(*[a.format(w=work) for a in UNKNOWN_KWARGS[case]])
    assert_one_line_error(proc, f"actrl {case}: error: textworld_express: unknown environment argument 'max_stpes'; "
                                "did you mean 'max_steps'? (accepted: max_steps, game_params)")
    assert snapshot(work) == before


# ----------------------------------------------------------------------------- files that must not be touched


def test_pairs_refuses_an_existing_output_it_cannot_resume_and_its_own_input(work):
    before = snapshot(work)
    proc = actrl("pairs", "--experts", work / "experts.jsonl", "--model", work / "broken_model",
                 "--out", work / "pairs.jsonl")  # a pairs file without .progress and .meta.json beside it
    assert_one_line_error(proc, f"actrl pairs: error: --out {work}/pairs.jsonl: exists but is not a pairs file this "
                                "command can resume (pairs.jsonl.progress and pairs.meta.json missing beside it); "
                                "it is left untouched")
    proc = actrl("pairs", "--experts", work / "experts.jsonl", "--model", work / "broken_model",
                 "--out", work / "experts.jsonl")
    assert_one_line_error(proc, f"actrl pairs: error: --out {work}/experts.jsonl: experts.jsonl is the --experts file")
    assert snapshot(work) == before


@pytest.mark.parametrize(("expert", "alternative", "needle"), [
    ("open door", "", "record 2: pair p: alternative is empty ('')"),
    ("open door", "<action> </action>", "record 2: pair p: alternative is empty"),
    ("open door", "<action>Open door.</action>", "record 2: pair p: the alternative '<action>Open door.</action>' "
                                                 "is the expert action 'open door' (compared without <action> tags)"),
])
def test_a_pair_file_with_an_empty_or_duplicate_alternative_is_refused_before_evaluation(
        work, expert, alternative, needle):
    good = json.loads(PAIRS.read_text().splitlines()[0])
    bad = {**good, "pair_id": "p", "expert_action": expert, "alternative": alternative}
    path = work / "bad_pairs.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    proc = actrl("eval", "pairs", "--pairs", path, "--model", work / "broken_model")
    assert_one_line_error(proc, f"actrl eval pairs: error: {path}: {needle}")


@pytest.mark.parametrize("env", ["scienceworld", "textworld_express"])
def test_a_java_that_starts_and_dies_is_one_line_and_no_destructor_noise(work, env):
    fake = work / "bin"
    fake.mkdir()
    (fake / "java").write_text("#!/bin/sh\necho 'Error: Could not create the Java Virtual Machine.' >&2\nexit 1\n")
    (fake / "java").chmod(0o755)
    proc = actrl("collect", "--env", env, "--num", "1", "--quiet", "--out", work / "e.jsonl",
                 PATH=f"{fake}:{os.environ['PATH']}")
    assert_one_line_error(proc, f"actrl collect: error: {env}: the Java server did not start (",
                          f"check that `{fake}/java -version` works")
    assert not (work / "e.jsonl").exists()  # nothing written


@pytest.mark.parametrize("offline", ["1", ""])
def test_an_unreachable_hub_id_fails_fast_and_names_the_local_alternatives(work, offline):
    start = time.time()
    proc = actrl("eval", "pairs", "--pairs", work / "pairs.jsonl", "--model", "nosuch-org/nosuch-model-21",
                 HF_HUB_OFFLINE=offline)
    reason = "HF_HUB_OFFLINE is set" if offline else "the Hub is unreachable"
    assert_one_line_error(proc, "actrl eval pairs: error: nosuch-org/nosuch-model-21: not in the local Hugging Face "
                                "cache", reason, "use --model default (SmolLM2-135M-Instruct")
    assert time.time() - start < 20  # transformers' own retries took 48 s


# ----------------------------------------------------------------------------- what the messages say


def test_messages_say_things_once_and_name_only_what_differs(work):
    proc = actrl("collect", "--env", "textworld_express", "--num", "0", "--out", work / "e.jsonl")
    assert proc.stderr.strip() == "actrl collect: error: num=0: expected >= 1"  # not "actrl collect: " twice

    torn = work / "torn_pairs.jsonl"
    torn.write_text('{"pair_id": "x\n')
    proc = actrl("eval", "pairs", "--pairs", torn, "--model", work / "broken_model")
    assert_one_line_error(proc, f"actrl eval pairs: error: {torn}:1: not valid JSON (Unterminated string starting "
                                "at column 13)")

    out = work / "e.jsonl"
    assert actrl("collect", "--env", "textworld_express", "--num", "1", "--tasks", "coin", "--quiet",
                 "--out", out).returncode == 0
    before = snapshot(out)
    proc = actrl("collect", "--env", "textworld_express", "--num", "2", "--tasks", "coin", "--quiet",
                 "--out", out, "--env-kwargs", "max_steps=7")
    err = assert_one_line_error(proc, f"actrl collect: error: {out}:1: collected with other environment settings "
                                      "(file -> this run: params.max_steps: 50 -> 7); use another --out")
    assert "game_params" not in err and "versions" not in err
    assert snapshot(out) == before


def test_a_critic_that_never_closes_its_answer_gets_a_warning_naming_the_fix(work, tiny_model_dir):
    few = work / "few_pairs.jsonl"
    few.write_text("".join(PAIRS.read_text().splitlines(keepends=True)[:4]))
    out = work / "result.json"
    proc = actrl("eval", "pairs", "--pairs", few, "--model", tiny_model_dir, "--backend", "transformers",
                 "--max-new-tokens", "4", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["format_failure_rate"] == 1.0 and result["accuracy"] == 0.0 and result["n"] == 4
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "warning: 100% of the answers had no parseable <answer>1</answer> or <answer>2</answer> (an unclosed or "
        "missing tag); accuracy counts them as wrong. Try --prefill (start the answer with <answer>) or more "
        "--max-new-tokens (now 4)")

"""`actrl eval reasoning`: MATH-500 extraction and equivalence, GPQA shuffling and letters, the command."""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from datasets.exceptions import DatasetNotFoundError

from actrl.cli import main
from actrl.config import ConfigError, from_dict
from actrl.data.records import RecordError
from actrl.eval import math_equiv, reasoning, reasoning_data
from actrl.eval.math_equiv import last_boxed, math_equal
from actrl.eval.reasoning import ReasoningEvalConfig
from actrl.eval.reasoning_data import (
    Question,
    answer_part,
    extract_letter,
    grade,
    hub_error,
    load_questions,
    messages,
    shuffled_options,
)

GPQA_TINY = Path(__file__).parent / "fixtures" / "gpqa_tiny.jsonl"


@pytest.fixture(scope="module")
def math_rows(math500_path) -> list[dict]:
    return [json.loads(line) for line in math500_path.read_text().splitlines()]


def test_doctests_hold():
    for module in (math_equiv, reasoning_data, reasoning):
        assert doctest.testmod(module).failed == 0


# ----------------------------------------------------------------------------- MATH-500


@pytest.mark.parametrize(
    "text, expected",
    [
        (r"so $\boxed{\frac{14}{3}}$", r"\frac{14}{3}"),
        (
            r"first \boxed{2}, then finally \boxed{\left( 3, \frac{\pi}{2} \right)}.",
            r"\left( 3, \frac{\pi}{2} \right)",
        ),
        (r"the set \boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\fbox{7}", "7"),
        (r"answer: \boxed 5 done", "5"),
        (r"\boxed{\frac{1}{2} cut off by the length limit", None),
        (r"\boxed{1} then \boxed{\sqrt{", None),
        ("no box at all, 42", None),
    ],
)
def test_last_boxed_takes_the_final_balanced_box(text, expected):
    assert last_boxed(text) == expected


def test_last_box_of_every_real_solution_is_its_answer(math_rows):
    assert len(math_rows) == 500
    assert [last_boxed(r["solution"]) for r in math_rows] == [r["answer"] for r in math_rows]


@pytest.mark.parametrize(
    "gold, predicted, same",
    [
        (r"\frac{14}{3}", "14/3", True),
        (r"\frac{14}{3}", r"\dfrac{14}{3}", True),
        (r"3\sqrt{13}", "13", False),
        (r"3\sqrt{13}", r"\sqrt{117}", True),
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3, \pi/2)", True),
        (r"\left( 3, \frac{\pi}{2} \right)", r"(\pi/2, 3)", False),
        ("p - q", "-q + p", True),
        ("p - q", "q - p", False),
        (r"\text{Evelyn}", "Evelyn", True),
        (r"[-2,7]", "[-2,7)", False),
        ("10", "10.0", True),
        ("10", "", False),
    ],
)
def test_math_equal_is_mathematical_not_string_equality(gold, predicted, same):
    assert math_equal(gold, predicted) is same


def _perturb(answer: str) -> str | None:
    """Change the first digit (9 -> 8, others +1): a different number, same shape."""
    m = re.search(r"\d", answer)
    if not m:
        return None
    d = int(m.group())
    return answer[: m.start()] + str(8 if d == 9 else d + 1) + answer[m.end() :]


def test_real_answers_equal_themselves_and_not_their_perturbations(math_rows):
    sample = [r["answer"] for r in math_rows[::5]]  # 100 real answers of every kind
    assert all(math_equal(a, a) for a in sample)
    perturbed = [(a, _perturb(a)) for a in sample if _perturb(a) is not None]
    assert len(perturbed) >= 95
    assert [pair for pair in perturbed if math_equal(*pair)] == []


def test_math_grade_extracts_after_reasoning_and_flags_missing_boxes():
    q = Question("test/algebra/2584.json", "f(-2)+f(-1)+f(0)?", r"\frac{14}{3}")
    assert grade("math500", q, r"2 + 5/3 + 1 = \boxed{14/3}", 0) == {
        "extracted": "14/3",
        "gold": r"\frac{14}{3}",
        "correct": True,
        "format_failure": False,
    }
    assert grade("math500", q, r"\boxed{5}", 0)["correct"] is False
    no_box = grade("math500", q, "the answer is 14/3", 0)
    assert no_box["format_failure"] and not no_box["correct"]
    assert grade("math500", q, r"The final answer inside \boxed{} is 1.", 0)[
        "format_failure"
    ]  # SmolLM2 did this
    # a box only inside unfinished thinking is no answer
    assert grade("math500", q, r"<think>maybe \boxed{14/3}", 0)["format_failure"]
    assert grade("math500", q, r"<think>\boxed{1}</think> so \boxed{\frac{14}{3}}", 0)["correct"]


# ----------------------------------------------------------------------------- GPQA


@pytest.mark.parametrize(
    "text, letter",
    [
        ("A looks plausible, but B fits.\nAnswer: C", "C"),
        ("**Answer:** (D)", "D"),
        ("**Answer**: B", "B"),
        ("The correct answer is option A.", "A"),
        (r"Final answer: \boxed{\text{B}}", "B"),
        ("Answer: C, not (A)", "C"),  # an answer statement outranks a later (X)
        (r"(A) is wrong ... \boxed{D}", "D"),  # a box outranks a standalone (X)
        (r"\boxed{C) 2.0 eV}", "C"),
        ("(A) is wrong and (B) is right", "B"),
        ("reasoning...\nC.", "C"),
        ("D", "D"),
        ("A) sp", "A"),  # the whole answer restates one option
        ("A) 9.8 m\nB) 19.6 m\nC) 4.9 m\nD) 39.2 m", None),  # an echo of the options is no choice
        ("the answer is a compound of both", None),
        ("Answer: Both are wrong", None),
        ("I cannot decide.", None),
        ("", None),
    ],
)
def test_letter_extraction_precedence(text, letter):
    assert extract_letter(text) == letter


def test_gpqa_grade_uses_the_seeded_letter_and_counts_format_failures():
    q = load_questions("gpqa-diamond", GPQA_TINY)[0]
    options, gold = shuffled_options(q, seed=3)
    assert options[ord(gold) - ord("A")] == q.gold == "19.6 m"
    wrong = next(letter for letter in "ABCD" if letter != gold)
    assert grade("gpqa-diamond", q, f"Answer: {gold}", 3)["correct"] is True
    assert grade("gpqa-diamond", q, f"Answer: {wrong}", 3)["correct"] is False
    assert grade("gpqa-diamond", q, f"<think>Answer: {gold}", 3)["format_failure"] is True
    assert grade("gpqa-diamond", q, "I think it falls 19.6 m", 3) == {
        "extracted": None,
        "gold": gold,
        "correct": False,
        "format_failure": True,
    }


def test_shuffle_puts_the_correct_answer_in_each_position_a_quarter_of_the_time():
    questions = [Question(f"q{i}", "?", "right", ["right", "w1", "w2", "w3"]) for i in range(250)]
    letters = Counter(shuffled_options(q, seed)[1] for q in questions for seed in range(4))
    assert sum(letters.values()) == 1000
    for letter in "ABCD":
        assert 0.2 < letters[letter] / 1000 < 0.3, letters


def test_shuffle_is_reproducible_per_seed_and_differs_across_seeds():
    q = Question("rec-1", "?", "right", ["right", "w1", "w2", "w3"])
    assert shuffled_options(q, 7) == shuffled_options(q, 7)
    assert sorted(shuffled_options(q, 7)[0]) == sorted(q.options)
    orders = {tuple(shuffled_options(q, seed)[0]) for seed in range(20)}
    assert len(orders) > 5
    # the order depends on (seed, id) only: the same question in another file position keeps it
    q_again = Question("rec-1", "other text", "right", ["right", "w1", "w2", "w3"])
    assert shuffled_options(q_again, 7) == shuffled_options(q, 7)


def test_gpqa_fixture_loads_and_the_prompt_shows_four_lettered_options():
    questions = load_questions("gpqa-diamond", GPQA_TINY)
    assert len(questions) == 8 and len({q.id for q in questions}) == 8
    q = questions[1]
    content = messages("gpqa-diamond", q, seed=0)[0]["content"]
    options, gold = shuffled_options(q, 0)
    for letter, option in zip("ABCD", options, strict=True):
        assert f"\n{letter}) {option}" in content
    assert f"{gold}) sp\n" in content + "\n"
    assert "Answer: X" in content


def test_answer_part_skips_reasoning():
    assert answer_part("<think>A?</think>\nAnswer: B") == "\nAnswer: B"
    assert answer_part("reasoning</think>Answer: B") == "Answer: B"  # template opened <think>
    assert answer_part("<think>still thinking") == ""
    assert answer_part("Answer: B") == "Answer: B"


# ----------------------------------------------------------------------------- local files and the Hub


def test_math500_local_file_loads_with_ids_and_limit(math500_path):
    questions = load_questions("math500", math500_path, limit=5)
    assert [q.id for q in questions][:1] == ["test/precalculus/807.json"]
    assert len(questions) == 5 and questions[2].gold == r"\frac{14}{3}"
    assert questions[2].meta == {"subject": "Algebra", "level": 3}
    assert r"\boxed{}" in messages("math500", questions[2], 0)[0]["content"]


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "local.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_bad_local_files_name_the_file_line_and_field(tmp_path):
    good = json.dumps({"problem": "1+1?", "answer": "2"})
    with pytest.raises(RecordError, match=r"nope\.jsonl: no such file"):
        load_questions("math500", tmp_path / "nope.jsonl")
    with pytest.raises(RecordError, match=r"local\.jsonl:3: not valid JSON"):
        load_questions("math500", _write(tmp_path, [good, good, "{oops"]))
    with pytest.raises(RecordError, match=r"local\.jsonl:3: missing field 'answer'"):
        load_questions("math500", _write(tmp_path, [good, "", json.dumps({"problem": "x"})]))
    with pytest.raises(
        RecordError, match=r"local\.jsonl:2: field 'answer' must be a non-empty string, got 5"
    ):
        load_questions("math500", _write(tmp_path, [good, json.dumps({"problem": "x", "answer": 5})]))
    with pytest.raises(RecordError, match=r"local\.jsonl: no questions in file \(empty\)"):
        load_questions("math500", _write(tmp_path, ["", ""]))
    with pytest.raises(RecordError, match=r"local\.jsonl:2: duplicate question id 'a'"):
        row = json.dumps({"problem": "x", "answer": "1", "unique_id": "a"})
        load_questions("math500", _write(tmp_path, [row, row]))
    gpqa = json.loads(GPQA_TINY.read_text().splitlines()[0])
    del gpqa["Incorrect Answer 3"]
    with pytest.raises(RecordError, match=r"local\.jsonl:1: missing field 'Incorrect Answer 3'"):
        load_questions("gpqa-diamond", _write(tmp_path, [json.dumps(gpqa)]))


def test_gated_gpqa_error_says_to_accept_the_terms_and_log_in():
    e = DatasetNotFoundError(
        "Dataset 'Idavidrein/gpqa' is a gated dataset on the Hub. You must be authenticated."
    )
    msg = str(hub_error("gpqa-diamond", e))
    assert msg.startswith("Idavidrein/gpqa (gpqa_diamond): access denied")
    for needed in ("gated", "accept its terms", "huggingface-cli login", "HF_TOKEN", "--data"):
        assert needed in msg
    assert "\n" not in msg


def test_offline_hub_load_fails_with_one_line_per_benchmark(tmp_path):
    code = (
        "from actrl.eval.reasoning_data import load_questions\n"
        "import sys\n"
        "for bench in ('math500', 'gpqa-diamond'):\n"
        "    try:\n"
        "        load_questions(bench)\n"
        "    except Exception as e:\n"
        "        print(type(e).__name__, e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout + out.stderr
    assert lines[0].startswith("DatasetUnavailableError HuggingFaceH4/MATH-500: cannot load it")
    assert "--data local.jsonl" in lines[0]
    assert lines[1].startswith("DatasetUnavailableError Idavidrein/gpqa (gpqa_diamond): cannot load it")
    assert "gated" in lines[1] and "HF_TOKEN" in lines[1]


# ----------------------------------------------------------------------------- config


def test_config_picks_greedy_for_one_seed_and_sampling_for_several():
    assert from_dict(ReasoningEvalConfig, {"bench": "math500"}).temperature == 0.0
    several = from_dict(ReasoningEvalConfig, {"bench": "math500", "seeds": [0, 1, 2]})
    assert several.temperature == 0.6 and several.out == "reasoning-math500.json"
    with pytest.raises(ConfigError, match="temperature=0 with seeds"):
        from_dict(ReasoningEvalConfig, {"bench": "math500", "seeds": [0, 1], "temperature": 0})
    # GPQA reshuffles options per seed, so greedy over several seeds is meaningful
    assert from_dict(ReasoningEvalConfig, {"bench": "gpqa-diamond", "seeds": [0, 1], "temperature": 0})
    with pytest.raises(ConfigError, match="backend"):
        from_dict(ReasoningEvalConfig, {"bench": "math500", "backend": "tgi"})


# ----------------------------------------------------------------------------- the command


def _run(*argv: str) -> int:
    return main(["eval", "reasoning", *argv])


def test_command_on_five_math500_problems_resumes_and_refuses_changed_settings(
    tiny_model_dir, math500_path, tmp_path, capsys
):
    out = tmp_path / "math.json"
    common = ["--model", tiny_model_dir, "--bench", "math500", "--data", str(math500_path)]
    sampling = ["--seeds", "0,1", "--max-new-tokens", "12", "--batch-size", "2", "--out", str(out)]
    assert _run(*common, *sampling, "--limit", "3") == 0
    first = json.loads(out.read_text())
    assert _run(*common, *sampling, "--limit", "5") == 0
    result = json.loads(out.read_text())

    assert result["complete"] and result["bench"] == "math500" and result["n_questions"] == 5
    assert result["settings"]["temperature"] == 0.6 and result["seeds"] == [0, 1]
    records = result["records"]
    assert len(records) == 10 and len({(r["seed"], r["id"]) for r in records}) == 10
    for r in records:
        assert set(r) >= {"id", "seed", "prediction", "extracted", "gold", "correct", "format_failure"}
        assert r["format_failure"] == (r["extracted"] is None)
    # the three records of the first run were kept, not regenerated
    assert first["records"] == [r for r in records if r["id"] in {x["id"] for x in first["records"]}]
    agg = result["aggregate"]
    for seed in ("0", "1"):
        mine = [r for r in records if str(r["seed"]) == seed]
        assert agg["accuracy_per_seed"][seed] == sum(r["correct"] for r in mine) / 5
    assert agg["accuracy_mean"] == 0.0  # a random 3M-parameter model solves nothing
    assert agg["format_failure_rate"] == sum(r["format_failure"] for r in records) / 10

    # nothing left to do: the generator is never built (vLLM is not installed here)
    before = out.read_text()
    assert _run(*common, *sampling, "--limit", "5", "--backend", "vllm") == 0
    assert json.loads(out.read_text())["records"] == json.loads(before)["records"]

    capsys.readouterr()
    assert _run(*common, *sampling[:-4], "--max-new-tokens", "20", "--out", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("actrl eval") and "error:" in err and "\n" not in err
    assert "max_new_tokens=12" in err and "max_new_tokens=20" in err


def test_command_on_the_gpqa_fixture_writes_seeded_gold_letters(tiny_model_dir, tmp_path):
    out = tmp_path / "gpqa.json"
    argv = ["--model", tiny_model_dir, "--bench", "gpqa-diamond", "--data", str(GPQA_TINY)]
    assert (
        _run(*argv, "--seeds", "0,1", "--temperature", "0", "--max-new-tokens", "8", "--out", str(out)) == 0
    )
    result = json.loads(out.read_text())
    questions = {q.id: q for q in load_questions("gpqa-diamond", GPQA_TINY)}
    assert len(result["records"]) == 16
    for r in result["records"]:
        assert r["gold"] == shuffled_options(questions[r["id"]], r["seed"])[1]
        assert r["correct"] == (r["extracted"] == r["gold"])
    agg = result["aggregate"]
    assert set(agg["accuracy_per_seed"]) == {"0", "1"} and agg["accuracy_std"] is not None
    assert 0.0 <= agg["accuracy_mean"] <= 1.0


def test_command_errors_are_one_line_exit_2(tmp_path, capsys):
    assert (
        _run("--bench", "math500", "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"))
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("actrl eval") and err.endswith(f"error: {tmp_path / 'missing.jsonl'}: no such file")
    with pytest.raises(SystemExit) as exc:
        _run("--bench", "math500", "--seeds", "0,x")
    assert exc.value.code == 2

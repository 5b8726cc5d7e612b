"""General-reasoning benchmarks of the ACT paper: MATH-500 and GPQA-Diamond questions, prompts, grading.

The paper checks that ACT, trained only on agent data, keeps (and improves) general reasoning:
MATH-500 and GPQA-Diamond accuracy next to IL's. This module loads the questions (Hugging Face Hub
by default, a local JSONL when given), renders the prompts, and grades one completion.

    actrl eval reasoning --model default --bench math500 --data ../shared/data/math500.jsonl
    actrl eval reasoning --model default --bench gpqa-diamond   # gated: needs an HF token

Choices the paper left open:
1. GPQA's four options are shuffled per question and seed with `random.Random("<seed>/<id>")`:
   reproducible across runs and machines, independent of question order and `--limit`.
2. GPQA letter precedence, each taking the last occurrence: (a) an answer statement
   ("Answer: C", "the answer is (C)", "**Answer:** \\boxed{C}"), (b) a \\boxed{C}, (c) a standalone
   "(C)", (d) a last line that is only the letter, or an answer that is one line restating an
   option ("B) 19.6 m"; a list of several options is an echo, not a choice). Letters are
   upper-case A-D; nothing found is a format failure (and wrong).
3. Reasoning is skipped before extraction: text after the last `</think>` when present; a
   `<think>` never closed (length limit hit while thinking) leaves no answer (format failure),
   and so does an empty `\\boxed{}` on MATH-500.
4. `--limit N` takes the first N questions in file (or Hub) order.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actrl.data.records import RecordError, read_jsonl
from actrl.eval.math_equiv import last_boxed, math_equal

Messages = list[dict[str, str]]
LETTERS = "ABCD"


class DatasetUnavailableError(RecordError):
    """A benchmark cannot be loaded from the Hub (offline, gated, missing)."""


@dataclass(frozen=True)
class BenchSpec:
    hub_path: str
    hub_config: str | None
    hub_split: str
    fields: tuple[str, ...]  # required string fields of a row
    id_field: str  # optional row id column; the line number otherwise


BENCHES: dict[str, BenchSpec] = {
    "math500": BenchSpec("HuggingFaceH4/MATH-500", None, "test", ("problem", "answer"), "unique_id"),
    "gpqa-diamond": BenchSpec(
        "Idavidrein/gpqa",
        "gpqa_diamond",
        "train",  # GPQA ships a single split
        ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"),
        "Record ID",
    ),
}

GATED_HELP = (
    "the dataset is gated: accept its terms at https://huggingface.co/datasets/Idavidrein/gpqa, then run "
    "`hf auth login` (or `huggingface-cli login`) or set HF_TOKEN; or pass --data local.jsonl"
)


@dataclass
class Question:
    """One benchmark question; for GPQA `options[0]` is the correct answer (shown shuffled)."""

    id: str
    text: str
    gold: str  # MATH: the reference answer; GPQA: the correct option's text
    options: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- loading


def _hub_rows(bench: str) -> list[dict[str, Any]]:
    import datasets

    spec = BENCHES[bench]
    where = spec.hub_path + (f" ({spec.hub_config})" if spec.hub_config else "")
    try:
        ds = datasets.load_dataset(spec.hub_path, spec.hub_config, split=spec.hub_split)
    except Exception as e:  # datasets raises many types; each becomes one actionable line
        raise hub_error(bench, e) from None
    if len(ds) == 0:
        raise DatasetUnavailableError(f"{where}: the Hub dataset is empty")
    return [dict(r) for r in ds]


def hub_error(bench: str, e: BaseException) -> DatasetUnavailableError:
    """The one-line error for a failed Hub load: gated access, offline, or anything else."""
    spec = BENCHES[bench]
    where = spec.hub_path + (f" ({spec.hub_config})" if spec.hub_config else "")
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    chain = [e, e.__cause__, e.__context__]
    denied = "gated" in str(e).lower() or any(type(c).__name__ == "GatedRepoError" for c in chain if c)
    if bench == "gpqa-diamond":
        head = "access denied" if denied else "cannot load it"
        return DatasetUnavailableError(f"{where}: {head} ({reason}); {GATED_HELP}")
    return DatasetUnavailableError(
        f"{where}: cannot load it from the Hugging Face Hub ({reason}); "
        "check the network / HF_HUB_OFFLINE, or pass --data local.jsonl"
    )


def _local_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for every record of a JSONL file; malformed JSON names file:line."""
    rows = read_jsonl(path)
    lines = [i for i, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1) if line.strip()]
    if not rows:
        raise RecordError(f"{path}: no questions in file (empty)")
    return list(zip(lines, rows, strict=True))


def _question(bench: str, row: dict[str, Any], where: str, line: int) -> Question:
    spec = BENCHES[bench]
    for name in spec.fields:
        if name not in row:
            raise RecordError(f"{where}: missing field '{name}' ({bench} rows need {', '.join(spec.fields)})")
        if not isinstance(row[name], str) or not row[name].strip():
            raise RecordError(f"{where}: field '{name}' must be a non-empty string, got {row[name]!r}")
    qid = str(row.get(spec.id_field) or f"line-{line}")
    if bench == "math500":
        meta = {k: row[k] for k in ("subject", "level") if k in row}
        return Question(qid, row["problem"].strip(), row["answer"].strip(), meta=meta)
    options = [row[name].strip() for name in spec.fields[1:]]
    if len(set(options)) < 4:
        raise RecordError(f"{where}: the four options must differ, got {options!r}")
    return Question(qid, row["Question"].strip(), options[0], options=options)


def load_questions(bench: str, data: str | Path | None = None, limit: int | None = None) -> list[Question]:
    """Questions of `bench` from a local JSONL (`data`) or the Hub; the first `limit` of them."""
    if bench not in BENCHES:
        raise RecordError(f"unknown benchmark '{bench}'; expected one of {', '.join(BENCHES)}")
    if data is not None:
        path = Path(data)
        numbered = [(f"{path}:{line}", line, row) for line, row in _local_rows(path)]
    else:
        source = BENCHES[bench].hub_path
        numbered = [(f"{source} row {i}", i, row) for i, row in enumerate(_hub_rows(bench), 1)]
    questions, seen = [], {}
    for where, line, row in numbered[:limit]:
        q = _question(bench, row, where, line)
        if q.id in seen:
            raise RecordError(f"{where}: duplicate question id '{q.id}' (first at {seen[q.id]})")
        seen[q.id] = where
        questions.append(q)
    return questions


# ----------------------------------------------------------------------------- prompts

MATH_PROMPT = (
    "Solve the following math problem. Reason step by step, then give the final answer "
    "inside \\boxed{{}}.\n\n{problem}"
)
GPQA_PROMPT = (
    "Answer the following multiple-choice question. Reason step by step, then end with a last line "
    "of the form 'Answer: X', where X is one of A, B, C, D.\n\n{question}\n\n{options}"
)


def shuffled_options(q: Question, seed: int) -> tuple[list[str], str]:
    """(options in the order shown, letter of the correct one), fixed by (seed, question id)."""
    order = list(range(len(q.options)))
    random.Random(f"{seed}/{q.id}").shuffle(order)
    return [q.options[i] for i in order], LETTERS[order.index(0)]


def messages(bench: str, q: Question, seed: int) -> Messages:
    """The chat prompt for question `q` under `seed` (the seed only matters for GPQA's order)."""
    if bench == "math500":
        content = MATH_PROMPT.format(problem=q.text)
    else:
        options, _ = shuffled_options(q, seed)
        shown = "\n".join(f"{letter}) {opt}" for letter, opt in zip(LETTERS, options, strict=True))
        content = GPQA_PROMPT.format(question=q.text, options=shown)
    return [{"role": "user", "content": content}]


# ----------------------------------------------------------------------------- grading


def answer_part(completion: str) -> str:
    """The completion without its reasoning: after the last </think>; '' inside an unclosed <think>.

    >>> answer_part('<think>maybe B</think> Answer: C'), answer_part('<think>maybe B')
    (' Answer: C', '')
    """
    if "</think>" in completion:
        return completion.rsplit("</think>", 1)[1]
    return "" if "<think>" in completion else completion


_DECOR = r"(?:[\s*$(\[{:：]|\\(?:boxed|text|textbf|mathrm|mathbf)\s*\{)*"
_ANSWER = re.compile(
    r"(?i:answer)(?:\s*(?i:is))?"
    + _DECOR
    + r"(?:(?i:option|choice)\s*)?"
    + _DECOR
    + r"([A-D])(?![A-Za-z0-9])"
)
_BOXED_LETTER = re.compile(_DECOR + r"([A-D])(?![A-Za-z0-9])")
_PAREN = re.compile(r"\(([A-D])\)")
_BARE = re.compile(r"\s*[(*]*([A-D])[).:*]*\s*")
_OPTION_LINE = re.compile(r"\s*\(?([A-D])\)\s+\S")


def extract_letter(text: str) -> str | None:
    r"""The chosen option letter (A-D) by the precedence of choice 2, or None.

    >>> extract_letter('B looks right... Answer: C'), extract_letter(r'so \boxed{D}.')
    ('C', 'D')
    >>> extract_letter('(A) is wrong, (B) fits'), extract_letter('the answer is a compound') is None
    ('B', True)
    """
    answer = _ANSWER.findall(text)
    if answer:
        return answer[-1]
    boxed = last_boxed(text)
    if boxed is not None:
        m = _BOXED_LETTER.match(boxed)
        if m:
            return m.group(1)
    paren = _PAREN.findall(text)
    if paren:
        return paren[-1]
    lines = [line for line in text.strip().splitlines() if line.strip()]
    bare = _BARE.fullmatch(lines[-1]) if lines else None
    if bare:
        return bare.group(1)
    restated = _OPTION_LINE.match(lines[0]) if len(lines) == 1 else None  # the whole answer is "B) 19.6 m"
    return restated.group(1) if restated else None


def grade(bench: str, q: Question, completion: str, seed: int) -> dict[str, Any]:
    """extracted answer, gold, correct, format_failure for one completion."""
    text = answer_part(completion)
    if bench == "math500":
        extracted, gold = last_boxed(text) or None, q.gold  # an empty \boxed{} is no answer
        correct = extracted is not None and math_equal(gold, extracted)
    else:
        extracted = extract_letter(text)
        gold = shuffled_options(q, seed)[1]
        correct = extracted == gold
    return {"extracted": extracted, "gold": gold, "correct": correct, "format_failure": extracted is None}

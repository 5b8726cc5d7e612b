"""MATH-500 grading: the last \\boxed{...} of a completion, compared for mathematical equivalence.

The ACT paper reports MATH-500 accuracy of checkpoints trained only on agent data (reasoning
transfer). Equivalence is decided by the maintained library `math-verify` (sympy underneath), not
by string equality: `\\frac{14}{3}` equals `14/3` and `4.6666667`, `3\\sqrt{13}` is not `13`.

    actrl eval reasoning --model default --bench math500 --data ../shared/data/math500.jsonl

Choices the paper left open:
1. The answer is the *last* `\\boxed{...}` (or `\\fbox{...}`) in the completion, with balanced
   braces. A last box cut off by the length limit (unbalanced) counts as no answer: an earlier
   box is usually an intermediate result, not the answer.
2. Both sides are wrapped in `\\boxed{}` before `math_verify.parse`, so gold and prediction go
   through the same normalisation (units, `\\text{}`, `^\\circ`, `\\%`, `\\$` dropped). Gold is
   passed first (math-verify's comparison is not symmetric for equations).
3. math-verify's numeric tolerance is kept (6 decimals), so `4.6666667` matches `\\frac{14}{3}`.
   Its timeouts use `signal.alarm`, so grading runs in the main thread.
"""

from __future__ import annotations

import re

_BOX = re.compile(r"\\(?:boxed|fbox)\b")


def last_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (balanced braces), or None when there is none or it is cut off.

    >>> last_boxed(r'so $x = \boxed{\frac{1}{2}}$, and finally \boxed{3}.')
    '3'
    >>> last_boxed(r'\boxed{\frac{14}{3}}')
    '\\frac{14}{3}'
    >>> last_boxed(r'\boxed 7') , last_boxed('no box') , last_boxed(r'\boxed{\frac{1}{2')
    ('7', None, None)
    """
    matches = list(_BOX.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    stripped = rest.lstrip()
    if not stripped.startswith("{"):  # "\boxed 7": the token up to whitespace or '$'
        token = re.match(r"[^\s$]+", stripped)
        return token.group(0) if token and rest[:1].isspace() else None
    depth = 0
    start = len(rest) - len(stripped)
    for i in range(start, len(rest)):
        if rest[i] == "{" and rest[i - 1 : i] != "\\":
            depth += 1
        elif rest[i] == "}" and rest[i - 1 : i] != "\\":
            depth -= 1
            if depth == 0:
                return rest[start + 1 : i].strip()
    return None


def math_equal(gold: str, predicted: str) -> bool:
    r"""Whether `predicted` is mathematically equivalent to the reference answer `gold` (math-verify).

    >>> math_equal(r'\frac{14}{3}', '14/3'), math_equal(r'3\sqrt{13}', '13')
    (True, False)
    """
    from math_verify import parse, verify

    if not predicted.strip():
        return False
    gold_parsed = parse(f"\\boxed{{{gold}}}")
    pred_parsed = parse(f"\\boxed{{{predicted}}}")
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed))

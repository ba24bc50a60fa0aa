"""ListOps (Nangia & Bowman 2018) as generated for the Long Range Arena.

Follows the rules of LRA's generator (``lra_benchmarks/data/listops.py``): a random tree whose
inner nodes are operators MAX, MIN, MED (median, truncated to an int) and SM (sum mod 10) over
2..``max_args`` arguments, leaves are digits 0..9; a node below ``max_depth`` is an operator
with probability 0.25; only trees whose length (digits + operators + closing brackets) lies
strictly between ``min_length`` and ``max_length`` are kept, without duplicates.

Sources are written exactly as in LRA's tsv "Source" column: every (partial application,
argument) pair is wrapped in parentheses, so ``[MAX 2 9]`` reads ``( ( ( [MAX 2 ) 9 ) ] )``.
Tokens follow S4's reading of that format: parentheses are dropped, operators, digits and the
closing bracket ``]`` are kept (LRA's own tokenizer also dropped ``]``, which loses the tree).
"""

from __future__ import annotations

import random
import statistics

import numpy as np

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE = "]"
OPERATOR_PROBABILITY = 0.25

PAD_TOKEN = "<pad>"
VOCAB = (PAD_TOKEN, *(str(d) for d in range(10)), *OPERATORS, CLOSE)
"""Token strings by id: pad 0, digits 1..10, operators 11..14, ``]`` 15."""
TOKEN_IDS = {token: i for i, token in enumerate(VOCAB)}
NUM_CLASSES = 10


class _TooLong(Exception):
    """Raised while growing a tree that already exceeds the length limit (it would be rejected)."""


def apply_operator(operator: str, values: list[int]) -> int:
    """Value of ``operator`` (one of OPERATORS) over integer ``values``; in 0..9 for digit inputs."""
    if operator == "[MIN":
        return min(values)
    if operator == "[MAX":
        return max(values)
    if operator == "[MED":
        return int(statistics.median(values))
    if operator == "[SM":
        return sum(values) % 10
    raise ValueError(f"unknown ListOps operator {operator!r}; expected one of {OPERATORS}")


def _grow(rng: random.Random, depth: int, max_depth: int, max_args: int, budget: int) -> tuple[str, int, int]:
    """One random subtree: (source text, value, length). Raises _TooLong past ``budget`` tokens."""
    if depth >= max_depth or rng.random() > OPERATOR_PROBABILITY:
        value = rng.randrange(10)
        return str(value), value, 1
    num_args = rng.randint(2, max_args)
    operator = rng.choice(OPERATORS)
    length = 2  # the operator and its closing bracket
    parts = ["( " * (num_args + 1) + operator]
    values = []
    for _ in range(num_args):
        text, value, sub_length = _grow(rng, depth + 1, max_depth, max_args, budget - length)
        length += sub_length
        if length >= budget:
            raise _TooLong
        parts.append(f" {text} )")
        values.append(value)
    parts.append(f" {CLOSE} )")
    return "".join(parts), apply_operator(operator, values), length


def generate(
    num_examples: int,
    seed: int = 0,
    *,
    min_length: int = 500,
    max_length: int = 2000,
    max_depth: int = 10,
    max_args: int = 10,
) -> list[tuple[str, int]]:
    """Generate ``num_examples`` distinct ListOps expressions with their values.

    Returns a list of ``(source, label)``: ``source`` in the LRA tsv's "Source" format, e.g.
    ``"( ( ( [MAX 2 ) 9 ) ] )"`` with label 9; labels in 0..9. Deterministic in ``seed``.
    Lengths count digits, operators and closing brackets (the tokens of :func:`tokenize`), and
    lie strictly between ``min_length`` and ``max_length`` as in LRA (defaults 500 and 2000).
    """
    if num_examples < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples}")
    if not 1 <= min_length + 1 < max_length:
        raise ValueError(f"need 0 <= min_length < max_length - 1, got {min_length} and {max_length}")
    if max_depth < 2 or max_args < 2:
        raise ValueError(f"max_depth and max_args must be >= 2, got {max_depth} and {max_args}")
    rng = random.Random(seed)
    rows: dict[str, int] = {}
    while len(rows) < num_examples:
        try:
            source, value, length = _grow(rng, 1, max_depth, max_args, max_length)
        except _TooLong:
            continue
        if min_length < length < max_length and source not in rows:
            rows[source] = value
    return list(rows.items())


def tokenize(source: str) -> list[str]:
    """Tokens of an LRA "Source" string: parentheses dropped, ``[OP``, digits and ``]`` kept."""
    return source.replace("(", " ").replace(")", " ").split()


def encode(source: str) -> np.ndarray:
    """Token ids (uint8, shape (num_tokens,)) of an LRA "Source" string, in :data:`VOCAB`."""
    try:
        return np.array([TOKEN_IDS[token] for token in tokenize(source)], dtype=np.uint8)
    except KeyError as error:
        raise ValueError(f"ListOps source has an unknown token {error.args[0]!r}: {source[:80]!r}") from None


def evaluate(source: str) -> int:
    """Value of an LRA "Source" expression, computed by parsing its tokens with a stack."""
    stack: list[tuple[str, list[int]]] = []
    result = None
    for token in tokenize(source):
        if token in OPERATORS:
            stack.append((token, []))
        elif token == CLOSE:
            if not stack:
                raise ValueError(f"unbalanced ']' in ListOps source {source[:80]!r}")
            operator, values = stack.pop()
            value = apply_operator(operator, values)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        elif token.isdigit() and len(token) == 1:
            if stack:
                stack[-1][1].append(int(token))
            else:
                result = int(token)
        else:
            raise ValueError(f"unknown ListOps token {token!r} in {source[:80]!r}")
    if stack or result is None:
        raise ValueError(f"incomplete ListOps expression {source[:80]!r}")
    return result

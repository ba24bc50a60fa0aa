"""ListOps: the public generate() contract, LRA's Source format, labels that evaluate correctly."""

from __future__ import annotations

import numpy as np
import pytest
from mamba_lm.data.lra.listops import OPERATORS, VOCAB, encode, evaluate, generate, tokenize


def parse_tree(tokens: list[str]):
    """Token list -> nested (operator, [arguments]) / int tree (independent of the generator)."""
    stack = [("ROOT", [])]
    for token in tokens:
        if token in OPERATORS:
            stack.append((token, []))
        elif token == "]":
            node = stack.pop()
            stack[-1][1].append(node)
        else:
            stack[-1][1].append(int(token))
    (root,) = stack[0][1]
    return root


def lra_string(tree) -> str:
    """LRA's to_string of its nested-tuple tree: ((((op, a0), a1), ...), ']'), each pair in parentheses."""
    if isinstance(tree, int):
        return str(tree)
    operator, arguments = tree
    text = f"( {operator} {lra_string(arguments[0])} )"
    for argument in arguments[1:]:
        text = f"( {text} {lra_string(argument)} )"
    return f"( {text} ] )"


def reference_value(tree) -> int:
    if isinstance(tree, int):
        return tree
    operator, arguments = tree
    values = [reference_value(a) for a in arguments]
    return {
        "[MIN": min(values),
        "[MAX": max(values),
        "[MED": int(np.median(values)),
        "[SM": int(np.sum(values) % 10),
    }[operator]


def test_public_api_example():
    rows = generate(100, seed=0)
    assert len(rows) == 100 and len({source for source, _ in rows}) == 100
    assert all(
        isinstance(source, str) and isinstance(label, int) and 0 <= label <= 9 for source, label in rows
    )
    assert rows == generate(100, seed=0) and rows != generate(100, seed=1)
    assert evaluate("( ( ( [MAX 2 ) 9 ) ] )") == 9
    assert lra_string(parse_tree(tokenize("( ( ( [MAX 2 ) 9 ) ] )"))) == "( ( ( [MAX 2 ) 9 ) ] )"


def test_generated_expressions_follow_lra_rules_and_evaluate_to_their_labels():
    rows = generate(60, seed=3)
    labels = set()
    for source, label in rows:
        tree = parse_tree(tokenize(source))
        assert lra_string(tree) == source  # exactly LRA's "Source" format
        assert 500 < len(tokenize(source)) < 2000
        assert evaluate(source) == reference_value(tree) == label
        labels.add(label)

        def check(node, depth):
            if isinstance(node, int):
                return depth
            assert 2 <= len(node[1]) <= 10
            return max(check(child, depth + 1) for child in node[1])

        assert check(tree, 1) <= 10  # the root is depth 1; operators only above max_depth = 10
    assert len(labels) > 3


def test_short_expressions_for_quick_mode():
    rows = generate(50, seed=0, min_length=5, max_length=40, max_depth=4, max_args=4)
    assert all(5 < len(tokenize(s)) < 40 and evaluate(s) == label for s, label in rows)


def test_encoding_uses_the_fixed_vocabulary():
    ids = encode("( ( ( [MAX 2 ) 9 ) ] )")
    assert ids.dtype == np.uint8 and [VOCAB[i] for i in ids] == ["[MAX", "2", "9", "]"]
    assert len(VOCAB) == 16 and VOCAB[0] == "<pad>"
    with pytest.raises(ValueError, match="unknown token '\\[FIRST'"):
        encode("( ( [FIRST 2 ) ] )")
    with pytest.raises(ValueError, match="incomplete"):
        evaluate("( ( [MAX 2 ) 3 )")

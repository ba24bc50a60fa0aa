"""Every Triton kernel launch in kernels/ passes its arguments by name (kernels/launch.py says why).

The sources are parsed, not run: a launch ``kernel[grid](...)`` with a positional argument fails, and
so does a keyword that is not one of the kernel's parameters (Triton's interpreter drops unknown
keywords without a word). Names passed to ``strides(x, "stride_xb", ...)`` count as keywords.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mamba_lm.kernels
import pytest
import torch
from mamba_lm.kernels.launch import optional_ptr, strides

KERNELS = Path(mamba_lm.kernels.__file__).parent
LAUNCH_OPTIONS = {"num_warps", "num_stages"}


def jit_kernels(trees: list[ast.Module]) -> dict[str, list[str]]:
    """Name -> parameter names of every ``@triton.jit`` function."""
    found = {}
    for tree in trees:
        for node in ast.walk(tree):
            jit = isinstance(node, ast.FunctionDef) and "triton.jit" in map(ast.unparse, node.decorator_list)
            if jit:
                found[node.name] = [a.arg for a in node.args.args]
    return found


def launches(tree: ast.Module) -> list[ast.Call]:
    """Every call of a subscripted name, ``kernel[grid](...)``."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Subscript)
        and isinstance(node.func.value, ast.Name)
    ]


def keyword_names(call: ast.Call) -> list[str]:
    """Explicit keyword names, and the string constants passed to a call spread with ``**``."""
    names = []
    for kw in call.keywords:
        if kw.arg is not None:
            names.append(kw.arg)
        elif isinstance(kw.value, ast.Call):
            strings = [a for a in kw.value.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            names += [a.value for a in strings]
    return names


def launch_problems(source: str, where: str, kernels: dict[str, list[str]]) -> list[str]:
    """One line per positional argument, unknown kernel or unknown keyword of a launch in source."""
    problems = []
    for call in launches(ast.parse(source)):
        name = call.func.value.id
        at = f"{where}:{call.lineno} {name}"
        if call.args:
            problems.append(f"{at}: {len(call.args)} positional arguments")
        if name not in kernels:
            problems.append(f"{at}: not a @triton.jit function of kernels/")
            continue
        unknown = set(keyword_names(call)) - set(kernels[name]) - LAUNCH_OPTIONS
        if unknown:
            problems.append(f"{at}: not parameters of the kernel: {sorted(unknown)}")
    return problems


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return {str(p.relative_to(KERNELS)): p.read_text() for p in sorted(KERNELS.rglob("*.py"))}


@pytest.fixture(scope="module")
def kernels(sources) -> dict[str, list[str]]:
    return jit_kernels([ast.parse(s) for s in sources.values()])


def test_every_launch_names_its_arguments(sources, kernels):
    problems = [line for path, src in sources.items() for line in launch_problems(src, path, kernels)]
    assert problems == []


def test_every_kernel_is_found_launched(sources, kernels):
    """The check above sees every kernel's launch (none launched in a form it does not parse)."""
    launched = {call.func.value.id for src in sources.values() for call in launches(ast.parse(src))}
    assert launched == {name for name in kernels if name.endswith("_kernel")}
    assert len(launched) >= 12


def test_a_positional_launch_or_a_wrong_name_is_caught():
    kernels = {"k_kernel": ["x_ptr", "stride_xb", "BLOCK"]}
    positional = "k_kernel[(1,)](x, BLOCK=4)"
    wrong_name = "k_kernel[(1,)](x_ptr=x, **strides(x, 'stride_xd'), BLOCK=4, num_warps=1)"
    fine = "k_kernel[(1,)](x_ptr=x, **strides(x, 'stride_xb'), BLOCK=4, num_warps=1)"
    assert launch_problems(positional, "a.py", kernels) == ["a.py:1 k_kernel: 1 positional arguments"]
    assert launch_problems(wrong_name, "a.py", kernels) == [
        "a.py:1 k_kernel: not parameters of the kernel: ['stride_xd']"
    ]
    assert launch_problems(fine, "a.py", kernels) == []


def test_strides_and_optional_pointers():
    x = torch.empty(2, 3, 5).transpose(1, 2)
    assert strides(x, "sb", "sl", "sd") == {"sb": 15, "sl": 1, "sd": 5}
    assert strides(None, "sb", "sd") == {"sb": 0, "sd": 0}
    with pytest.raises(ValueError, match="2 stride names"):
        strides(x, "sb", "sd")
    assert optional_ptr(None, x) is x
    y = torch.empty(1)
    assert optional_ptr(y, x) is y

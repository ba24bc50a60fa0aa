"""``mamba-lm-eval <lm-eval's arguments>``: lm-eval's own command line, with the model ``mamba_lm``
registered first (lm-eval 0.4 discovers no plugins, so a plain ``lm_eval --model mamba_lm`` does not
know it). For example::

    mamba-lm-eval --model mamba_lm --model_args checkpoint=RUN_DIR,dtype=bfloat16 \\
        --tasks lambada_openai,hellaswag --batch_size auto --output_path results/

``--model_args`` takes ``checkpoint=`` (or ``pretrained=``) and the other ``MambaEvalLM`` arguments;
``--device`` defaults to lm-eval's cuda:0 and falls back to the CPU where there is no GPU. The same runs
as ``python -m evaluation.harness_cli ...`` in a checkout.
"""

from __future__ import annotations

import sys

from . import register_lm_eval_model


def main(argv: list[str] | None = None) -> None:
    """Run lm-eval's CLI on ``argv`` (default: the process's arguments)."""
    if not register_lm_eval_model():
        raise SystemExit("mamba-lm-eval needs lm-eval: pip install 'mamba-lm-framework[eval]'")
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]  # lm-eval's parser reads sys.argv
    cli_evaluate()


if __name__ == "__main__":
    main()

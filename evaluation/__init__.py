"""Evaluation: perplexity, the lm-eval model ``mamba_lm``, Long Range Arena, synthetic tasks, reports.

Importing this package registers ``mamba_lm`` with lm-eval (lazily: the class is imported when
lm-eval first asks for it), so ``lm_eval.simple_evaluate(model="mamba_lm", ...)`` works after
``import evaluation``. Without lm-eval installed (the GPU image) the rest still imports.

Command line: ``python -m evaluation <command> key=value ...`` (see ``evaluation/__main__.py``;
``mamba-lm-evaluate`` when installed).

Library entry points (each module imports only what it needs):

- ``evaluation.perplexity``: ``perplexity_over_batches``, ``perplexity_sliding``, ``sliding_windows``
- ``evaluation.harness_model.MambaEvalLM`` (the lm-eval model) and ``evaluation.harness.run_harness``
- ``evaluation.loading.load_for_eval`` (run folders, HF and mamba_ssm checkpoints, with tokenizer)
- ``evaluation.export.export_to_hf`` / ``push_to_hub`` (a transformers folder with the run's tokenizer)
- ``evaluation.harness_cli.main``: lm-eval's own CLI with ``mamba_lm`` registered (``mamba-lm-eval``)
- ``evaluation.decoding.decode_until`` (batched recurrent decoding with stop strings)
- ``evaluation.recurrent.predictions_at_labels`` and ``evaluation.synthetic.length_generalization``
- ``evaluation.lra.evaluate_lra_run`` / ``quick_train``; ``evaluation.report.build_report``
- results live in ``RUN_DIR/eval/{perplexity,harness,lra,synthetic}.json`` (``evaluation.results``)
"""

from __future__ import annotations

from mamba_lm._short_names import alias_short_name

# Imported as `evaluation` from a checkout's root: it becomes mamba_lm.evaluation (mamba_lm/_short_names.py).
alias_short_name(__name__)

LM_EVAL_MODEL_NAME = "mamba_lm"
LM_EVAL_MODEL_TARGET = "mamba_lm.evaluation.harness_model:MambaEvalLM"


def register_lm_eval_model() -> bool:
    """Register ``mamba_lm`` in lm-eval's model registry; False when lm-eval is not installed."""
    try:
        from lm_eval.api.registry import model_registry
    except ImportError:
        return False
    if LM_EVAL_MODEL_NAME not in model_registry:
        model_registry.register(LM_EVAL_MODEL_NAME, target=LM_EVAL_MODEL_TARGET)
    return True


register_lm_eval_model()

__all__ = ["LM_EVAL_MODEL_NAME", "register_lm_eval_model"]

"""The ``python -m evaluation`` commands: one module each, with an ``Options`` dataclass (its keys)
and ``run(options, positional) -> int`` (the exit status)."""

COMMANDS: dict[str, str] = {
    "perplexity": "perplexity of a checkpoint on a data config's held-out split (blocks or sliding window)",
    "harness": "lm-eval tasks (the paper's zero-shot set, or any task, local YAML included)",
    "lra": "Long Range Arena accuracy of classifier runs beside published rows; quick=true trains tiny ones",
    "synthetic": "synthetic: induction-heads accuracy per test length (2^6 ... 2^20), selective copying",
    "generate": "continue a prompt (or a file of prompts) with a checkpoint; prints only the new text",
    "report": "a Markdown + HTML report (with PNG plots) comparing run folders side by side",
    "export": "a Hugging Face folder (weights, config, tokenizer, generation config); push_to_hub=OWNER/NAME",
}

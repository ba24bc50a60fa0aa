"""``python -m evaluation harness checkpoint=RUN_DIR tasks=paper [include_path=DIR] [limit=N] ...``.

Runs lm-eval tasks through the ``mamba_lm`` model, prints lm-eval's table, and saves
``{task: {metric: value}}`` in RUN_DIR/eval/harness.json (or ``out``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cli import option
from ..harness import run_harness, summarize
from ..report.tables import downstream_table
from ..results import run_folder_of, update_results


@dataclass
class Options:
    checkpoint: str = option(help="run folder, checkpoint folder, or HF/mamba_ssm model folder")
    tasks: list[str] = option(help="lm-eval task names, comma-separated; 'paper' = the Mamba paper's six")
    include_path: str | None = option(None, help="folder of extra task YAMLs (local tasks)")
    num_fewshot: int | None = option(
        None, help="few-shot examples (default: each task's own, 0 for the paper's)"
    )
    limit: float | None = option(None, help="examples per task (an int), or a fraction of each task (< 1)")
    batch_size: str = option(
        "16", help="requests per forward pass, or auto (the largest that fits on the GPU)"
    )
    device: str | None = option(None, help="cpu | cuda | cuda:N (default: cuda when available)")
    dtype: str = option("auto", help="autocast dtype: auto | float32 | bfloat16 | float16")
    max_length: int | None = option(
        None, help="longest token sequence fed to the model (default: training seqlen or 2048)"
    )
    tokenizer: str | None = option(None, help="tokenizer.json (default: the checkpoint's)")
    eos_token: str | None = option(None, help="the EOS token string, if the tokenizer leaves it unclear")
    bootstrap_iters: int = option(100_000, help="bootstrap iterations for standard errors (0: none)")
    skip_unreachable: bool = option(True, help="skip (with a message) tasks whose data cannot be fetched")
    include_defaults: bool = option(
        True, help="index lm-eval's built-in tasks (false: only include_path; faster)"
    )
    out: str | None = option(None, help="folder to save eval/harness.json in (default: the run folder)")


def run(options: Options, positional: list[str]) -> int:
    if positional:
        raise ValueError(f"harness takes key=value arguments only, got {positional}")
    from lm_eval.utils import make_table

    model_args = {
        "batch_size": options.batch_size,
        "device": options.device,
        "dtype": options.dtype,
        "max_length": options.max_length,
        "tokenizer": options.tokenizer,
        "eos_token": options.eos_token,
    }
    limit = int(options.limit) if options.limit is not None and options.limit >= 1 else options.limit
    results, skipped = run_harness(
        options.checkpoint,
        options.tasks,
        options.include_path,
        options.num_fewshot,
        limit,
        {key: value for key, value in model_args.items() if value is not None},
        options.bootstrap_iters,
        options.skip_unreachable,
        options.include_defaults,
    )
    print(make_table(results))
    for task, reason in skipped.items():
        print(f"skipped {task}: its data could not be loaded ({reason})")
    summary = summarize(results)
    summary["_meta"] = {"checkpoint": options.checkpoint, "limit": limit, "num_fewshot": options.num_fewshot}
    table = downstream_table({str(options.checkpoint): summary})
    if table is not None:
        print(table.to_markdown())
    out = options.out or run_folder_of(options.checkpoint)
    if out is not None:
        print(f"saved {update_results(out, 'harness', summary)}")
    return 0

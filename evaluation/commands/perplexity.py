"""``python -m evaluation perplexity checkpoint=RUN_DIR [data=NAME] [split=val] [stride=0] ...``.

Default data: the run's own data config (its held-out split). ``data=NAME`` takes any data config
under configs/data/ instead (``data.KEY=VALUE`` overrides its keys). ``stride=0`` scores the data
loader's blocks as the trainer validates; ``stride=S`` a sliding window of ``context`` tokens.
Prints perplexity, loss, tokens and tokens/s; saves them in RUN_DIR/eval/perplexity.json with the step of
the checkpoint scored.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..cli import option
from ..data_configs import build_eval_datamodule, check_tokenizers_match, embedding_rows
from ..loading import load_for_eval, resolve_device, resolve_dtype
from ..perplexity import perplexity_over_batches, perplexity_sliding, token_stream_from_batches
from ..results import run_folder_of, update_results

SPLITS = ("val", "test", "train")


@dataclass
class Options:
    checkpoint: str = option(help="run folder, checkpoint folder, or HF/mamba_ssm model folder")
    data: str | None = option(None, help="data config name under configs/data/ (default: the run's own)")
    split: str = option("val", help="val | test | train (train needs max_tokens)")
    stride: int = option(
        0, help="0: the loader's blocks (as the trainer validates); S > 0: sliding window step"
    )
    context: int | None = option(None, help="sliding window length in tokens (default: the data's seqlen)")
    batch_size: int = option(8, help="sequences per forward pass")
    max_batches: int | None = option(None, help="blocks mode: score at most this many batches")
    max_tokens: int | None = option(None, help="score at most about this many tokens")
    device: str | None = option(None, help="cpu | cuda | cuda:N (default: cuda when available)")
    dtype: str = option("auto", help="autocast dtype: auto | float32 | bfloat16 | float16")
    tokenizer: str | None = option(
        None, help="tokenizer.json to check the data against (default: the checkpoint's)"
    )
    out: str | None = option(None, help="folder to save eval/perplexity.json in (default: the run folder)")
    overrides: dict = option({}, help="data.KEY=VALUE: override keys of the data config")


def run(options: Options, positional: list[str]) -> int:
    if positional:
        raise ValueError(f"perplexity takes key=value arguments only, got {positional}")
    if options.split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {options.split!r}")
    if options.split == "train" and not (options.max_tokens or options.max_batches):
        raise ValueError("split=train is endless: give max_tokens=N or max_batches=N")
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    loaded = load_for_eval(options.checkpoint, device, tokenizer=options.tokenizer, require_tokenizer=False)
    data_name, datamodule = build_eval_datamodule(options.data, loaded.run_config, options.overrides)
    if datamodule.task != "lm":
        raise ValueError(
            f"data config {data_name!r} is a {datamodule.task} task; perplexity needs a language-model one"
        )
    if datamodule.vocab_size > embedding_rows(loaded.model):
        raise ValueError(
            f"data config {data_name!r} has a vocabulary of {datamodule.vocab_size} tokens, more than the "
            f"model's {embedding_rows(loaded.model)} embedding rows: it was tokenized for another model"
        )
    check_tokenizers_match(loaded.tokenizer, datamodule.tokenizer_file, data_name)

    loader = {"val": datamodule.val_loader, "test": datamodule.test_loader, "train": datamodule.train_loader}[
        options.split
    ](options.batch_size)
    if options.max_batches is not None:
        loader = itertools.islice(loader, options.max_batches)
    if options.stride == 0:
        mode = "blocks"
        result = perplexity_over_batches(loaded.model, loader, options.max_tokens, dtype)
        context = datamodule.seqlen
    else:
        context = options.context or datamodule.seqlen
        mode = f"sliding-c{context}-s{options.stride}"
        stream = token_stream_from_batches(loader, options.max_tokens)
        result = perplexity_sliding(loaded.model, stream, context, options.stride, options.batch_size, dtype)

    summary = {
        **result.to_dict(),
        "checkpoint": str(options.checkpoint),
        "step": loaded.step,  # the checkpoint's optimizer steps (None for models from elsewhere)
        "data": data_name,
        "split": options.split,
        "mode": mode,
        "context": context,
        "stride": options.stride,
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device),
    }
    print(
        f"perplexity {result.perplexity:.4f}  loss {result.mean_nll:.4f}  tokens {result.tokens:,}  "
        f"{result.tokens_per_s:,.0f} tokens/s  ({data_name}/{options.split}, {mode}, context {context})"
    )
    out = options.out or run_folder_of(options.checkpoint)
    if out is not None:
        path = update_results(out, "perplexity", {f"{data_name}/{options.split}/{mode}": summary})
        print(f"saved {path}")
    return 0

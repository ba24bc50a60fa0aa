"""``python -m evaluation synthetic checkpoint=RUN_DIR [max_log2=20] [mode=auto] ...``.

For a run trained with ``experiment=synthetic/induction_heads``: accuracy at every test length
(default: the data config's ``eval_seqlens``, 2^6 ... 2^20) in one table, in parallel form in batch
chunks of at most ``parallel_tokens`` tokens (2^20 tokens: a few sequences per pass); lengths above
``parallel_max_length`` run in recurrent form (constant memory, one step per token: slow).
For ``synthetic/selective_copying``: accuracy at the task's length. Saved in RUN_DIR/eval/synthetic.json with
the checkpoint's step; the evaluations of the run's other checkpoints stay beside it (``earlier``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cli import option
from ..data_configs import build_eval_datamodule
from ..loading import load_for_eval, resolve_device, resolve_dtype
from ..report.tables import synthetic_table
from ..results import earlier_evaluations, load_results, run_folder_of, update_results
from ..synthetic import SYNTHETIC_KINDS, length_generalization


@dataclass
class Options:
    checkpoint: str = option(help="run folder (or checkpoint) of a synthetic-task run")
    lengths: list[int] = option([], help="test lengths (default: the data config's eval_seqlens)")
    min_log2: int | None = option(None, help="with max_log2: test lengths 2^min_log2 ... 2^max_log2")
    max_log2: int | None = option(None, help="largest test length as a power of two")
    examples: int | None = option(None, help="sequences per length (default: the data config's val_examples)")
    batch_size: int = option(32, help="sequences per forward pass in parallel form")
    recurrent_batch_size: int = option(256, help="sequences stepped together in recurrent form")
    mode: str = option(
        "auto", help="auto (parallel up to parallel_max_length, then recurrent) | parallel | recurrent"
    )
    parallel_max_length: int = option(
        1 << 20, help="auto mode: longest length run in parallel form (recurrent beyond: constant memory)"
    )
    parallel_tokens: int = option(
        1 << 21, help="parallel form: at most this many tokens per forward pass (batch chunks, >= 1 sequence)"
    )
    prefill: int = option(1024, help="recurrent mode: tokens read in parallel form before stepping")
    device: str | None = option(None, help="cpu | cuda | cuda:N (default: cuda when available)")
    dtype: str = option("float32", help="autocast dtype: float32 | bfloat16 | float16 | auto")
    out: str | None = option(None, help="folder to save eval/synthetic.json in (default: the run folder)")


def run(options: Options, positional: list[str]) -> int:
    if positional:
        raise ValueError(f"synthetic takes key=value arguments only, got {positional}")
    if options.mode not in ("auto", "parallel", "recurrent"):
        raise ValueError(f"mode must be auto, parallel or recurrent, got {options.mode!r}")
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    loaded = load_for_eval(options.checkpoint, device, require_tokenizer=False)
    kind = str((loaded.run_config.get("data") or {}).get("kind", ""))
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(
            f"{options.checkpoint} was trained on data kind {kind!r}; synthetic evaluation needs a run of "
            f"{' or '.join(SYNTHETIC_KINDS)} (experiment=synthetic/...)"
        )
    _, datamodule = build_eval_datamodule(None, loaded.run_config, {})
    examples = options.examples or int(loaded.run_config["data"].get("val_examples", 256))

    # Selective copying is tested at its own length; induction heads at every test length.
    lengths = (
        [datamodule.seqlen]
        if kind == "selective_copying"
        else _test_lengths(options, loaded.run_config["data"])
    )
    results = length_generalization(
        loaded.model,
        datamodule,
        lengths,
        options.batch_size,
        examples,
        options.mode,
        options.parallel_max_length,
        options.prefill,
        dtype,
        on_result=lambda r: print(
            f"length {r.length}: {r.accuracy:.1f}% ({r.sequences} sequences, {r.mode}, {r.seconds:.1f}s)",
            flush=True,
        ),
        recurrent_batch_size=options.recurrent_batch_size,
        parallel_tokens=options.parallel_tokens,
    )
    name = str(run_folder_of(options.checkpoint) or options.checkpoint)
    series = {name: ([r.length for r in results], [r.accuracy for r in results])}
    print(synthetic_table(series, kind).to_markdown())
    entry = {
        "lengths": [r.length for r in results],
        "accuracy": [r.accuracy for r in results],
        "sequence_accuracy": [r.sequence_accuracy for r in results],
        "modes": [r.mode for r in results],
        "sequences": [r.sequences for r in results],
        "train_length": int(loaded.run_config["data"].get("seqlen", 0)),
        "step": loaded.step,
    }
    out = options.out or run_folder_of(options.checkpoint)
    if out is not None:
        entry["earlier"] = earlier_evaluations(load_results(out, "synthetic").get(kind), entry["step"])
        print(f"saved {update_results(out, 'synthetic', {kind: entry})}")
    return 0


def _test_lengths(options: Options, data_config: dict) -> list[int]:
    if options.lengths and (options.min_log2 is not None or options.max_log2 is not None):
        raise ValueError("give either lengths=... or min_log2/max_log2, not both")
    if options.lengths:
        return sorted(options.lengths)
    default = sorted(data_config.get("eval_seqlens") or [data_config["seqlen"]])
    if options.min_log2 is None and options.max_log2 is None:
        return default
    low = options.min_log2 if options.min_log2 is not None else default[0].bit_length() - 1
    high = options.max_log2 if options.max_log2 is not None else default[-1].bit_length() - 1
    if not 2 <= low <= high <= 24:
        raise ValueError(f"need 2 <= min_log2 <= max_log2 <= 24, got {low}, {high}")
    return [1 << k for k in range(low, high + 1)]

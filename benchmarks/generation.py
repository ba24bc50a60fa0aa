"""Decoding speed: ms per generated token and tokens/s, this project against HF Llama and mamba_ssm.

    python benchmarks/generation.py --out benchmarks/results/generation.json        # <= ~6 min on an H200
    python benchmarks/generation.py --quick                                          # ~1 min
    python benchmarks/generation.py --models mamba_130m --prompts 512 --batches 1,64
    python benchmarks/generation.py --implementations hf-llama,hf-forward --models transformer_125m

For each model (random weights, bf16), prompt length and batch size: the prompt is read in parallel
form, then ``--new-tokens`` tokens are decoded greedily (every one, no EOS). "ms/token" is the time of
one decode step for the whole batch; tokens/s = batch / that. How each implementation is timed:

- ours: ``mamba_lm``'s static decoder, one CUDA graph replayed per step. Building the decoder
  (allocating its caches, warming up and capturing the step) is not timed; the prompt and the
  first token are timed apart ("prefill"); ms/token is the wall time of the remaining steps, the
  device synchronized before and after, divided by their number.
- hf-llama: HF ``LlamaForCausalLM.generate`` with our Transformer++'s shapes (bf16 weights, SDPA,
  its default DynamicCache, greedy, min_new_tokens = max_new_tokens so EOS cannot end it early;
  each call's output length is checked). After a 16-token warm-up call, a one-token and a full
  call are timed (device synchronized); ms/token = the difference / (new tokens - 1): the prompt,
  the first token and generate's per-call setup cancel out.
- hf-forward (diagnostic, batch 1 by default): the same HF model without ``generate``: the prompt,
  then one forward per token in a plain Python loop (DynamicCache, argmax on the device), timed the
  same way. The gap to hf-llama is generate's own per-token work.
- mamba_ssm (when importable): the reference package's ``generate(cg=True)``, timed the same way
  after a full-length warm-up call (which also builds its graph cache).

"max" batch: the largest batch (a multiple of 16) the biggest Transformer++ fits at that prompt
length (every model runs it too: the paper's comparison at the largest batch both fit). All rows of
ours run first, then HF's, then the references and diagnostics; a row that would start after
``--budget-s`` (330 s) is skipped and marked, so the default run ends within about 6 minutes.
Writes JSON, a Markdown table (beside the JSON) and a PNG of throughput against batch size.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mamba_lm import build_model, configs  # noqa: E402
from mamba_lm.config import TransformerConfig  # noqa: E402
from mamba_lm.files import atomic_write_text, atomic_write_with  # noqa: E402
from mamba_lm.static_decoder import Sampling, decoder_for, inference_cache_bytes, release_decoder  # noqa: E402

OURS = "mamba_130m,mamba_1.4b,transformer_125m,transformer_1.3b"
TARGETS = {  # ANCHORS.md "Generation": the reference package with CUDA graphs, prompt 512
    ("mamba_130m", 1): "<= 1.06 ms",
    ("mamba_130m", 64): ">= 42.8k tok/s",
    ("mamba_1.4b", 1): "<= 2.72 ms",
    ("mamba_1.4b", 64): ">= 11.8k tok/s",
}
PREFILL_BYTES_PER_TOKEN_AND_WIDTH = 48  # rough peak of a Transformer++ prompt forward, for "max"
DEVICE = torch.device("cuda")  # --device cpu smoke-tests the script with tiny models (no CUDA graph)


@dataclass
class Measurement:
    implementation: str  # "ours", "hf-llama", "mamba_ssm"
    model: str
    prompt: int
    batch: int
    new_tokens: int
    ms_per_token: float | None = None
    tokens_per_s: float | None = None
    prefill_s: float | None = None
    error: str | None = None
    note: str = ""


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def free_memory() -> None:
    gc.collect()
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()


def ours(name: str, model, prompt: int, batch: int, new_tokens: int) -> Measurement:
    result = Measurement("ours", name, prompt, batch, new_tokens)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch, prompt), device=DEVICE)
    cuda_graph = DEVICE.type == "cuda"
    decoder = decoder_for(
        model, batch, prompt + new_tokens, Sampling(top_k=1), None, vocab, DEVICE, cuda_graph
    )
    if cuda_graph and decoder.graph is None:
        result.note = "capture failed: eager"
    # No warm-up run: building the decoder ran (and captured) the step; the prompt part is timed
    # apart (its first call per model includes Triton's compilation).
    timings: dict[str, float] = {}
    decoder.run(ids, [prompt] * batch, new_tokens, timings=timings)
    result.prefill_s = timings["prefill_s"]
    result.ms_per_token = 1e3 * timings["decode_s"] / timings["decode_steps"]
    result.tokens_per_s = batch * timings["decode_steps"] / timings["decode_s"]
    return result


def timed_difference(generate, new_tokens: int, warm_tokens: int) -> tuple[float, float]:
    """(seconds per decode step, prefill seconds) from a full and a one-token call, after a warm-up
    call of ``warm_tokens``."""
    generate(warm_tokens)
    times = {}
    for count in (1, new_tokens):
        sync()
        start = time.perf_counter()
        generate(count)
        sync()
        times[count] = time.perf_counter() - start
    return (times[new_tokens] - times[1]) / (new_tokens - 1), times[1]


def hf_model(config: TransformerConfig, cache: dict):
    """HF's LlamaForCausalLM with our Transformer++'s shapes, bf16 weights, SDPA attention (built
    once per model and kept in ``cache``)."""
    if "model" not in cache:
        from transformers import LlamaConfig, LlamaForCausalLM

        hf_config = LlamaConfig(
            vocab_size=config.padded_vocab_size,
            hidden_size=config.d_model,
            intermediate_size=config.mlp_hidden_dim,
            num_hidden_layers=config.n_layer,
            num_attention_heads=config.n_head,
            num_key_value_heads=config.n_head,
            max_position_embeddings=8192,
            rope_theta=config.rope_theta,
            tie_word_embeddings=True,
            attn_implementation="sdpa",
        )
        with DEVICE:
            cache["model"] = LlamaForCausalLM(hf_config).to(torch.bfloat16).eval()
    return cache["model"]


def hf_llama(name: str, config: TransformerConfig, prompt: int, batch: int, new_tokens: int, cache: dict):
    """HF's ``generate`` (greedy, DynamicCache), timed as the difference of a ``new_tokens`` call and
    a one-token call (both after a warm-up call), so that the prompt, the per-call setup and the
    first token are not counted: what is left is ``new_tokens - 1`` decode steps of generate's loop
    (its per-token host sync included: that is how generate decodes). min_new_tokens = max_new_tokens
    keeps EOS from ending a call early; each call's length is checked."""
    result = Measurement("hf-llama", name, prompt, batch, new_tokens)
    model = hf_model(config, cache)
    ids = torch.randint(0, config.vocab_size, (batch, prompt), device=DEVICE)
    mask = torch.ones_like(ids)

    def generate(count: int) -> None:
        with torch.no_grad():
            out = model.generate(
                ids, attention_mask=mask, max_new_tokens=count, min_new_tokens=count, do_sample=False,
                pad_token_id=0,
            )  # fmt: skip
        if out.shape != (batch, prompt + count):
            raise RuntimeError(f"HF generate returned {tuple(out.shape)}, expected {(batch, prompt + count)}")

    step_s, result.prefill_s = timed_difference(generate, new_tokens, warm_tokens=min(new_tokens, 16))
    result.ms_per_token, result.tokens_per_s = 1e3 * step_s, batch / step_s
    return result


@torch.no_grad()
def hf_forward_loop(name: str, config: TransformerConfig, prompt: int, batch: int, new_tokens: int, cache):
    """HF's model without ``generate``: the prompt, then one forward per token in a plain loop
    (DynamicCache, greedy argmax on the device, no host sync until the end). The floor of what
    HF's eager decoding costs; the gap to "hf-llama" is generate's own per-token work."""
    result = Measurement("hf-forward", name, prompt, batch, new_tokens)
    model = hf_model(config, cache)
    ids = torch.randint(0, config.vocab_size, (batch, prompt), device=DEVICE)

    def decode(count: int) -> None:
        from transformers import DynamicCache

        # The cache goes in as the 4th positional argument (named past_key_values or cache by version)
        # and fills itself in place.
        past = DynamicCache()
        token = model(ids, None, None, past, use_cache=True, logits_to_keep=1).logits[:, -1].argmax(-1)
        for _ in range(count - 1):
            token = model(token[:, None], None, None, past, use_cache=True).logits[:, -1].argmax(-1)
        if past.get_seq_length() != prompt + count - 1:
            raise RuntimeError(
                f"HF cache holds {past.get_seq_length()} positions, expected {prompt + count - 1}"
            )

    step_s, result.prefill_s = timed_difference(decode, new_tokens, warm_tokens=min(new_tokens, 16))
    result.ms_per_token, result.tokens_per_s = 1e3 * step_s, batch / step_s
    return result


def reference_mamba(name: str, d_model: int, n_layer: int, prompt: int, batch: int, new_tokens: int, cache):
    result = Measurement("mamba_ssm", name, prompt, batch, new_tokens)
    if "model" not in cache:
        from mamba_ssm.models.config_mamba import MambaConfig as ReferenceConfig
        from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel as ReferenceModel

        reference_config = ReferenceConfig(d_model=d_model, n_layer=n_layer, vocab_size=50277)
        cache["model"] = ReferenceModel(reference_config, device="cuda", dtype=torch.bfloat16).eval()
    model = cache["model"]
    ids = torch.randint(0, 50277, (batch, prompt), device="cuda")

    def generate(count: int) -> None:
        model.generate(ids, max_length=prompt + count, cg=True, top_k=1)

    # Warm with the full length: its graph cache is then long enough for both timed calls.
    step_s, result.prefill_s = timed_difference(generate, new_tokens, warm_tokens=new_tokens)
    result.ms_per_token, result.tokens_per_s = 1e3 * step_s, batch / step_s
    return result


def run_row(implementation: str, name: str, config, prompt: int, batch: int, new_tokens: int, cache: dict):
    if implementation == "ours":
        with torch.no_grad():
            return ours(name, cache["model"], prompt, batch, new_tokens)
    if implementation == "hf-llama":
        return hf_llama(name, config, prompt, batch, new_tokens, cache)
    if implementation == "hf-forward":
        return hf_forward_loop(name, config, prompt, batch, new_tokens, cache)
    return reference_mamba(name, config.d_model, config.n_layer, prompt, batch, new_tokens, cache)


def largest_batch(config: TransformerConfig, prompt: int, new_tokens: int) -> int:
    """The largest batch (a multiple of 16) whose KV cache and prompt forward fit in the free memory
    beside this Transformer++'s weights; sized on the meta device."""
    with torch.device("meta"):
        model = build_model(config, dtype=torch.bfloat16)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    per_row = inference_cache_bytes(model, 1, prompt + new_tokens)
    per_row += prompt * config.d_model * PREFILL_BYTES_PER_TOKEN_AND_WIDTH
    free = torch.cuda.mem_get_info()[0] * 0.9 - weights
    return max(16, int(free // per_row) // 16 * 16)


def device_name() -> str:
    return torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu"


def run_safely(function, *args) -> Measurement:
    try:
        result = function(*args)
    except torch.cuda.OutOfMemoryError:
        result = Measurement("?", "?", 0, 0, 0, error="out of memory")
    except Exception as error:  # noqa: BLE001  (one failing variant must not end the run)
        traceback.print_exc()
        result = Measurement("?", "?", 0, 0, 0, error=f"{type(error).__name__}: {error}"[:300])
    free_memory()
    return result


def print_row(m: Measurement) -> None:
    if m.error:
        print(f"{m.implementation:<10} {m.model:<17} L={m.prompt:<5} B={m.batch:<4} {m.error}", flush=True)
        return
    target = TARGETS.get((m.model, m.batch), "") if m.implementation == "ours" and m.prompt == 512 else ""
    print(
        f"{m.implementation:<10} {m.model:<17} L={m.prompt:<5} B={m.batch:<4} {m.ms_per_token:8.3f} ms/token "
        f"{m.tokens_per_s:10.0f} tok/s   prefill {m.prefill_s:6.2f} s  {target} {m.note}",
        flush=True,
    )


def markdown(results: list[Measurement]) -> str:
    lines = [
        "| implementation | model | prompt | batch | ms/token | tokens/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in results:
        note = f" ({m.note})" if m.note else ""
        cells = ("–", m.error) if m.error else (f"{m.ms_per_token:.3f}", f"{m.tokens_per_s:,.0f}{note}")
        lines.append(f"| {m.implementation} | {m.model} | {m.prompt} | {m.batch} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def plot(results: list[Measurement], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prompts = sorted({m.prompt for m in results if not m.error})
    figure, axes = plt.subplots(1, len(prompts), figsize=(6 * len(prompts), 4.5), squeeze=False)
    for axis, prompt in zip(axes[0], prompts):
        series: dict[str, list[tuple[int, float]]] = {}
        for m in results:
            if m.prompt == prompt and not m.error:
                series.setdefault(f"{m.model} ({m.implementation})", []).append((m.batch, m.tokens_per_s))
        for label, points in sorted(series.items()):
            points.sort()
            axis.plot([b for b, _ in points], [t for _, t in points], marker="o", label=label)
        axis.set(xscale="log", yscale="log", xlabel="batch size", ylabel="tokens / s")
        axis.set_title(f"decoding throughput, prompt {prompt}, bf16")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    atomic_write_with(path, lambda temporary: figure.savefig(temporary, dpi=120, format="png"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=OURS, help="comma-separated mamba_lm.configs names")
    parser.add_argument("--prompts", default="512,2048")
    parser.add_argument("--batches", default="1,64,256,max", help="'max': see the module docstring")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument(
        "--implementations",
        default="ours,hf-llama,hf-forward,mamba_ssm",
        help="which to run: ours, hf-llama (HF generate), hf-forward (HF's model in a plain loop, a "
        "diagnostic), mamba_ssm (the reference package, when importable)",
    )
    parser.add_argument("--hf-batches", default="1,64", help="HF Llama's batches (its cache grows by copies)")
    parser.add_argument("--hf-forward-batches", default="1", help="batches of the hf-forward diagnostic")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=330.0,
        help="rows that would start later than this many seconds are skipped (marked in the output)",
    )
    parser.add_argument("--quick", action="store_true", help="130M / 125M, prompt 512, batches 1 and 64")
    parser.add_argument("--out", default="benchmarks/results/generation.json")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu to smoke-test with tiny models")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        sys.exit("benchmarks/generation.py needs a CUDA GPU (or --device cpu for a smoke test)")
    if args.quick:
        args.models, args.prompts, args.batches, args.hf_batches = (
            "mamba_130m,transformer_125m", "512", "1,64", "1,64"
        )  # fmt: skip
    names = args.models.split(",")
    prompts = [int(p) for p in args.prompts.split(",")]
    implementations = args.implementations.split(",")
    transformers_ = [n for n in names if isinstance(configs.get(n), TransformerConfig)]
    biggest = max(transformers_, key=lambda n: configs.count_parameters(configs.get(n)), default=None)
    want_max = biggest is not None and "max" in args.batches.split(",") and DEVICE.type == "cuda"
    max_batch = {
        p: largest_batch(configs.get(biggest), p, args.new_tokens) if want_max else None for p in prompts
    }
    print(f"{device_name()}, torch {torch.__version__}; max batch per prompt: {max_batch}", flush=True)

    def sizes(batches: str, prompt: int) -> list[int]:
        return sorted({int(b) if b != "max" else max_batch[prompt] for b in batches.split(",")} - {None})

    # Every row of ours first (the targets), then HF's, then the diagnostics: a run cut by the time
    # budget loses the least important rows.
    groups = []  # (implementation, model name, [(prompt, batch)])

    def add(implementation: str, models: list[str], batches: str) -> None:
        rows = [(p, b) for p in prompts for b in sizes(batches, p)]
        groups.extend((implementation, name, rows) for name in models)

    if "ours" in implementations:
        add("ours", names, args.batches)
    if "hf-llama" in implementations:
        add("hf-llama", transformers_, args.hf_batches)
    if "mamba_ssm" in implementations and importlib.util.find_spec("mamba_ssm") is not None:
        add("mamba_ssm", [n for n in names if n not in transformers_], args.batches)
    elif "mamba_ssm" in implementations:
        print("mamba_ssm is not importable: no reference rows", flush=True)
    if "hf-forward" in implementations:
        add("hf-forward", transformers_, args.hf_forward_batches)

    results: list[Measurement] = []
    started = time.perf_counter()
    for implementation, name, rows in groups:
        config, cache = configs.get(name), {}
        if implementation == "ours":
            torch.manual_seed(0)
            with DEVICE:
                cache["model"] = build_model(config, dtype=torch.bfloat16).eval()
        for prompt, batch in rows:
            if time.perf_counter() - started > args.budget_s:
                m = Measurement(
                    implementation, name, prompt, batch, args.new_tokens, error="skipped: time budget"
                )
            else:
                m = run_safely(run_row, implementation, name, config, prompt, batch, args.new_tokens, cache)
            m.implementation, m.model, m.prompt, m.batch = implementation, name, prompt, batch
            results.append(m)
            print_row(m)
        if "model" in cache:
            release_decoder(cache["model"])
        cache.clear()
        free_memory()
        print(f"[{time.perf_counter() - started:.0f} s]", flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    environment = {"device": device_name(), "torch": torch.__version__, "max_batch": max_batch}
    atomic_write_text(
        out, json.dumps({"environment": environment, "results": [asdict(m) for m in results]}, indent=1)
    )
    atomic_write_text(out.with_suffix(".md"), markdown(results))
    plot(results, out.with_suffix(".png"))
    print("\n" + markdown(results))
    print(
        f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')} "
        f"in {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()

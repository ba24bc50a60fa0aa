"""Decoding speed: ms per generated token and tokens/s, this project against HF Llama and mamba_ssm.

    python benchmarks/generation.py --out benchmarks/results/generation.json        # ~5 min on an H200
    python benchmarks/generation.py --quick                                          # ~1 min
    python benchmarks/generation.py --models mamba_130m --prompts 512 --batches 1,64

For each model (random weights, bf16), prompt length and batch size: the prompt is read in
parallel form, then ``--new-tokens`` tokens are decoded greedily (every one, no EOS). "ms/token" is
the time of one decode step for the whole batch (the prompt excluded); tokens/s = batch / that.
This project decodes through ``mamba_lm.generate``'s static decoder (one CUDA graph per step); HF's
``LlamaForCausalLM.generate`` (same shapes as our Transformer++) and, when importable, mamba_ssm's
``generate(cg=True)`` run in the same process, timed as the difference of a full and a one-token
``generate`` call. "max" batch: the largest batch the biggest Transformer++ fits at that prompt
length (every model runs it too: the paper's comparison at the largest batch both fit).
Writes JSON, a Markdown table (beside the JSON) and a PNG of throughput against batch size.
"""

from __future__ import annotations

import argparse
import gc
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


def hf_llama(name: str, config: TransformerConfig, prompt: int, batch: int, new_tokens: int, cache: dict):
    result = Measurement("hf-llama", name, prompt, batch, new_tokens)
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
        )
        with DEVICE:
            cache["model"] = LlamaForCausalLM(hf_config).to(torch.bfloat16).eval()
    model = cache["model"]
    ids = torch.randint(0, config.vocab_size, (batch, prompt), device=DEVICE)
    mask = torch.ones_like(ids)

    def generate(count: int) -> None:
        with torch.no_grad():
            model.generate(
                ids, attention_mask=mask, max_new_tokens=count, min_new_tokens=count, do_sample=False,
                pad_token_id=0,
            )  # fmt: skip

    step_s, result.prefill_s = timed_difference(generate, new_tokens, warm_tokens=min(new_tokens, 4))
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
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default=OURS, help="comma-separated mamba_lm.configs names")
    parser.add_argument("--prompts", default="512,2048")
    parser.add_argument("--batches", default="1,64,256,max", help="'max': see the module docstring")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--no-hf", action="store_true", help="skip HF Llama")
    parser.add_argument("--no-reference", action="store_true", help="skip mamba_ssm")
    parser.add_argument("--hf-batches", default="1,64", help="HF Llama's batches (its cache grows by copies)")
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
    batches = args.batches.split(",")
    transformers_ = [n for n in names if isinstance(configs.get(n), TransformerConfig)]
    biggest = max(transformers_, key=lambda n: configs.count_parameters(configs.get(n)), default=None)
    want_max = biggest is not None and "max" in batches and DEVICE.type == "cuda"
    max_batch = {
        p: largest_batch(configs.get(biggest), p, args.new_tokens) if want_max else None for p in prompts
    }
    print(f"{device_name()}, torch {torch.__version__}; max batch per prompt: {max_batch}", flush=True)

    results: list[Measurement] = []
    started = time.perf_counter()
    for name in names:
        config = configs.get(name)
        torch.manual_seed(0)
        with DEVICE:
            model = build_model(config, dtype=torch.bfloat16).eval()
        for prompt in prompts:
            sizes = sorted({int(b) if b != "max" else max_batch[prompt] for b in batches} - {None})
            for batch in sizes:
                with torch.no_grad():
                    m = run_safely(ours, name, model, prompt, batch, args.new_tokens)
                m.implementation, m.model, m.prompt, m.batch = "ours", name, prompt, batch
                results.append(m)
                print_row(m)
        release_decoder(model)
        del model
        free_memory()

        others = []
        if isinstance(config, TransformerConfig) and not args.no_hf:
            others.append(("hf-llama", lambda p, b, c, config=config, name=name: hf_llama(
                name, config, p, b, args.new_tokens, c), args.hf_batches.split(",")))  # fmt: skip
        if not isinstance(config, TransformerConfig) and not args.no_reference:
            try:
                import mamba_ssm  # noqa: F401

                others.append(("mamba_ssm", lambda p, b, c, config=config, name=name: reference_mamba(
                    name, config.d_model, config.n_layer, p, b, args.new_tokens, c), batches))  # fmt: skip
            except ImportError:
                print("mamba_ssm is not importable: no reference rows", flush=True)
        for implementation, function, their_batches in others:
            cache: dict = {}
            for prompt in prompts:
                sizes = sorted({int(b) if b != "max" else max_batch[prompt] for b in their_batches} - {None})
                for batch in sizes:
                    m = run_safely(function, prompt, batch, cache)
                    m.implementation, m.model, m.prompt, m.batch = implementation, name, prompt, batch
                    results.append(m)
                    print_row(m)
            cache.clear()
            free_memory()
        print(f"[{time.perf_counter() - started:.0f} s]", flush=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    environment = {"device": device_name(), "torch": torch.__version__, "max_batch": max_batch}
    out.write_text(
        json.dumps({"environment": environment, "results": [asdict(m) for m in results]}, indent=1)
    )
    out.with_suffix(".md").write_text(markdown(results))
    plot(results, out.with_suffix(".png"))
    print("\n" + markdown(results))
    print(
        f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.png')} "
        f"in {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()

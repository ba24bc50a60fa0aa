"""How strongly an LRA classifier's output depends on each position of its input (initialised or trained).

    python benchmarks/input_sensitivity.py --row "mamba" lra/mamba/pathfinder_v3 \\
        --row "mamba, mean pooling" lra/mamba/pathfinder_v3 model.pooling=mean \\
        --row "s4" lra/s4/pathfinder_v3 --run "mamba, trained" outputs/repro/lra_mamba_pathfinder \\
        --data lra_pathfinder_quick

For each row: the gradient of the labelled class's centred logit with respect to the encoder's output at
every position (batch, seqlen, d_model), its norm per position averaged over a batch of training examples
(padding counts as zero), then averaged over ``--blocks`` equal blocks of positions. The model runs in eval
mode (no dropout; BatchNorm with its running statistics, at initialisation the identity). A classifier that
reads its answer at the last position (pooling last) and forgets fast shows a last block many orders of
magnitude above the first: the loss then gives the weights that read distant positions almost no gradient.
``--row LABEL EXPERIMENT [OVERRIDE ...]`` builds the experiment's model as train.py seeds it; ``--run LABEL
RUN_DIR`` loads a run folder's newest checkpoint. ``--data`` swaps every row's data config (e.g. a quick
one: the full sets take minutes to build); every row reads the same examples.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a plain checkout
sys.path.insert(0, str(REPO / "benchmarks"))
from lra_step import compose, initial_weights  # noqa: E402
from mamba_lm.data import build_datamodule  # noqa: E402

from evaluation.loading import load_for_eval  # noqa: E402
from mamba_lm.trainer.model_factory import build_model_from_dict  # noqa: E402


def position_sensitivity(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """(seqlen,) the mean over the batch of |d margin / d encoder output at t|, margin = the labelled class's
    logit minus the mean logit, summed over the batch."""
    captured = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["encoded"] = output

    handle = model.encoder.register_forward_hook(keep)
    try:
        model.eval()
        logits = model(batch["input_ids"], batch.get("lengths"))
    finally:
        handle.remove()
    centred = logits - logits.mean(dim=-1, keepdim=True)
    centred.gather(1, batch["labels"].view(-1, 1)).sum().backward()
    return captured["encoded"].grad.norm(dim=-1).mean(dim=0)


def block_means(values: torch.Tensor, blocks: int) -> list[float]:
    return [chunk.mean().item() for chunk in values.chunk(blocks)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--row", nargs="+", action="append", default=[], metavar="LABEL EXPERIMENT [OVERRIDE]"
    )
    parser.add_argument("--run", nargs=2, action="append", default=[], metavar=("LABEL", "RUN_DIR"))
    parser.add_argument("--data", default=None, help="a data config for every row (default: the first row's)")
    parser.add_argument("--batch", type=int, default=8, help="training examples averaged over")
    parser.add_argument("--blocks", type=int, default=4, help="equal blocks of positions in the table")
    args = parser.parse_args()
    if any(len(row) < 2 for row in args.row):
        parser.error("--row needs LABEL EXPERIMENT [OVERRIDE ...]")
    if not args.row:
        parser.error("give at least one --row (its data config picks the examples)")

    data_override = [f"data={args.data}"] if args.data else []
    composed = [compose(experiment, [*overrides, *data_override]) for _, experiment, *overrides in args.row]
    first_run, first_cfg, _ = composed[0]
    data = build_datamodule(first_cfg.data, seed=first_run.seed)
    batch = next(iter(data.train_loader(args.batch)))
    seqlen = batch["input_ids"].shape[1]
    print(f"{args.batch} training examples of {first_cfg.data.kind}, seqlen {seqlen}, {args.blocks} blocks")

    rows = []
    for (label, *_), (run, _, values) in zip(args.row, composed):
        model_values, state = initial_weights(run, values, data.task, data.vocab_size, data.num_classes)
        model = build_model_from_dict(model_values)
        model.load_state_dict(state)
        rows.append((label, block_means(position_sensitivity(model, batch), args.blocks)))
    for label, run_dir in args.run:
        loaded = load_for_eval(run_dir, "cpu", require_tokenizer=False, expect="classifier")
        means = block_means(position_sensitivity(loaded.model, batch), args.blocks)
        rows.append((f"{label} (step {loaded.step})", means))

    width = max(len(label) for label, _ in rows)
    edges = [f"{i * seqlen // args.blocks}-" for i in range(args.blocks)]
    print(f"\n{'row':<{width}} " + " ".join(f"{edge:>9}" for edge in edges) + "  first/last")
    for label, means in rows:
        ratio = means[0] / means[-1] if means[-1] else float("nan")
        print(f"{label:<{width}} " + " ".join(f"{m:>9.2e}" for m in means) + f"  {ratio:>10.1e}")


if __name__ == "__main__":
    main()

"""trainer.cuda_graph=true: the step replayed from CUDA graphs trains exactly as the eager step does."""

from __future__ import annotations

import pytest
import torch
from helpers import CountingLoader, logged, tiny_mamba, tiny_trainer

from mamba_lm.trainer.graphed_step import GraphedTrainStep


def test_cuda_graph_on_the_cpu_is_refused_before_anything_is_written(accelerator, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="cuda_graph=true cannot be used here: it needs a CUDA device"):
        tiny_trainer(accelerator, run_dir, cuda_graph=True).fit()
    assert sorted(path.name for path in run_dir.iterdir()) == ["run.lock"]  # only fit's lock


def test_cuda_graph_names_every_conflicting_setting(accelerator, tmp_path):
    with pytest.raises(ValueError, match="grad_accum_steps=1.*replaces trainer.compile"):
        tiny_trainer(accelerator, tmp_path, cuda_graph=True, grad_accum_steps=2, compile=True).fit()


class ShapeChangingLoader(CountingLoader):
    """CountingLoader whose batch at ``odd`` is one row shorter (a shape the graph was not captured for)."""

    def __init__(self, batch_size: int, odd: int):
        super().__init__(batch_size)
        self.odd = odd

    def batch_at(self, position: int) -> dict[str, torch.Tensor]:
        batch = super().batch_at(position)
        return {k: v[:-1] for k, v in batch.items()} if position == self.odd else batch


@pytest.fixture
def cuda_accelerator():
    from accelerate.state import AcceleratorState

    from mamba_lm.trainer import make_accelerator

    AcceleratorState._reset_state(reset_partial_state=True)
    yield make_accelerator("fp32", cpu=False)
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.gpu
def test_graphed_steps_match_eager_steps_through_a_shape_change_and_a_resume(cuda_accelerator, tmp_path):
    """Both runs stop at step 6 and resume (the graphed one captures afresh) to step 12 over the same batches,
    one of them (position 10) of another shape."""
    steps = 12
    for name, graph in (("eager", False), ("graph", True)):
        tiny_trainer(
            cuda_accelerator,
            tmp_path / name,
            loader=ShapeChangingLoader(4, odd=10),
            max_steps=6,
            cuda_graph=graph,
        ).fit()
        resumed = tiny_trainer(
            cuda_accelerator,
            tmp_path / name,
            model=tiny_mamba(seed=1),  # replaced by the checkpoint's weights
            loader=ShapeChangingLoader(4, odd=10),
            max_steps=steps,
            cuda_graph=graph,
        )
        resumed.fit()  # the odd shape, met once, runs eagerly (graphs are kept for recurring shapes)
    eager, graphed = logged(tmp_path / "eager"), logged(tmp_path / "graph")
    assert len(eager) == len(graphed) == steps
    assert graphed == pytest.approx(eager, rel=1e-4, abs=1e-5)
    assert logged(tmp_path / "graph", "lr") == logged(tmp_path / "eager", "lr")


@pytest.mark.gpu
def test_a_nonfinite_graphed_step_is_skipped(cuda_accelerator, tmp_path):
    trainer = tiny_trainer(cuda_accelerator, tmp_path, max_steps=1, cuda_graph=True)
    trainer.prepare()
    step = GraphedTrainStep(cuda_accelerator, trainer.model, trainer.optimizer, "lm", 1.0)
    loader = CountingLoader(4)
    for _ in range(5):
        assert not step([next(loader)]).skipped
    before = [p.detach().clone() for p in trainer.model.parameters()]
    poisoned = next(loader)
    poisoned["labels"][:] = -100  # no labelled position: 0 / 0 = NaN loss
    result = step([poisoned])
    assert result.skipped and result.nonfinite
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert not step([next(loader)]).skipped


def classification_batches(widths: list[int], batch: int = 6, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """ListOps-like batches: token rows padded to ``widths[i]`` (their longest row fills it), labels of 3
    classes, real lengths."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for width in widths:
        lengths = torch.randint(1, width + 1, (batch,), generator=generator)
        lengths[0] = width
        ids = torch.randint(1, 12, (batch, width), generator=generator)
        ids[torch.arange(width) >= lengths[:, None]] = 0
        labels = torch.randint(0, 3, (batch,), generator=generator)
        batches.append({"input_ids": ids, "labels": labels, "lengths": lengths})
    return batches


# The LRA classifiers the reproduction trains: S4's bidirectional S4D (post-norm BatchNorm), and the Mamba
# row's block (both directions added, Triton scan inside, pre-norm LayerNorm), both at toy widths.
CLASSIFIER_KINDS = {
    "s4d": dict(
        mixer="s4d", bidirectional_merge="kernel", norm="batch", prenorm=False, mixer_cfg={"d_state": 8}
    ),
    "mamba": dict(mixer="mamba", bidirectional_merge="add", norm="layer", prenorm=True, mixer_cfg={}),
}


def graphed_and_eager_classifier_steps(accelerator, batches, max_graphs=8, kind="s4d"):
    """Losses and final weights of a bidirectional LRA classifier (``CLASSIFIER_KINDS[kind]``) trained over
    ``batches`` by ``TrainStep`` and by ``GraphedTrainStep``, from the same weights."""
    from mamba_lm.config import ClassifierConfig
    from mamba_lm.models.classifier import SequenceClassifier
    from mamba_lm.trainer.step import TrainStep, to_device

    config = ClassifierConfig(
        num_classes=3, d_model=16, n_layer=2, vocab_size=12, bidirectional=True, **CLASSIFIER_KINDS[kind]
    )
    results = []
    for graphed in (False, True):
        torch.manual_seed(0)
        model = SequenceClassifier(config).cuda().train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, capturable=True)
        step = (
            GraphedTrainStep(accelerator, model, optimizer, "classification", 0.0, max_graphs=max_graphs)
            if graphed
            else TrainStep(accelerator, model, optimizer, "classification", 0.0)
        )
        losses = [step([to_device(batch, torch.device("cuda"))]).loss for batch in batches]
        results.append((losses, [p.detach().clone() for p in model.parameters()], step))
    return results


@pytest.mark.gpu
@pytest.mark.parametrize("kind", sorted(CLASSIFIER_KINDS))
def test_a_classifier_with_recurring_batch_shapes_trains_from_graphs_as_eagerly(cuda_accelerator, kind):
    """Three widths recur (as LRA batches padded to a multiple do): each is captured after it has run once,
    every graph fills the same gradient buffers, and the losses and weights follow the eager steps."""
    widths = [32, 48, 32, 64, 48, 32, 48, 64, 64, 32, 48, 32, 64, 48]
    (eager, eager_weights, _), (graphed, graphed_weights, step) = graphed_and_eager_classifier_steps(
        cuda_accelerator, classification_batches(widths), kind=kind
    )
    assert sorted(shape[0][1][1] for shape in step.graphs) == [32, 48, 64]  # input_ids widths captured
    assert graphed == pytest.approx(eager, rel=1e-4, abs=1e-5)
    for a, b in zip(eager_weights, graphed_weights):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)


@pytest.mark.gpu
def test_batch_shapes_beyond_max_graphs_run_eagerly_with_a_warning(cuda_accelerator):
    widths = [32, 32, 32, 32, 48, 48, 32, 48]
    with pytest.warns(UserWarning, match="1 batch shapes are captured"):
        (eager, _, _), (graphed, _, step) = graphed_and_eager_classifier_steps(
            cuda_accelerator, classification_batches(widths), max_graphs=1
        )
    assert len(step.graphs) == 1
    assert graphed == pytest.approx(eager, rel=1e-4, abs=1e-5)

"""The Long Range Arena classifier: padding never changes a row's logits; pooling; encoders; options."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from model_testing import relative_error

from mamba_lm import ClassifierConfig, SequenceClassifier
from mamba_lm.models.classifier import reverse_within_length

MIXERS = ["mamba", "s4d", "attention"]


def classifier(mixer: str, **overrides) -> SequenceClassifier:
    options = {"d_model": 16, "n_layer": 2, "num_classes": 3, "vocab_size": 20, "mixer": mixer}
    options["mixer_cfg"] = {"n_head": 2} if mixer == "attention" else {"d_state": 4}
    return SequenceClassifier(ClassifierConfig(**(options | overrides))).eval()


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pooling": "last"},
        {"bidirectional": True},
        {"bidirectional": True, "bidirectional_merge": "concat", "pooling": "last"},
        {"prenorm": False, "norm": "rms", "d_intermediate": 24},
    ],
)
def test_padding_does_not_change_the_logits(mixer, options):
    model = classifier(mixer, **options)
    short, long = torch.randint(0, 20, (1, 5)), torch.randint(0, 20, (1, 9))
    padded = torch.zeros(2, 9, dtype=torch.long)
    padded[0, :5], padded[1] = short[0], long[0]
    padded[0, 5:] = 7  # padding content must not matter either
    logits = model(padded, lengths=torch.tensor([5, 9]))
    assert logits.shape == (2, 3)
    assert relative_error(logits[:1], model(short)) < 1e-5
    assert relative_error(logits[1:], model(long)) < 1e-5


def first_position_output(model: SequenceClassifier, ids: torch.Tensor) -> torch.Tensor:
    hidden, residual = model.encoder(ids), None
    for layer in model.layers:
        hidden, residual = layer(
            hidden, residual, **({"lengths": None} if model.config.bidirectional else {})
        )
    stream = hidden if residual is None else hidden + residual
    return stream[:, 0]


def test_only_bidirectional_blocks_see_the_future():
    ids = torch.randint(0, 20, (1, 8))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % 20
    for bidirectional in (False, True):
        model = classifier("mamba", bidirectional=bidirectional)
        same = torch.allclose(first_position_output(model, ids), first_position_output(model, changed))
        assert same != bidirectional


def test_reverse_within_length():
    x = torch.arange(12.0).view(2, 6, 1)
    out = reverse_within_length(x, torch.tensor([4, 6]))
    assert out[..., 0].tolist() == [[3, 2, 1, 0, 4, 5], [11, 10, 9, 8, 7, 6]]
    assert torch.equal(reverse_within_length(out, torch.tensor([4, 6])), x)


def test_real_valued_inputs_and_batch_norm():
    model = SequenceClassifier(
        ClassifierConfig(num_classes=4, d_model=16, n_layer=1, d_input=3, norm="batch")
    )
    assert model(torch.randn(2, 10, 3)).shape == (2, 4)
    pixels = SequenceClassifier(ClassifierConfig(num_classes=4, d_model=16, n_layer=1, mixer="mamba"))
    assert pixels(torch.rand(2, 10)).shape == (2, 4)


def test_s4s_bidirectional_layer_in_the_classifier():
    """bidirectional_merge: kernel: one two-sided S4D per block (S4's layer), padding-invariant, fewer
    parameters than two S4D mixers; other mixers are refused."""
    kernel = classifier("s4d", bidirectional=True, bidirectional_merge="kernel")
    two = classifier("s4d", bidirectional=True)
    count = lambda model: sum(p.numel() for p in model.parameters())
    assert count(kernel) < count(two)
    ids = torch.randint(1, 20, (2, 9))
    lengths = torch.tensor([9, 5])
    padded = ids.clone()
    padded[1, 5:] = 0
    logits = kernel(padded, lengths=lengths)
    alone = kernel(ids[1:, :5], lengths=torch.tensor([5]))
    assert relative_error(logits[1:], alone) < 1e-5
    with pytest.raises(ValueError, match="kernel"):
        ClassifierConfig(mixer="mamba", bidirectional=True, bidirectional_merge="kernel")


def test_real_valued_inputs_are_standardized_before_the_linear_encoder():
    """Pixel ids 0..255 read as (x - input_mean) / input_std, as S4's LRA loaders normalize them."""
    config = ClassifierConfig(num_classes=2, d_model=8, n_layer=1, input_mean=122.6, input_std=61.0)
    model = SequenceClassifier(config)
    pixels = torch.randint(0, 256, (2, 5))
    expected = model.encoder(((pixels.float() - 122.6) / 61.0)[:, :, None])
    assert torch.allclose(model._encode(pixels), expected)
    with pytest.raises(ValueError, match="input_std"):
        ClassifierConfig(input_std=0.0)


def test_retrieval_pairs_two_documents():
    model = classifier("s4d", retrieval=True, bidirectional=True)
    first, second = torch.randint(0, 20, (1, 6)), torch.randint(0, 20, (1, 9))
    pair = torch.zeros(1, 2, 9, dtype=torch.long)
    pair[0, 0, :6], pair[0, 1] = first[0], second[0]
    logits = model(pair, lengths=torch.tensor([[6, 9]]))
    assert logits.shape == (1, 3)
    a, b = model._encode_and_pool(first, None), model._encode_and_pool(second, None)
    assert relative_error(logits, model.decoder(torch.cat((a, b, a - b, a * b), dim=-1))) < 1e-5
    assert isinstance(model.decoder[1], torch.nn.GELU)  # S4's LRA retrieval head
    swapped = model(pair.flip(1), lengths=torch.tensor([[9, 6]]))
    assert not torch.allclose(logits, swapped)
    with pytest.raises(ValueError, match=r"\(batch, 2, seqlen\)"):
        model(torch.zeros(2, 9, dtype=torch.long))


def test_learns_a_simple_task():
    """Class = whether token 1 occurs anywhere in the row (needs information from every position)."""
    torch.manual_seed(0)
    model = classifier("s4d", num_classes=2, dropout=0.1).train()
    ids = torch.randint(2, 20, (32, 12))
    labels = torch.randint(0, 2, (32,))
    ids[labels == 1, torch.randint(0, 12, (int(labels.sum()),))] = 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = F.cross_entropy(model(ids), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3


def test_bad_inputs_are_named():
    model = classifier("s4d")
    with pytest.raises(ValueError, match="lengths must lie in"):
        model(torch.zeros(2, 5, dtype=torch.long), lengths=torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="lengths must be"):
        model(torch.zeros(2, 5, dtype=torch.long), lengths=torch.tensor([5]))
    with pytest.raises(ValueError, match="input_ids must lie in"):
        model(torch.full((1, 5), 20))
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 20\), got \[-1, 3\]"):
        model.check_input_ids(torch.tensor([[3, -1]]))  # what the graphed training step runs on the host
    model.check_input_ids(torch.tensor([[0, 19]]))
    with pytest.raises(ValueError, match="pooling"):
        ClassifierConfig(pooling="max")
    with pytest.raises(ValueError, match="mixer must be"):
        ClassifierConfig(mixer="lstm")


NO_C_COMPILER = shutil.which("cc") is None and shutil.which("gcc") is None


@pytest.mark.skipif(NO_C_COMPILER, reason="torch.compile on the CPU needs a C compiler")
def test_s4s_classifier_compiles_once_for_the_lengths_of_an_octave():
    """trainer.compile=true on LRA S4 models: batches padded to their longest row vary in length; after the
    first length one dynamic graph serves the others of the same FFT length (no recompiles), and the
    compiled loss and gradients are the eager ones."""
    from torch._dynamo.testing import CompileCounterWithBackend

    torch._dynamo.reset()
    model = classifier("s4d", bidirectional=True, bidirectional_merge="kernel", norm="batch", prenorm=False)
    model.train()
    counter = CompileCounterWithBackend("inductor")
    compiled = torch.compile(model, backend=counter)
    generator = torch.Generator().manual_seed(0)
    for seqlen in (40, 44, 37, 59):  # one FFT length (128) for all
        ids = torch.randint(1, 20, (3, seqlen), generator=generator)
        lengths = torch.tensor([seqlen, seqlen - 5, 20])
        labels = torch.tensor([0, 2, 1])
        grads = []
        for forward in (compiled, model):
            loss = F.cross_entropy(forward(ids, lengths), labels)
            grads.append(torch.autograd.grad(loss, list(model.parameters())))
        for ours, eager in zip(*grads):
            torch.testing.assert_close(ours, eager, rtol=1e-3, atol=1e-6)
    assert counter.frame_count == 2  # the first length, then one dynamic graph


def test_channel_batch_norm_is_batchnorm1d_over_the_channels():
    """S4's BatchNorm: statistics over batch and sequence per channel, running statistics for eval; the
    (batch * seqlen, d) view gives BatchNorm1d's results on (batch, d, seqlen), values and gradients."""
    from mamba_lm.modules.norm import ChannelBatchNorm

    torch.manual_seed(0)
    ours, reference = ChannelBatchNorm(8), torch.nn.BatchNorm1d(8)
    with torch.no_grad():
        for module in (ours, reference):
            module.weight.copy_(torch.linspace(0.5, 2.0, 8))
            module.bias.copy_(torch.linspace(-1.0, 1.0, 8))
    x = (torch.randn(3, 11, 8) * 3 + 1).requires_grad_()
    residual = torch.randn(3, 11, 8)
    y, new_residual = ours(x, residual, prenorm=True)
    expected = reference((x + residual).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(new_residual, x + residual)
    grad = torch.randn_like(y)
    (ours_grad,) = torch.autograd.grad(y, x, grad)
    (reference_grad,) = torch.autograd.grad(expected, x, grad)
    torch.testing.assert_close(ours_grad, reference_grad)
    torch.testing.assert_close(ours.running_mean, reference.running_mean)
    torch.testing.assert_close(ours.running_var, reference.running_var)
    ours.eval(), reference.eval()
    torch.testing.assert_close(ours(x), reference(x.transpose(1, 2)).transpose(1, 2))

"""ChunkedFeedForward: chunking changes nothing but memory (paper, section 3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reformer.feedforward import ChunkedFeedForward
from reformer.memory import saved_tensor_bytes


def reference_ff(ff: ChunkedFeedForward, x: torch.Tensor, act=F.gelu) -> torch.Tensor:
    """Position-wise FF written out with the layer's weights: W2 act(W1 x + b1) + b2."""
    hidden = act(x @ ff.w1.weight.T + ff.w1.bias)
    return hidden @ ff.w2.weight.T + ff.w2.bias


@pytest.mark.parametrize("chunks", [1, 2, 3, 7, 50])
def test_chunked_equals_unchunked_values_and_gradients(chunks: int) -> None:
    torch.manual_seed(0)
    ff = ChunkedFeedForward(d_model=6, d_ff=10, chunks=chunks).double()
    x = torch.randn(2, 7, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 7, 6, dtype=torch.float64)

    out = ff(x)
    grads = torch.autograd.grad((out * weight).sum(), [x, *ff.parameters()])
    ref = reference_ff(ff, x)
    ref_grads = torch.autograd.grad((ref * weight).sum(), [x, *ff.parameters()])

    assert out.shape == (2, 7, 6)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_relu_activation_and_no_grad_path() -> None:
    torch.manual_seed(1)
    ff = ChunkedFeedForward(4, 8, chunks=3, activation="relu").double()
    x = torch.randn(3, 5, 4, dtype=torch.float64)
    with torch.no_grad():
        out = ff(x)
    torch.testing.assert_close(out, reference_ff(ff, x, act=F.relu))


def test_dropout_only_in_training() -> None:
    torch.manual_seed(2)
    ff = ChunkedFeedForward(4, 64, chunks=2, dropout=0.5).double()
    x = torch.randn(2, 6, 4, dtype=torch.float64)
    ff.eval()
    torch.testing.assert_close(ff(x), reference_ff(ff, x))
    ff.train()
    assert not torch.allclose(ff(x), reference_ff(ff, x))


def test_dropout_gradients_match_finite_differences() -> None:
    """Checkpointed chunks replay the forward's dropout masks when recomputing for backward.

    With the random seed reset before every call the layer is a deterministic function of
    its input, so its analytic gradient must match central finite differences.
    """
    torch.manual_seed(3)
    ff = ChunkedFeedForward(3, 8, chunks=3, dropout=0.5).double()
    x = torch.randn(1, 6, 3, dtype=torch.float64, requires_grad=True)

    def fixed_masks(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(4)
        return ff(inp)

    assert not torch.allclose(fixed_masks(x), reference_ff(ff, x))  # dropout is active
    assert torch.autograd.gradcheck(fixed_masks, (x,), eps=1e-6, atol=1e-6)


def test_chunking_reduces_saved_activations() -> None:
    """Only each chunk's input is kept for backward, not the d_ff-wide hidden state."""
    x = torch.randn(2, 64, 8, requires_grad=True)
    sizes = {}
    for chunks in (1, 8):
        ff = ChunkedFeedForward(8, 128, chunks=chunks)
        sizes[chunks] = saved_tensor_bytes(ff, x, ignore=ff.parameters())
    hidden_bytes = 2 * 64 * 128 * 4
    assert sizes[1] >= 2 * hidden_bytes  # w1 output and activation output (at least)
    assert sizes[8] < hidden_bytes / 4


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"d_model": 0, "d_ff": 4}, "d_model"),
        ({"d_model": 4, "d_ff": -1}, "d_ff"),
        ({"d_model": 4, "d_ff": 4, "chunks": 0}, "chunks"),
        ({"d_model": 4, "d_ff": 4, "dropout": 1.0}, "dropout"),
        ({"d_model": 4, "d_ff": 4, "activation": "tanh"}, "activation"),
    ],
)
def test_bad_arguments_raise_one_line_value_error(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        ChunkedFeedForward(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("chunks", [1, 3])
@pytest.mark.parametrize("grad", [True, False])
def test_norm_handed_to_the_layer_equals_norm_applied_before(chunks, grad):
    torch.manual_seed(3)
    ff = ChunkedFeedForward(8, 16, chunks=chunks).double()
    norm = torch.nn.LayerNorm(8).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 7, 8, dtype=torch.float64, requires_grad=True)
    params = [x, *ff.parameters(), *norm.parameters()]
    with torch.set_grad_enabled(grad):
        out, reference = ff(x, norm=norm), ff(norm(x))
    assert (out - reference).abs().max() < 1e-12
    if grad:
        g = torch.randn_like(out)
        for a, b in zip(
            torch.autograd.grad(out, params, g),
            torch.autograd.grad(reference, params, g),
            strict=True,
        ):
            assert (a - b).abs().max() < 1e-12

"""Reversible residual layers (paper, section 3) against ordinary residual code written here."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
from torch import nn

from reformer.attention import FullSelfAttention, LSHSelfAttention
from reformer.feedforward import ChunkedFeedForward
from reformer.memory import saved_tensor_bytes
from reformer.reversible import ReversibleBlock, ReversibleSequence

D = 8


class Attn(nn.Module):
    """F: layer norm, attention (optionally plus a pooled context), dropout."""

    def __init__(self, attention: nn.Module, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(D)
        self.attention = attention
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None, context=None):
        out = self.attention(self.norm(x), mask=mask)
        if context is not None:  # a tensor keyword argument that needs a gradient
            out = out + torch.tanh(context).mean(dim=1, keepdim=True)
        return self.dropout(out)


class FeedForward(nn.Module):
    """G: layer norm, chunked feed-forward (with hidden dropout), dropout."""

    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(D)
        self.ff = ChunkedFeedForward(D, 2 * D, chunks=2, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.ff(self.norm(x)))


def make_blocks(kind: str, n: int, dropout: float, generator=None) -> list:
    def attention():
        if kind == "lsh":
            return LSHSelfAttention(
                D, 2, bucket_size=4, n_hashes=2, causal=True, dropout=dropout, generator=generator
            )
        return FullSelfAttention(D, 2, causal=True, dropout=dropout)

    return [(Attn(attention(), dropout), FeedForward(dropout)) for _ in range(n)]


def residual_reference(seq: ReversibleSequence, x1, x2, **kwargs):
    """The same blocks as ordinary autograd code: y1 = x1 + F(x2); y2 = x2 + G(y1)."""
    for block in seq.blocks:
        x1 = x1 + block.f(x2, **kwargs)
        x2 = x2 + block.g(x1)
    return x1, x2


def max_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-30)).item()


@pytest.mark.parametrize("kind", ["full", "lsh", "lsh-generator"])
def test_gradients_equal_ordinary_residual_layers_with_dropout(kind: str) -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(123) if kind == "lsh-generator" else None
    seq = ReversibleSequence(make_blocks(kind.split("-")[0], 3, 0.2, generator)).double()
    seq.train()
    x = torch.randn(2, 16, D, dtype=torch.float64, requires_grad=True)
    context = torch.randn(2, 5, D, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, -3:] = False
    w1, w2 = torch.randn(2, 16, D, dtype=torch.float64), torch.randn(2, 16, D, dtype=torch.float64)
    params = list(seq.parameters())

    def run(fn):
        torch.manual_seed(7)
        if generator is not None:
            generator.manual_seed(123)
        y1, y2 = fn(seq, x, x, mask=mask, context=context)
        loss = (y1 * w1).sum() + (y2 * w2).sum()
        return (y1, y2), torch.autograd.grad(loss, [x, context, *params])

    (y1, y2), grads = run(ReversibleSequence.__call__)
    (r1, r2), ref_grads = run(residual_reference)

    torch.testing.assert_close(y1, r1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(y2, r2, rtol=1e-12, atol=1e-12)
    names = ["x", "context", *[n for n, _ in seq.named_parameters()]]
    for name, g, r in zip(names, grads, ref_grads, strict=True):
        assert g is not None, name
        assert max_rel_err(g, r) < 1e-5, name
    # dropout really was on: a different seed changes the output
    torch.manual_seed(8)
    if generator is not None:
        generator.manual_seed(123)
    assert not torch.allclose(seq(x, x, mask=mask, context=context)[0], y1)


def test_parameter_gradients_arrive_through_autograd_once() -> None:
    """param.grad is filled by autograd's AccumulateGrad (so DDP hooks fire), exactly once."""
    torch.manual_seed(1)
    seq = ReversibleSequence(make_blocks("full", 2, 0.0)).double()
    x = torch.randn(1, 8, D, dtype=torch.float64, requires_grad=True)
    fired = []
    for p in seq.parameters():
        p.register_post_accumulate_grad_hook(lambda p: fired.append(p))
    y1, y2 = seq(x, x)
    (y1.sum() + 2 * y2.sum()).backward()
    assert len(fired) == len(list(seq.parameters()))
    expected = torch.autograd.grad(
        sum(y.sum() * c for y, c in zip(residual_reference(seq, x, x), (1, 2), strict=True)),
        list(seq.parameters()),
    )
    for p, e in zip(seq.parameters(), expected, strict=True):
        assert max_rel_err(p.grad, e) < 1e-10


def test_backward_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(2)
    seq = ReversibleSequence(make_blocks("lsh", 2, 0.3))
    x = torch.randn(1, 16, D, requires_grad=True)
    y1, y2 = seq(x, x)
    state = torch.get_rng_state()
    (y1.sum() + y2.sum()).backward()
    assert torch.equal(torch.get_rng_state(), state)


def test_only_the_outputs_are_saved_whatever_the_depth() -> None:
    x = torch.randn(2, 16, D, requires_grad=True)
    saved = {}
    for n in (1, 6):
        seq = ReversibleSequence(make_blocks("full", n, 0.0))
        saved[n] = saved_tensor_bytes(lambda s=seq: s(x, x), ignore=seq.parameters())
    assert saved[1] == saved[6] == 2 * x.numel() * x.element_size()


def test_no_grad_path_and_inverse_agree() -> None:
    torch.manual_seed(3)
    seq = ReversibleSequence(make_blocks("full", 2, 0.0)).double()
    x1, x2 = torch.randn(2, 2, 8, D, dtype=torch.float64)
    with torch.no_grad():
        y_plain = seq(x1, x2)
    y_grad = seq(x1.requires_grad_(), x2)
    for a, b in zip(y_plain, y_grad, strict=True):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    block: ReversibleBlock = seq.blocks[0]
    with torch.no_grad():
        r1, r2 = block.inverse(*block(x1, x2))
    torch.testing.assert_close(r1, x1)
    torch.testing.assert_close(r2, x2)


def test_bf16_autocast_is_replayed_in_backward() -> None:
    torch.manual_seed(4)
    seq = ReversibleSequence(make_blocks("full", 2, 0.0))
    x = torch.randn(2, 8, D, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y1, y2 = seq(x, x)
    (y1.float().sum() + y2.float().sum()).backward()
    grad = x.grad.clone()
    x.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r1, r2 = residual_reference(seq, x, x)
    (r1.float().sum() + r2.float().sum()).backward()
    assert torch.isfinite(grad).all()
    assert max_rel_err(grad, x.grad) < 5e-2


def test_bad_blocks_raise_one_line_value_error() -> None:
    with pytest.raises(ValueError, match=r"blocks\[0\]") as info:
        ReversibleSequence([nn.Linear(2, 2)])
    assert "\n" not in str(info.value)


def _ddp_worker(rank: int, world: int, tmp: str) -> None:
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{os.path.join(tmp, 'init')}", rank=rank, world_size=world
    )
    try:
        torch.manual_seed(0)
        seq = ReversibleSequence(make_blocks("full", 2, 0.0)).double()
        model = DistributedDataParallel(seq)
        inputs = [
            torch.randn(2, 8, D, dtype=torch.float64, generator=torch.Generator().manual_seed(r))
            for r in range(world)
        ]
        y1, y2 = model(inputs[rank], inputs[rank])
        (y1.sum() + (y2**2).sum()).backward()
        # Reference: the mean over ranks of the ordinary residual gradients, computed locally.
        expected = [torch.zeros_like(p) for p in seq.parameters()]
        for inp in inputs:
            r1, r2 = residual_reference(seq, inp, inp)
            grads = torch.autograd.grad(r1.sum() + (r2**2).sum(), list(seq.parameters()))
            for e, g in zip(expected, grads, strict=True):
                e += g / world
        errors = [max_rel_err(p.grad, e) for p, e in zip(seq.parameters(), expected, strict=True)]
        with open(os.path.join(tmp, f"rank{rank}"), "w") as f:
            f.write(str(max(errors)))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.distributed
def test_distributed_data_parallel_averages_reversible_gradients() -> None:
    """Gradients returned by the custom backward reach DDP's hooks and are all-reduced."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_ddp_worker, args=(2, tmp), nprocs=2)
        for rank in range(2):
            with open(os.path.join(tmp, f"rank{rank}")) as f:
                assert float(f.read()) < 1e-10


class Squash(nn.Module):
    """An F whose last operation (tanh) keeps its own output for backward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(D, D)

    def forward(self, x, **kwargs):
        return torch.tanh(self.lin(x))


@pytest.mark.parametrize("f", ["attention", "tanh"])
def test_x1_rebuilt_in_f_output_storage_or_not_gives_the_residual_gradients(f: str) -> None:
    # The backward writes X1 = Y1 - F(X2) over F's recomputed output when F's graph does not
    # need that output; a tanh output is needed, so that block must fall back.
    torch.manual_seed(4)
    blocks = make_blocks("full", 2, 0.0)
    if f == "tanh":
        blocks = [(Squash(), g) for _, g in blocks]
    seq = ReversibleSequence(blocks).double()
    x = torch.randn(2, 8, D, dtype=torch.float64, requires_grad=True)
    w1, w2 = torch.randn(2, 2, 8, D, dtype=torch.float64)
    params = list(seq.parameters())
    grads = []
    for fn in (ReversibleSequence.__call__, residual_reference):
        y1, y2 = fn(seq, x, x)
        grads.append(torch.autograd.grad((y1 * w1).sum() + (y2 * w2).sum(), [x, *params]))
    for g, r in zip(*grads, strict=True):
        assert max_rel_err(g, r) < 1e-10
    assert [b.reuse_f_output for b in seq.blocks] == [f == "attention"] * 2


def test_an_output_changed_in_place_before_backward_raises() -> None:
    seq = ReversibleSequence(make_blocks("full", 1, 0.0))
    x = torch.randn(1, 8, D, requires_grad=True)
    y1, y2 = seq(x, x)
    loss = y1.sum() + y2.sum()
    y2.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place before backward"):
        loss.backward()


def test_retain_graph_allows_a_second_backward_and_plain_backward_releases_the_outputs() -> None:
    torch.manual_seed(5)
    seq = ReversibleSequence(make_blocks("full", 2, 0.0)).double()
    x = torch.randn(1, 8, D, dtype=torch.float64, requires_grad=True)
    y1, y2 = seq(x, x)
    first = torch.autograd.grad(y1.sum() + y2.sum(), x, retain_graph=True)[0]
    second = torch.autograd.grad(y1.sum() + y2.sum(), x)[0]
    assert torch.equal(first, second)
    with pytest.raises(RuntimeError, match="backward ran twice .* retain_graph=True"):
        torch.autograd.grad(y1.sum(), x)

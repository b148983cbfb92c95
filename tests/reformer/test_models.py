"""ReformerLM, TransformerLM, ReformerEncoderDecoder and the chunked loss."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

from reformer.attention import FullSelfAttention, LSHSelfAttention
from reformer.memory import saved_tensor_bytes
from reformer.models import (
    ReformerEncoderDecoder,
    ReformerLM,
    TransformerLM,
    chunked_cross_entropy,
)

V, L = 11, 16
SMALL = dict(d_model=8, n_heads=2, d_ff=16, max_seq_len=L, bucket_size=4, n_hashes=2)


def tokens(batch: int = 2, length: int = L, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (batch, length), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("attention", ["lsh", "full"])
@pytest.mark.parametrize("reversible", [True, False])
@pytest.mark.parametrize("positional", ["absolute", "fixed", "axial"])
def test_reformer_lm_shapes(attention: str, reversible: bool, positional: str) -> None:
    torch.manual_seed(0)
    model = ReformerLM(
        V,
        n_layers=2,
        attention=attention,
        reversible=reversible,
        positional=positional,
        axial_shape=(4, 4),
        ff_chunks=2,
        **SMALL,
    )
    x = tokens()
    logits = model(x)
    assert logits.shape == (2, L, V) and torch.isfinite(logits).all()
    loss = model.loss(x, x.roll(-1, dims=1))
    loss.backward()
    assert loss.ndim == 0
    assert all(p.grad is not None for p in model.parameters())


def test_transformer_lm_is_full_attention_without_reversibility() -> None:
    model = TransformerLM(V, d_model=8, n_layers=2, n_heads=2, d_ff=16, max_seq_len=L)
    assert not model.reversible and model.attention == "full"
    assert all(isinstance(b.f.fn, FullSelfAttention) for b in model.layers.blocks)
    assert model(tokens()).shape == (2, L, V)
    same = ReformerLM(V, n_layers=2, attention="full", reversible=False, shared_qk=False, **SMALL)
    assert model.state_dict().keys() == same.state_dict().keys()


def test_transformer_lm_is_not_a_reformer_lm_yet_builds_the_same_network() -> None:
    # The baseline is its own class (both are LanguageModels), but with one seed it makes the
    # same weights and outputs as ReformerLM(attention="full", reversible=False).
    assert not issubclass(TransformerLM, ReformerLM)
    kw = dict(d_model=8, n_layers=2, n_heads=2, d_ff=16, max_seq_len=L, dropout=0.0)
    torch.manual_seed(3)
    baseline = TransformerLM(V, shared_qk=True, **kw)
    torch.manual_seed(3)
    reformer = ReformerLM(V, attention="full", reversible=False, shared_qk=True, **kw)
    assert list(baseline.state_dict()) == list(reformer.state_dict())
    pairs = zip(baseline.parameters(), reformer.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert torch.equal(baseline(tokens()), reformer(tokens()))


def test_state_dict_names_are_the_saved_model_names() -> None:
    """The parameter names are what ``model.pt`` files hold: they must not change."""
    lm = ReformerLM(V, d_model=8, n_heads=2, d_ff=16, max_seq_len=L, bucket_size=4)
    block = ["norm.weight", "norm.bias"]
    ff = [*block, "fn.w1.weight", "fn.w1.bias", "fn.w2.weight", "fn.w2.bias"]
    lsh = [*block, "fn.to_qk.weight", "fn.to_v.weight", "fn.to_out.weight"]
    assert list(lm.state_dict()) == [
        "token_emb.weight",
        "pos_emb.emb.weight",
        *(f"layers.blocks.0.f.{k}" for k in lsh),
        *(f"layers.blocks.0.g.{k}" for k in ff),
        "norm.weight",
        "norm.bias",
        "to_logits.weight",
        "to_logits.bias",
    ]
    ed = ReformerEncoderDecoder(V, d_model=8, n_heads=2, d_ff=16, max_seq_len=L)
    full = [*block, "fn.to_q.weight", "fn.to_k.weight", "fn.to_v.weight", "fn.to_out.weight"]
    assert list(ed.state_dict()) == [
        "embedding.weight",
        *(f"encoder.blocks.0.f.{k}" for k in full),
        *(f"encoder.blocks.0.g.{k}" for k in ff),
        *(f"decoder.blocks.0.f.self_attn.{k}" for k in full),
        *(f"decoder.blocks.0.f.cross_attn.{k}" for k in full),
        *(f"decoder.blocks.0.g.{k}" for k in ff),
        "encoder_norm.weight",
        "encoder_norm.bias",
        "decoder_norm.weight",
        "decoder_norm.bias",
    ]


def test_log_probs_are_chunked_log_softmax_of_the_logits() -> None:
    torch.manual_seed(1)
    model = ReformerLM(V, attention="full", **SMALL).double()
    x = tokens()
    torch.testing.assert_close(model.log_probs(x, chunks=3), F.log_softmax(model(x), dim=-1))


def test_padding_mask_hides_padded_tokens_from_real_positions() -> None:
    torch.manual_seed(2)
    model = ReformerLM(V, attention="full", causal=False, **SMALL).double().eval()
    x = tokens()
    mask = torch.ones(2, L, dtype=torch.bool)
    mask[:, 12:] = False
    y = x.clone()
    y[:, 12:] = (y[:, 12:] + 3) % V
    out_x, out_y = model(x, mask=mask), model(y, mask=mask)
    torch.testing.assert_close(out_x[:, :12], out_y[:, :12], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(model(x)[:, :12], model(y)[:, :12])  # unmasked: they do matter


# --------------------------------------------------------------------------- causality (c)


@contextmanager
def embedding_leaf(model: torch.nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """While open, the token embedding's output is a new leaf tensor (``captured["emb"]``,
    requiring grad), so gradients of the outputs with respect to it can be taken."""
    captured: dict[str, torch.Tensor] = {}

    def make_leaf(module, inputs, output):
        captured["emb"] = output.detach().requires_grad_(True)
        return captured["emb"]

    handle = model.token_emb.register_forward_hook(make_leaf)
    try:
        yield captured
    finally:
        handle.remove()


CAUSAL_MODELS = {
    "reformer-lsh-reversible": lambda: ReformerLM(V, n_layers=2, dropout=0.1, **SMALL),
    "reformer-lsh-plain": lambda: ReformerLM(V, n_layers=2, reversible=False, **SMALL),
    "reformer-full-reversible": lambda: ReformerLM(V, n_layers=2, attention="full", **SMALL),
    "transformer": lambda: TransformerLM(V, n_layers=2, dropout=0.1, **SMALL),
    "transformer-shared-qk": lambda: TransformerLM(V, n_layers=2, shared_qk=True, **SMALL),
}


@pytest.mark.parametrize("name", sorted(CAUSAL_MODELS))
def test_output_never_depends_on_later_input_embeddings(name: str) -> None:
    """d logits[i] / d embedding[j] is exactly zero for every j > i (and not for j = i)."""
    torch.manual_seed(3)
    model = CAUSAL_MODELS[name]().double().train()
    with embedding_leaf(model) as captured:
        logits = model(tokens())  # (b, l, V)
    weight = torch.randn(logits.shape, dtype=torch.float64)
    for i in range(L):
        (grad,) = torch.autograd.grad(
            (logits[:, i] * weight[:, i]).sum(), captured["emb"], retain_graph=True
        )  # (b, l, d)
        assert torch.all(grad[:, i + 1 :] == 0), f"position {i} sees the future"
        assert grad[:, i].abs().sum() > 0


def test_lsh_bucket_leak_moves_past_outputs_yet_their_gradient_from_the_future_is_zero() -> None:
    """Sorting/chunking makes a query's visible past depend on future tokens; gradients don't.

    On duplication-task sequences (0 w 0 w), tokens after a split are replaced; original and
    changed sequences share one batch, hence the same LSH rotations. Some outputs before the
    split move (reformer/benchmarks/lsh_causal_leak.py measures how often), but no gradient
    flows from any later embedding to them.
    """
    length, vocab = 32, 8
    generator = torch.Generator().manual_seed(0)

    def duplication(n: int) -> torch.Tensor:  # rows 0 w 0 w
        w = torch.randint(1, vocab, (n, length // 2 - 1), generator=generator)
        zero = torch.zeros(n, 1, dtype=torch.long)
        return torch.cat([zero, w, zero, w], dim=1)

    original, replacement = duplication(4), duplication(4)
    split = length // 2
    changed = original.clone()
    changed[:, split + 1 :] = replacement[:, split + 1 :]
    torch.manual_seed(14)
    model = (
        ReformerLM(
            vocab, d_model=8, n_heads=2, d_ff=8, max_seq_len=length, bucket_size=4, n_hashes=2
        )
        .double()
        .eval()
    )
    with embedding_leaf(model) as captured:
        torch.manual_seed(15)
        logits = model(torch.cat([original, changed]))  # (2 * 4, l, V), one set of rotations
    moved = (logits[:4, : split + 1] - logits[4:, : split + 1]).abs().amax(-1) > 1e-9
    assert moved.any(), "expected the bucket/chunk layout to leak for this seed"
    for seq, pos in moved.nonzero().tolist():
        (grad,) = torch.autograd.grad(logits[seq, pos].sum(), captured["emb"], retain_graph=True)
        assert torch.all(grad[seq, pos + 1 :] == 0)
        assert torch.all(grad[seq + 4] == 0)  # nor from the other sequence in the batch


# --------------------------------------------------------------------------- chunked loss (e)


@pytest.mark.parametrize("chunks", [1, 3, 4, 16])
def test_chunked_cross_entropy_equals_full_cross_entropy(chunks: int) -> None:
    torch.manual_seed(4)
    head = torch.nn.Sequential(torch.nn.LayerNorm(6), torch.nn.Linear(6, V)).double()
    hidden = torch.randn(3, L, 6, dtype=torch.float64, requires_grad=True)
    targets = tokens(3)
    mask = torch.rand(3, L) < 0.6
    params = [hidden, *head.parameters()]

    loss = chunked_cross_entropy(hidden, head, targets, mask, chunks=chunks)
    grads = torch.autograd.grad(loss, params)
    logits = head(hidden)
    ref = F.cross_entropy(logits[mask], targets[mask])
    ref_grads = torch.autograd.grad(ref, params)

    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_chunked_cross_entropy_empty_mask_and_memory() -> None:
    head = torch.nn.Linear(4, 1000)
    hidden = torch.randn(2, 64, 4, requires_grad=True)
    targets = torch.randint(0, 1000, (2, 64))
    empty = torch.zeros(2, 64, dtype=torch.bool)
    assert chunked_cross_entropy(hidden, head, targets, empty, chunks=2).item() == 0.0
    logits_bytes = 2 * 64 * 1000 * 4
    full = saved_tensor_bytes(chunked_cross_entropy, hidden, head, targets, ignore=[hidden])
    chunked = saved_tensor_bytes(
        chunked_cross_entropy, hidden, head, targets, chunks=8, ignore=[hidden]
    )
    assert full >= logits_bytes  # the whole logits tensor is kept
    assert chunked < logits_bytes / 4  # only the slices' inputs are kept


@pytest.mark.parametrize("attention", ["full", "lsh"])
def test_model_loss_equals_cross_entropy_of_forward_logits(attention: str) -> None:
    torch.manual_seed(5)
    model = ReformerLM(V, n_layers=2, attention=attention, loss_chunks=3, **SMALL).double()
    x, targets = tokens(seed=1), tokens(seed=2)
    loss_mask = torch.zeros(2, L, dtype=torch.bool)
    loss_mask[:, L // 2 :] = True
    params = list(model.parameters())

    torch.manual_seed(6)  # same LSH rotations in both runs
    loss = model.loss(x, targets, loss_mask)
    grads = torch.autograd.grad(loss, params)
    torch.manual_seed(6)
    logits = model(x)
    ref = F.cross_entropy(logits[loss_mask], targets[loss_mask])
    ref_grads = torch.autograd.grad(ref, params)

    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-12)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- set_attention


def _equal_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("start", "switch"), [("full", "lsh"), ("lsh", "full")])
def test_set_attention_keeps_weights_and_matches_a_fresh_model(start: str, switch: str) -> None:
    torch.manual_seed(7)
    config = dict(n_layers=2, **SMALL)
    model = ReformerLM(V, attention=start, shared_qk=True, **config).double().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert model.set_attention(switch, n_hashes=3) is model
    assert _equal_state(model.state_dict(), before)
    kind = LSHSelfAttention if switch == "lsh" else FullSelfAttention
    for block in model.layers.blocks:
        assert isinstance(block.f.fn, kind) and not block.f.fn.training
        assert next(block.f.fn.parameters()).dtype == torch.float64
    fresh = ReformerLM(V, attention=switch, shared_qk=True, **{**config, "n_hashes": 3})
    fresh = fresh.double().eval()
    fresh.load_state_dict(before)
    x = tokens()
    torch.manual_seed(8)
    out = model(x)
    torch.manual_seed(8)
    expected = fresh(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    original = ReformerLM(V, attention=start, shared_qk=True, **config).double().eval()
    original.load_state_dict(before)
    torch.manual_seed(8)
    assert not torch.allclose(original(x), out)  # the switch changed the function


def test_set_attention_changes_n_hashes_in_place() -> None:
    model = ReformerLM(V, n_layers=2, **SMALL)
    attn = model.layers.blocks[1].f.fn
    model.set_attention("lsh", n_hashes=8)
    assert model.layers.blocks[1].f.fn is attn and attn.n_hashes == 8
    model.set_attention("full")
    model.set_attention("lsh")
    assert model.layers.blocks[1].f.fn.n_hashes == 8


def test_set_attention_to_lsh_on_separate_qk_hashes_with_the_query_projection() -> None:
    """A model with separate Q and K evaluated with LSH: the LSH layer's shared query/key is
    the query projection (the key projection unused); back to full, ``to_k`` returns."""
    torch.manual_seed(0)
    model = TransformerLM(V, d_model=8, n_heads=2, d_ff=16, max_seq_len=L, bucket_size=4)
    tokens = torch.randint(0, V, (2, L))
    before = model(tokens)
    full = model.layers.blocks[0].f.fn
    to_q, to_k = full.to_q.weight.detach().clone(), full.to_k.weight.detach().clone()
    lsh = model.set_attention("lsh", n_hashes=1).layers.blocks[0].f.fn
    assert isinstance(lsh, LSHSelfAttention) and not hasattr(lsh, "to_k")
    assert torch.equal(lsh.to_qk.weight, to_q)
    # the same computation by hand: a shared-QK LSH layer loaded with to_qk = to_q
    reference = LSHSelfAttention(8, 2, bucket_size=4, n_hashes=1, causal=True)
    reference.load_state_dict(
        {"to_qk.weight": to_q, "to_v.weight": full.to_v.weight, "to_out.weight": full.to_out.weight}
    )
    x = torch.randn(2, L, 8)
    torch.manual_seed(1)
    got = lsh(x)
    torch.manual_seed(1)
    torch.testing.assert_close(got, reference(x))
    back = model.set_attention("full").layers.blocks[0].f.fn
    assert back is full and torch.equal(back.to_k.weight, to_k)
    torch.testing.assert_close(model(tokens), before)


@pytest.mark.parametrize(("args", "name"), [(("sparse",), "attention"), (("lsh", 0), "n_hashes")])
def test_set_attention_bad_arguments(args: tuple, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ReformerLM(V, **SMALL).set_attention(*args)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"vocab_size": 0}, "vocab_size"),
        ({"d_model": 0}, "d_model"),
        ({"n_layers": 0}, "n_layers"),
        ({"n_heads": 3}, "n_heads"),
        ({"d_ff": -2}, "d_ff"),
        ({"max_seq_len": 0}, "max_seq_len"),
        ({"attention": "sparse"}, "attention"),
        ({"positional": "rotary"}, "positional"),
        ({"max_seq_len": 18}, "max_seq_len"),  # not a multiple of bucket_size 4
        ({"max_seq_len": 12, "bucket_rule": "half"}, "max_seq_len"),  # 3 buckets: odd
        ({"bucket_rule": "double"}, "bucket_rule"),
        ({"shared_qk": False}, "shared_qk"),
        ({"positional": "axial"}, "axial_shape"),
        ({"positional": "axial", "axial_shape": (2, 4)}, "axial_shape"),
        ({"dropout": 1.5}, "dropout"),
        ({"ff_chunks": 0}, "ff_chunks"),
        ({"loss_chunks": 0}, "loss_chunks"),
        ({"n_hashes": 0}, "n_hashes"),
        ({"bucket_size": 0}, "bucket_size"),
    ],
)
def test_bad_constructor_arguments_raise_one_line_value_error(overrides: dict, name: str) -> None:
    kwargs = {"vocab_size": V, **SMALL, **overrides}
    with pytest.raises(ValueError, match=name) as info:
        ReformerLM(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_inputs_raise_value_error() -> None:
    model = ReformerLM(V, attention="full", **SMALL)
    with pytest.raises(ValueError, match="tokens"):
        model(torch.zeros(2, 4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="sequence length 20"):
        model(torch.zeros(1, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model.loss(tokens(), tokens()[:, :8])


# --------------------------------------------------------------------------- encoder-decoder

ENC_DEC = dict(d_model=8, n_encoder_layers=2, n_decoder_layers=2, n_heads=2, d_ff=16)


@pytest.mark.parametrize("reversible", [True, False])
def test_encoder_decoder_shapes_and_gradients(reversible: bool) -> None:
    torch.manual_seed(9)
    model = ReformerEncoderDecoder(V, max_seq_len=L, reversible=reversible, **ENC_DEC)
    src, tgt = tokens(2, 10), tokens(2, 7, seed=1)
    assert model(src, tgt).shape == (2, 7, V)
    assert model.encode(src).shape == (2, 10, 8)
    loss = model.loss(src, tgt[:, :-1], tgt[:, 1:])
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # one matrix for source, target and output
    assert sum(p.numel() for p in model.parameters() if p.shape == (V, 8)) == V * 8


def test_encoder_decoder_reversible_gradients_match_plain_residual_code() -> None:
    torch.manual_seed(10)
    model = ReformerEncoderDecoder(V, max_seq_len=L, dropout=0.1, **ENC_DEC).double()
    src, tgt = tokens(2, 10), tokens(2, 7, seed=1)
    src[1, 7:] = 0  # padding
    params = list(model.parameters())

    def reference_loss() -> torch.Tensor:
        src_mask = src != 0

        def run(stack, x, **kwargs):
            x1 = x2 = x
            for block in stack.blocks:
                x1 = x1 + block.f(x2, **kwargs)
                x2 = x2 + block.g(x1)
            return (x1 + x2) / 2

        memory = model.encoder_norm(run(model.encoder, model._embed(src), mask=src_mask))
        hidden = run(model.decoder, model._embed(tgt), context=memory, context_mask=src_mask)
        logits = model.decoder_norm(hidden) @ model.embedding.weight.T
        return F.cross_entropy(logits.flatten(0, 1), tgt.roll(-1, 1).flatten())

    torch.manual_seed(11)
    loss = model.loss(src, tgt, tgt.roll(-1, 1), loss_mask=torch.ones(2, 7, dtype=torch.bool))
    grads = torch.autograd.grad(loss, params)
    torch.manual_seed(11)
    ref = reference_loss()
    ref_grads = torch.autograd.grad(ref, params)
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads, strict=True):
        assert (g - r).abs().max() <= 1e-5 * r.abs().max(), name


def test_decoder_is_causal() -> None:
    torch.manual_seed(12)
    model = ReformerEncoderDecoder(V, max_seq_len=L, **ENC_DEC).double().eval()
    src, tgt = tokens(2, 10), tokens(2, 8, seed=1)
    out = model(src, tgt)
    for t in range(7):
        changed = tgt.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 1 + t) % V
        new = model(src, changed)
        torch.testing.assert_close(new[:, : t + 1], out[:, : t + 1], rtol=1e-12, atol=1e-12)
        assert not torch.allclose(new[:, t + 1 :], out[:, t + 1 :])


def test_source_padding_is_ignored() -> None:
    torch.manual_seed(13)
    model = ReformerEncoderDecoder(V, max_seq_len=L, pad_id=0, **ENC_DEC).double().eval()
    src, tgt = tokens(2, 10).clamp(min=1), tokens(2, 6, seed=1)
    src[:, 7:] = 0
    out = model(src, tgt)
    # other tokens at the padded positions, with the same mask: same output
    mask = src != 0
    other = src.clone()
    other[:, 7:] = torch.tensor([3, 5, 7])
    torch.testing.assert_close(model(other, tgt, src_mask=mask), out, rtol=1e-12, atol=1e-12)
    # less padding: same output
    torch.testing.assert_close(model(src[:, :8], tgt), out, rtol=1e-10, atol=1e-12)
    # without the mask the padded tokens do matter
    assert not torch.allclose(model(other, tgt, src_mask=torch.ones_like(mask)), out)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"pad_id": V}, "pad_id"),
        ({"n_encoder_layers": 0}, "n_encoder_layers"),
        ({"n_heads": 3}, "n_heads"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_encoder_decoder_bad_arguments(overrides: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name) as info:
        ReformerEncoderDecoder(V, **{**ENC_DEC, "max_seq_len": L, **overrides})
    assert "\n" not in str(info.value)
